"""Models, training helpers and evaluation: weight counts, shapes, augmentation, a short fit, metrics."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, log_loss

from labutils.batch_norm import RecomputeBatchNormStatistics, recompute_batch_norm_statistics
from labutils.bench.measures import single_image_rate
from labutils.data import LETTERS, label_to_index
from labutils.display import describe_gap
from labutils.metrics import classification_metrics, per_letter_report
from labutils.models import BlurPooling2D, PerImageStandardization, compact_cnn, count_weights, seed_cnn
from labutils.plot import plot_confusion_matrix, plot_misclassified
from labutils.recipes import ReferenceRecipe, TransferRecipe
from labutils.sources import load_dataset
from labutils.split import to_model_input
from labutils.training import (
    EpochClock,
    FinalOrBest,
    StepBudget,
    SwapAverageWeights,
    augmentation_pipeline,
    cosine_schedule,
    history_frame,
    training_dataset,
)


def test_seed_cnn_has_the_reference_weight_count():
    model = seed_cnn()
    assert model.count_params() == 139_608
    assert count_weights(model) == {"trainable": 139_608, "non_trainable": 0, "total": 139_608}


@pytest.mark.parametrize("build", [seed_cnn, compact_cnn])
def test_output_shapes_and_probabilities(build, rng):
    model = build()
    probabilities = model.predict(rng.random((5, 28, 28, 1)).astype("float32"), verbose=0)
    assert probabilities.shape == (5, 24)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_compact_cnn_validates_its_arguments():
    with pytest.raises(ValueError, match="width"):
        compact_cnn(width=0)
    with pytest.raises(ValueError, match="dropout"):
        compact_cnn(dropout=1.0)
    with pytest.raises(ValueError, match="pooling must be one of blur, max, got 'average'"):
        compact_cnn(pooling="average")
    with pytest.raises(ValueError, match="head must be one of average, flatten, got 'dense'"):
        compact_cnn(head="dense")


def test_compact_cnn_pooling_and_head_change_the_network():
    layer_types = {
        (pooling, head): {
            type(layer).__name__ for layer in compact_cnn(width=4, pooling=pooling, head=head).layers
        }
        for pooling in ("blur", "max")
        for head in ("average", "flatten")
    }
    assert {"BlurPooling2D", "GlobalAveragePooling2D"} <= layer_types["blur", "average"]
    assert (
        "MaxPooling2D" not in layer_types["blur", "average"]
        and "Flatten" not in layer_types["blur", "average"]
    )
    assert {"MaxPooling2D", "Flatten"} <= layer_types["max", "flatten"]
    # flatten keeps 3x3 positions after max pooling, 4x4 after blur pooling; the average head keeps one
    dense_inputs = {
        key: compact_cnn(width=4, pooling=key[0], head=key[1]).get_layer("letter").input.shape[-1]
        for key in layer_types
    }
    assert dense_inputs == {
        ("blur", "average"): 16,
        ("max", "average"): 16,
        ("blur", "flatten"): 256,
        ("max", "flatten"): 144,
    }


def _blur_pooling_by_hand(images: np.ndarray) -> np.ndarray:
    """Max over 2x2 windows at stride 1, then the 3x3 binomial blur at stride 2, each with TensorFlow's "same" padding."""
    batch, height, width, channels = images.shape
    padded = np.pad(
        images, ((0, 0), (0, 1), (0, 1), (0, 0)), constant_values=-np.inf
    )  # a 2x2 window pads after only
    pooled = np.max([padded[:, i : i + height, j : j + width] for i in (0, 1) for j in (0, 1)], axis=0)
    out_h, out_w = (height + 1) // 2, (width + 1) // 2
    pad_h, pad_w = max((out_h - 1) * 2 + 3 - height, 0), max((out_w - 1) * 2 + 3 - width, 0)
    padded = np.pad(
        pooled, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0))
    )
    binomial = np.outer([1, 2, 1], [1, 2, 1]) / 16
    out = np.zeros((batch, out_h, out_w, channels))
    for i in range(out_h):
        for j in range(out_w):
            window = padded[:, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3]
            out[:, i, j] = np.einsum("bhwc,hw->bc", window, binomial)
    return out


@pytest.mark.parametrize("size", [28, 7])
def test_blur_pooling_matches_a_computation_by_hand(size, rng):
    images = rng.normal(size=(2, size, size, 3)).astype("float32")
    layer = BlurPooling2D()
    pooled = keras.ops.convert_to_numpy(layer(images))
    assert (
        pooled.shape == layer.compute_output_shape(images.shape) == (2, (size + 1) // 2, (size + 1) // 2, 3)
    )
    np.testing.assert_allclose(pooled, _blur_pooling_by_hand(images), atol=1e-5)
    assert count_weights(keras.Sequential([keras.Input((size, size, 3)), layer]))["total"] == 0


def test_blur_pooling_is_less_shift_sensitive_than_max_pooling(rng):
    images = rng.random((8, 28, 28, 4)).astype("float32")
    shifted = np.roll(images, 1, axis=2)  # one pixel to the right

    def change(pool):
        a, b = (
            keras.ops.convert_to_numpy(pool(x))[:, 2:-2, 2:-2] for x in (images, shifted)
        )  # away from the borders
        return float(np.abs(a - b).mean() / np.abs(a).mean())

    assert change(BlurPooling2D()) < 0.5 * change(keras.layers.MaxPooling2D(2, padding="same"))


def test_per_image_standardization_ignores_brightness_and_contrast(rng):
    layer = PerImageStandardization()
    image = rng.random((2, 28, 28, 1)).astype("float32")
    changed = image * 0.5 + 0.3
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(image)), keras.ops.convert_to_numpy(layer(changed)), atol=1e-2
    )
    standardized = keras.ops.convert_to_numpy(layer(image))
    np.testing.assert_allclose(standardized.mean(axis=(1, 2, 3)), 0, atol=1e-5)


def test_saved_model_round_trip_in_safe_mode(tmp_path, rng):
    model = compact_cnn(width=4)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    x = rng.random((3, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_to_model_input_scales_and_adds_a_channel():
    x = to_model_input(np.full((2, 28, 28), 255, dtype=np.uint8))
    assert x.shape == (2, 28, 28, 1) and x.dtype == np.float32 and x.max() == 1.0
    with pytest.raises(ValueError, match="shape"):
        to_model_input(np.zeros((2, 784)))


def test_augmentation_never_flips_and_keeps_labels(rng):
    pipeline = augmentation_pipeline(seed=0)
    names = [type(layer).__name__ for layer in pipeline.layers]
    assert "RandomFlip" not in names
    assert names == ["RandomAffine", "RandomContrast", "RandomBrightness"]
    # an asymmetric image: mass on the left; a flip would move it right, small rotations and shifts do not
    images = np.zeros((64, 28, 28, 1), dtype="float32")
    images[:, 6:22, 3:11] = 1.0
    labels = np.arange(64) % 24
    dataset = training_dataset(images, labels, batch_size=64, seed=0, augmentation=pipeline)
    batch, batch_labels = next(iter(dataset))
    batch = np.asarray(batch)
    assert batch.shape == images.shape
    assert sorted(np.asarray(batch_labels).tolist()) == sorted(labels.tolist())
    left, right = batch[:, :, :14].sum(axis=(1, 2, 3)), batch[:, :, 14:].sum(axis=(1, 2, 3))
    assert np.all(left > right)
    assert not np.allclose(batch, images)
    assert 0.0 <= batch.min() and batch.max() <= 1.0 + 1e-6


def test_reference_augmentation_is_geometric_only():
    layers = ReferenceRecipe().augmentation(0).layers
    assert [type(layer).__name__ for layer in layers] == ["RandomAffine"]
    affine = layers[0]
    assert (affine.rotation_degrees, affine.shift, affine.zoom, affine.shear) == (10, 0.05, 0.075, 0.1)
    with pytest.raises(ValueError, match="shift"):
        augmentation_pipeline(shift=-1)


def test_random_affine_is_one_resampling_of_the_right_kind(rng):
    from labutils.models import RandomAffine

    images = rng.random((32, 28, 28, 1)).astype("float32")
    # no change asked: the identity, exactly; and nothing happens outside training
    np.testing.assert_array_equal(np.asarray(RandomAffine(seed=0)(images)), images)
    np.testing.assert_array_equal(
        np.asarray(RandomAffine(30, 0.2, 0.2, 0.2, seed=0)(images, training=False)), images
    )
    # rotations up to 90 degrees turn some horizontal bars upright
    bar = np.zeros((8, 28, 28, 1), "float32")
    bar[:, 13:15, 4:24] = 1.0
    rotated = np.asarray(RandomAffine(rotation_degrees=90 - 1e-3, seed=3)(bar))
    rows = (rotated[..., 0].sum(axis=2) > 0.5).sum(axis=1)  # rows the bar occupies
    cols = (rotated[..., 0].sum(axis=1) > 0.5).sum(axis=1)
    assert np.any(rows > cols)  # some bars are turned upright (horizontal bar: 2 rows, 20 columns)
    # one interpolation keeps a sharp image sharper than four chained Keras layers
    import keras

    chained = keras.Sequential(
        [
            keras.layers.RandomRotation(10 / 360, fill_mode="nearest", seed=0),
            keras.layers.RandomTranslation(0.05, 0.05, fill_mode="nearest", seed=1),
            keras.layers.RandomZoom(0.075, fill_mode="nearest", seed=2),
            keras.layers.RandomShear(0.1, 0.1, fill_mode="nearest", seed=3),
        ]
    )
    checker = np.indices((28, 28)).sum(axis=0) % 4 < 2  # sharp edges every two pixels
    sharp = np.repeat(checker[None, :, :, None].astype("float32"), 64, axis=0)
    once = np.asarray(RandomAffine(10, 0.05, 0.075, 0.1, seed=0)(sharp))
    four_times = np.asarray(chained(sharp, training=True))
    assert once.std() > four_times.std()
    # seeded: the same draws again
    first = np.asarray(RandomAffine(10, 0.1, 0.1, 0.1, seed=7)(images))
    np.testing.assert_array_equal(first, np.asarray(RandomAffine(10, 0.1, 0.1, 0.1, seed=7)(images)))
    assert not np.allclose(first, images)
    with pytest.raises(ValueError, match="rotation_degrees"):
        RandomAffine(rotation_degrees=200)
    config = RandomAffine(10, 0.1, 0.2, 0.3, seed=5).get_config()
    assert {key: config[key] for key in ("rotation_degrees", "shift", "zoom", "shear", "seed")} == {
        "rotation_degrees": 10.0,
        "shift": 0.1,
        "zoom": 0.2,
        "shear": 0.3,
        "seed": 5,
    }


def test_cosine_schedule_warms_up_then_decays():
    schedule = cosine_schedule(1e-2, epochs=10, steps_per_epoch=10, warmup_fraction=0.1)
    values = [float(schedule(step)) for step in (0, 10, 50, 99)]
    assert values[0] == pytest.approx(1e-3) and values[1] == pytest.approx(1e-2, rel=1e-3)
    assert values[1] > values[2] > values[3]


def test_a_short_fit_on_the_standin_beats_chance(standin_dir):
    dataset = load_dataset(standin_dir)
    x, y = to_model_input(dataset.x_train), label_to_index(dataset.y_train)
    x_test, y_test = to_model_input(dataset.x_test), label_to_index(dataset.y_test)
    keras.utils.set_random_seed(0)
    model = compact_cnn(width=16)
    model.compile(
        optimizer=keras.optimizers.AdamW(cosine_schedule(3e-3, 6, 19)),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=False,
    )
    clock, budget = EpochClock(), StepBudget(6 * 19)
    history = model.fit(
        training_dataset(x, y, batch_size=64, seed=0), epochs=6, verbose=0, callbacks=[clock, budget]
    )
    frame = history_frame(history)
    assert (
        list(frame.index) == [1, 2, 3, 4, 5, 6]
        and "seconds" in frame
        and frame.seconds.is_monotonic_increasing
    )
    metrics = classification_metrics(y_test, model.predict(x_test, verbose=0))
    assert metrics["accuracy"] > 4 / 24, metrics


def test_step_budget_stops_after_its_steps_part_way_through_an_epoch_and_validates_it():
    model = compact_cnn(width=4)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile=False)
    steps = []
    counter = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: steps.append(batch))
    x, y = np.zeros((80, 28, 28, 1), "float32"), np.zeros(80)  # 10 steps of 8 per epoch
    history = model.fit(
        x,
        y,
        batch_size=8,
        epochs=5,
        verbose=0,
        validation_data=(x[:8], y[:8]),
        callbacks=[counter, budget := StepBudget(23)],
    )
    assert steps == list(range(10)) * 2 + [0, 1, 2]
    assert len(history.history["val_loss"]) == 3  # the cut epoch is validated too
    assert (budget.steps_done, budget.steps_per_epoch, budget.cut_short) == (3, 10, True)
    model.fit(x, y, batch_size=8, epochs=5, verbose=0, callbacks=[whole := StepBudget(20)])
    assert (whole.steps_done, whole.cut_short) == (10, False)
    for wrong in (0, -3, 2.5, True, "10"):
        with pytest.raises(ValueError, match="steps must be a whole number"):
            StepBudget(wrong)


def test_the_control_trains_the_fine_tuning_steps_over_its_step_cost_whatever_the_clock():
    recipe = TransferRecipe(fine_tune_epochs=3, batch_size=128, control_step_cost=1.8)
    assert recipe.control_steps(19_200) == round(3 * 150 / 1.8) == 250
    assert TransferRecipe(fine_tune_epochs=1, control_step_cost=100.0).control_steps(10) == 1
    schedule = recipe.control_optimizer(250)._learning_rate  # the schedule itself, not its current value
    assert isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule)
    rates = [float(schedule(step)) for step in (0, 25, 249)]
    assert rates[0] == pytest.approx(3e-4) and rates[1] == pytest.approx(3e-3) and rates[2] < 1e-5
    names = [
        type(callback).__name__
        for callback in recipe.control_callbacks(250, None, np.zeros((4, 28, 28, 1)), 0)
    ]
    assert names == ["RecomputeBackboneStatistics", "StepBudget"]  # nothing in it reads a clock
    with pytest.raises(ValueError, match="control_step_cost"):
        TransferRecipe(control_step_cost=0.0)


def test_metrics_agree_with_scikit_learn(rng):
    y_true = rng.integers(0, 24, 300)
    probabilities = rng.dirichlet(np.ones(24), 300)
    probabilities[np.arange(200), y_true[:200]] += 2
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    metrics = classification_metrics(y_true, probabilities)
    predicted = probabilities.argmax(axis=1)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(y_true, predicted))
    assert metrics["log_loss"] == pytest.approx(log_loss(y_true, probabilities, labels=np.arange(24)))
    assert metrics["f1_weighted"] == pytest.approx(f1_score(y_true, predicted, average="weighted"))
    assert metrics["errors"] == int(np.sum(predicted != y_true))
    with pytest.raises(ValueError, match="shape"):
        classification_metrics(y_true, probabilities[:, :20])


def test_single_image_rate_answers_one_image_per_compiled_call(rng):
    class CountingModel:
        """Records each predict_on_batch call; a real model is never called eagerly."""

        def __init__(self):
            self.batches: list[np.ndarray] = []

        def predict_on_batch(self, batch):
            self.batches.append(np.asarray(batch))
            return np.zeros((len(batch), 24))

        def __call__(self, *args, **kwargs):
            raise AssertionError("an eager call mostly times Python overhead")

    images = rng.random((30, 28, 28, 1)).astype("float32")
    model = CountingModel()
    assert single_image_rate(model, images, images=10) > 0
    # one warm-up call, then the first 10 images one at a time
    assert [len(batch) for batch in model.batches] == [1] * 11
    np.testing.assert_array_equal(np.concatenate(model.batches[1:]), images[:10])
    model = CountingModel()
    single_image_rate(model, images[:4], images=10)  # no more calls than images
    assert len(model.batches) == 5
    with pytest.raises(ValueError, match="at least one image"):
        single_image_rate(CountingModel(), images[:0])
    with pytest.raises(ValueError, match="images must be a positive"):
        single_image_rate(CountingModel(), images, images=0)
    # a real network: the compiled path
    assert single_image_rate(compact_cnn(width=4), images, images=5) > 0


def test_per_letter_report_and_plots(rng):
    import matplotlib

    matplotlib.use("Agg")
    y_true = np.repeat(np.arange(24), 3)
    y_predicted = y_true.copy()
    y_predicted[:3] = 1  # every A predicted as B
    report = per_letter_report(y_true, y_predicted)
    assert list(report.index) == list(LETTERS)
    assert (
        report.loc["A", "recall"] == 0 and report.loc["B", "precision"] == 0.5 and report.loc["C", "f1"] == 1
    )
    ax = plot_confusion_matrix(y_true, y_predicted)
    assert "69 of 72 correct" in ax.get_title()
    grid = plot_misclassified(rng.random((72, 28, 28)), y_true, y_predicted)
    assert [text.get_text() for text in grid.texts] == ["A→B"] * 3
    assert plot_misclassified(rng.random((72, 28, 28)), y_true, y_true) is None


def test_errors_by_family_counts_whole_families():
    from labutils.metrics import errors_by_family

    y_true = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    families = np.array([5, 5, 5, 7, 7, 9, 9, 3, 3])
    y_predicted = np.array(
        [0, 0, 0, 12, 12, 2, 4, 2, 2]
    )  # family 7 (B) wholly read as N; one C of family 9 as E
    table = errors_by_family(y_true, y_predicted, families)
    assert list(table.index) == [7, 9, 3, 5]
    assert table.loc[7].to_dict() == {"letter": "B", "images": 2, "errors": 2, "predicted_as": "N"}
    assert table.loc[9, "errors"] == 1 and table.loc[9, "predicted_as"] == "E"
    assert table.loc[3, "errors"] == 0 and table.loc[3, "predicted_as"] == "" and table["errors"].sum() == 3
    with pytest.raises(ValueError, match="one entry per image"):
        errors_by_family(y_true, y_predicted[:-1], families)
    with pytest.raises(ValueError, match="several letters"):
        errors_by_family(y_true, y_predicted, np.zeros(9, dtype=int))


def test_prepare_task_data_matches_the_split(standin_dir):
    from labutils.session import prepare_task_data

    dataset, split, inputs = prepare_task_data(standin_dir, train_limit=None)
    assert len(inputs.x_train) == len(split.train_index) and len(inputs.x_val) == len(split.validation_index)
    np.testing.assert_array_equal(inputs.y_val, label_to_index(dataset.y_train[split.validation_index]))
    assert inputs.x_test.shape == (480, 28, 28, 1)
    assert list(inputs.shapes().index) == ["train", "validation", "train + validation (final fit)", "test"]
    # the final fit: every labelled training row once, in file order
    np.testing.assert_array_equal(inputs.y_all, label_to_index(dataset.y_train))
    np.testing.assert_array_equal(inputs.x_all[split.validation_index], inputs.x_val)
    _, _, limited = prepare_task_data(standin_dir, train_limit=100, seed=1)
    assert len(limited.x_train) == 100 and len(limited.x_val) == len(split.validation_index)
    share = round(100 / len(split.train_index) * len(split.validation_index))
    assert (
        len(limited.x_all) == 100 + share
    )  # the same share of the validation rows joins the limited training rows
    with pytest.raises(ValueError, match="train_limit"):
        prepare_task_data(standin_dir, train_limit=0)


def test_training_with_augmentation_is_reproducible_with_a_seed(standin_dir):
    dataset = load_dataset(standin_dir)
    x, y = to_model_input(dataset.x_train[:256]), label_to_index(dataset.y_train[:256])

    def train_once():
        keras.utils.set_random_seed(7)
        model = compact_cnn(width=4)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile=False)
        batches = training_dataset(x, y, batch_size=32, seed=7, augmentation=augmentation_pipeline(seed=7))
        model.fit(batches, epochs=2, verbose=0)
        return model.get_weights()

    for first, second in zip(train_once(), train_once()):
        np.testing.assert_array_equal(first, second)


def _replay(callback, model, values, monitor="val_accuracy"):
    """Drive a callback through epochs whose weights are all equal to the epoch number."""
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, value in enumerate(values):
        model.set_weights([np.full_like(w, epoch + 1) for w in model.get_weights()])
        callback.on_epoch_end(epoch, {monitor: value})
    callback.on_train_end()
    return float(model.get_weights()[0].flat[0])


def _averaging_fit(callbacks, epochs, *, use_ema=True):
    """A tiny regression fitted by SGD (optionally averaging its weights) on fixed, unshuffled data: the weights after fit."""
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], dtype="float32") + 0.3
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.05, use_ema=use_ema, ema_momentum=0.8), loss="mse")
    history = model.fit(
        x,
        y,
        batch_size=8,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        validation_data=(x, y),
        callbacks=callbacks,
    )
    return model, history, (x, y)


class _StopAfter(keras.callbacks.Callback):
    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 >= self.epochs:
            self.model.stop_training = True


def test_swap_average_weights_keeps_and_validates_the_averaged_weights():
    plain, plain_history, _ = _averaging_fit(
        [], 3
    )  # Keras ends fit() with the average: the reference weights
    raw, _, _ = _averaging_fit([], 3, use_ema=False)
    swapped, history, (x, y) = _averaging_fit([SwapAverageWeights()], 3)
    assert not np.allclose(
        plain.get_weights()[0], raw.get_weights()[0]
    )  # the average is not the last weights
    np.testing.assert_allclose(swapped.get_weights()[0], plain.get_weights()[0], rtol=1e-6)
    # what the last epoch's validation scored is what the network keeps (Keras alone scores the raw weights)
    assert history.history["val_loss"][-1] == pytest.approx(swapped.evaluate(x, y, verbose=0), rel=1e-5)
    assert plain_history.history["val_loss"][-1] != pytest.approx(plain.evaluate(x, y, verbose=0), rel=1e-5)
    # training goes on from the raw weights between epochs: the same run as without the callback
    assert history.history["loss"] == pytest.approx(plain_history.history["loss"], rel=1e-6)


def test_swap_average_weights_keeps_the_average_when_training_stops_early():
    one_epoch, _, _ = _averaging_fit([], 1)
    stopped, _, _ = _averaging_fit([SwapAverageWeights(), _StopAfter(1)], 3)
    np.testing.assert_allclose(stopped.get_weights()[0], one_epoch.get_weights()[0], rtol=1e-6)
    # Keras' own callback ends such a run with the raw weights of the last step instead
    keras_stopped, _, _ = _averaging_fit(
        [keras.callbacks.SwapEMAWeights(swap_on_epoch=True), _StopAfter(1)], 3
    )
    assert not np.allclose(keras_stopped.get_weights()[0], one_epoch.get_weights()[0])
    # one instance serves several fits
    callback = SwapAverageWeights()
    _averaging_fit([callback], 2)
    again, _, _ = _averaging_fit([callback], 3)
    np.testing.assert_allclose(again.get_weights()[0], _averaging_fit([], 3)[0].get_weights()[0], rtol=1e-6)
    with pytest.raises(ValueError, match="use_ema=True"):
        _averaging_fit([SwapAverageWeights()], 1, use_ema=False)


def _batch_norm_net(seed=0):
    """Two conv -> batch norm blocks and a softmax: small enough to train in a blink."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(3, 3, padding="same", name="conv1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(4, 3, name="conv2")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


def _inference_moments(model, layer_name, images):
    features = keras.Model(model.input, model.get_layer(layer_name).input)(images, training=False)
    features = keras.ops.convert_to_numpy(features).astype(np.float64).reshape(-1, features.shape[-1])
    return features.mean(axis=0), features.var(axis=0)


def test_recompute_batch_norm_statistics_matches_the_inputs_moments_layer_by_layer(rng):
    model = _batch_norm_net()
    images = (3 * rng.random((50, 6, 6, 1)) + 2).astype("float32")
    assert recompute_batch_norm_statistics(model, images, batch_size=7) is model
    for name in ("bn1", "bn2"):  # bn2's moments are those its input has with bn1's new statistics in place
        mean, variance = _inference_moments(model, name, images)
        np.testing.assert_allclose(model.get_layer(name).moving_mean.numpy(), mean, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(
            model.get_layer(name).moving_variance.numpy(), variance, rtol=1e-3, atol=1e-6
        )
    standardized = (
        keras.Model(model.input, model.get_layer("bn2").output)(images, training=False).numpy().reshape(-1, 4)
    )
    np.testing.assert_allclose(standardized.mean(axis=0), 0, atol=1e-3)  # what "recomputed" should mean
    np.testing.assert_allclose(standardized.std(axis=0), 1, atol=1e-2)
    whole_batch = [
        v.numpy()
        for v in recompute_batch_norm_statistics(
            _batch_norm_net(), images, batch_size=1000
        ).non_trainable_weights
    ]
    np.testing.assert_allclose(
        whole_batch[0], model.get_layer("bn1").moving_mean.numpy(), rtol=1e-5, atol=1e-6
    )


def test_recompute_batch_norm_statistics_rejects_what_it_cannot_do(rng):
    images = rng.random((4, 6, 6, 1)).astype("float32")
    with pytest.raises(ValueError, match="at least one image"):
        recompute_batch_norm_statistics(_batch_norm_net(), images[:0])
    with pytest.raises(ValueError, match="batch_size"):
        recompute_batch_norm_statistics(_batch_norm_net(), images, batch_size=0)
    inputs = keras.Input((6, 6, 1))
    nested = keras.Model(inputs, _batch_norm_net()(inputs), name="outer")
    with pytest.raises(ValueError, match="nested model"):
        recompute_batch_norm_statistics(nested, images)


class _StatisticsProbe(keras.callbacks.Callback):
    """Records bn1's moving mean when each epoch begins (what the epoch trains on) and ends."""

    def __init__(self):
        super().__init__()
        self.begin, self.end = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.begin.append(self.model.get_layer("bn1").moving_mean.numpy().copy())

    def on_epoch_end(self, epoch, logs=None):
        self.end.append(self.model.get_layer("bn1").moving_mean.numpy().copy())


def _clean_images():
    clean = np.random.default_rng(1).random((64, 6, 6, 1)).astype("float32")
    return clean, (clean.mean(axis=(1, 2, 3)) > 0.5).astype("int32")


def _statistics_fit(callbacks, *, use_ema=False, epochs=3):
    """Trains on shifted, rescaled ("augmented") images; returns the model, its history and the clean images."""
    clean, labels = _clean_images()
    model = _batch_norm_net()
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, use_ema=use_ema, ema_momentum=0.8),
        loss="sparse_categorical_crossentropy",
        jit_compile=False,
    )
    history = model.fit(
        2 * clean + 1,
        labels,
        batch_size=16,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        validation_data=(clean, labels),
        callbacks=callbacks,
    )
    return model, history, (clean, labels)


def test_recompute_batch_norm_statistics_callback_scores_and_keeps_clean_statistics():
    plain_probe, probe = _StatisticsProbe(), _StatisticsProbe()
    plain, plain_history, (clean, labels) = _statistics_fit([plain_probe])
    recomputed, history, _ = _statistics_fit(
        [callback := RecomputeBatchNormStatistics(_clean_images()[0], sample=None), probe]
    )
    # the network kept, and the validation of the last epoch, use the statistics of the clean images
    copy = keras.models.clone_model(recomputed)
    copy.set_weights(recomputed.get_weights())
    expected = [v.numpy() for v in recompute_batch_norm_statistics(copy, clean).non_trainable_weights]
    for kept, value in zip(recomputed.non_trainable_weights, expected):
        np.testing.assert_allclose(kept.numpy(), value, rtol=1e-5, atol=1e-6)
    assert not np.allclose(plain.get_layer("bn1").moving_mean.numpy(), expected[0], atol=1e-3)
    assert history.history["val_loss"][-1] == pytest.approx(
        recomputed.evaluate(clean, labels, verbose=0), rel=1e-5
    )
    assert history.history["val_loss"][-1] < plain_history.history["val_loss"][-1]
    # each epoch trains on from the training statistics: the same run as without the callback
    np.testing.assert_allclose(np.array(probe.begin), np.array(plain_probe.begin), rtol=1e-5, atol=1e-6)
    assert history.history["loss"] == pytest.approx(plain_history.history["loss"], rel=1e-5)
    assert not np.allclose(probe.end[0], plain_probe.end[0], atol=1e-3) and callback.seconds > 0


def test_recompute_batch_norm_statistics_callback_follows_the_averaged_weights():
    model, history, (clean, labels) = _statistics_fit(
        [SwapAverageWeights(), RecomputeBatchNormStatistics(_clean_images()[0], sample=None)], use_ema=True
    )
    averaged, _, _ = _statistics_fit([SwapAverageWeights()], use_ema=True)
    for kept, average in zip(model.trainable_weights, averaged.trainable_weights):
        np.testing.assert_allclose(kept.numpy(), average.numpy(), rtol=1e-5, atol=1e-6)
    expected = recompute_batch_norm_statistics(averaged, clean)  # the averaged weights' own statistics
    for kept, value in zip(model.non_trainable_weights, expected.non_trainable_weights):
        np.testing.assert_allclose(kept.numpy(), value.numpy(), rtol=1e-5, atol=1e-6)
    assert history.history["val_loss"][-1] == pytest.approx(
        model.evaluate(clean, labels, verbose=0), rel=1e-5
    )


def test_recompute_batch_norm_statistics_callback_samples_and_validates(rng):
    images = rng.random((30, 6, 6, 1)).astype("float32")
    sampled = RecomputeBatchNormStatistics(images, sample=10, seed=3)
    chosen = np.sort(np.random.default_rng(3).choice(30, 10, replace=False))
    np.testing.assert_array_equal(sampled.images, images[chosen])
    assert len(RecomputeBatchNormStatistics(images, sample=100).images) == 30
    with pytest.raises(ValueError, match="sample"):
        RecomputeBatchNormStatistics(images, sample=0)
    with pytest.raises(ValueError, match="at least one image"):
        RecomputeBatchNormStatistics(images[:0])
    plain = keras.Sequential(
        [keras.Input((6, 6, 1)), keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax")]
    )
    plain.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="no batch-norm layer"):
        plain.fit(
            images,
            np.zeros(30, "int32"),
            epochs=1,
            verbose=0,
            callbacks=[RecomputeBatchNormStatistics(images)],
        )


def test_final_or_best_keeps_the_final_epoch_unless_it_is_clearly_worse():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    within = FinalOrBest(tolerance=0.005)
    assert (
        _replay(within, model, [0.90, 0.985, 0.982]) == 3.0
    )  # 0.3 points below the best: noise, keep the last
    assert (within.kept_epoch, within.best_epoch, within.restored) == (3, 2, False)
    assert within.describe().startswith("Kept: the last epoch, 3 (the best val_accuracy, 0.9850 at epoch 2")
    clearly = FinalOrBest(tolerance=0.005)
    assert _replay(clearly, model, [0.90, 0.985, 0.95]) == 2.0  # 3.5 points below: restore the best epoch
    assert (clearly.kept_epoch, clearly.restored) == (2, True)
    assert (
        clearly.describe().startswith("Kept: epoch 2 (the best, 0.9850)")
        and "families" not in clearly.describe()
    )
    assert FinalOrBest(tolerance=0.01).describe().startswith("No epoch was kept")
    loss = FinalOrBest("val_loss", tolerance=0.01, mode="min")
    assert _replay(loss, model, [0.5, 0.10, 0.30], monitor="val_loss") == 2.0
    with pytest.raises(ValueError, match="val_accuracy.*validation_data"):
        _replay(FinalOrBest(tolerance=0.01), model, [0.5], monitor="accuracy")
    with pytest.raises(ValueError, match="mode"):
        FinalOrBest(tolerance=0.01, mode="up")
    with pytest.raises(ValueError, match="tolerance"):
        FinalOrBest(tolerance=-1)
    with pytest.raises(ValueError, match="exactly one"):
        FinalOrBest()
    with pytest.raises(ValueError, match="exactly one"):
        FinalOrBest(tolerance=0.01, families=10)
    with pytest.raises(ValueError, match="families"):
        FinalOrBest(families=0)


def test_final_or_best_derives_its_tolerance_from_the_number_of_validation_families():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    noisy = FinalOrBest(families=376)  # 2 standard errors at 0.9562: 0.0211
    assert _replay(noisy, model, [0.90, 0.9562, 0.9482]) == 3.0
    assert noisy.tolerance_used == pytest.approx(2 * (0.9562 * 0.0438 / 376) ** 0.5) and not noisy.restored
    assert "within the tolerance of 0.0211" in noisy.describe() and "2 standard errors" in noisy.describe()
    assert "376 validation families" in noisy.describe()
    sharp = FinalOrBest(families=376)  # at 0.99 the tolerance shrinks to 0.0103
    assert _replay(sharp, model, [0.90, 0.99, 0.975]) == 2.0 and sharp.restored
    many = FinalOrBest(families=100_000)  # many independent families: a 0.8-point drop is real
    assert _replay(many, model, [0.90, 0.9562, 0.9482]) == 2.0


def test_describe_gap_says_direction_and_size():
    assert describe_gap(0.9288, 0.9442) == "1.54 points below the test accuracy"
    assert describe_gap(0.9858, 0.9854) == "0.04 points above the test accuracy"
    assert describe_gap(0.98541, 0.98539) == "equal to the test accuracy"
    assert describe_gap(1.0, 0.9491, decimals=1) == "5.1 points above the test accuracy"
    with pytest.raises(ValueError, match="validation_accuracy"):
        describe_gap(92.88, 0.9442)


def test_family_neighbours_finds_the_training_image_most_like_each_family():
    from labutils.metrics import family_neighbours
    from labutils.plot import plot_family_neighbours

    rng = np.random.default_rng(0)
    x_train = rng.random((4, 28, 28, 1)).astype(np.float32)
    y_train = np.array([0, 0, 1, 1])  # A, A, B, B
    x_test = np.stack(
        [
            x_train[2] + 0.01 * rng.random((28, 28, 1)),  # family 5 (A): a near-copy of a training B ...
            x_train[1] + 0.6 * rng.random((28, 28, 1)),  # ... and a noisy copy of a training A
            x_train[3],  # family 9 (B): a training B itself
            rng.random((28, 28, 1)),  # family 4 (C): a letter no training image has
        ]
    ).astype(np.float32)
    y_test, families = np.array([0, 0, 1, 2]), np.array([5, 5, 9, 4])
    table = family_neighbours(x_test, y_test, families, x_train, y_train, batch_size=3)
    assert list(table.index) == [4, 5, 9] and list(table["images"]) == [1, 2, 1]
    row = table.loc[5]
    assert (row["letter"], row["nearest_letter"], row["test_index"], row["nearest_train_index"]) == (
        "A",
        "B",
        0,
        2,
    )
    assert row["nearest_similarity"] > 0.99 and row["own_letter_train_index"] == 1
    assert 0.3 < row["own_letter_similarity"] < row["nearest_similarity"]
    assert table.loc[9, "nearest_letter"] == "B" and table.loc[9, "own_letter_similarity"] == pytest.approx(
        1.0, abs=1e-5
    )
    assert table.loc[4, "own_letter_train_index"] == -1 and np.isnan(table.loc[4, "own_letter_similarity"])
    from labutils.metrics import errors_by_family, missed_family_records

    records = missed_family_records(errors_by_family(y_test, np.array([1, 0, 1, 0]), families), table)
    assert [(r["family"], r["errors"], r["predicted_as"], r["nearest_letter"]) for r in records] == [
        (4, 1, "A", table.loc[4, "nearest_letter"]),
        (5, 1, "B", "B"),
    ]
    assert records[0]["own_letter_similarity"] is None and records[1]["nearest_similarity"] == round(
        row["nearest_similarity"], 4
    )
    ax = plot_family_neighbours(x_test, x_train, table.loc[[5, 4]])
    assert [text.get_text() for text in ax.texts] == [
        "test A #5",
        f"B {row['nearest_similarity']:.2f}",
        f"A {row['own_letter_similarity']:.2f}",
        "test C #4",
        f"{table.loc[4, 'nearest_letter']} {table.loc[4, 'nearest_similarity']:.2f}",
        "no C",
    ]
    with pytest.raises(ValueError, match="one entry per test image"):
        family_neighbours(x_test, y_test[:-1], families, x_train, y_train)
    with pytest.raises(ValueError, match="several letters"):
        family_neighbours(x_test, y_test, np.zeros(4, dtype=int), x_train, y_train)
    with pytest.raises(ValueError, match="no families"):
        plot_family_neighbours(x_test, x_train, table.iloc[:0])


def test_hard_families_are_those_whose_most_similar_training_image_is_another_letter():
    from labutils.bench.measures import hard_families, hard_family_score

    rng = np.random.default_rng(1)
    x_train = rng.random((4, 28, 28, 1)).astype(np.float32)
    y_train = np.array([0, 0, 1, 1])  # A, A, B, B
    x_val = np.stack(
        [
            x_train[2] + 0.01 * rng.random((28, 28, 1)),  # family 5 (A): its best match is a training B
            x_train[0] + 0.6 * rng.random((28, 28, 1)),  # ... a noisy A of the same family
            x_train[3] + 0.01 * rng.random((28, 28, 1)),  # family 9 (B): a near-copy of a training B
        ]
    ).astype(np.float32)
    y_val, families = np.array([0, 0, 1]), np.array([5, 5, 9])
    hard = hard_families(x_val, y_val, families, x_train, y_train)
    assert hard.tolist() == [True, True, False]  # the whole family, both of its images
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.0, 1.0]])
    score = hard_family_score(y_val, probabilities, families, hard)
    assert score == {
        "families": 1,
        "images": 2,
        "errors": 1,
        "families_with_errors": 1,
        "log_loss": pytest.approx((-np.log(0.9) - np.log(0.2)) / 2),
    }
    # errors are counted by image and by family: three wrong images in two of three families
    wrong, right = [0.1, 0.9], [0.9, 0.1]
    many = hard_family_score(
        np.zeros(6, int), np.array([wrong, wrong, right, wrong, right, right]),
        np.array([1, 1, 2, 2, 3, 3]), np.ones(6, bool),
    )  # fmt: skip
    assert (many["families"], many["errors"], many["families_with_errors"]) == (3, 3, 2)
    # none hard: counted, no log-loss claimed
    assert hard_family_score(y_val, probabilities, families, np.zeros(3, bool)) == {
        "families": 0, "images": 0, "errors": 0, "families_with_errors": 0, "log_loss": None,
    }  # fmt: skip
    # a probability of 0 for the true letter is clipped, not infinite
    assert hard_family_score(y_val[2:], np.array([[1.0, 0.0]]), families[2:], [True])[
        "log_loss"
    ] == pytest.approx(-np.log(1e-7))
    with pytest.raises(ValueError, match=r"labels \(3\), probabilities \(2\), families \(3\) and hard \(3\)"):
        hard_family_score(y_val, probabilities[:2], families, hard)


def test_start_task_seeds_makes_the_folder_loads_the_split_and_shows_the_banner(
    standin_dir, tmp_path, monkeypatch
):
    import labutils.display
    from labutils.session import prepare_task_data, start_task

    shown = []
    monkeypatch.setattr(labutils.display, "display", lambda *objects: shown.extend(objects))
    settings = dict(
        split_kind="grouped", validation_fraction=0.3, split_seed=43, family_threshold=0.97, train_limit=200
    )
    output_dir, dataset, split, data = start_task(
        tmp_path / "a" / "b", seed=3, data_dir=standin_dir, **settings
    )
    first_draw = np.random.random()
    assert output_dir == tmp_path / "a" / "b" and output_dir.is_dir()
    assert "SYNTHETIC STAND-IN" in shown[0].data
    _, same_split, same_data = prepare_task_data(standin_dir, seed=3, **settings)
    np.testing.assert_array_equal(split.validation_index, same_split.validation_index)
    np.testing.assert_array_equal(data.x_train, same_data.x_train)
    assert len(data.x_train) == 200
    start_task(tmp_path / "a" / "b", seed=3, data_dir=standin_dir, **settings)  # the folder may exist
    assert np.random.random() == first_draw  # seeded again, the same draw


def test_a_saved_model_gets_its_record(tmp_path):
    from labutils.models import load_model
    from labutils.results.schema import METRIC_FIELDS
    from labutils.saving import save_with_record

    model = compact_cnn(width=4)
    images = np.zeros((16, 28, 28, 1), dtype="float32")
    test = {"accuracy": 0.5, "log_loss": 1.0, "f1_weighted": 0.4, "errors": 8, "per_letter": "ignored"}
    record = save_with_record(
        model,
        tmp_path,
        "tiny",
        test,
        test_images=images,
        val_accuracy_random=None,
        val_accuracy_grouped=0.6,
        train_seconds=1.234,
        epochs=2,
        seed=0,
        train_images=100,
        trained_on="train",
    )
    assert tuple(record)[: len(METRIC_FIELDS)] == METRIC_FIELDS and record["trained_on"] == "train"
    assert (
        record["model_file"] == "tiny.keras"
        and load_model(tmp_path / "tiny.keras").count_params() == model.count_params()
    )
    assert (
        record["total_weights"] == count_weights(model)["total"] and record["inference_images_per_second"] > 0
    )
    assert (record["test_errors"], record["train_seconds"]) == (8, 1.23) and "per_letter" not in record
    measured = dict(
        val_accuracy_random=None,
        val_accuracy_grouped=None,
        train_seconds=1.0,
        epochs=1,
        seed=0,
        train_images=1,
    )
    given = save_with_record(model, tmp_path, "again", test, inference_images_per_second=123.0, **measured)
    assert given["inference_images_per_second"] == 123.0 and (tmp_path / "again.keras").exists()
    with pytest.raises(ValueError, match="exactly one of test_images and inference_images_per_second"):
        save_with_record(model, tmp_path, "neither", test, **measured)


@pytest.mark.parametrize("contender", ["task2", "task3", "reference"])
def test_every_network_and_recipe_compiles_with_xla_as_keras_does_on_a_gpu(contender, rng):
    """Keras compiles with XLA wherever TensorFlow sees a GPU (``jit_compile="auto"``, what the notebooks
    and the benchmark leave it at); XLA's CPU backend compiles the same graph here, so a layer or an
    optimizer that XLA cannot take fails on every machine, not only on a GPU."""
    from labutils.recipes import ReferenceRecipe, Task2Recipe, Task3Recipe
    from labutils.training import training_dataset

    keras.utils.set_random_seed(0)
    x = rng.random((64, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 24, 64)
    if contender == "reference":
        recipe, model = ReferenceRecipe(), ReferenceRecipe().network()
        optimizer, callbacks = recipe.optimizer(), []
    else:
        recipe, model = Task2Recipe(batch_size=32), Task2Recipe(batch_size=32).network()
        optimizer, callbacks = recipe.optimizer(len(x)), []
        if contender == "task3":
            recipe = Task3Recipe(batch_size=32, statistics_images=32)
            optimizer, callbacks = recipe.optimizer(len(x)), recipe.callbacks(x, seed=0)
    model.compile(
        optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=True
    )
    assert model.jit_compile is True  # Keras turns XLA off, with a warning, for a layer that cannot take it
    history = model.fit(
        training_dataset(x, y, batch_size=32, seed=0), epochs=1, verbose=0, callbacks=callbacks
    )
    assert np.isfinite(history.history["loss"]).all()
    # the compiled network computes what the uncompiled one does with the same weights
    plain = keras.models.clone_model(model)
    plain.set_weights(model.get_weights())
    plain.compile(loss="sparse_categorical_crossentropy", jit_compile=False)
    np.testing.assert_allclose(
        model.predict(x[:8], verbose=0), plain.predict(x[:8], verbose=0), rtol=1e-4, atol=1e-5
    )
