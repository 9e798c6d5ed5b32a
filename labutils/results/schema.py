"""The results contract: what each notebook's ``metrics.json`` holds, written and read with checks.

Every ``metrics.json`` carries :data:`COMMON_FIELDS` (its ``schema_version`` first), then the fields
its notebook's :class:`~labutils.results.registry.NotebookEntry` lists, and no others but
:data:`RUN_FIELDS`, which the report runner adds; every model entry
carries :data:`METRIC_FIELDS` first. :func:`labutils.saving.write_metrics` refuses a document that breaks this, and
:func:`read_metrics`, :func:`~labutils.saving.read_task_metrics` and :func:`read_run` refuse a file that does, with
an error that names the file and the field, so a record of an older version is run again, never
half-read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..runtime.device import Device, device_from_record
from .records import read_json
from .registry import NOTEBOOKS

__all__ = [
    "COMMON_FIELDS",
    "check_metrics_files",
    "RUN_FIELDS",
    "METRIC_FIELDS",
    "SCHEMA_VERSION",
    "check_metrics",
    "check_notebook_metrics",
    "check_run_entry",
    "model_record",
    "read_metrics",
    "read_notebook_metrics",
    "read_run",
    "run_devices",
    "run_models",
    "trained_device",
]

#: The version of the ``metrics.json`` layout this package writes and reads (version 1 had none;
#: version 3 added ``device``).
SCHEMA_VERSION = 4
#: The fields every ``metrics.json`` starts with; ``device`` is the device its notebook trained on
#: (:meth:`~labutils.runtime.device.Device.as_record`), which its seconds were measured on.
COMMON_FIELDS = ("schema_version", "notebook", "data_source", "profile", "device", "models")
#: The fields the report runner adds to the ``metrics.json`` of a notebook it ran: ``parameters``, every
#: parameter the notebook ran with (an interactive run's file has none).
RUN_FIELDS = ("parameters",)
#: The fields every model entry of a ``metrics.json`` starts with, in this order.
METRIC_FIELDS = (
    "test_accuracy",
    "test_log_loss",
    "test_f1_weighted",
    "test_errors",
    "val_accuracy_random",
    "val_accuracy_grouped",
    "train_seconds",
    "epochs",
    "seed",
    "model_file",
    "train_images",
    "trainable_weights",
    "total_weights",
    "inference_images_per_second",
)
# the model fields that may be empty: validation scores a model has not got, a model not saved
_OPTIONAL = {"val_accuracy_random", "val_accuracy_grouped", "model_file"}


def model_record(
    test: Mapping[str, float | int],
    *,
    val_accuracy_random: float | None,
    val_accuracy_grouped: float | None,
    train_seconds: float,
    epochs: int,
    seed: int,
    model_file: str | None,
    train_images: int,
    weight_counts: Mapping[str, int],
    inference_images_per_second: float,
    **extra: Any,
) -> dict[str, Any]:
    """One model's entry of metrics.json: :data:`METRIC_FIELDS` first, then ``extra``.

    ``test`` is :func:`~labutils.metrics.classification_metrics` on the test set; ``weight_counts``
    is :func:`~labutils.models.count_weights` of the model.
    """
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
        "train_images": int(train_images),
        "trainable_weights": int(weight_counts["trainable"]),
        "total_weights": int(weight_counts["total"]),
        "inference_images_per_second": float(inference_images_per_second),
    }
    clash = sorted(set(extra) & set(record))
    if clash:
        raise ValueError(f"model_record: {clash} are fixed fields, pass them by their own parameters")
    return {**record, **extra}


def check_metrics(document: Any, source: str, notebook: str | None = None) -> dict[str, Any]:
    """``document`` if it is a ``metrics.json`` of this schema (of ``notebook``, if given).

    Otherwise a :class:`ValueError` that names ``source`` (the file) and what is wrong.
    """
    redo = f"run notebook {notebook or 'that made it'} again"
    if not isinstance(document, dict):
        raise ValueError(f"{source} holds no JSON object: {redo}")
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(
            f"{source} has metrics schema {version if version is not None else 1}, this labutils reads "
            f"schema {SCHEMA_VERSION}: it was written by another version; {redo}"
        )
    name = document.get("notebook")
    if notebook is not None and name != notebook:
        raise ValueError(f"{source} belongs to notebook {name!r}, expected {notebook!r}")
    if name not in NOTEBOOKS:
        raise ValueError(f"{source} names notebook {name!r}, which is none of {sorted(NOTEBOOKS)}")
    entry = NOTEBOOKS[name]
    expected = (*COMMON_FIELDS, *entry.fields)
    missing = [field for field in expected if field not in document]
    unknown = [field for field in document if field not in expected and field not in RUN_FIELDS]
    if missing or unknown:
        raise ValueError(
            f"{source} does not follow notebook {name}'s metrics schema: "
            + "; ".join(
                part for part in (missing and f"missing {missing}", unknown and f"unknown {unknown}") if part
            )
        )
    if not isinstance(document["data_source"], str) or not isinstance(document["models"], dict):
        raise ValueError(f"{source}: data_source must be a string and models an object")
    device_from_record(document["device"], source)
    absent = [model for model in entry.models if model not in document["models"]]
    if absent:
        raise ValueError(f"{source} lacks the models {absent} that notebook {name} always records: {redo}")
    for model, record in document["models"].items():
        _check_record(record, f"{source}, model {model!r}")
    return document


def _check_record(record: Any, source: str) -> None:
    if not isinstance(record, dict):
        raise ValueError(f"{source} is not a JSON object")
    if tuple(record)[: len(METRIC_FIELDS)] != METRIC_FIELDS:
        missing = [field for field in METRIC_FIELDS if field not in record]
        raise ValueError(
            f"{source} lacks the fields {missing}"
            if missing
            else f"{source}: the fields {list(METRIC_FIELDS)} must come first, in that order"
        )
    for field in METRIC_FIELDS:
        value = record[field]
        if value is None and field in _OPTIONAL:
            continue
        wanted = str if field == "model_file" else (int, float)
        if isinstance(value, bool) or not isinstance(value, wanted):
            raise ValueError(
                f"{source}: {field} must be {'a string' if wanted is str else 'a number'}, got {value!r}"
            )


def read_metrics(path: str | Path, notebook: str | None = None) -> dict[str, Any]:
    """A ``metrics.json`` file (of ``notebook``, if given), checked against the contract."""
    return check_metrics(read_json(path), str(path), notebook)


def check_notebook_metrics(document: Any, source: str, notebook: str) -> dict[str, Any]:
    """``notebook``'s metrics checked against the contract when it is one of the report's notebooks
    (:data:`~labutils.results.registry.NOTEBOOKS`); any JSON object otherwise (a notebook of one's own, added
    to the folder, has no contract). A :class:`ValueError` names ``source`` when they do not pass."""
    if notebook in NOTEBOOKS:
        return check_metrics(document, source, notebook)
    if not isinstance(document, dict):
        raise ValueError(f"{source} holds no JSON object: run notebook {notebook} again")
    return document


def read_notebook_metrics(path: str | Path, notebook: str) -> dict[str, Any]:
    """What the runner reads after running ``notebook``: its ``metrics.json``, through :func:`check_notebook_metrics`."""
    return check_notebook_metrics(read_json(path), str(path), notebook)


#: The notebook states of ``run.json`` whose metrics count.
_DONE = {"completed", "cached"}


def read_run(path: str | Path) -> dict[str, Any]:
    """A report's ``run.json``, every finished notebook's metrics checked against the contract."""
    path = Path(path)
    run = read_json(path)
    if not isinstance(run, dict) or not isinstance(run.get("notebooks"), list):
        raise ValueError(f"{path} is not a report run record (no list of notebooks): run the report again")
    for entry in run["notebooks"]:
        if isinstance(entry, dict):
            check_run_entry(entry, f"{path} (notebook {entry.get('name')})")
    return run


def check_run_entry(entry: Mapping[str, Any], source: str) -> None:
    """A ValueError naming ``source`` unless a ``run.json`` entry of a finished notebook holds metrics that
    pass :func:`check_notebook_metrics` (an entry of a notebook that did not finish holds none)."""
    if entry.get("status") in _DONE:
        check_notebook_metrics(entry.get("metrics"), source, str(entry.get("name")))


def check_metrics_files(run: Mapping[str, Any], folder: str | Path) -> None:
    """A ValueError unless each finished notebook of ``run`` (:func:`read_run`'s) still has, in ``folder``,
    the ``metrics.json`` its ``run.json`` entry was read from: a file cut off, removed or written since
    is one the report would run that notebook again for."""
    for entry in run.get("notebooks", []):
        if entry.get("status") not in _DONE or entry.get("name") not in NOTEBOOKS:
            continue
        name, path = entry["name"], Path(folder) / entry["name"] / "metrics.json"
        again = f"the report would run {name} again (python -m labutils report --only {name[:2]})"
        if not path.is_file():
            raise ValueError(f"{path} not found; {again}")
        try:
            document = read_notebook_metrics(path, name)
        except (OSError, ValueError) as error:
            raise ValueError(f"{error}; {again}") from error
        if document != entry["metrics"]:
            raise ValueError(f"{path} differs from the run.json beside it: it was written since; {again}")


def run_models(run: Mapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(notebook, model, record) for every model of a run's finished report notebooks, in order.

    ``run`` is :func:`read_run`'s: the records were checked against the contract.
    """
    for entry in run.get("notebooks", []):
        if entry.get("status") in _DONE and entry.get("name") in NOTEBOOKS:
            for name, record in entry["metrics"]["models"].items():
                yield entry["name"], name, record


def trained_device(entry: Mapping[str, Any]) -> Device | None:
    """The device a ``run.json`` entry's notebook trained its models on; None for a notebook that did not
    finish, trained no model (notebook 01) or is not one of the report's."""
    if (
        entry.get("status") not in _DONE
        or entry.get("name") not in NOTEBOOKS
        or not entry["metrics"]["models"]
    ):
        return None
    return device_from_record(entry["metrics"]["device"], f"run.json (notebook {entry['name']})")


def run_devices(run: Mapping[str, Any]) -> list[Device]:
    """The devices the finished report notebooks of a run (:func:`read_run`'s) trained on, in order."""
    devices = (trained_device(entry) for entry in run.get("notebooks", []))
    return [device for device in devices if device is not None]
