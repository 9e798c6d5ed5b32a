"""What a notebook saves and reads back: each trained network with its record, its ``metrics.json``
(checked against the results contract of :mod:`labutils.results.schema` as it is written), an earlier
notebook's ``metrics.json``, and the seed lab report's published figures quoted beside ours."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .metrics import inference_rate
from .models import count_weights
from .results.schema import SCHEMA_VERSION, check_metrics, model_record, read_metrics
from .runtime.device import Device, training_device

__all__ = [
    "COMPARISON_COLUMNS",
    "SEED_REPORT",
    "PublishedFigures",
    "comparison_table",
    "read_task_metrics",
    "save_with_record",
    "write_metrics",
]


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
    """Save ``model`` as ``output_dir/NAME.keras`` and return its record (:func:`~labutils.results.schema.model_record`).

    ``test`` is :func:`~labutils.metrics.classification_metrics` on the test set; ``fields`` are the
    record's other fields (``model_record``'s: validation scores, ``train_seconds``, ``epochs``,
    ``seed``, ``train_images``, then any of the notebook's own). The record adds the model file, its
    weights and its inference rate: ``inference_images_per_second`` when it was measured already,
    else measured here on ``test_images`` at batch 512 (give exactly one of the two).
    """
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


@dataclass(frozen=True)
class PublishedFigures:
    """Test figures a report published: quoted beside this project's, never computed by it."""

    task2_accuracy: float
    task2_log_loss: float
    task3_accuracy: float
    task3_log_loss: float
    task4_accuracy: float  # its frozen VGG16
    task4_log_loss: float


#: The seed lab report's published test figures (its Task 3 network trained 50 more epochs with augmentation).
SEED_REPORT = PublishedFigures(
    task2_accuracy=0.9714,
    task2_log_loss=0.099,
    task3_accuracy=0.9964,
    task3_log_loss=0.019,
    task4_accuracy=0.8073,
    task4_log_loss=0.73,
)


def write_metrics(
    output_dir: str | Path,
    *,
    notebook: str,
    data_source: str,
    profile: str,
    models: Mapping[str, Mapping[str, Any]],
    device: Device | None = None,
    **fields: Any,
) -> Path:
    """Write ``output_dir/metrics.json`` after checking it against the contract; its path.

    ``device`` is the device the notebook trained on (default: the one this process's TensorFlow
    uses, :func:`~labutils.runtime.device.training_device`).
    """
    path = Path(output_dir) / "metrics.json"
    document = {
        "schema_version": SCHEMA_VERSION,
        "notebook": notebook,
        "data_source": data_source,
        "profile": profile,
        "device": (device or training_device()).as_record(),
        "models": {name: dict(record) for name, record in models.items()},
        **fields,
    }
    text = json.dumps(document, indent=2) + "\n"
    check_metrics(json.loads(text), f"the metrics.json for {path}", notebook)  # as a reader will see it
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def read_task_metrics(folder: str | Path, notebook: str, data_source: str) -> dict[str, Any]:
    """An earlier notebook's ``metrics.json``, checked: that notebook's, on the same data, its model files there."""
    path = Path(folder) / "metrics.json"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: run notebook {notebook} first (python -m labutils report --only {notebook[:2]})"
        )
    document = read_metrics(path, notebook)
    if document["data_source"] != data_source:
        raise ValueError(
            f"{path} was computed on {document['data_source']!r} data, but this run uses {data_source!r} data; "
            f"re-run notebook {notebook} on the same data"
        )
    for name, record in document["models"].items():
        model_file = Path(folder) / str(record["model_file"])
        if not model_file.exists():
            raise FileNotFoundError(
                f"{model_file} (model {name!r} of {path}) not found: re-run notebook {notebook}"
            )
    return document


#: Columns of :func:`comparison_table`, in order.
COMPARISON_COLUMNS = (
    "task",
    "test_accuracy",
    "test_log_loss",
    "test_f1_weighted",
    "test_errors",
    "val_accuracy_grouped",
    "trainable_weights",
    "total_weights",
    "train_seconds",
    "train_images",
    "inference_images_per_second",
)


def comparison_table(documents: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per model over several notebooks' ``metrics.json`` documents ({task label: document}).

    A document here needs only ``models``: notebook 04 compares its own records before writing them.
    """
    rows = {}
    for task, document in documents.items():
        for name, record in document.get("models", {}).items():
            row = {column: record.get(column) for column in COMPARISON_COLUMNS}
            row["task"] = task
            if name in rows:
                raise ValueError(f"model {name!r} appears in more than one document")
            rows[name] = row
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(COMPARISON_COLUMNS))
    table.index.name = "model"
    numeric = [column for column in COMPARISON_COLUMNS if column != "task"]
    table[numeric] = table[numeric].apply(pd.to_numeric)
    return table
