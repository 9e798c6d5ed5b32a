"""Scores of a classifier on labelled images: accuracy, log-loss, F1, errors, per-letter scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, log_loss, precision_recall_fscore_support

from .data import LETTERS, NUM_CLASSES

__all__ = [
    "classification_metrics",
    "describe_gap",
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
