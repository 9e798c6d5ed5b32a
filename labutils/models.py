"""The networks of the report, built with the Keras 3 functional API.

* :func:`seed_cnn` — the seed lab report's network, kept as the baseline (139,608 weights).
* :func:`compact_cnn` — the project's own design: per-image standardisation (brightness and
  contrast no longer matter), three convolution blocks with batch normalisation and anti-aliased
  pooling (:class:`BlurPooling2D`), then global average pooling and dropout. It costs a fraction
  of the baseline's arithmetic per image.

Models take images scaled to 0-1 with shape (N, 28, 28, 1) and return softmax probabilities
over the 24 classes (class indices 0-23, see :func:`labutils.label_to_index`).
"""

from __future__ import annotations

import zipfile

import keras
from keras import layers

from .data import IMAGE_SIZE, NUM_CLASSES
from .layers import BlurPooling2D, PerImageStandardization
from .predict.model_files import check_model_file

__all__ = [
    "HEADS",
    "POOLINGS",
    "compact_cnn",
    "count_weights",
    "load_model",
    "seed_cnn",
]

#: Our network's pooling and head choices (see :func:`compact_cnn`).
POOLINGS: tuple[str, ...] = ("blur", "max")
HEADS: tuple[str, ...] = ("average", "flatten")


INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)


def seed_cnn(num_classes: int = NUM_CLASSES, *, name: str = "seed_cnn") -> keras.Model:
    """The seed lab report's Task 2 network (139,608 weights with 24 classes)."""
    inputs = keras.Input(INPUT_SHAPE, name="image")
    x = inputs
    for kernel, padding in ((4, "same"), (4, "same"), (3, "valid")):
        x = layers.Conv2D(64, kernel, padding=padding, activation="relu")(x)
        x = layers.Dropout(0.4)(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="letter")(x)
    return keras.Model(inputs, outputs, name=name)


def compact_cnn(
    num_classes: int = NUM_CLASSES,
    *,
    width: int = 32,
    dropout: float = 0.4,
    standardize: bool = True,
    pooling: str = "blur",
    head: str = "average",
    name: str = "compact_cnn",
) -> keras.Model:
    """The project's network: [conv 3x3 -> batch norm -> ReLU -> pool] x 3 (width, 2x, 4x filters) -> head.

    ``pooling``: ``"blur"`` (:class:`BlurPooling2D`, the default) or ``"max"`` (plain 2x2 max
    pooling). ``head``: ``"average"`` (global average pooling, the default) or ``"flatten"``; either
    is followed by dropout and the softmax layer. The defaults were chosen on the grouped
    validation split (`docs/decisions.md`).
    """
    if width < 1:
        raise ValueError(f"width must be a positive number of filters, got {width}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    if head not in HEADS:
        raise ValueError(f"head must be one of {', '.join(HEADS)}, got {head!r}")
    inputs = keras.Input(INPUT_SHAPE, name="image")
    x = PerImageStandardization(name="standardize")(inputs) if standardize else inputs
    for block, filters in enumerate((width, 2 * width, 4 * width), start=1):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{block}")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"bn{block}")(x)
        x = layers.ReLU(name=f"relu{block}")(x)
        x = (
            BlurPooling2D(name=f"pool{block}")(x)
            if pooling == "blur"
            else layers.MaxPooling2D(2, name=f"pool{block}")(x)
        )
    x = (
        layers.GlobalAveragePooling2D(name="average")(x)
        if head == "average"
        else layers.Flatten(name="flatten")(x)
    )
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="letter")(x)
    return keras.Model(inputs, outputs, name=name)


def count_weights(model: keras.Model) -> dict[str, int]:
    """Trainable, non-trainable and total weights of a model."""
    trainable = sum(int(keras.ops.size(weight)) for weight in model.trainable_weights)
    frozen = sum(int(keras.ops.size(weight)) for weight in model.non_trainable_weights)
    return {"trainable": trainable, "non_trainable": frozen, "total": trainable + frozen}


def load_model(path) -> keras.Model:
    """Load a model saved by this project, in Keras' safe mode (no code in the file is ever run).

    The project's layers are registered by :mod:`labutils.layers`, which this module imports. A
    file that is not a model, or names a class that is not registered, raises a
    :class:`ValueError` that names the file.
    """
    path = check_model_file(path)
    try:
        return keras.models.load_model(path, safe_mode=True)
    except (TypeError, ValueError, KeyError, AttributeError, OSError, zipfile.BadZipFile) as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ValueError(f"model {path}: cannot be loaded ({first_line[:300]})") from error
