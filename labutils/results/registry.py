"""The report's notebooks in one place: their names, tasks, what they write, their figures and how later ones find them.

A notebook's name is its source's stem (``notebooks/02_cnn.py``) and its folder under the report
(``reports/02_cnn/``). The runner passes a notebook's folder to the later notebooks that declare its
``folder_parameter`` (``TASK2_DIR``: notebook 03 trains Task 2's networks further); the index
answers each task from its notebook's ``metrics.json`` and captions the figures it publishes (its
cells tagged ``thumbnail``) in order. What each ``metrics.json`` must hold beyond the common fields
(``fields``, and the models it always records) is checked on writing and on reading by
:mod:`labutils.results.schema`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NOTEBOOKS", "NotebookEntry", "folder_parameters"]


@dataclass(frozen=True)
class NotebookEntry:
    """One notebook of the report."""

    name: str
    task: str
    captions: tuple[str, ...]  # of its published figures, in order
    fields: tuple[str, ...]  # the top-level fields of its metrics.json besides the common ones
    models: tuple[str, ...] = ()  # the models its metrics.json always records (more may follow)
    folder_parameter: str | None = None  # the parameter through which later notebooks read its folder
    headline: tuple[str, str] | None = (
        None  # (model, field) a sweep compares its points by: a validation figure
    )


#: The notebooks, in the order they run, by name.
NOTEBOOKS: dict[str, NotebookEntry] = {
    entry.name: entry
    for entry in (
        NotebookEntry(
            "01_data",
            "Task 1",
            ("class balance of the training and test files",),
            fields=(
                "data",
                "split_kind",
                "splits",
                "family_threshold",
                "families",
                "nearest_neighbour_median",
            ),
        ),
        NotebookEntry(
            "02_cnn",
            "Task 2",
            ("training curves of our CNN", "confusion matrix of our CNN"),
            fields=(
                "split",
                "recipe",
                "random_split_twin",
                "test_families",
                "explanation_by_model",
                "explanation_methods",
            ),
            models=("seed_cnn", "compact_cnn", "compact_cnn_final"),
            folder_parameter="TASK2_DIR",
            headline=("compact_cnn", "val_accuracy_grouped"),
        ),
        NotebookEntry(
            "03_augmentation",
            "Task 3",
            ("robustness under perturbations, with and without augmentation",),
            fields=(
                "split",
                "recipe",
                "robustness",
                "robustness_images",
                "robustness_by_model",
                "corruption_images",
                "corruption_by_model",
                "explanation_by_model",
                "test_families",
                "missed_families",
            ),
            models=("compact_cnn_augmented", "seed_cnn_augmented", "compact_cnn_augmented_final"),
            folder_parameter="TASK3_DIR",
            headline=("compact_cnn_augmented", "val_accuracy_grouped"),
        ),
        NotebookEntry(
            "04_transfer",
            "Task 4",
            ("test accuracy against training seconds, every model of the lab",),
            fields=(
                "split",
                "image_sizes",
                "weights_requested",
                "pretrained",
                "fine_tune_epoch_seconds",
                "comparison",
                "best_overall",
                "answers",
                "explanation_by_model",
                "corruption_images",
                "corruption_by_model",
            ),
            headline=("efficientnet_lite0_fine_tuned", "val_accuracy_grouped"),
        ),
    )
}


def folder_parameters() -> dict[str, str]:
    """{``TASK2_DIR``: ``02_cnn``, ...}: the parameters that name a notebook's folder, and that notebook."""
    return {entry.folder_parameter: entry.name for entry in NOTEBOOKS.values() if entry.folder_parameter}
