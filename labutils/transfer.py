"""Transfer learning from ``keras.applications`` backbones (Task 4).

The 28x28 gray images reach a backbone the way it was trained to see images: resized to a
parameterised size, replicated into three channels, scaled to 0-255 and passed through the
backbone's own ``preprocess_input`` — all inside the model (:class:`BackboneInput`), so a saved
transfer model takes the same 0-1 (N, 28, 28, 1) input as every other model of the report.

Two regimes:

* **feature extraction** — the frozen backbone's pooled features are computed once
  (:func:`cached_features`, optionally kept on disk) and only a new softmax head is trained on them;
* **fine-tuning** — the top block(s) of the backbone are unfrozen (:func:`unfreeze_top`) and trained
  with a low learning rate on augmented images; batch normalisation stays in inference mode.

Weights are ``"imagenet"`` (downloaded once by Keras into ``~/.keras/models``), a path to a local
weights file, or ``None``. When the ImageNet weights cannot be fetched, :func:`build_transfer_model`
builds the network from random initialisation and says so in :attr:`TransferModel.weights_status`;
it never substitutes silently.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers

from .data import IMAGE_SIZE, NUM_CLASSES

__all__ = [
    "BACKBONES",
    "BackboneInput",
    "BackboneSpec",
    "TransferModel",
    "build_transfer_model",
    "cached_features",
    "resolve_weights",
    "unfreeze_top",
    "weights_fingerprint",
]


@dataclass(frozen=True)
class BackboneSpec:
    """How to build and fine-tune one ``keras.applications`` network."""

    name: str
    constructor: str  # attribute of keras.applications
    module: str  # keras.applications submodule whose preprocess_input the backbone expects
    min_size: int  # smallest input side keras.applications accepts
    fine_tune_from: str  # first layer made trainable when fine-tuning (the top block)
    preprocessing: str  # what preprocess_input does, for the narration

    def application(self):
        return getattr(keras.applications, self.constructor)

    def preprocess_input(self, images):
        return getattr(keras.applications, self.module).preprocess_input(images)


BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        BackboneSpec("vgg16", "VGG16", "vgg16", 32, "block5_conv1",
                     "RGB to BGR, ImageNet channel means subtracted (0-255 scale)"),
        BackboneSpec("mobilenet_v2", "MobileNetV2", "mobilenet_v2", 32, "block_16_expand",
                     "scaled to [-1, 1]"),
        BackboneSpec("efficientnet_b0", "EfficientNetB0", "efficientnet", 32, "block7a_expand_conv",
                     "none outside the model: 0-255 values, the network rescales and normalises itself"),
        BackboneSpec("resnet50", "ResNet50", "resnet50", 32, "conv5_block3_1_conv",
                     "RGB to BGR, ImageNet channel means subtracted (0-255 scale)"),
    )
}


def _spec(backbone: str) -> BackboneSpec:
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose from {sorted(BACKBONES)}")
    return BACKBONES[backbone]


@keras.saving.register_keras_serializable(package="labutils")
class BackboneInput(layers.Layer):
    """0-1 gray images (N, 28, 28, 1) -> the backbone's input: resized, 3 channels, 0-255, preprocessed."""

    def __init__(self, backbone: str, image_size: int, **kwargs):
        super().__init__(**kwargs)
        spec = _spec(backbone)
        if int(image_size) < spec.min_size:
            raise ValueError(f"image_size {image_size} is below {backbone}'s minimum of {spec.min_size} pixels")
        self.backbone = backbone
        self.image_size = int(image_size)

    def call(self, inputs):
        images = keras.ops.image.resize(inputs, (self.image_size, self.image_size), interpolation="bilinear")
        images = keras.ops.repeat(images, 3, axis=-1) * 255.0
        return BACKBONES[self.backbone].preprocess_input(images)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.image_size, self.image_size, 3)

    def get_config(self) -> dict:
        return {**super().get_config(), "backbone": self.backbone, "image_size": self.image_size}


@dataclass
class TransferModel:
    """A transfer network and its parts.

    ``model`` maps 0-1 images to class probabilities; ``extractor`` maps them to the frozen
    backbone's pooled features; ``head`` (feature standardisation, dropout, softmax) maps features
    to probabilities — its layers are the model's, so training the head on cached features
    trains the model's head.
    """

    backbone: str
    image_size: int
    model: keras.Model
    base: keras.Model
    extractor: keras.Model
    head: keras.Model
    weights_requested: str | None
    pretrained: bool
    weights_status: str  # what was loaded, in words: shown in the notebook and written to metrics.json

    def adapt_head(self, train_features: np.ndarray) -> None:
        """Set the head's feature standardisation (per-feature mean and variance) from training features."""
        if train_features.ndim != 2 or train_features.shape[1] != self.head.input_shape[-1]:
            raise ValueError(f"expected features of shape (N, {self.head.input_shape[-1]}), got {train_features.shape}")
        self.head.get_layer("feature_normalization").adapt(train_features)


def _is_download_failure(error: Exception) -> bool:
    """Keras raises a plain ``Exception('URL fetch failure on …')`` when it cannot download weights."""
    text = str(error).lower()
    return isinstance(error, OSError) or "fetch failure" in text or "urlopen" in text


def _load_base(spec: BackboneSpec, image_size: int, weights: str | None):
    """The headless backbone and (pretrained, status)."""
    build = spec.application()
    shape = (image_size, image_size, 3)
    if weights is None:
        return build(include_top=False, weights=None, input_shape=shape, pooling="avg"), (
            False, "no pretrained weights (weights=None): random initialisation — this is not transfer learning")
    if weights == "imagenet":
        try:
            base = build(include_top=False, weights="imagenet", input_shape=shape, pooling="avg")
        except Exception as error:  # noqa: BLE001 - Keras raises bare Exception for download failures
            if not _is_download_failure(error):
                raise
            reason = str(error).strip().splitlines()[0][:300]
            return build(include_top=False, weights=None, input_shape=shape, pooling="avg"), (
                False, f"ImageNet weights unavailable ({reason}): random initialisation — no pretrained weights, "
                       "this is not transfer learning")
        return base, (True, "ImageNet weights (keras.applications)")
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} not found (weights must be 'imagenet', None or a file path)")
    base = build(include_top=False, weights=None, input_shape=shape, pooling="avg")
    try:
        base.load_weights(path)
    except Exception as error:  # noqa: BLE001 - re-raised with the file named
        raise ValueError(f"weights file {path} does not fit {spec.name} at {image_size} px: {error}") from error
    return base, (True, f"weights from {path}")


def build_transfer_model(
    backbone: str,
    *,
    image_size: int = 32,
    weights: str | None = "imagenet",
    dropout: float = 0.2,
    num_classes: int = NUM_CLASSES,
) -> TransferModel:
    """A frozen ``backbone`` under a new softmax head, for 0-1 (N, 28, 28, 1) images.

    ``weights``: ``"imagenet"``, a path to a weights file saved from the same headless backbone
    (``base.save_weights(...)``), or ``None``. A failed ImageNet download falls back to random
    initialisation, reported in ``weights_status`` and ``pretrained=False``.
    """
    spec = _spec(backbone)
    if int(image_size) < spec.min_size:
        raise ValueError(f"image_size {image_size} is below {backbone}'s minimum of {spec.min_size} pixels")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
    base, (pretrained, status) = _load_base(spec, int(image_size), weights)
    base.trainable = False
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="image")
    prepared = BackboneInput(backbone, image_size, name="to_backbone_input")(inputs)
    features = base(prepared, training=False)  # batch norm stays in inference mode, also when fine-tuning
    feature_input = keras.Input((features.shape[-1],), name="features")
    x = layers.Normalization(name="feature_normalization")(feature_input)  # adapted by TransferModel.adapt_head
    x = layers.Dropout(dropout, name="head_dropout")(x)
    head = keras.Model(feature_input, layers.Dense(num_classes, activation="softmax", name="letter")(x), name="head")
    model = keras.Model(inputs, head(features), name=f"{backbone}_transfer")
    extractor = keras.Model(inputs, features, name=f"{backbone}_features")
    return TransferModel(backbone, int(image_size), model, base, extractor, head, weights, pretrained, status)


def resolve_weights(weights: str | None, backbone: str) -> str | None:
    """The ``weights`` argument for one backbone: ``"imagenet"``, ``None``, or a file path in which
    ``{backbone}`` is replaced by the backbone's name (one parameter serves several backbones)."""
    _spec(backbone)
    if weights is None or weights == "imagenet":
        return weights
    if not isinstance(weights, str) or not weights.strip():
        raise ValueError(f"WEIGHTS must be 'imagenet', None or a weights file path, got {weights!r}")
    if weights.lower() in {"none", "null", "random"}:
        return None
    return weights.replace("{backbone}", backbone)


def unfreeze_top(transfer: TransferModel, from_layer: str | None = None) -> int:
    """Make the backbone trainable from ``from_layer`` (default: the spec's top block) upwards.

    Batch-normalisation layers stay frozen (and the backbone runs in inference mode), as the
    Keras fine-tuning guide recommends. Returns the number of trainable weights of the whole model.
    """
    name = from_layer or BACKBONES[transfer.backbone].fine_tune_from
    names = [layer.name for layer in transfer.base.layers]
    if name not in names:
        raise ValueError(f"{transfer.backbone} has no layer {name!r}")
    start = names.index(name)
    transfer.base.trainable = True
    for index, layer in enumerate(transfer.base.layers):
        layer.trainable = index >= start and not isinstance(layer, layers.BatchNormalization)
    return sum(int(np.prod(weight.shape)) for weight in transfer.model.trainable_weights)


def weights_fingerprint(model: keras.Model) -> str:
    """SHA-256 over a model's weights: changes whenever any weight does."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    return digest.hexdigest()


def cached_features(
    transfer: TransferModel,
    images: np.ndarray,
    *,
    cache_dir: str | Path | None = None,
    batch_size: int = 256,
) -> tuple[np.ndarray, bool]:
    """The frozen backbone's pooled features of ``images`` and whether they came from the cache.

    With ``cache_dir``, features are stored as ``.npy`` under a key made of the backbone, image
    size, the backbone's weights and the images themselves, so a changed input never reuses them.
    """
    if images.ndim != 4 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 1):
        raise ValueError(f"images must have shape (N, {IMAGE_SIZE}, {IMAGE_SIZE}, 1), got {images.shape}")
    path = None
    if cache_dir is not None:
        key = hashlib.sha256()
        key.update(f"{transfer.backbone}|{transfer.image_size}|{weights_fingerprint(transfer.base)}|".encode())
        key.update(np.ascontiguousarray(images, dtype=np.float32).tobytes())
        path = Path(cache_dir) / f"{transfer.backbone}-{transfer.image_size}px-{key.hexdigest()[:20]}.npy"
        if path.exists():
            features = np.load(path)
            if features.shape[0] == len(images):
                return features, True
    features = transfer.extractor.predict(images, batch_size=batch_size, verbose=0)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_suffix(".tmp.npy")
        np.save(staged, features)
        staged.replace(path)
    return features, False
