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
    test_images: np.ndarray | None = None,
    inference_images_per_second: float | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Save ``model`` as ``output_dir/NAME.keras`` and return its record (:func:`~labutils.results.model_record`).

    ``test`` is :func:`~labutils.metrics.classification_metrics` on the test set; ``fields`` are the
    record's other fields (``model_record``'s: validation scores, ``train_seconds``, ``epochs``,
    ``seed``, ``train_images``, then any of the notebook's own). The record adds the model file, its
    weights and its inference rate: ``inference_images_per_second`` when it was measured already,
    else measured here on ``test_images`` at batch 512 (give exactly one of the two).
    """
    from .models import count_weights
    from .speed import inference_rate

    if (test_images is None) == (inference_images_per_second is None):
        raise ValueError(
            f"save_with_record({name!r}): give exactly one of test_images and inference_images_per_second"
        )
    if inference_images_per_second is None:
        inference_images_per_second = inference_rate(model, test_images, batch_size=512)
    model_file = f"{name}.keras"
    model.save(Path(output_dir) / model_file)
    return model_record(
        test,
        model_file=model_file,
        weight_counts=count_weights(model),
        inference_images_per_second=inference_images_per_second,
        **fields,
    )
