"""What a notebook records for each model in its metrics.json, and the comparison over notebooks."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .metrics import METRIC_FIELDS
from .records import read_json

__all__ = [
    "COMPARISON_COLUMNS",
    "comparison_table",
    "model_record",
    "read_task_metrics",
    "write_metrics",
]


def model_record(
    test: Mapping[str, float | int],
    *,
    val_accuracy_random: float | None,
    val_accuracy_grouped: float | None,
    train_seconds: float,
    epochs: int,
    seed: int,
    model_file: str | None,
    **extra: Any,
) -> dict[str, Any]:
    """One model's entry of metrics.json, with the fixed field names first."""
    record = {
        "test_accuracy": float(test["accuracy"]),
        "test_log_loss": float(test["log_loss"]),
        "test_f1_weighted": float(test["f1_weighted"]),
        "test_errors": int(test["errors"]),
        "val_accuracy_random": None if val_accuracy_random is None else float(val_accuracy_random),
        "val_accuracy_grouped": None if val_accuracy_grouped is None else float(val_accuracy_grouped),
        "train_seconds": round(float(train_seconds), 2),
        "epochs": int(epochs),
        "seed": int(seed),
        "model_file": model_file,
    }
    return {**record, **extra}


def write_metrics(
    output_dir: str | Path,
    *,
    notebook: str,
    data_source: str,
    profile: str,
    models: Mapping[str, Mapping[str, Any]],
    **extra: Any,
) -> Path:
    """Write ``metrics.json``; every model entry must carry :data:`METRIC_FIELDS`."""
    for name, record in models.items():
        missing = [field for field in METRIC_FIELDS if field not in record]
        if missing:
            raise ValueError(f"model {name!r} lacks the metrics.json fields {missing}")
    path = Path(output_dir) / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "notebook": notebook,
        "data_source": data_source,
        "profile": profile,
        "models": dict(models),
        **extra,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def read_task_metrics(folder: str | Path, notebook: str, data_source: str) -> dict[str, Any]:
    """Read an earlier notebook's ``metrics.json``, checking it exists, is that notebook's, and used the same data."""
    path = Path(folder) / "metrics.json"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: run notebook {notebook} first (python -m labutils report --only {notebook[:2]})"
        )
    document = read_json(path)
    if not isinstance(document, dict):
        raise ValueError(f"{path} holds no JSON object: re-run notebook {notebook}")
    if document.get("notebook") != notebook:
        raise ValueError(f"{path} belongs to notebook {document.get('notebook')!r}, expected {notebook!r}")
    if document.get("data_source") != data_source:
        raise ValueError(
            f"{path} was computed on {document.get('data_source')!r} data, but this run uses {data_source!r} data; "
            f"re-run notebook {notebook} on the same data"
        )
    for name, record in document.get("models", {}).items():
        model_file = Path(folder) / str(record.get("model_file"))
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

    Missing optional fields (e.g. trainable weights of an older run) are left empty, never guessed.
    """
    rows = {}
    for task, document in documents.items():
        for name, record in document.get("models", {}).items():
            row = {column: record.get(column) for column in COMPARISON_COLUMNS}
            row["task"] = task
            if row["total_weights"] is None:
                row["total_weights"] = record.get("weights")
            if name in rows:
                raise ValueError(f"model {name!r} appears in more than one document")
            rows[name] = row
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(COMPARISON_COLUMNS))
    table.index.name = "model"
    numeric = [column for column in COMPARISON_COLUMNS if column != "task"]
    table[numeric] = table[numeric].apply(pd.to_numeric)
    return table
