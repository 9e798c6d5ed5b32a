"""Plots draw on the axes they are given and return them; banners say where the data came from."""

from __future__ import annotations

import dataclasses

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

from labutils.data import KNOWN_SHA256
from labutils.plot import (
    plot_class_balance,
    plot_family_sizes,
    plot_image_grid,
    plot_similarity_distributions,
)
from labutils.results.banners import source_banner_html
from labutils.sources import find_data_files


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_class_balance_uses_letters(rng):
    _, ax = plt.subplots()
    labels = rng.choice([0, 1, 2, 24], 100)
    assert plot_class_balance({"train": labels, "test": labels[:40]}, ax=ax) is ax
    assert [tick.get_text() for tick in ax.get_xticklabels()][:3] == ["A", "B", "C"]
    assert len(ax.get_xticklabels()) == 24


def test_image_grid_tiles_and_titles(rng):
    images = rng.integers(0, 256, (5, 28, 28))
    ax = plot_image_grid(images, list("ABCDE"), columns=3)
    assert [text.get_text() for text in ax.texts] == list("ABCDE")
    canvas = ax.images[0].get_array()
    assert canvas.shape[1] == 3 * (28 + 2)
    with pytest.raises(ValueError, match="5 images but 4 titles"):
        plot_image_grid(images, list("ABCD"))


def test_similarity_and_group_plots_return_their_axes(rng):
    _, (left, right) = plt.subplots(1, 2)
    assert plot_similarity_distributions({"a": rng.random(50), "b": rng.random(30)}, ax=left) is left
    assert len(left.get_lines()) == 2
    assert plot_family_sizes(np.repeat(np.arange(10), 20), ax=right) is right
    assert "10 near-duplicate families" in right.get_title()


def _banner(files) -> str:
    return source_banner_html(files.source, files.checksum_status(), files.origin)


def test_banners(standin_dir):
    files = find_data_files(standin_dir)
    assert "SYNTHETIC STAND-IN" in _banner(files)
    assert "CHECKSUM MISMATCH" in _banner(dataclasses.replace(files, source="real"))
    text = _banner(dataclasses.replace(files, source="real", sha256=dict(KNOWN_SHA256)))
    assert "verified" in text and "MISMATCH" not in text and "SYNTHETIC" not in text


def test_the_notebooks_and_the_index_show_the_same_data_banner(standin_dir):
    from labutils.report.index import _data_banner

    files = find_data_files(standin_dir)
    run_data = {"data_source": files.source, "origin": files.origin, "checksums": files.checksum_status()}
    assert _data_banner(run_data) == _banner(files)
    verified = {
        "data_source": "real",
        "checksums": {"sign_mnist_train.csv": "verified", "sign_mnist_test.csv": "verified"},
    }
    assert "Real Sign Language MNIST data, SHA-256 verified" in _data_banner(verified)
    assert "sign_mnist_test.csv ✓" in _data_banner(verified)
    unrecorded = {
        "data_source": "real",
        "checksums": {},
    }  # a run.json without checksums is not called verified
    assert "CHECKSUM MISMATCH" in _data_banner(unrecorded)


def test_the_narration_and_the_banners_display_by_themselves(standin_dir, monkeypatch):
    """Wherever they stand in a cell, they reach the notebook: each calls IPython's display() and returns None."""
    import labutils.display
    from labutils.display import data_banner, show_markdown, weights_banner
    from labutils.sources import load_dataset

    shown = []
    monkeypatch.setattr(labutils.display, "display", lambda *objects: shown.extend(objects))
    assert show_markdown("**0.9990** of the test images") is None
    assert data_banner(load_dataset(standin_dir)) is None
    assert weights_banner("vgg16", False, "random initialisation") is None
    kinds = [type(item).__name__ for item in shown]
    assert kinds == ["Markdown", "HTML", "HTML"]
    assert shown[0].data == "**0.9990** of the test images" and "SYNTHETIC STAND-IN" in shown[1].data
    assert "NO PRETRAINED WEIGHTS" in shown[2].data


def test_the_steps_table_lists_a_pipeline_in_order_with_its_settings():
    from labutils.display import steps_table
    from labutils.recipes import Augmentation
    from labutils.training import EpochClock, StepBudget

    layers = steps_table(Augmentation(blur=0.5, noise=0.05, brightness=0).pipeline(seed=0))
    assert list(layers["step"]) == [
        "RandomAffine",
        "RandomGaussianBlur",
        "RandomContrast",
        "RandomGaussianNoise",
    ]
    assert list(layers.index) == [1, 2, 3, 4]
    assert "max_sigma=0.5" in layers.loc[2, "settings"] and "name=" not in layers.loc[2, "settings"]
    assert layers.loc[1, "what it does"].startswith("Random rotation")  # the docstring's first line
    callbacks = steps_table([StepBudget(30), EpochClock()])
    assert list(callbacks["step"]) == ["StepBudget", "EpochClock"]
    assert callbacks.loc[1, "settings"] == "steps=30"


def test_the_wording_helpers():
    from labutils.display import describe_gap, plural

    assert (plural(1, "error"), plural(7172, "error"), plural(2, "family", "families")) == (
        "1 error",
        "7,172 errors",
        "2 families",
    )
    assert describe_gap(0.9712, 0.9866) == "1.54 points below the test accuracy"
    assert describe_gap(0.5, 0.5) == "equal to the test accuracy"
