"""A task notebook's first step: the seeds set, its output folder made, the data and split loaded, the banner shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

__all__ = ["TaskStart", "start_task"]


class TaskStart(NamedTuple):
    """What :func:`start_task` gives a notebook (unpack it: ``output_dir, dataset, split, data = ...``)."""

    output_dir: Path
    dataset: Any  # labutils.data.SignMNIST
    split: Any  # labutils.split.Split
    data: Any  # labutils.inputs.ModelInputs


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
    split (:func:`~labutils.inputs.prepare_task_data`) and display the banners that say which data these are
    and which device the notebook trains on."""
    import keras

    from .device import training_device
    from .display import data_banner, device_banner
    from .inputs import prepare_task_data

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
