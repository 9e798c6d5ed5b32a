"""Splits: the seed's random split, near-duplicate families, the grouped split, NN similarity."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from labutils.report import discover_notebooks
from labutils.report.parameters import parameter_specs
from labutils.sources import load_dataset
from labutils.split import (
    FAMILY_THRESHOLD,
    SPLIT_KIND,
    SPLIT_SEED,
    VALIDATION_FRACTION,
    grouped_split,
    make_split,
    near_duplicate_families,
    nearest_neighbour_similarity,
    random_split,
    standardize_images,
)

PACKAGE_SPLIT = {
    "SPLIT_KIND": SPLIT_KIND,
    "VALIDATION_FRACTION": VALIDATION_FRACTION,
    "SPLIT_SEED": SPLIT_SEED,
    "FAMILY_THRESHOLD": FAMILY_THRESHOLD,
}


@pytest.fixture(scope="module")
def small(standin_dir):
    return load_dataset(standin_dir)


@pytest.mark.parametrize("source", discover_notebooks(), ids=lambda source: source.stem)
def test_every_notebook_declares_the_packages_split(source):
    # one split for the whole report: `report -p SPLIT_SEED=7` must reach every notebook, and the
    # benchmark (which splits with the package's defaults) must validate on the notebooks' rows
    specs = parameter_specs(source)
    declared = {name: specs[name].default if name in specs else "(not declared)" for name in PACKAGE_SPLIT}
    assert declared == PACKAGE_SPLIT


def test_random_split_is_the_seeds_split(small):
    split = random_split(small.y_train, 0.3, seed=43)
    train, validation = train_test_split(
        np.arange(len(small.y_train)), test_size=0.3, random_state=43, stratify=small.y_train
    )
    np.testing.assert_array_equal(split.train_index, np.sort(train))
    np.testing.assert_array_equal(split.validation_index, np.sort(validation))
    assert split.summary()["validation_rows"] == 360
    assert split.validation_families == 360  # no families: every row counts


def test_random_split_partitions_and_is_deterministic(small):
    first, again = random_split(small.y_train, 0.3, seed=5), random_split(small.y_train, 0.3, seed=5)
    np.testing.assert_array_equal(first.validation_index, again.validation_index)
    assert not np.array_equal(
        first.validation_index, random_split(small.y_train, 0.3, seed=6).validation_index
    )
    union = np.concatenate([first.train_index, first.validation_index])
    assert np.array_equal(np.sort(union), np.arange(len(small.y_train)))


def test_families_are_same_class_and_link_near_copies():
    base = np.random.default_rng(0).integers(0, 256, (3, 28, 28)).astype(np.float32)
    images = np.stack([base[0], base[0] * 0.9 + 5, base[1], base[1] + 1, base[2]]).clip(0, 255)
    labels = np.array([0, 0, 0, 0, 1])
    families = near_duplicate_families(images, labels, threshold=0.97)
    assert families[0] == families[1] and families[2] == families[3]
    assert len({families[0], families[2], families[4]}) == 3
    # the same picture under another label is another family
    families = near_duplicate_families(np.stack([base[0], base[0]]), np.array([0, 1]))
    assert families[0] != families[1]


def test_grouped_split_keeps_every_family_on_one_side(small):
    families = near_duplicate_families(small.x_train, small.y_train, threshold=0.97)
    split = grouped_split(small.y_train, families, 0.3, seed=43)
    assert not set(families[split.train_index]) & set(families[split.validation_index])
    union = np.concatenate([split.train_index, split.validation_index])
    assert np.array_equal(np.sort(union), np.arange(len(small.y_train)))
    assert 0.2 < split.validation_fraction < 0.4
    summary = split.summary()
    assert summary["families"] == np.unique(families).size and summary["validation_families"] > 0
    # its independent validation units are its families, fewer than its rows
    assert split.validation_families == summary["validation_families"] < summary["validation_rows"]


def test_grouped_split_is_stratified_and_deterministic():
    labels = np.repeat(np.arange(4), 100)
    families = np.arange(400) // 10  # 40 families of 10, each of one class
    first = grouped_split(labels, families, 0.3, seed=1)
    again = grouped_split(labels, families, 0.3, seed=1)
    np.testing.assert_array_equal(first.validation_index, again.validation_index)
    assert np.bincount(labels[first.validation_index]).tolist() == [30, 30, 30, 30]
    other = grouped_split(labels, families, 0.3, seed=2)
    assert not np.array_equal(first.validation_index, other.validation_index)


def test_make_split_dispatches_and_validates(small):
    assert make_split(small.x_train, small.y_train, "random").kind == "random"
    assert make_split(small.x_train, small.y_train, "grouped").families is not None
    with pytest.raises(ValueError, match="split kind"):
        make_split(small.x_train, small.y_train, "shuffled")
    for fraction in (0, 1, 1.5, -0.1):
        with pytest.raises(ValueError, match="validation_fraction"):
            make_split(small.x_train, small.y_train, "random", validation_fraction=fraction)
    with pytest.raises(ValueError, match="threshold"):
        near_duplicate_families(small.x_train, small.y_train, threshold=0)
    with pytest.raises(ValueError, match="differ in length"):
        grouped_split(small.y_train, np.zeros(3), 0.3)


def test_standardized_dot_product_is_pearson_correlation(rng):
    images = rng.integers(0, 256, (5, 28, 28))
    vectors = standardize_images(images)
    expected = np.corrcoef(images.reshape(5, -1))
    np.testing.assert_allclose(vectors @ vectors.T, expected, atol=1e-5)


def test_nearest_neighbour_similarity_matches_brute_force(rng):
    queries, references = rng.integers(0, 256, (7, 28, 28)), rng.integers(0, 256, (11, 28, 28))
    full = np.corrcoef(np.concatenate([queries, references]).reshape(18, -1))[:7, 7:]
    np.testing.assert_allclose(
        nearest_neighbour_similarity(queries, references, batch_size=3), full.max(axis=1), atol=1e-5
    )


def test_nearest_neighbour_similarity_can_exclude_the_query_itself(rng):
    images = rng.integers(0, 256, (6, 28, 28))
    with_self = nearest_neighbour_similarity(images[:3], images)
    np.testing.assert_allclose(with_self, 1.0, atol=1e-5)
    without_self = nearest_neighbour_similarity(images[:3], images, exclude_index=np.arange(3))
    assert np.all(without_self < 0.5)
    with pytest.raises(ValueError, match="exclude_index"):
        nearest_neighbour_similarity(images[:3], images, exclude_index=np.arange(2))
