"""Training helpers: model inputs, the augmentation pipeline, tf.data, schedules and callbacks.

``compile()`` and ``fit()`` stay in the notebooks; this module provides what they are given.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd

# Keras warns on every fit() with a tf.data.Dataset that its default shuffle=True is ignored;
# training_dataset() shuffles (seeded) itself, so the warning says nothing here.
warnings.filterwarnings("ignore", message="`shuffle=True` was passed", category=UserWarning)

__all__ = [
    "EpochClock",
    "FinalOrBest",
    "ModelInputs",
    "RandomAffine",
    "RecomputeBatchNormStatistics",
    "SecondsCosineSchedule",
    "SwapAverageWeights",
    "TimeBudget",
    "augmentation_pipeline",
    "cosine_schedule",
    "history_frame",
    "model_inputs",
    "prepare_task_data",
    "recompute_batch_norm_statistics",
    "reference_augmentation",
    "to_model_input",
    "training_dataset",
    "warmup_cosine",
]


def to_model_input(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, 28, 28) -> float32 (N, 28, 28, 1) scaled to 0-1."""
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"images must have shape (N, 28, 28), got {images.shape}")
    return (images.astype("float32") / 255.0)[..., None]


@dataclass(frozen=True)
class ModelInputs:
    """Network-ready arrays: images float32 (N, 28, 28, 1) in 0-1, class indices 0-23.

    ``x_all``/``y_all`` hold every labelled training row, the split's two sides together: the
    data of the final fit, once the settings have been chosen on the validation side.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_all: np.ndarray
    y_all: np.ndarray

    def shapes(self) -> pd.DataFrame:
        """Images and letters per set, as a small table."""
        sets = {
            "train": (self.x_train, self.y_train),
            "validation": (self.x_val, self.y_val),
            "train + validation (final fit)": (self.x_all, self.y_all),
            "test": (self.x_test, self.y_test),
        }
        return pd.DataFrame(
            {
                "images": [x.shape for x, _ in sets.values()],
                "letters": [np.unique(y).size for _, y in sets.values()],
            },
            index=list(sets),
        )


def model_inputs(dataset, split, *, train_limit: int | None = None, seed: int = 0) -> ModelInputs:
    """Arrays for training (``split.train_index``, optionally a seeded random subset), validation, test
    and the final fit (training and validation rows together).

    With ``train_limit``, the final fit takes the limited training rows plus the same share of
    the validation rows (a seeded subset), so that quick runs stay quick.
    """
    from .data import label_to_index

    train_index, extra_index = split.train_index, split.validation_index
    if train_limit is not None:
        if train_limit < 1:
            raise ValueError(f"train_limit must be a positive number of images, got {train_limit}")
        rng = np.random.default_rng(seed)
        train_index = np.sort(rng.permutation(train_index)[:train_limit])
        share = len(train_index) / len(split.train_index)
        extra_index = np.sort(rng.permutation(extra_index)[: max(1, round(share * len(extra_index)))])
    x_rows, y_rows = to_model_input(dataset.x_train), label_to_index(dataset.y_train)
    all_index = np.sort(np.concatenate([train_index, extra_index]))
    return ModelInputs(
        x_rows[train_index],
        y_rows[train_index],
        x_rows[split.validation_index],
        y_rows[split.validation_index],
        to_model_input(dataset.x_test),
        label_to_index(dataset.y_test),
        x_rows[all_index],
        y_rows[all_index],
    )


def prepare_task_data(
    data_dir=None,
    *,
    split_kind: str = "grouped",
    validation_fraction: float = 0.3,
    split_seed: int = 43,
    group_threshold: float = 0.97,
    train_limit: int | None = None,
    seed: int = 0,
):
    """Load the data, make the split of notebook 01 and the network-ready arrays: ``(dataset, split, inputs)``."""
    from .sources import load_dataset
    from .split import make_split

    dataset = load_dataset(data_dir)
    split = make_split(
        dataset.x_train, dataset.y_train, split_kind, validation_fraction, split_seed, group_threshold
    )
    return dataset, split, model_inputs(dataset, split, train_limit=train_limit, seed=seed)


@keras.saving.register_keras_serializable(package="labutils")
class RandomAffine(keras.layers.Layer):
    """Random rotation, zoom, shear and shift of images, applied as **one** resampling.

    Chaining RandomRotation, RandomTranslation, RandomZoom and RandomShear interpolates each
    image four times and visibly blurs 28x28 images; here the four changes are composed into a
    single affine map about the image centre and the image is interpolated once (bilinear,
    borders filled with the nearest edge pixel). Inactive unless called with ``training=True``.

    Parameters are the largest change drawn, uniformly and independently per image:
    ``rotation_degrees``; ``shift`` as a fraction of height/width; ``zoom`` as a relative change
    of scale (0.1: 0.9x-1.1x); ``shear`` as the tangent of the shear angle.
    """

    def __init__(
        self,
        rotation_degrees: float = 0.0,
        shift: float = 0.0,
        zoom: float = 0.0,
        shear: float = 0.0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for parameter, value, upper in (
            ("rotation_degrees", rotation_degrees, 180.0),
            ("shift", shift, 1.0),
            ("zoom", zoom, 1.0),
            ("shear", shear, 1.0),
        ):
            if not 0.0 <= float(value) < upper:
                raise ValueError(f"{parameter} must lie in [0, {upper:g}), got {value}")
        self.rotation_degrees = float(rotation_degrees)
        self.shift = float(shift)
        self.zoom = float(zoom)
        self.shear = float(shear)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = False

    def transforms(self, batch_size, height: int, width: int):
        """(batch, 8) projective transforms mapping output pixels to input pixels (``affine_transform``'s form)."""
        ops = keras.ops

        def uniform(limit):
            return keras.random.uniform((batch_size,), -limit, limit, seed=self.seed_generator)

        angle = uniform(np.deg2rad(self.rotation_degrees))
        scale = 1.0 + uniform(self.zoom)
        shear = uniform(self.shear)
        shift_x, shift_y = uniform(self.shift) * width, uniform(self.shift) * height
        cos, sin = ops.cos(angle) / scale, ops.sin(angle) / scale
        # output -> input: M = rotation @ shear_x / scale, about the centre, then the shift.
        a0, a1 = cos, cos * shear - sin
        b0, b1 = sin, sin * shear + cos
        centre_x, centre_y = (width - 1) / 2.0, (height - 1) / 2.0
        a2 = centre_x - a0 * centre_x - a1 * centre_y - shift_x
        b2 = centre_y - b0 * centre_x - b1 * centre_y - shift_y
        zeros = ops.zeros_like(a0)
        return ops.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)

    def call(self, images, training: bool = True):
        if not training:
            return images
        shape = keras.ops.shape(images)
        transform = self.transforms(shape[0], images.shape[1], images.shape[2])
        return keras.ops.image.affine_transform(
            images, transform, interpolation="bilinear", fill_mode="nearest"
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "rotation_degrees": self.rotation_degrees,
            "shift": self.shift,
            "zoom": self.zoom,
            "shear": self.shear,
            "seed": self.seed,
        }


def augmentation_pipeline(
    *,
    rotation_degrees: float = 12.0,
    shift: float = 0.1,
    zoom: float = 0.12,
    shear: float = 0.1,
    contrast: float = 0.3,
    brightness: float = 0.2,
    seed: int = 0,
    name: str = "augmentation",
) -> keras.Sequential:
    """Random geometric and photometric changes for 0-1 images; never a flip (a mirrored hand is another sign).

    The geometric changes are one :class:`RandomAffine` resampling (as Keras 2's
    ``ImageDataGenerator`` did); each factor of 0 leaves that change out.
    """
    for parameter, value in (
        ("rotation_degrees", rotation_degrees),
        ("shift", shift),
        ("zoom", zoom),
        ("shear", shear),
        ("contrast", contrast),
        ("brightness", brightness),
    ):
        if value < 0:
            raise ValueError(f"{parameter} must be >= 0, got {value}")
    steps: list[keras.layers.Layer] = []
    if rotation_degrees or shift or zoom or shear:
        steps.append(RandomAffine(rotation_degrees, shift, zoom, shear, seed=seed, name="affine"))
    if contrast:
        steps.append(keras.layers.RandomContrast(contrast, value_range=(0, 1), seed=seed + 4))
    if brightness:
        steps.append(keras.layers.RandomBrightness(brightness, value_range=(0, 1), seed=seed + 5))
    return keras.Sequential(steps, name=name)


def reference_augmentation(seed: int = 0) -> keras.Sequential:
    """The seed lab report's augmentation: rotation 10°, shift 0.05, shear 0.1, zoom 0.075, nothing photometric."""
    return augmentation_pipeline(
        rotation_degrees=10,
        shift=0.05,
        zoom=0.075,
        shear=0.1,
        contrast=0,
        brightness=0,
        seed=seed,
        name="reference_augmentation",
    )


def training_dataset(
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int = 128,
    seed: int = 0,
    augmentation: keras.Sequential | None = None,
):
    """A shuffled, batched ``tf.data.Dataset`` of (image, class index), augmented on the fly if asked."""
    import tensorflow as tf

    if len(x) != len(y):
        raise ValueError(f"x ({len(x)}) and y ({len(y)}) differ in length")
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(
        len(x), seed=seed, reshuffle_each_iteration=True
    )
    dataset = dataset.batch(batch_size)
    if augmentation is not None:
        # Sequential map: the augmentation layers draw from one seeded generator, so parallel calls
        # would make the draws depend on thread timing and the run irreproducible.
        dataset = dataset.map(lambda images, labels: (augmentation(images, training=True), labels))
    return dataset.prefetch(tf.data.AUTOTUNE)


def cosine_schedule(peak: float, epochs: int, steps_per_epoch: int, warmup_fraction: float = 0.1):
    """Linear warm-up to ``peak`` then cosine decay to 0 over ``epochs``."""
    if peak <= 0 or epochs < 1 or steps_per_epoch < 1:
        raise ValueError("peak must be > 0, epochs and steps_per_epoch >= 1")
    total = epochs * steps_per_epoch
    warmup = int(total * warmup_fraction)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=peak / 10,
        decay_steps=max(1, total - warmup),
        warmup_target=peak,
        warmup_steps=warmup,
    )


def warmup_cosine(peak: float, progress: float, warmup_fraction: float = 0.1) -> float:
    """The learning rate of :func:`cosine_schedule`'s shape at ``progress`` (0 to 1) through training.

    A linear warm-up from ``peak / 10`` to ``peak`` over the first ``warmup_fraction``, then a
    cosine decay to 0 at ``progress`` 1 (and 0 beyond).
    """
    if peak <= 0 or not 0 <= warmup_fraction < 1:
        raise ValueError(f"peak must be > 0 and warmup_fraction in [0, 1), got {peak} and {warmup_fraction}")
    progress = min(max(float(progress), 0.0), 1.0)
    if progress < warmup_fraction:
        return peak / 10 + (peak - peak / 10) * progress / warmup_fraction
    decay = (progress - warmup_fraction) / (1 - warmup_fraction)
    return 0.5 * peak * (1 + float(np.cos(np.pi * decay)))


class SecondsCosineSchedule(keras.callbacks.Callback):
    """A warm-up + cosine learning rate spread over a budget of ``seconds`` of training, not of steps.

    Training for a fixed number of seconds (beside :class:`TimeBudget`) with a schedule written in
    steps leaves the learning rate high when the time runs out if a step is slower than assumed;
    this callback sets the optimizer's learning rate before each batch from the seconds elapsed
    since training began (validation and the other callbacks included, as :class:`TimeBudget`
    counts them), so the decay ends when the budget does, whatever a step costs on the machine.
    The model must be compiled with a plain float learning rate. ``clock`` returns seconds (tests
    pass a fake one).
    """

    def __init__(
        self,
        peak: float,
        seconds: float,
        *,
        warmup_fraction: float = 0.1,
        clock: Callable[[], float] = time.perf_counter,
    ):
        super().__init__()
        if seconds <= 0:
            raise ValueError(f"seconds must be > 0, got {seconds}")
        warmup_cosine(peak, 0.0, warmup_fraction)  # checks peak and warmup_fraction
        self.peak, self.seconds, self.warmup_fraction, self.clock = (
            float(peak),
            float(seconds),
            float(warmup_fraction),
            clock,
        )

    def on_train_begin(self, logs=None):
        if isinstance(self.model.optimizer._learning_rate, keras.optimizers.schedules.LearningRateSchedule):
            raise ValueError(
                "SecondsCosineSchedule needs a model compiled with a float learning rate, not a schedule"
            )
        self._start = self.clock()

    def on_train_batch_begin(self, batch, logs=None):
        progress = (self.clock() - self._start) / self.seconds
        self.model.optimizer.learning_rate = warmup_cosine(self.peak, progress, self.warmup_fraction)


class EpochClock(keras.callbacks.Callback):
    """Adds ``seconds`` (cumulative training time, validation included) to each epoch's logs."""

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["seconds"] = time.perf_counter() - self._start


class TimeBudget(keras.callbacks.Callback):
    """Stops training once ``seconds`` have run out (None: no limit).

    By default the check runs after each epoch, so the epoch in progress completes. With
    ``per_batch=True`` it runs after each batch and cuts a long epoch short, and the budget is meant
    to hold for the whole fit: each check keeps back the time the previous epoch spent after its
    last training step (validation and the other callbacks), so the cut epoch is still validated
    and logged within ``seconds``, and no epoch starts that could not get a step in. After
    training, ``exhausted`` says whether the budget stopped it, ``stopped_epoch`` (1-based) in which
    epoch, and ``steps_done`` / ``steps_per_epoch`` how far that epoch got
    (``cut_short``: fewer steps than a whole epoch). ``clock`` returns seconds (tests pass a fake one).
    """

    def __init__(
        self,
        seconds: float | None,
        *,
        per_batch: bool = False,
        clock: Callable[[], float] = time.perf_counter,
    ):
        super().__init__()
        if seconds is not None and seconds < 0:
            raise ValueError(f"seconds must be >= 0 or None, got {seconds}")
        self.seconds = seconds
        self.per_batch = per_batch
        self.exhausted = False
        self.stopped_epoch: int | None = None
        self.steps_done: int | None = None
        self.steps_per_epoch: int | None = None
        self.reserve = 0.0  # seconds the last epoch spent after its last training step (per batch only)
        self.clock = clock

    def on_train_begin(self, logs=None):
        self._start = self.clock()
        self.exhausted, self.stopped_epoch, self.steps_done, self.reserve = False, None, None, 0.0
        self.steps_per_epoch = (self.params or {}).get("steps")

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._steps, self._last_step_end = epoch, 0, None

    def _stop_if_spent(self, now: float) -> None:
        if (
            self.seconds is not None
            and now - self._start + self.reserve >= self.seconds
            and not self.exhausted
        ):
            self.exhausted, self.stopped_epoch, self.steps_done = True, self._epoch + 1, self._steps
            self.model.stop_training = True

    def on_train_batch_end(self, batch, logs=None):
        self._steps, self._last_step_end = batch + 1, self.clock()
        if self.per_batch:
            self._stop_if_spent(self._last_step_end)

    def on_epoch_end(self, epoch, logs=None):
        now = self.clock()
        if self.per_batch and self._last_step_end is not None:
            self.reserve = now - self._last_step_end
        self._stop_if_spent(now)

    @property
    def cut_short(self) -> bool:
        """Whether the budget stopped training part-way through an epoch."""
        return bool(
            self.exhausted
            and self.steps_per_epoch
            and self.steps_done is not None
            and self.steps_done < self.steps_per_epoch
        )


class FinalOrBest(keras.callbacks.Callback):
    """Keep the final epoch's weights unless a monitored validation figure fell clearly below its best.

    A warm-up + cosine schedule ends at a learning rate near zero, so its last epoch is normally
    the model to keep. A validation set made of a few hundred families of near-identical images
    is noisy, though: one family more or less right moves its accuracy by tenths of a point, and
    choosing the epoch with the very best validation figure then picks noise as often as quality.
    This callback keeps the last epoch, and restores the best epoch's weights only if the last
    epoch's ``monitor`` is more than ``tolerance`` worse than the best one (``mode`` "max" for
    accuracies, "min" for losses).

    Give either ``tolerance`` or ``families`` (for an accuracy): with ``families``, the tolerance
    is ``standard_errors`` standard errors of an accuracy measured on that many independent units,
    ``sqrt(best * (1 - best) / families)`` — each validation family counts once, as its images
    are near-copies of each other. After training, ``kept_epoch`` (1-based), ``best_epoch``,
    ``tolerance_used`` and ``restored`` say what happened.
    """

    def __init__(
        self,
        monitor: str = "val_accuracy",
        *,
        tolerance: float | None = None,
        families: int | None = None,
        standard_errors: float = 2.0,
        mode: str = "max",
    ):
        super().__init__()
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        if (tolerance is None) == (families is None):
            raise ValueError("give exactly one of tolerance and families")
        if tolerance is not None and tolerance < 0:
            raise ValueError(f"tolerance must be >= 0, got {tolerance}")
        if families is not None:
            if families < 1:
                raise ValueError(f"families must be a positive count, got {families}")
            if mode != "max":
                raise ValueError("families applies to an accuracy (mode 'max')")
        if standard_errors <= 0:
            raise ValueError(f"standard_errors must be > 0, got {standard_errors}")
        self.monitor, self.mode = monitor, mode
        self.tolerance = None if tolerance is None else float(tolerance)
        self.families, self.standard_errors = families, float(standard_errors)
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self.kept_epoch: int | None = None
        self.tolerance_used: float | None = None
        self.restored = False
        self._best_weights = None
        self._last: tuple[int, float] | None = None

    def describe(self) -> str:
        """One sentence (Markdown) on which epoch was kept and why, for after training."""
        if self.kept_epoch is None:
            return "No epoch was kept: training did not complete an epoch."
        if self.restored:
            text = (
                f"Kept: epoch {self.kept_epoch} (the best, {self.best_value:.4f}): the last epoch's {self.monitor} was more "
                f"than {self.tolerance_used:.4f} behind it."
            )
        else:
            text = (
                f"Kept: the last epoch, {self.kept_epoch} (the best {self.monitor}, {self.best_value:.4f} at epoch "
                f"{self.best_epoch}, is within the tolerance of {self.tolerance_used:.4f})."
            )
        if self.families is not None:
            text += (
                f" The tolerance is {self.standard_errors:g} standard errors of an accuracy measured on "
                f"{self.families} validation families, each counted once."
            )
        return text

    def _better(self, value: float, than: float) -> bool:
        return value > than if self.mode == "max" else value < than

    def on_train_begin(self, logs=None):
        self.best_value = self.best_epoch = self.kept_epoch = self.tolerance_used = self._best_weights = (
            self._last
        ) = None
        self.restored = False

    def on_epoch_end(self, epoch, logs=None):
        if not logs or self.monitor not in logs:
            raise ValueError(
                f"FinalOrBest monitors {self.monitor!r}, which fit() did not log "
                f"(logged: {sorted(logs or {})}); pass validation_data"
            )
        value = float(logs[self.monitor])
        self._last = (epoch + 1, value)
        if self.best_value is None or self._better(value, self.best_value):
            self.best_value, self.best_epoch = value, epoch + 1
            self._best_weights = self.model.get_weights()

    def on_train_end(self, logs=None):
        if self._last is None:
            return
        last_epoch, last_value = self._last
        if self.tolerance is not None:
            self.tolerance_used = self.tolerance
        else:
            best = min(max(self.best_value, 0.0), 1.0)
            self.tolerance_used = self.standard_errors * (best * (1.0 - best) / self.families) ** 0.5
        shortfall = self.best_value - last_value if self.mode == "max" else last_value - self.best_value
        if shortfall > self.tolerance_used:
            self.model.set_weights(self._best_weights)
            self.kept_epoch, self.restored = self.best_epoch, True
        else:
            self.kept_epoch = last_epoch


def recompute_batch_norm_statistics(
    model: keras.Model, images: np.ndarray, *, batch_size: int = 1024
) -> keras.Model:
    """Set each batch-norm layer's moving mean and variance to those of its input over ``images``.

    Layer by layer, in inference mode, so that each layer's statistics are computed with the
    statistics of the layers before it already in place: the network is then normalised exactly
    as it will be used. This is what averaged weights need (as in SWA): the moving statistics a
    layer gathers during training belong to the raw weights of the last steps, and, with
    augmentation, to augmented batches. Returns ``model``, changed in place.
    """
    if len(images) == 0:
        raise ValueError("recompute_batch_norm_statistics needs at least one image")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for layer in _batch_norm_layers(model):
        if layer.axis not in (-1, len(layer.input.shape) - 1):
            raise ValueError(f"{layer.name}: only channels-last batch norm is supported, axis {layer.axis}")
        inputs = keras.Model(model.input, layer.input)
        count, total, total_squares = 0, 0.0, 0.0
        for start in range(0, len(images), batch_size):
            features = inputs(images[start : start + batch_size], training=False)
            axes = tuple(range(len(features.shape) - 1))
            total = total + keras.ops.convert_to_numpy(keras.ops.sum(features, axis=axes)).astype(np.float64)
            total_squares = total_squares + keras.ops.convert_to_numpy(
                keras.ops.sum(keras.ops.square(features), axis=axes)
            ).astype(np.float64)
            count += int(np.prod(features.shape[:-1]))
        mean = total / count
        layer.moving_mean.assign(mean.astype(np.float32))
        layer.moving_variance.assign(np.maximum(total_squares / count - mean**2, 0.0).astype(np.float32))
    return model


def statistics_sample(images: np.ndarray, sample: int | None, seed: int, *, owner: str) -> np.ndarray:
    """``sample`` of ``images`` (all of them for ``None`` or a larger number), drawn with ``seed``, in their order.

    The images whose batch-norm statistics a recomputing callback uses; ``owner`` names it in errors.
    """
    if len(images) == 0:
        raise ValueError(f"{owner} needs at least one image")
    if sample is not None and sample < 1:
        raise ValueError(f"sample must be a positive number of images or None, got {sample}")
    if sample is not None and sample < len(images):
        images = images[np.sort(np.random.default_rng(seed).choice(len(images), sample, replace=False))]
    return images


def _batch_norm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """The model's batch-norm layers, in computing order; batch norm inside a nested model is refused."""
    for layer in model.layers:
        if isinstance(layer, keras.Model) and _holds_batch_norm(layer):
            raise ValueError(f"{layer.name}: batch norm inside a nested model is not supported")
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def _holds_batch_norm(model: keras.Model) -> bool:
    return any(
        isinstance(layer, keras.layers.BatchNormalization)
        or (isinstance(layer, keras.Model) and _holds_batch_norm(layer))
        for layer in model.layers
    )


class SwapAverageWeights(keras.callbacks.SwapEMAWeights):
    """Between epochs, the model holds its optimizer's moving average of the weights — the weights it keeps.

    For an optimizer compiled with ``use_ema=True``: Keras' ``SwapEMAWeights(swap_on_epoch=True)``
    (the validation, the callbacks after this one and ``fit``'s result all see the averaged
    weights), made right when a callback stops training before the last epoch: Keras would then
    end ``fit`` with the last step's raw weights, while the validation scored the average; this
    callback keeps the average. Put it first in the callback list.
    """

    def __init__(self) -> None:
        super().__init__(swap_on_epoch=True)
        self._average: list[np.ndarray] | None = None

    def on_train_begin(self, logs=None):
        if not getattr(self.model.optimizer, "use_ema", False):
            raise ValueError("SwapAverageWeights needs an optimizer compiled with use_ema=True")
        self._average, self._ema_weights_in_model = None, False  # the callback may serve several fits

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        self._average = [keras.ops.convert_to_numpy(variable) for variable in self.model.trainable_weights]

    def on_train_end(self, logs=None):
        if (
            self._average is not None
        ):  # after a full run this is what fit() already left; after a stop, it is not
            for variable, value in zip(self.model.trainable_weights, self._average):
                variable.assign(value)


class RecomputeBatchNormStatistics(keras.callbacks.Callback):
    """Scores and keeps each epoch's network with batch-norm statistics of clean training images.

    During training a batch-norm layer's moving statistics follow the batches it sees — with
    augmentation, augmented ones — and the raw weights of the last few steps. For the validation
    and at the end of each epoch this callback sets them to the statistics of ``images`` under
    the weights the network holds then (:func:`recompute_batch_norm_statistics`), and puts the
    training statistics back before the next epoch trains on. After ``fit`` the network keeps the
    recomputed statistics. ``sample``: how many of ``images`` to use (drawn once with ``seed``;
    ``None``: all). Put it after :class:`SwapAverageWeights` and before callbacks that read the
    model at the end of an epoch (``FinalOrBest``, a test curve).
    """

    def __init__(
        self, images: np.ndarray, *, sample: int | None = 2048, seed: int = 0, batch_size: int = 1024
    ) -> None:
        super().__init__()
        self.images, self.batch_size = (
            statistics_sample(images, sample, seed, owner=type(self).__name__),
            batch_size,
        )
        self.seconds = 0.0  # spent recomputing, over all epochs
        self._training_statistics: list[np.ndarray] | None = None
        self._recomputed: tuple[int, list[np.ndarray]] | None = (
            None  # (epoch, statistics) for this epoch's weights
        )
        self._epoch = -1

    def _statistics(self) -> list[keras.Variable]:
        return [
            variable
            for layer in _batch_norm_layers(self.model)
            for variable in (layer.moving_mean, layer.moving_variance)
        ]

    def _recompute(self) -> None:
        """Save the training statistics (if not saved), then put this epoch's recomputed ones in place."""
        variables = self._statistics()
        if self._training_statistics is None:
            self._training_statistics = [keras.ops.convert_to_numpy(variable) for variable in variables]
        if self._recomputed is not None and self._recomputed[0] == self._epoch:
            for variable, value in zip(variables, self._recomputed[1]):
                variable.assign(value)
            return
        start = time.perf_counter()
        recompute_batch_norm_statistics(self.model, self.images, batch_size=self.batch_size)
        self.seconds += time.perf_counter() - start
        self._recomputed = (self._epoch, [keras.ops.convert_to_numpy(variable) for variable in variables])

    def _restore(self) -> None:
        if self._training_statistics is not None:
            for variable, value in zip(self._statistics(), self._training_statistics):
                variable.assign(value)
            self._training_statistics = None

    def on_train_begin(self, logs=None):
        if not self._statistics():
            raise ValueError(
                f"{self.model.name} has no batch-norm layer whose statistics could be recomputed"
            )
        self._training_statistics, self._recomputed, self._epoch, self.seconds = None, None, -1, 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._restore()
        self._epoch = epoch

    def on_test_begin(self, logs=None):  # the validation inside fit(), after the epoch's last step
        self._recompute()

    def on_test_end(self, logs=None):
        self._restore()

    def on_epoch_end(self, epoch, logs=None):
        self._recompute()

    def on_train_end(self, logs=None):
        self._training_statistics = None  # the network keeps the recomputed statistics


def history_frame(history: keras.callbacks.History) -> pd.DataFrame:
    """The per-epoch logs as a table, epochs numbered from 1."""
    frame = pd.DataFrame(history.history)
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="epoch")
    return frame
