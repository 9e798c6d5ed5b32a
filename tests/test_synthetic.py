"""The synthetic stand-in: Kaggle format, determinism, families of variants, learnability."""

from __future__ import annotations

import json

import numpy as np
import pytest

from labutils.data import CLASS_LABELS, CSV_HEADER, STANDIN_MARKER, read_sign_mnist_csv
from labutils.datasets.standin import GENERATOR_VERSION, make_standin, write_standin
from labutils.split import near_duplicate_families


def test_shapes_dtypes_and_labels():
    x_train, y_train, x_test, y_test = make_standin(480, 240, seed=1)
    assert x_train.shape == (480, 28, 28) and x_test.shape == (240, 28, 28)
    assert x_train.dtype == x_test.dtype == np.uint8
    assert set(y_train) == set(y_test) == set(CLASS_LABELS)
    assert 9 not in y_train


def test_same_seed_same_data_other_seed_other_data():
    first, again, other = (
        make_standin(96, 48, seed=3),
        make_standin(96, 48, seed=3),
        make_standin(96, 48, seed=4),
    )
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


def test_images_use_a_wide_intensity_range():
    x_train, *_ = make_standin(240, 24, seed=0)
    contrast = x_train.reshape(len(x_train), -1).std(axis=1)
    assert contrast.min() > 15, "every image should show a visible hand"


def test_written_files_have_the_kaggle_format(tmp_path):
    folder = write_standin(tmp_path, 120, 48, seed=2)
    header = (folder / "sign_mnist_train.csv").read_text().splitlines()[0]
    assert header.split(",") == list(CSV_HEADER)
    images, labels = read_sign_mnist_csv(folder / "sign_mnist_train.csv")
    expected = make_standin(120, 48, seed=2)
    np.testing.assert_array_equal(images, expected[0])
    np.testing.assert_array_equal(labels, expected[1])
    marker = json.loads((folder / STANDIN_MARKER).read_text())
    assert marker["generator_version"] == GENERATOR_VERSION and marker["n_train"] == 120


def test_training_images_come_in_families_of_variants():
    x_train, y_train, *_ = make_standin(1200, 24, seed=0, variants_per_source=20)
    families = near_duplicate_families(x_train, y_train, threshold=0.97)
    count = np.unique(families).size
    assert 40 <= count <= 90, f"expected about 60 families of 20 variants, got {count}"


def test_test_images_are_new_sources_not_variants_of_training_images():
    from labutils.split import nearest_neighbour_similarity

    x_train, _, x_test, _ = make_standin(1200, 480, seed=0)
    train_to_train = nearest_neighbour_similarity(x_train[:200], x_train, exclude_index=np.arange(200))
    test_to_train = nearest_neighbour_similarity(x_test[:200], x_train)
    assert np.median(train_to_train) > np.median(test_to_train) + 0.01


def test_a_simple_classifier_learns_it_well_above_chance():
    from sklearn.linear_model import RidgeClassifier

    x_train, y_train, x_test, y_test = make_standin(2400, 480, seed=0)
    model = RidgeClassifier(alpha=10.0).fit(x_train.reshape(len(x_train), -1) / 255.0, y_train)
    accuracy = model.score(x_test.reshape(len(x_test), -1) / 255.0, y_test)
    assert accuracy > 5 / 24, f"accuracy {accuracy:.3f} is too close to chance (1/24)"


@pytest.mark.parametrize("argument", ["n_train", "n_test", "variants_per_source"])
def test_rejects_non_positive_sizes(argument):
    with pytest.raises(ValueError, match=argument):
        make_standin(**{"n_train": 24, "n_test": 24, argument: 0})
