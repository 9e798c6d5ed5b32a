"""A task notebook's first steps: the quick profile's settings, then the seeds set, its output folder made,
the data and split loaded, the banner shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import keras

from .display import data_banner, device_banner
from .runtime.device import training_device
from .sources import SignMNIST, load_dataset
from .split import (
    FAMILY_THRESHOLD,
    SPLIT_KIND,
    SPLIT_SEED,
    VALIDATION_FRACTION,
    ModelInputs,
    Split,
    make_split,
    model_inputs,
)

__all__ = ["QUICK_SETTINGS", "TaskStart", "prepare_task_data", "start_task"]

#: The quick profile, per notebook: the parameters it changes, for a run of minutes on a laptop's CPU.
#: A notebook run with ``PROFILE = "quick"`` takes them in the cell after its parameters, and the report
#: runner's quick profile (:mod:`labutils.report.profiles`) injects them. The full profile is each
#: notebook's own parameters.
QUICK_SETTINGS: dict[str, dict[str, Any]] = {
    "01_data": {"SAMPLE_SIZE": 500},
    "02_cnn": {
        "EPOCHS": 12,
        "WIDTH": 16,
        "RANDOM_SPLIT_EPOCHS": 1,
        "TRAIN_LIMIT": 3000,
        "EXPLAIN_IMAGES": 300,
        "INTEGRATED_GRADIENTS_IMAGES": 50,
    },
    "03_augmentation": {
        "EPOCHS": 2,
        "TRAIN_LIMIT": 3000,
        "ROBUSTNESS_IMAGES": 300,
        "CORRUPTION_IMAGES": 100,
        "EMA_MOMENTUM": 0.9,
        "STATISTICS_IMAGES": 512,
    },
    # the packaged backbone is pretrained here too; VGG16 asks for no download (a labelled random start)
    "04_transfer": {
        "BACKBONES": ["efficientnet_lite0", "vgg16"],
        "IMAGE_SIZES": {"efficientnet_lite0": 32, "vgg16": 32},
        "WEIGHTS": {"vgg16": None},
        "TRAIN_LIMIT": 1000,
        "HEAD_EPOCHS": 5,
        "FINE_TUNE_EPOCHS": 1,
        "FINE_TUNE_LEARNING_RATE": 1e-4,
        "FINE_TUNE_VALIDATION_IMAGES": 300,
        "STEP_PROBE_BATCHES": 1,
        "STATISTICS_IMAGES": 256,
        "EXPLAIN_IMAGES": 100,
        "CORRUPTION_IMAGES": 100,
    },
}


class TaskStart(NamedTuple):
    """What :func:`start_task` gives a notebook (unpack it: ``output_dir, dataset, split, data = ...``)."""

    output_dir: Path
    dataset: SignMNIST
    split: Split
    data: ModelInputs


def prepare_task_data(
    data_dir: str | Path | None = None,
    *,
    split_kind: str = SPLIT_KIND,
    validation_fraction: float = VALIDATION_FRACTION,
    split_seed: int = SPLIT_SEED,
    family_threshold: float = FAMILY_THRESHOLD,
    train_limit: int | None = None,
    seed: int = 0,
) -> tuple[SignMNIST, Split, ModelInputs]:
    """Load the data, make the split of notebook 01 and the network-ready arrays: ``(dataset, split, inputs)``."""
    dataset = load_dataset(data_dir)
    split = make_split(
        dataset.x_train, dataset.y_train, split_kind, validation_fraction, split_seed, family_threshold
    )
    return dataset, split, model_inputs(dataset, split, train_limit=train_limit, seed=seed)


def start_task(
    output_dir: str | Path,
    *,
    seed: int,
    data_dir: str | Path | None,
    split_kind: str,
    validation_fraction: float,
    split_seed: int,
    family_threshold: float,
    train_limit: int | None,
) -> TaskStart:
    """Seed Python, NumPy and TensorFlow with ``seed``, make ``output_dir``, load the data with notebook 01's
    split (:func:`prepare_task_data`) and display the banners that say which data these are and which
    device the notebook trains on."""
    keras.utils.set_random_seed(seed)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    dataset, split, data = prepare_task_data(
        data_dir,
        split_kind=split_kind,
        validation_fraction=validation_fraction,
        split_seed=split_seed,
        family_threshold=family_threshold,
        train_limit=train_limit,
        seed=seed,
    )
    data_banner(dataset)
    device_banner(training_device())
    return TaskStart(output_dir, dataset, split, data)
