"""A trained network saved into the run's folder, with its ``metrics.json`` record."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .results import model_record

__all__ = ["save_with_record"]


def save_with_record(
    model: Any,
    output_dir: str | Path,
    name: str,
    test: Mapping[str, float | int],
    *,
    test_images: np.ndarray,
    val_accuracy_random: float | None,
    val_accuracy_grouped: float | None,
    train_seconds: float,
    epochs: int,
    seed: int,
    train_images: int,
    **extra: Any,
) -> dict[str, Any]:
    """Save ``model`` as ``output_dir/NAME.keras`` and return its record (:func:`~labutils.results.model_record`).

    ``test`` is :func:`~labutils.metrics.classification_metrics` on the test set; the record adds the
    model's weights and its inference rate on ``test_images`` at batch 512, measured here.
    """
    from .models import count_weights
    from .speed import inference_rate

    model_file = f"{name}.keras"
    model.save(Path(output_dir) / model_file)
    return model_record(
        test,
        val_accuracy_random=val_accuracy_random,
        val_accuracy_grouped=val_accuracy_grouped,
        train_seconds=train_seconds,
        epochs=epochs,
        seed=seed,
        model_file=model_file,
        train_images=train_images,
        weight_counts=count_weights(model),
        inference_images_per_second=inference_rate(model, test_images, batch_size=512),
        **extra,
    )
