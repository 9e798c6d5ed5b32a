"""Training/validation splits: the seed's stratified random split and a leak-free grouped split.

The training CSV of Sign Language MNIST holds ~1,200 source photos, each expanded into ~20
near-identical variants. A random split puts variants of the same photo on both sides, so the
validation score measures memory, not generalisation. :func:`near_duplicate_families` links every
pair of same-class images whose Pearson correlation exceeds a threshold and takes the connected
components as families; :func:`grouped_split` then assigns whole families to one side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from .data import label_to_index

__all__ = [
    "ModelInputs",
    "Split",
    "grouped_split",
    "make_split",
    "model_inputs",
    "near_duplicate_families",
    "nearest_neighbour_similarity",
    "random_split",
    "standardize_images",
    "to_model_input",
    "FAMILY_THRESHOLD",
    "SPLIT_KIND",
    "SPLIT_SEED",
    "VALIDATION_FRACTION",
]

SplitKind = Literal["grouped", "random"]

#: The project's split, one definition: the notebooks' parameters cells declare these values (a test
#: checks them) and the benchmark and every helper that splits take them as defaults, so all of them
#: train and validate on the same rows.
SPLIT_KIND: SplitKind = "grouped"
VALIDATION_FRACTION = 0.3
SPLIT_SEED = 43
FAMILY_THRESHOLD = 0.97


@dataclass(frozen=True)
class Split:
    """Row indices into the training CSV for each side of a split."""

    kind: SplitKind
    train_index: np.ndarray
    validation_index: np.ndarray
    seed: int
    families: np.ndarray | None = None  # family id per training row (grouped split only)

    @property
    def validation_fraction(self) -> float:
        return len(self.validation_index) / (len(self.train_index) + len(self.validation_index))

    @property
    def validation_families(self) -> int:
        """Independent units in the validation set: its families of near-duplicates (grouped
        split), else its rows."""
        if self.families is None:
            return int(len(self.validation_index))
        return int(np.unique(self.families[self.validation_index]).size)

    def summary(self) -> dict:
        """Sizes and settings, JSON-ready."""
        result = {
            "kind": self.kind,
            "seed": self.seed,
            "train_rows": int(len(self.train_index)),
            "validation_rows": int(len(self.validation_index)),
            "validation_fraction": round(self.validation_fraction, 4),
        }
        if self.families is not None:
            result["families"] = int(np.unique(self.families).size)
            result["validation_families"] = self.validation_families
        return result


def _check_fraction(validation_fraction: float) -> None:
    if not 0.0 < float(validation_fraction) < 1.0:
        raise ValueError(f"validation_fraction must lie strictly between 0 and 1, got {validation_fraction}")


def random_split(
    labels: np.ndarray, validation_fraction: float = VALIDATION_FRACTION, seed: int = SPLIT_SEED
) -> Split:
    """The seed lab report's split: stratified by class, shuffled with ``random_state=seed``."""
    from sklearn.model_selection import train_test_split

    _check_fraction(validation_fraction)
    labels = np.asarray(labels)
    train_index, validation_index = train_test_split(
        np.arange(len(labels)), test_size=validation_fraction, random_state=seed, stratify=labels
    )
    return Split("random", np.sort(train_index), np.sort(validation_index), seed)


def standardize_images(images: np.ndarray) -> np.ndarray:
    """Flatten and scale each image to zero mean and unit norm (dot product = Pearson correlation)."""
    flat = np.asarray(images, dtype=np.float32).reshape(len(images), -1)
    flat = flat - flat.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(flat, axis=1, keepdims=True)
    return flat / np.maximum(norms, 1e-6)


def nearest_neighbour_similarity(
    queries: np.ndarray,
    references: np.ndarray,
    *,
    exclude_index: np.ndarray | None = None,
    batch_size: int = 1024,
) -> np.ndarray:
    """For each query image, the highest Pearson correlation with any reference image.

    ``exclude_index`` gives, per query, the row of ``references`` that is the query itself, to
    be ignored (train-to-train similarity of a sample of the training set).
    """
    query_vectors = standardize_images(queries)
    reference_vectors = standardize_images(references)
    if exclude_index is not None:
        exclude_index = np.asarray(exclude_index)
        if exclude_index.shape != (len(query_vectors),):
            raise ValueError(
                f"exclude_index needs one row per query ({len(query_vectors)}), got {exclude_index.shape}"
            )
    best = np.empty(len(query_vectors), dtype=np.float32)
    for start in range(0, len(query_vectors), batch_size):
        scores = query_vectors[start : start + batch_size] @ reference_vectors.T
        if exclude_index is not None:
            scores[np.arange(len(scores)), exclude_index[start : start + batch_size]] = -np.inf
        best[start : start + batch_size] = scores.max(axis=1)
    return best


def near_duplicate_families(
    images: np.ndarray, labels: np.ndarray, threshold: float = FAMILY_THRESHOLD
) -> np.ndarray:
    """Family id per image: connected components of same-class pairs with correlation > ``threshold``.

    Ids are consecutive integers, assigned class by class in label order, so the result is
    deterministic for given data.
    """
    if not 0.0 < float(threshold) <= 1.0:
        raise ValueError(f"threshold must lie in (0, 1], got {threshold}")
    labels = np.asarray(labels)
    if len(images) != len(labels):
        raise ValueError(f"images ({len(images)}) and labels ({len(labels)}) differ in length")
    vectors = standardize_images(images)
    families = np.empty(len(labels), dtype=np.int64)
    next_id = 0
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        similar = vectors[members] @ vectors[members].T > threshold
        count, component = connected_components(csr_matrix(similar), directed=False)
        families[members] = component + next_id
        next_id += count
    return families


def grouped_split(
    labels: np.ndarray,
    families: np.ndarray,
    validation_fraction: float = VALIDATION_FRACTION,
    seed: int = SPLIT_SEED,
) -> Split:
    """Assign whole families to one side, class by class, as close to the fraction as families allow."""
    _check_fraction(validation_fraction)
    labels, families = np.asarray(labels), np.asarray(families)
    if len(labels) != len(families):
        raise ValueError(f"labels ({len(labels)}) and families ({len(families)}) differ in length")
    rng = np.random.default_rng(seed)
    in_validation = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = labels == label
        family_ids, family_sizes = np.unique(families[members], return_counts=True)
        target = validation_fraction * members.sum()
        taken = 0
        for position in rng.permutation(len(family_ids)):
            if abs(taken + family_sizes[position] - target) < abs(taken - target):
                in_validation |= members & (families == family_ids[position])
                taken += family_sizes[position]
    return Split("grouped", np.flatnonzero(~in_validation), np.flatnonzero(in_validation), seed, families)


def make_split(
    images: np.ndarray,
    labels: np.ndarray,
    kind: SplitKind = SPLIT_KIND,
    validation_fraction: float = VALIDATION_FRACTION,
    seed: int = SPLIT_SEED,
    threshold: float = FAMILY_THRESHOLD,
) -> Split:
    """One entry point for both kinds of split (``"grouped"`` or ``"random"``)."""
    if kind == "random":
        return random_split(labels, validation_fraction, seed)
    if kind == "grouped":
        return grouped_split(
            labels, near_duplicate_families(images, labels, threshold), validation_fraction, seed
        )
    raise ValueError(f"split kind must be 'grouped' or 'random', got {kind!r}")


def to_model_input(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, 28, 28) -> float32 (N, 28, 28, 1) scaled to 0-1."""
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"images must have shape (N, 28, 28), got {images.shape}")
    return (images.astype("float32") / 255.0)[..., None]


@dataclass(frozen=True)
class ModelInputs:
    """Network-ready arrays: images float32 (N, 28, 28, 1) in 0-1, class indices 0-23.

    ``x_all``/``y_all`` hold every labelled training row, the split's two sides together: the
    data of the final fit, once the settings have been chosen on the validation side.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_all: np.ndarray
    y_all: np.ndarray

    def shapes(self) -> pd.DataFrame:
        """Images and letters per set, as a small table."""
        sets = {
            "train": (self.x_train, self.y_train),
            "validation": (self.x_val, self.y_val),
            "train + validation (final fit)": (self.x_all, self.y_all),
            "test": (self.x_test, self.y_test),
        }
        return pd.DataFrame(
            {
                "images": [x.shape for x, _ in sets.values()],
                "letters": [np.unique(y).size for _, y in sets.values()],
            },
            index=list(sets),
        )


def model_inputs(dataset, split, *, train_limit: int | None = None, seed: int = 0) -> ModelInputs:
    """Arrays for training (``split.train_index``, optionally a seeded random subset), validation, test
    and the final fit (training and validation rows together).

    With ``train_limit``, the final fit takes the limited training rows plus the same share of
    the validation rows (a seeded subset), so that quick runs stay quick.
    """
    train_index, extra_index = split.train_index, split.validation_index
    if train_limit is not None:
        if train_limit < 1:
            raise ValueError(f"train_limit must be a positive number of images, got {train_limit}")
        rng = np.random.default_rng(seed)
        train_index = np.sort(rng.permutation(train_index)[:train_limit])
        share = len(train_index) / len(split.train_index)
        extra_index = np.sort(rng.permutation(extra_index)[: max(1, round(share * len(extra_index)))])
    x_rows, y_rows = to_model_input(dataset.x_train), label_to_index(dataset.y_train)
    all_index = np.sort(np.concatenate([train_index, extra_index]))
    return ModelInputs(
        x_rows[train_index],
        y_rows[train_index],
        x_rows[split.validation_index],
        y_rows[split.validation_index],
        to_model_input(dataset.x_test),
        label_to_index(dataset.y_test),
        x_rows[all_index],
        y_rows[all_index],
    )
