"""Where the data come from: an explicit folder, ``data/``, a kagglehub download, or the stand-in.

:func:`find_data_files` resolves the two CSV files in that order and verifies their SHA-256
against the Kaggle originals (:data:`labutils.data.KNOWN_SHA256`); :func:`load_dataset` also
parses them (:func:`labutils.data.read_sign_mnist_csv`). An explicit folder that lacks the files
is an error, never silently replaced; the generated stand-in is always labelled as such.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from .data import (
    KAGGLE_DATASET,
    KNOWN_SHA256,
    STANDIN_MARKER,
    TEST_FILE,
    TRAIN_FILE,
    DataNotFoundError,
    file_sha256,
    read_sign_mnist_csv,
    read_standin_marker,
)
from .datasets.kaggle import download as kaggle_download
from .datasets.standin import GENERATOR_VERSION, write_standin

__all__ = [
    "DataFiles",
    "FALLBACK_STANDIN_ROWS",
    "SignMNIST",
    "find_data_files",
    "load_dataset",
    "repository_root",
]

#: Rows (train, test) of the stand-in generated when no real data can be had.
FALLBACK_STANDIN_ROWS = (27455, 7172)

DataSourceKind = Literal["real", "synthetic"]


def repository_root() -> Path:
    """The project's root folder (where ``pyproject.toml`` lives), else the working directory."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() else Path.cwd()


@dataclass(frozen=True)
class DataFiles:
    """Where the two CSV files were found and what their checksums say."""

    train: Path
    test: Path
    source: DataSourceKind
    origin: str
    sha256: dict[str, str] = field(default_factory=dict)

    @property
    def checksums_verified(self) -> bool:
        """True when both files are byte-identical to the Kaggle originals."""
        return all(self.sha256.get(name) == KNOWN_SHA256[name] for name in KNOWN_SHA256)

    def checksum_status(self) -> dict[str, str]:
        """Per file: ``"verified"``, ``"MISMATCH"`` or ``"stand-in"``."""
        status = {}
        for name, expected in KNOWN_SHA256.items():
            if self.source == "synthetic":
                status[name] = "stand-in"
            else:
                status[name] = "verified" if self.sha256.get(name) == expected else "MISMATCH"
        return status


def _find_pair(folder: Path) -> tuple[Path, Path] | None:
    """The train and test CSV (plain or .gz) directly in ``folder``, or None."""
    found = []
    for name in (TRAIN_FILE, TEST_FILE):
        candidates = [folder / name, folder / f"{name}.gz"]
        existing = [path for path in candidates if path.is_file()]
        if not existing:
            return None
        found.append(existing[0])
    return found[0], found[1]


#: The names a data folder's two files may have.
_CANDIDATES = (TRAIN_FILE, f"{TRAIN_FILE}.gz", TEST_FILE, f"{TEST_FILE}.gz")


def _not_a_regular_file(path: Path) -> str | None:
    """'NAME is a folder' (or a broken symbolic link, ...) for a data file that is none; None for a file
    or for nothing there."""
    if path.is_file() or not (path.exists() or path.is_symlink()):
        return None
    if path.is_symlink() and not path.exists():
        return f"{path.name} is a broken symbolic link (its target does not exist)"
    return f"{path.name} is a folder" if path.is_dir() else f"{path.name} is not a regular file"


def _search_tree(folder: Path) -> tuple[Path, Path] | None:
    """The first folder under ``folder`` (itself included) that holds both files."""
    pair = _find_pair(folder)
    if pair:
        return pair
    for train in sorted(folder.rglob(f"{TRAIN_FILE}*")):
        if train.name in (TRAIN_FILE, f"{TRAIN_FILE}.gz"):
            pair = _find_pair(train.parent)
            if pair:
                return pair
    return None


def _download_with_kagglehub(timeout: float) -> Path:
    """The folder of the kagglehub download that holds both files."""
    folder = kaggle_download(timeout)
    pair = _search_tree(folder)
    if pair is None:
        raise DataNotFoundError(
            f"kagglehub downloaded {KAGGLE_DATASET} to {folder}, but it holds no {TRAIN_FILE} and {TEST_FILE}"
        )
    return pair[0].parent


def _files_in(folder: Path, origin: str) -> DataFiles:
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "no such folder"
        raise DataNotFoundError(f"{folder}: {what} (it should hold {TRAIN_FILE} and {TEST_FILE})")
    try:
        listing = sorted(path.name for path in folder.iterdir())
    except PermissionError as error:
        raise DataNotFoundError(
            f"{folder}: the folder cannot be read ({error.strerror}); check its permissions"
        ) from error
    pair = _find_pair(folder)
    if pair is None:
        odd = [words for words in (_not_a_regular_file(folder / name) for name in _CANDIDATES) if words]
        if odd:
            raise DataNotFoundError(
                f"{folder}: " + "; ".join(odd) + " (each data file must be a regular file)"
            )
        raise DataNotFoundError(
            f"{folder} does not hold {TRAIN_FILE} and {TEST_FILE} (plain or .gz); found: {listing[:10]}"
        )
    train, test = pair
    source: DataSourceKind = "synthetic" if (folder / STANDIN_MARKER).exists() else "real"
    sha = {TRAIN_FILE: file_sha256(train), TEST_FILE: file_sha256(test)}
    return DataFiles(train=train, test=test, source=source, origin=origin, sha256=sha)


def find_data_files(
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    synthetic_fallback: bool = True,
    download_timeout: float = 10.0,
) -> DataFiles:
    """Resolve the two CSV files and verify their checksums.

    Order: ``data_dir`` (else the ``SIGN_MNIST_DIR`` environment variable), then ``data/`` in
    the repository, then a kagglehub download, then (if ``synthetic_fallback``) a generated
    stand-in in ``data/synthetic``. An explicit folder that lacks the files is an error: it is
    never silently replaced by another source.
    """
    explicit = data_dir if data_dir not in (None, "") else os.environ.get("SIGN_MNIST_DIR") or None
    if explicit is not None:
        origin = "explicit folder" if data_dir not in (None, "") else "SIGN_MNIST_DIR"
        try:
            folder = Path(explicit).expanduser().resolve()
        except (RuntimeError, OSError) as error:  # Python reports a symbolic-link loop as RuntimeError
            raise DataNotFoundError(f"{explicit}: the path cannot be followed ({error})") from error
        return _files_in(folder, origin)

    reasons = []
    repo_data = repository_root() / "data"
    if _find_pair(repo_data):
        return _files_in(repo_data, "repository data/ folder")
    reasons.append(f"{repo_data} does not hold the CSV files")

    if download:
        try:
            return _files_in(_download_with_kagglehub(download_timeout), "kagglehub download")
        except DataNotFoundError as error:
            reasons.append(str(error))
    else:
        reasons.append("download disabled")

    if synthetic_fallback:
        folder = repo_data / "synthetic"
        marker = read_standin_marker(folder)
        wanted = {
            "generator_version": GENERATOR_VERSION,
            "n_train": FALLBACK_STANDIN_ROWS[0],
            "n_test": FALLBACK_STANDIN_ROWS[1],
        }
        if _find_pair(folder) is None or any(marker.get(key) != value for key, value in wanted.items()):
            write_standin(folder, *FALLBACK_STANDIN_ROWS)
        files = _files_in(folder, "generated stand-in (" + "; ".join(reasons) + ")")
        return files
    raise DataNotFoundError("Sign Language MNIST not found: " + "; ".join(reasons))


@dataclass(frozen=True)
class SignMNIST:
    """The loaded dataset: uint8 images (N, 28, 28), int64 dataset labels (0-24 without 9)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    files: DataFiles

    @property
    def source(self) -> DataSourceKind:
        return self.files.source

    @property
    def is_real(self) -> bool:
        return self.files.source == "real"

    def summary(self) -> dict:
        """A JSON-ready description: source, files, checksums, rows and classes per split."""
        return {
            "data_source": self.files.source,
            "origin": self.files.origin,
            "files": {"train": str(self.files.train), "test": str(self.files.test)},
            "checksums": self.files.checksum_status(),
            "checksums_verified": self.files.checksums_verified,
            "train": {"rows": int(len(self.y_train)), "classes": int(np.unique(self.y_train).size)},
            "test": {"rows": int(len(self.y_test)), "classes": int(np.unique(self.y_test).size)},
        }


def load_dataset(
    data_dir: str | os.PathLike | None = None, *, download: bool = True, synthetic_fallback: bool = True
) -> SignMNIST:
    """Find, verify and strictly parse both CSV files (see :func:`find_data_files`)."""
    files = find_data_files(data_dir, download=download, synthetic_fallback=synthetic_fallback)
    x_train, y_train = read_sign_mnist_csv(files.train)
    x_test, y_test = read_sign_mnist_csv(files.test)
    return SignMNIST(x_train, y_train, x_test, y_test, files)
