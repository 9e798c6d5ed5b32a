"""Network-ready arrays: the 0-1 (N, 28, 28, 1) images and class indices of a split, for every notebook."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .data import label_to_index
from .split import FAMILY_THRESHOLD, SPLIT_KIND, SPLIT_SEED, VALIDATION_FRACTION

__all__ = ["ModelInputs", "model_inputs", "prepare_task_data", "to_model_input"]


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


def prepare_task_data(
    data_dir=None,
    *,
    split_kind: str = SPLIT_KIND,
    validation_fraction: float = VALIDATION_FRACTION,
    split_seed: int = SPLIT_SEED,
    family_threshold: float = FAMILY_THRESHOLD,
    train_limit: int | None = None,
    seed: int = 0,
):
    """Load the data, make the split of notebook 01 and the network-ready arrays: ``(dataset, split, inputs)``."""
    from .sources import load_dataset
    from .split import make_split

    dataset = load_dataset(data_dir)
    split = make_split(
        dataset.x_train, dataset.y_train, split_kind, validation_fraction, split_seed, family_threshold
    )
    return dataset, split, model_inputs(dataset, split, train_limit=train_limit, seed=seed)
