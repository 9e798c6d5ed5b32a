"""The report's notebooks in one place: their names, tasks, published figures and how later ones find them.

A notebook's name is its source's stem (``notebooks/02_cnn.py``) and its folder under the report
(``reports/02_cnn/``). The runner passes a notebook's folder to the later notebooks that declare its
``folder_parameter`` (``TASK2_DIR``: notebook 03 trains Task 2's networks further); the index
answers each task from its notebook's ``metrics.json`` and captions the figures it publishes (its
cells tagged ``thumbnail``) in order.
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
    folder_parameter: str | None = None  # the parameter through which later notebooks read its folder


#: The notebooks, in the order they run, by name.
NOTEBOOKS: dict[str, NotebookEntry] = {
    entry.name: entry
    for entry in (
        NotebookEntry("01_data", "Task 1", ("class balance of the training and test files",)),
        NotebookEntry(
            "02_cnn",
            "Task 2",
            ("training curves of our CNN", "confusion matrix of our CNN"),
            folder_parameter="TASK2_DIR",
        ),
        NotebookEntry(
            "03_augmentation",
            "Task 3",
            ("robustness under perturbations, with and without augmentation",),
            folder_parameter="TASK3_DIR",
        ),
        NotebookEntry(
            "04_transfer", "Task 4", ("test accuracy against training seconds, every model of the lab",)
        ),
    )
}


def folder_parameters() -> dict[str, str]:
    """{``TASK2_DIR``: ``02_cnn``, ...}: the parameters that name a notebook's folder, and that notebook."""
    return {entry.folder_parameter: entry.name for entry in NOTEBOOKS.values() if entry.folder_parameter}
