"""Training inputs for ``fit()``: the augmentation pipelines, the seeded tf.data pipeline and the schedules.

``compile()`` and ``fit()`` stay in the notebooks; this module provides what they are given.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
import tensorflow as tf

from .models import RandomAffine, RandomGaussianBlur, RandomGaussianNoise

# Keras warns on every fit() with a tf.data.Dataset that its default shuffle=True is ignored;
# training_dataset() shuffles (seeded) itself, so the warning says nothing here.
warnings.filterwarnings("ignore", message="`shuffle=True` was passed", category=UserWarning)

__all__ = [
    "augmentation_pipeline",
    "cosine_schedule",
    "reference_augmentation",
    "training_dataset",
    "warmup_cosine",
]


def augmentation_pipeline(
    *,
    rotation_degrees: float = 12.0,
    shift: float = 0.1,
    zoom: float = 0.12,
    shear: float = 0.1,
    contrast: float = 0.3,
    brightness: float = 0.2,
    blur: float = 0.0,
    noise: float = 0.0,
    seed: int = 0,
    name: str = "augmentation",
) -> keras.Sequential:
    """Random geometric, optical and photometric changes for 0-1 images; never a flip (a mirrored hand is another sign).

    In the order a picture meets them: the hand's pose (one :class:`RandomAffine` resampling, as
    Keras 2's ``ImageDataGenerator`` did), the lens (:class:`RandomGaussianBlur`, a sigma up to
    ``blur`` pixels), the exposure (contrast, brightness) and the sensor
    (:class:`RandomGaussianNoise`, a standard deviation up to ``noise``). Each factor of 0 leaves
    that change out.
    """
    for parameter, value in (
        ("rotation_degrees", rotation_degrees),
        ("shift", shift),
        ("zoom", zoom),
        ("shear", shear),
        ("contrast", contrast),
        ("brightness", brightness),
        ("blur", blur),
        ("noise", noise),
    ):
        if value < 0:
            raise ValueError(f"{parameter} must be >= 0, got {value}")
    steps: list[keras.layers.Layer] = []
    if rotation_degrees or shift or zoom or shear:
        steps.append(RandomAffine(rotation_degrees, shift, zoom, shear, seed=seed, name="affine"))
    if blur:
        steps.append(RandomGaussianBlur(blur, seed=seed + 6, name="blur"))
    if contrast:
        steps.append(keras.layers.RandomContrast(contrast, value_range=(0, 1), seed=seed + 4))
    if brightness:
        steps.append(keras.layers.RandomBrightness(brightness, value_range=(0, 1), seed=seed + 5))
    if noise:
        steps.append(RandomGaussianNoise(noise, seed=seed + 7, name="noise"))
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
