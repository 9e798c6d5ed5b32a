"""How fast a trained network answers: images per second in batches and one at a time."""

from __future__ import annotations

import time

import numpy as np

__all__ = [
    "inference_rate",
    "single_image_rate",
]


def inference_rate(model, x: np.ndarray, *, batch_size: int = 512, repeats: int = 1) -> float:
    """Images per second of ``model.predict`` at a batch size (after one warm-up batch)."""
    model.predict(x[:batch_size], batch_size=batch_size, verbose=0)
    start = time.perf_counter()
    for _ in range(repeats):
        model.predict(x, batch_size=batch_size, verbose=0)
    return repeats * len(x) / (time.perf_counter() - start)


def single_image_rate(model, x: np.ndarray, *, images: int = 200) -> float:
    """Images per second answering one image per call (batch 1), for up to ``images`` images of ``x``.

    Each call goes through the model's compiled predict function (``predict_on_batch``), which one
    warm-up call compiles first: calling the model eagerly (``model(image)``) would mostly time
    Keras' per-layer Python overhead (8 to 28 times slower for this project's networks on 2 CPU cores).
    """
    if len(x) == 0:
        raise ValueError("single_image_rate needs at least one image")
    if images < 1:
        raise ValueError(f"images must be a positive number of calls, got {images}")
    count = min(images, len(x))
    model.predict_on_batch(x[:1])
    start = time.perf_counter()
    for index in range(count):
        model.predict_on_batch(x[index : index + 1])
    return count / (time.perf_counter() - start)
