"""The notebook registry matches the notebooks: names, published figures, and the folders later ones read."""

from __future__ import annotations

from labutils.report import declared_parameters, discover_notebooks
from labutils.results.registry import NOTEBOOKS, folder_parameters
from labutils.sources import repository_root

NOTEBOOKS_DIR = repository_root() / "notebooks"


def test_every_notebook_is_registered_in_the_order_it_runs():
    assert [source.stem for source in discover_notebooks(NOTEBOOKS_DIR)] == list(NOTEBOOKS)


def test_each_published_figure_has_its_caption():
    for name, entry in NOTEBOOKS.items():
        source = (NOTEBOOKS_DIR / f"{name}.py").read_text()
        assert source.count('tags=["thumbnail"]') == len(entry.captions), name


def test_a_folder_parameter_is_declared_only_by_notebooks_that_run_later():
    order = list(NOTEBOOKS)
    assert folder_parameters() == {"TASK2_DIR": "02_cnn", "TASK3_DIR": "03_augmentation"}
    readers = {parameter: [] for parameter in folder_parameters()}
    for name in order:
        for parameter in declared_parameters(NOTEBOOKS_DIR / f"{name}.py"):
            if parameter in readers:
                readers[parameter].append(name)
    for parameter, notebook in folder_parameters().items():
        assert readers[parameter], parameter
        assert all(order.index(reader) > order.index(notebook) for reader in readers[parameter]), parameter
