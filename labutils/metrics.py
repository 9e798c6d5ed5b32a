"""Scores of a classifier on labelled images: accuracy, log-loss, F1, errors, per-letter scores; its
errors counted by families of near-copies, and the training images most like each missed family; and
how many images a second it answers."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, log_loss, precision_recall_fscore_support

from .data import LETTERS, NUM_CLASSES
from .split import standardize_images

__all__ = [
    "classification_metrics",
    "errors_by_family",
    "family_neighbours",
    "inference_rate",
    "missed_family_records",
    "per_letter_report",
]


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


def inference_rate(model, x: np.ndarray, *, batch_size: int = 512, repeats: int = 1) -> float:
    """Images per second of ``model.predict`` at a batch size (after one warm-up batch)."""
    model.predict(x[:batch_size], batch_size=batch_size, verbose=0)
    start = time.perf_counter()
    for _ in range(repeats):
        model.predict(x, batch_size=batch_size, verbose=0)
    return repeats * len(x) / (time.perf_counter() - start)


def errors_by_family(y_true: np.ndarray, y_predicted: np.ndarray, families: np.ndarray) -> pd.DataFrame:
    """Errors per family of near-copies (``near_duplicate_families`` of the evaluated images).

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
            "a family holds images of several letters: families must come from near_duplicate_families of these images"
        )
    misread = frame[frame["wrong"]].groupby("family")[
        "predicted"
    ]  # the letter each family is most misread as
    wrong_as = misread.agg(lambda letters: letters.value_counts().index[0])
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
            "a family holds images of several letters: families must come from near_duplicate_families of these images"
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
