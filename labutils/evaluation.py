"""Evaluating a classifier: metrics, per-letter scores, confusion matrix, errors, speed, metrics.json."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from sklearn.metrics import accuracy_score, f1_score, log_loss, precision_recall_fscore_support
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from .data import LETTERS, NUM_CLASSES
from .plot import plot_image_grid
from .records import read_json
from .split import standardize_images

__all__ = [
    "COMPARISON_COLUMNS",
    "METRIC_FIELDS",
    "classification_metrics",
    "comparison_table",
    "describe_gap",
    "errors_by_family",
    "family_neighbours",
    "inference_rate",
    "missed_family_records",
    "model_record",
    "per_letter_report",
    "plot_confusion_matrix",
    "plot_family_neighbours",
    "plot_misclassified",
    "read_task_metrics",
    "single_image_rate",
    "write_metrics",
]

#: Field names every model entry of metrics.json carries (fixed: the index page and checkers read them).
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
)


def _check(y_true: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true, probabilities = np.asarray(y_true), np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape != (len(y_true), NUM_CLASSES):
        raise ValueError(
            f"probabilities must have shape ({len(y_true)}, {NUM_CLASSES}), got {probabilities.shape}"
        )
    if y_true.size and (y_true.min() < 0 or y_true.max() >= NUM_CLASSES):
        raise ValueError(f"y_true must hold class indices 0-{NUM_CLASSES - 1} (see label_to_index)")
    if probabilities.size and (probabilities.min() < 0 or np.abs(probabilities.sum(axis=1) - 1).max() > 1e-3):
        raise ValueError("probabilities must be non-negative and sum to 1 per row (a softmax output)")
    # float32 softmax rows sum to 1 only within rounding; renormalise in float64 for log-loss
    return y_true, probabilities / probabilities.sum(axis=1, keepdims=True)


def describe_gap(validation_accuracy: float, test_accuracy: float, *, decimals: int = 2) -> str:
    """How a validation accuracy stands to the test accuracy, in percentage points, for narration:
    "1.54 points below the test accuracy", "0.04 points above …", or "equal to …" when the
    difference rounds to zero at ``decimals``."""
    for name, value in (("validation_accuracy", validation_accuracy), ("test_accuracy", test_accuracy)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be an accuracy between 0 and 1, got {value}")
    points = round(100 * (validation_accuracy - test_accuracy), decimals)
    if points == 0:
        return "equal to the test accuracy"
    return f"{abs(points):.{decimals}f} points {'above' if points > 0 else 'below'} the test accuracy"


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray) -> dict[str, float | int]:
    """Accuracy, log-loss, weighted F1 and error count of predicted class probabilities."""
    y_true, probabilities = _check(y_true, probabilities)
    predicted = probabilities.argmax(axis=1)
    return {
        "accuracy": float(accuracy_score(y_true, predicted)),
        "log_loss": float(log_loss(y_true, probabilities, labels=np.arange(NUM_CLASSES))),
        "f1_weighted": float(
            f1_score(y_true, predicted, average="weighted", labels=np.arange(NUM_CLASSES), zero_division=0)
        ),
        "errors": int(np.sum(predicted != y_true)),
    }


def per_letter_report(y_true: np.ndarray, y_predicted: np.ndarray) -> pd.DataFrame:
    """Precision, recall, F1 and support per letter (rows A-Y), sorted as the alphabet."""
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_predicted, labels=np.arange(NUM_CLASSES), zero_division=0
    )
    return pd.DataFrame(
        {"precision": precision, "recall": recall, "f1": f1, "support": support},
        index=pd.Index(LETTERS, name="letter"),
    )


def errors_by_family(y_true: np.ndarray, y_predicted: np.ndarray, families: np.ndarray) -> pd.DataFrame:
    """Errors per family of near-copies (``near_duplicate_groups`` of the evaluated images).

    One row per family, most errors first: its letter, images, errors, and the letter its wrong
    answers name most often ("" when it has none). A family is one photograph seen many times, so
    errors come by families, and a whole family moves accuracy by its size at once.
    """
    y_true, y_predicted, families = np.asarray(y_true), np.asarray(y_predicted), np.asarray(families)
    if not len(y_true) == len(y_predicted) == len(families):
        raise ValueError(
            f"y_true ({len(y_true)}), y_predicted ({len(y_predicted)}) and families ({len(families)}) "
            "must have one entry per image"
        )
    frame = pd.DataFrame(
        {
            "family": families,
            "letter": [LETTERS[i] for i in y_true],
            "wrong": y_true != y_predicted,
            "predicted": [LETTERS[i] for i in y_predicted],
        }
    )
    if len(frame) and frame.groupby("family")["letter"].nunique().max() > 1:
        raise ValueError(
            "a family holds images of several letters: families must come from near_duplicate_groups of these images"
        )
    wrong_as = (
        frame[frame["wrong"]]
        .groupby("family")["predicted"]
        .agg(lambda letters: letters.value_counts().index[0])
    )
    table = frame.groupby("family").agg(
        letter=("letter", "first"), images=("wrong", "size"), errors=("wrong", "sum")
    )
    table["predicted_as"] = wrong_as.reindex(table.index).fillna("")
    table["errors"] = table["errors"].astype(int)
    return table.sort_values(["errors", "images"], ascending=[False, True], kind="stable")


def family_neighbours(
    x_test: np.ndarray,
    y_test: np.ndarray,
    families: np.ndarray,
    x_train: np.ndarray,
    y_train: np.ndarray,
    *,
    batch_size: int = 1024,
) -> pd.DataFrame:
    """For each test family, the training image most like it, and the one most like it of its own letter.

    Similarity is the Pearson correlation of the pixels (as for the near-copy families), the best
    over the family's images. A family whose nearest training image shows another letter, while
    its own letter's best match is far weaker, is a photograph unlike any the network learnt from.
    One row per family, in family order: ``letter``, ``images``, ``nearest_letter``,
    ``nearest_similarity``, ``own_letter_similarity``, and the rows of the images shown by
    :func:`plot_family_neighbours`: ``test_index`` (the family's image closest to its nearest
    training image), ``nearest_train_index`` and ``own_letter_train_index``.
    """
    y_test, y_train, families = np.asarray(y_test), np.asarray(y_train), np.asarray(families)
    if not len(x_test) == len(y_test) == len(families):
        raise ValueError(
            f"x_test ({len(x_test)}), y_test ({len(y_test)}) and families ({len(families)}) "
            "must have one entry per test image"
        )
    if len(x_train) != len(y_train) or len(x_train) == 0:
        raise ValueError(
            f"x_train ({len(x_train)}) and y_train ({len(y_train)}) must be non-empty and of one length"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive number of images, got {batch_size}")
    frame = pd.DataFrame({"family": families, "letter": y_test})
    if len(frame) and frame.groupby("family")["letter"].nunique().max() > 1:
        raise ValueError(
            "a family holds images of several letters: families must come from near_duplicate_groups of these images"
        )
    queries, references = standardize_images(x_test), standardize_images(x_train)
    best, best_index = np.empty(len(queries), np.float32), np.empty(len(queries), np.int64)
    own, own_index = np.full(len(queries), -np.inf, np.float32), np.full(len(queries), -1, np.int64)
    for start in range(0, len(queries), batch_size):
        batch = slice(start, start + batch_size)
        scores = queries[batch] @ references.T
        rows = np.arange(len(scores))
        best_index[batch] = scores.argmax(axis=1)
        best[batch] = scores[rows, best_index[batch]]
        scores[y_train[None, :] != y_test[batch, None]] = -np.inf
        own_index[batch] = scores.argmax(axis=1)
        own[batch] = scores[rows, own_index[batch]]
    own_index[~np.isfinite(own)] = -1  # no training image of that letter
    records = {}
    for family in np.unique(families):
        members = np.flatnonzero(families == family)
        shown, own_best = members[best[members].argmax()], members[own[members].argmax()]
        records[family] = {
            "letter": LETTERS[y_test[shown]],
            "images": len(members),
            "nearest_letter": LETTERS[y_train[best_index[shown]]],
            "nearest_similarity": float(best[shown]),
            "own_letter_similarity": float(own[own_best]) if own_index[own_best] >= 0 else float("nan"),
            "test_index": int(shown),
            "nearest_train_index": int(best_index[shown]),
            "own_letter_train_index": int(own_index[own_best]),
        }
    table = pd.DataFrame.from_dict(records, orient="index")
    table.index.name = "family"
    return table


def _rounded(value: float) -> float | None:
    """A similarity for JSON: 4 decimals, None where there was nothing to compare with (NaN)."""
    return None if np.isnan(value) else round(float(value), 4)


def missed_family_records(errors: pd.DataFrame, neighbours: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready records of the families with errors, in the order of ``errors``.

    ``errors``: rows of :func:`errors_by_family`; ``neighbours``: :func:`family_neighbours` of (at
    least) those families. Each record: family, letter, images, errors, predicted_as,
    nearest_letter, nearest_similarity and own_letter_similarity (None without a training image of
    its letter).
    """
    missed = errors[errors["errors"] > 0]
    return [
        {
            "family": int(family),
            "letter": row.letter,
            "images": int(row.images),
            "errors": int(row.errors),
            "predicted_as": row.predicted_as,
            "nearest_letter": neighbours.loc[family, "nearest_letter"],
            "nearest_similarity": _rounded(neighbours.loc[family, "nearest_similarity"]),
            "own_letter_similarity": _rounded(neighbours.loc[family, "own_letter_similarity"]),
        }
        for family, row in missed.iterrows()
    ]


def plot_family_neighbours(
    x_test: np.ndarray,
    x_train: np.ndarray,
    neighbours: pd.DataFrame,
    *,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Per family (a row of :func:`family_neighbours`): a test image, its nearest training image, and its letter's nearest.

    Titles give the letter and, for the training images, the correlation with the test family.
    """
    if len(neighbours) == 0:
        raise ValueError("no families to show")
    images, titles = [], []
    for family, row in neighbours.iterrows():
        own = row["own_letter_train_index"]
        images += [
            x_test[row["test_index"]],
            x_train[row["nearest_train_index"]],
            x_train[own] if own >= 0 else np.full_like(x_test[row["test_index"]], np.nan),
        ]
        titles += [
            f"test {row['letter']} #{family}",
            f"{row['nearest_letter']} {row['nearest_similarity']:.2f}",
            f"{row['letter']} {row['own_letter_similarity']:.2f}" if own >= 0 else f"no {row['letter']}",
        ]
    images = np.asarray(images, dtype=np.float32)
    return plot_image_grid(images.reshape(len(images), *images.shape[1:3]), titles, columns=3, ax=ax)


def plot_confusion_matrix(
    y_true: np.ndarray, y_predicted: np.ndarray, *, ax: plt.Axes | None = None
) -> plt.Axes:
    """Counts of true (rows) against predicted (columns) letters; the diagonal is greyed out."""
    matrix = sk_confusion_matrix(y_true, y_predicted, labels=np.arange(NUM_CLASSES))
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 7.5), layout="constrained")
    off_diagonal = np.where(np.eye(NUM_CLASSES, dtype=bool), np.nan, matrix)
    sns.heatmap(
        np.diag(np.diag(matrix)).astype(float),
        mask=~np.eye(NUM_CLASSES, dtype=bool),
        cmap="Greys",
        cbar=False,
        ax=ax,
        xticklabels=LETTERS,
        yticklabels=LETTERS,
        annot=True,
        fmt=".0f",
        annot_kws={"fontsize": 6},
        alpha=0.3,
    )
    sns.heatmap(
        off_diagonal,
        mask=(off_diagonal == 0) | np.isnan(off_diagonal),
        cmap="Reds",
        ax=ax,
        annot=True,
        fmt=".0f",
        xticklabels=LETTERS,
        yticklabels=LETTERS,
        cbar_kws={"label": "errors"},
        vmin=0,
        vmax=max(1, np.nanmax(off_diagonal)),
    )
    ax.set(
        xlabel="predicted letter",
        ylabel="true letter",
        title=f"Confusion matrix: {int(matrix.trace())} of {int(matrix.sum())} correct",
    )
    return ax


def plot_misclassified(
    images: np.ndarray,
    y_true: np.ndarray,
    y_predicted: np.ndarray,
    *,
    limit: int = 24,
    columns: int = 12,
    ax: plt.Axes | None = None,
) -> plt.Axes | None:
    """A grid of misclassified images titled 'true→predicted'; None when there is no error."""
    wrong = np.flatnonzero(np.asarray(y_true) != np.asarray(y_predicted))[:limit]
    if wrong.size == 0:
        return None
    titles = [f"{LETTERS[y_true[i]]}→{LETTERS[y_predicted[i]]}" for i in wrong]
    images = np.asarray(images)[wrong]
    return plot_image_grid(images.reshape(len(wrong), 28, 28), titles, columns=columns, ax=ax)


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
