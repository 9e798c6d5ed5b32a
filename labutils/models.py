"""The networks of the report, built with the Keras 3 functional API, and the project's own layers.

* :func:`seed_cnn` — the seed lab report's network, kept as the baseline (139,608 weights).
* :func:`compact_cnn` — the project's own design: per-image standardisation
  (:class:`PerImageStandardization`: brightness and contrast no longer matter), three convolution
  blocks with batch normalisation and anti-aliased pooling (:class:`BlurPooling2D`), then global
  average pooling and dropout. It costs a fraction of the baseline's arithmetic per image.
* :class:`RandomAffine` — the augmentation's single random resampling; :class:`RandomGaussianBlur`
  and :class:`RandomGaussianNoise` — what a camera's optics and sensor add, with a random strength
  per image (all three inactive at inference).
* :class:`BackboneInput` — turns 0-1 gray images into a pretrained backbone's input.

Models take images scaled to 0-1 with shape (N, 28, 28, 1) and return softmax probabilities over
the 24 classes (class indices 0-23, see :func:`labutils.label_to_index`). Importing this module
registers every layer for safe-mode loading (:func:`load_model`).
"""

from __future__ import annotations

import zipfile

import keras
import numpy as np
from keras import layers

from .backbones import BACKBONES, _spec
from .data import IMAGE_SIZE, NUM_CLASSES
from .predict.model_files import check_model_file

__all__ = [
    "HEADS",
    "POOLINGS",
    "BackboneInput",
    "BlurPooling2D",
    "PerImageStandardization",
    "RandomAffine",
    "RandomGaussianBlur",
    "RandomGaussianNoise",
    "compact_cnn",
    "count_weights",
    "load_model",
    "seed_cnn",
]


_BINOMIAL_3X3 = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0]) / 16.0


@keras.saving.register_keras_serializable(package="labutils")
class PerImageStandardization(layers.Layer):
    """Scale each image to zero mean and unit standard deviation over its pixels."""

    def __init__(self, epsilon: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, inputs):
        axes = tuple(range(1, len(inputs.shape)))
        mean = keras.ops.mean(inputs, axis=axes, keepdims=True)
        std = keras.ops.std(inputs, axis=axes, keepdims=True)
        return (inputs - mean) / (std + self.epsilon)

    def get_config(self) -> dict:
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="labutils")
class BlurPooling2D(layers.Layer):
    """Anti-aliased max pooling (Zhang, "Making convolutional networks shift-invariant again", 2019).

    The maximum over 2x2 windows at stride 1, then a fixed 3x3 binomial blur sampled at stride 2:
    the output has half the height and width (rounded up), like ``MaxPooling2D(2, padding="same")``,
    but a shift of the input by one pixel changes it far less. No weights.
    """

    def call(self, inputs):
        pooled = keras.ops.max_pool(inputs, 2, strides=1, padding="same")
        kernel = np.tile(_BINOMIAL_3X3[:, :, None, None], (1, 1, inputs.shape[-1], 1))
        return keras.ops.depthwise_conv(
            pooled, keras.ops.cast(kernel, inputs.dtype), strides=2, padding="same"
        )

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        halve = lambda size: None if size is None else (size + 1) // 2  # noqa: E731
        return (batch, halve(height), halve(width), channels)


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


@keras.saving.register_keras_serializable(package="labutils")
class RandomGaussianNoise(keras.layers.Layer):
    """Sensor noise: each image gets Gaussian noise of its own standard deviation, drawn from 0 to ``max_stddev``.

    Images are 0-1; the result is clipped to 0-1, as a camera's pixel values are. Drawing the
    strength per image (rather than one strength for all) shows the network clean and noisy
    images alike in every batch. Inactive unless called with ``training=True``.
    """

    def __init__(self, max_stddev: float = 0.1, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(max_stddev) <= 1.0:
            raise ValueError(f"max_stddev must lie in [0, 1], got {max_stddev}")
        self.max_stddev = float(max_stddev)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training: bool = True):
        if not training or self.max_stddev == 0.0:
            return images
        batch = keras.ops.shape(images)[0]
        stddev = keras.random.uniform((batch, 1, 1, 1), 0.0, self.max_stddev, seed=self.seed_generator)
        noise = keras.random.normal(keras.ops.shape(images), seed=self.seed_generator)
        return keras.ops.clip(images + stddev * keras.ops.cast(noise, images.dtype), 0.0, 1.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "max_stddev": self.max_stddev, "seed": self.seed}


@keras.saving.register_keras_serializable(package="labutils")
class RandomGaussianBlur(keras.layers.Layer):
    """Optical blur: each image is blurred with a Gaussian of its own sigma, drawn from 0 to ``max_sigma`` pixels.

    The blur is separable, so for an image X it is ``B X Bᵀ`` with B the image side's Gaussian
    matrix for that image's sigma, each row normalised to sum to 1 (the border is not darkened):
    two batched matrix products, exact for any sigma, sigma 0 giving X itself. For square and
    non-square images alike (a height and a width matrix). Inactive unless called with ``training=True``.
    """

    def __init__(self, max_sigma: float = 1.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(max_sigma) <= 10.0:
            raise ValueError(f"max_sigma must lie in [0, 10] pixels, got {max_sigma}")
        self.max_sigma = float(max_sigma)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    @staticmethod
    def blur_matrices(sigma, size: int):
        """(batch, size, size) row-normalised Gaussian matrices for per-image ``sigma`` (batch,)."""
        ops = keras.ops
        positions = ops.arange(size, dtype="float32")
        distance = positions[:, None] - positions[None, :]
        sigma = ops.maximum(ops.cast(sigma, "float32"), 1e-3)[:, None, None]
        weights = ops.exp(-0.5 * (distance[None] / sigma) ** 2)
        return weights / ops.sum(weights, axis=-1, keepdims=True)

    def call(self, images, training: bool = True):
        if not training or self.max_sigma == 0.0:
            return images
        ops = keras.ops
        batch = ops.shape(images)[0]
        sigma = keras.random.uniform((batch,), 0.0, self.max_sigma, seed=self.seed_generator)
        rows = ops.cast(self.blur_matrices(sigma, images.shape[1]), images.dtype)
        columns = ops.cast(self.blur_matrices(sigma, images.shape[2]), images.dtype)
        channels_first = ops.transpose(images, (0, 3, 1, 2))  # (batch, channels, height, width)
        blurred = ops.einsum("bij,bcjk,blk->bcil", rows, channels_first, columns)
        return ops.transpose(blurred, (0, 2, 3, 1))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "max_sigma": self.max_sigma, "seed": self.seed}


@keras.saving.register_keras_serializable(package="labutils")
class BackboneInput(layers.Layer):
    """0-1 gray images (N, 28, 28, 1) -> the backbone's input: resized, 3 channels, 0-255, preprocessed."""

    def __init__(self, backbone: str, image_size: int, **kwargs):
        super().__init__(**kwargs)
        spec = _spec(backbone)
        if int(image_size) < spec.min_size:
            raise ValueError(
                f"image_size {image_size} is below {backbone}'s minimum of {spec.min_size} pixels"
            )
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

    The project's layers, defined above, are registered for safe-mode loading. A
    file that is not a model, or names a class that is not registered, raises a
    :class:`ValueError` that names the file.
    """
    path = check_model_file(path)
    try:
        return keras.models.load_model(path, safe_mode=True)
    except RecursionError as error:
        raise ValueError(f"model {path}: cannot be loaded (its config.json is nested too deeply)") from error
    except (TypeError, ValueError, KeyError, AttributeError, OSError, zipfile.BadZipFile) as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ValueError(f"model {path}: cannot be loaded ({first_line[:300]})") from error
