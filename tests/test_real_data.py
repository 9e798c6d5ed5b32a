"""Checks on the real Kaggle files in ../shared/data/sign-language-mnist (skipped where absent)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from labutils.sources import load_dataset
from labutils.split import grouped_split, near_duplicate_families, nearest_neighbour_similarity, random_split

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def real(real_data_dir):
    return load_dataset(real_data_dir)


def test_real_files_are_verified_and_complete(real):
    assert real.source == "real" and real.files.checksums_verified
    assert real.x_train.shape == (27455, 28, 28) and real.x_test.shape == (7172, 28, 28)
    assert np.unique(real.y_train).size == np.unique(real.y_test).size == 24
    assert 9 not in real.y_train and real.y_train.max() == 24


def test_data_command_on_the_real_files(real_data_dir):
    result = subprocess.run(
        [sys.executable, "-m", "labutils", "data", "--data-dir", str(real_data_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("[verified]") == 2 and "27455 rows, 24 classes" in result.stdout


def test_grouped_split_on_the_real_data_keeps_families_apart(real):
    families = near_duplicate_families(real.x_train, real.y_train, threshold=0.97)
    count = np.unique(families).size
    assert 1000 <= count <= 1500, f"{count} families; the data hold ~1,200 source photos"
    grouped = grouped_split(real.y_train, families, 0.3, seed=43)
    assert not set(families[grouped.train_index]) & set(families[grouped.validation_index])
    assert abs(grouped.validation_fraction - 0.3) < 0.02
    random_ = random_split(real.y_train, 0.3, seed=43)
    rng = np.random.default_rng(0)
    medians = {}
    for name, split in {"grouped": grouped, "random": random_}.items():
        sample = rng.choice(split.validation_index, 1000, replace=False)
        medians[name] = np.median(
            nearest_neighbour_similarity(real.x_train[sample], real.x_train[split.train_index])
        )
    test_median = np.median(nearest_neighbour_similarity(real.x_test[:1000], real.x_train))
    assert medians["random"] > 0.99, "random validation images have near-copies in training"
    assert medians["grouped"] < 0.9 and abs(medians["grouped"] - test_median) < 0.1
