"""Shared fixtures: a small stand-in data folder, the real data (skipped where absent), CSV writers."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from labutils.data import CSV_HEADER
from labutils.datasets.standin import write_standin
from labutils.sources import repository_root

REAL_DATA_DIR = repository_root().parent / "shared" / "data" / "sign-language-mnist"
SMALL_TRAIN_ROWS, SMALL_TEST_ROWS = 1200, 480
#: Fixtures that run all four notebooks or the benchmark (minutes): a test that uses one is ``slow``.
SLOW_FIXTURES = {"model_notebooks", "quick_bench"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``slow`` every test that needs a slow fixture, directly or through another fixture."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def standin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small stand-in (1,200 train / 480 test rows) in the Kaggle CSV format."""
    return write_standin(tmp_path_factory.mktemp("standin"), SMALL_TRAIN_ROWS, SMALL_TEST_ROWS, seed=0)


@pytest.fixture(scope="session")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small untrained network (``compact_cnn(width=4)``, seed 0) saved as a ``.keras`` file."""
    import keras

    from labutils.models import compact_cnn

    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("model") / "model.keras"
    compact_cnn(width=4).save(path)
    return path


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The real Kaggle CSVs in ../shared; tests that use it skip where it is absent."""
    if not (REAL_DATA_DIR / "sign_mnist_train.csv.gz").exists():
        pytest.skip(f"real data not found at {REAL_DATA_DIR}")
    return REAL_DATA_DIR


def csv_text(rows: list[list[object]], header: list[str] | None = None) -> str:
    """A CSV document with the Kaggle header (or ``header``) and the given rows."""
    lines = [",".join(header if header is not None else CSV_HEADER)]
    lines += [",".join(str(cell) for cell in row) for row in rows]
    return "\n".join(lines) + "\n"


def valid_row(label: int = 0, value: int = 128) -> list[object]:
    return [label] + [value] * 784


@pytest.fixture
def write_csv(tmp_path: Path):
    """Write a CSV (optionally gzipped) into a temporary folder and return its path."""

    def write(text: str, name: str = "sign_mnist_train.csv", *, gz: bool = False) -> Path:
        path = tmp_path / (name + (".gz" if gz else ""))
        if gz:
            with gzip.open(path, "wt") as handle:
                handle.write(text)
        else:
            path.write_text(text)
        return path

    return write


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
