"""Plots for the report: the data, the split, the results. Each returns the axes or figure it drew on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from .data import LETTERS, NUM_CLASSES, label_to_letter

__all__ = [
    "plot_accuracy_vs_seconds",
    "plot_class_balance",
    "plot_confusion_matrix",
    "plot_family_neighbours",
    "plot_family_sizes",
    "plot_image_grid",
    "plot_misclassified",
    "plot_similarity_distributions",
]


def _axes(ax: plt.Axes | None, figsize: tuple[float, float]) -> plt.Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def plot_class_balance(labels_by_set: Mapping[str, np.ndarray], *, ax: plt.Axes | None = None) -> plt.Axes:
    """Share of each letter per set (e.g. train / validation / test), letters on the x axis."""
    rows = []
    for name, labels in labels_by_set.items():
        letters, counts = np.unique([label_to_letter(label) for label in labels], return_counts=True)
        rows += [
            {"set": name, "letter": letter, "share": count / len(labels)}
            for letter, count in zip(letters, counts)
        ]
    table = pd.DataFrame(rows)
    ax = _axes(ax, (11, 3.5))
    sns.barplot(data=table, x="letter", y="share", hue="set", order=list(LETTERS), ax=ax)
    ax.axhline(1 / len(LETTERS), color="black", linewidth=0.8, linestyle="--", label="uniform")
    ax.set(xlabel="letter", ylabel="share of the set's images", title="Class balance")
    ax.legend(ncols=len(labels_by_set) + 1, fontsize="small")
    return ax


def plot_image_grid(
    images: np.ndarray, titles: Sequence[str], *, columns: int = 12, ax: plt.Axes | None = None
) -> plt.Axes:
    """Tile 28x28 images into one mosaic with a title above each tile."""
    images = np.asarray(images)
    if len(images) != len(titles):
        raise ValueError(f"got {len(images)} images but {len(titles)} titles")
    if len(images) == 0:
        raise ValueError("no images to show")
    columns = min(columns, len(images))
    rows = -(-len(images) // columns)
    height, width = images.shape[1:3]
    gap_x, gap_y = 2, 9
    canvas = np.full((rows * (height + gap_y), columns * (width + gap_x)), np.nan)
    for position, image in enumerate(images):
        row, column = divmod(position, columns)
        top, left = row * (height + gap_y) + gap_y, column * (width + gap_x)
        canvas[top : top + height, left : left + width] = image
    ax = _axes(ax, (columns * 0.9, rows * 1.1))
    cmap = plt.get_cmap("gray").with_extremes(bad="white")
    ax.imshow(canvas, cmap=cmap, vmin=0, vmax=255 if np.nanmax(images) > 1 else 1, interpolation="nearest")
    for position, title in enumerate(titles):
        row, column = divmod(position, columns)
        x, y = column * (width + gap_x) + width / 2, row * (height + gap_y) + gap_y - 1.5
        ax.text(x, y, title, ha="center", va="bottom", fontsize=8)
    ax.set_axis_off()
    return ax


def plot_similarity_distributions(
    similarities: Mapping[str, np.ndarray], *, ax: plt.Axes | None = None
) -> plt.Axes:
    """Cumulative distributions of nearest-neighbour correlations, one curve per comparison.

    A curve that stays low until 1.0 means that almost every image has a near-copy.
    """
    ax = _axes(ax, (8, 3.5))
    table = pd.DataFrame(
        [
            {"comparison": name, "correlation": float(v)}
            for name, values in similarities.items()
            for v in values
        ]
    )
    sns.ecdfplot(data=table, x="correlation", hue="comparison", ax=ax)
    ax.set(
        xlabel="correlation with the nearest image on the other side",
        ylabel="share of images at or below",
        title="How close is each image to its nearest neighbour?",
        xlim=(max(0.0, table.correlation.min()), 1.001),
    )
    ax.grid(alpha=0.3)
    return ax


def plot_family_sizes(families: np.ndarray, *, ax: plt.Axes | None = None) -> plt.Axes:
    """Histogram of near-duplicate family sizes."""
    _, sizes = np.unique(families, return_counts=True)
    ax = _axes(ax, (6, 3))
    sns.histplot(sizes, bins=np.arange(0.5, sizes.max() + 1.5, max(1, sizes.max() // 40)), ax=ax)
    ax.set(xlabel="images in the family", ylabel="families", title=f"{len(sizes)} near-duplicate families")
    return ax


def plot_accuracy_vs_seconds(
    table: pd.DataFrame,
    *,
    accuracy: str = "test_accuracy",
    seconds: str = "train_seconds",
    group: str | None = None,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Test accuracy against training seconds, one labelled point per model (row of ``table``)."""
    for column in (accuracy, seconds) + ((group,) if group else ()):
        if column not in table.columns:
            raise ValueError(f"table has no column {column!r}; columns: {list(table.columns)}")
    ax = _axes(ax, (7.5, 4.5))
    frame = table.dropna(subset=[accuracy, seconds]).copy()
    frame["model"] = frame.index.astype(str)
    sns.scatterplot(data=frame, x=seconds, y=accuracy, hue=group, style=group, s=80, ax=ax)
    for name, row in frame.iterrows():
        ax.annotate(
            str(name), (row[seconds], row[accuracy]), textcoords="offset points", xytext=(5, 4), fontsize=8
        )
    ax.set_xscale("log")
    ax.set_xlabel("training seconds (log scale)")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    return ax


def plot_family_neighbours(
    x_test: np.ndarray, x_train: np.ndarray, neighbours: pd.DataFrame, *, ax: plt.Axes | None = None
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
