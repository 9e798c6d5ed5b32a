"""Sign-MNIST-C as training augmentation: :class:`RandomCorruption`, drawing from the named types only.

The held-out types (:data:`.suite.HELD_OUT`) are never drawn, so that scoring them still answers
"does the robustness carry over to corruptions the training never saw".
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from .suite import CORRUPTIONS, HELD_OUT, SEVERITIES, corrupt_images

__all__ = ["NAMED", "RandomCorruption"]

#: The corruption types training may draw from: every type but the held-out ones, in the suite's order.
NAMED: tuple[str, ...] = tuple(kind for kind in CORRUPTIONS if kind not in HELD_OUT)


class RandomCorruption(keras.layers.Layer):
    """A camera's faults: each image, with probability ``rate``, under one named Sign-MNIST-C type.

    The type is drawn per image from :data:`NAMED`; the images of a batch that drew the same type share
    a severity drawn from 1 to ``max_severity`` (one call of the suite per type and batch keeps the
    cost near 10 ms per batch of 128). The corruptions are numpy and OpenCV code, run through
    ``tf.numpy_function``, seeded by ``seed`` and drawn in the order the batches come: reproducible in
    a sequential ``tf.data`` map, not in a parallel one. Inactive unless called with ``training=True``.
    """

    def __init__(self, rate: float = 0.5, max_severity: int = 3, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) <= 1.0:
            raise ValueError(f"rate must lie in [0, 1], got {rate}")
        if max_severity not in SEVERITIES:
            raise ValueError(f"max_severity must be one of {list(SEVERITIES)}, got {max_severity!r}")
        self.rate = float(rate)
        self.max_severity = int(max_severity)
        self.seed = seed
        self._generator = np.random.default_rng(seed)

    def call(self, images, training: bool = True):
        if not training or self.rate == 0.0:
            return images
        corrupted = tf.numpy_function(self._corrupt, [images], tf.float32, stateful=True)
        return tf.ensure_shape(corrupted, images.shape)

    def _corrupt(self, images: np.ndarray) -> np.ndarray:
        images = np.clip(np.array(images, dtype=np.float32), 0.0, 1.0)
        chosen = np.flatnonzero(self._generator.random(len(images)) < self.rate)
        kinds = self._generator.integers(len(NAMED), size=len(chosen))
        stream = int(self._generator.integers(2**31))
        for kind in np.unique(kinds):
            rows = chosen[kinds == kind]
            severity = int(self._generator.integers(1, self.max_severity + 1))
            images[rows] = corrupt_images(images[rows], NAMED[kind], severity, stream)
        return images

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "rate": self.rate,
            "max_severity": self.max_severity,
            "seed": self.seed,
        }
