"""Finding, verifying, validating and loading the Sign Language MNIST CSV files.

The Kaggle dataset ``datamunge/sign-language-mnist`` ships two CSV files,
``sign_mnist_train.csv`` and ``sign_mnist_test.csv``, each with a header
``label,pixel1,...,pixel784`` and one 28x28 grayscale image per row.
This module finds them (explicit folder, the repository's ``data/`` folder,
a kagglehub download, or a generated stand-in), checks their SHA-256 against
the published files and parses them strictly: any malformed cell raises a
:class:`DataValidationError` that names the file, the row and the column.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import socket
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

__all__ = [
    "CLASS_LABELS",
    "CSV_HEADER",
    "DataNotFoundError",
    "DataValidationError",
    "DataFiles",
    "IMAGE_SIZE",
    "KAGGLE_DATASET",
    "KNOWN_SHA256",
    "LETTERS",
    "NUM_CLASSES",
    "SignMNIST",
    "STANDIN_MARKER",
    "file_sha256",
    "find_data_files",
    "index_to_label",
    "label_to_index",
    "label_to_letter",
    "letter_to_label",
    "load_dataset",
    "read_sign_mnist_csv",
    "repository_root",
]

KAGGLE_DATASET = "datamunge/sign-language-mnist"
IMAGE_SIZE = 28
TRAIN_FILE = "sign_mnist_train.csv"
TEST_FILE = "sign_mnist_test.csv"
CSV_HEADER: tuple[str, ...] = ("label",) + tuple(f"pixel{i}" for i in range(1, IMAGE_SIZE * IMAGE_SIZE + 1))

#: SHA-256 of the uncompressed CSV files that Kaggle serves.
KNOWN_SHA256: dict[str, str] = {
    TRAIN_FILE: "b7ff39ad5f1210fa765ce11aa5f20c2e97fe467ffc22231aac923c863eef75c4",
    TEST_FILE: "178c0dd21c4b0e86d58df12f14ea1e9efa795ad19d146802b3b28094a16d56ae",
}

#: Labels used by the dataset: 0-24 without 9 (J needs motion; Z, 25, is absent too).
CLASS_LABELS: tuple[int, ...] = tuple(label for label in range(25) if label != 9)
NUM_CLASSES = len(CLASS_LABELS)
LETTERS: tuple[str, ...] = tuple(chr(ord("A") + label) for label in CLASS_LABELS)

#: Our network's pooling and head choices (see ``models.compact_cnn``), kept here, free of Keras, so
#: that the benchmark's settings and the command line can check them without importing TensorFlow.
POOLINGS: tuple[str, ...] = ("blur", "max")
HEADS: tuple[str, ...] = ("average", "flatten")
#: How deep fine-tuning reaches into a transfer backbone: its top block only, about its top half, or all of it.
FINE_TUNE_DEPTHS: tuple[str, ...] = ("top", "half", "all")

#: Rows (train, test) of the stand-in generated when no real data can be had.
FALLBACK_STANDIN_ROWS = (27455, 7172)

#: Name of the file that marks a folder as holding the generated stand-in.
STANDIN_MARKER = "STANDIN.json"

DataSourceKind = Literal["real", "synthetic"]


class DataNotFoundError(FileNotFoundError):
    """The two CSV files could not be found, downloaded or generated."""


class DataValidationError(ValueError):
    """A CSV file does not have the Kaggle format; the message names file, row and column."""


# --------------------------------------------------------------------------- labels


def label_to_letter(label: int) -> str:
    """Return the letter of a dataset label (0 -> 'A', 24 -> 'Y'); 9 (J) is not a class."""
    label = int(label)
    if label not in CLASS_LABELS:
        raise ValueError(f"label {label} is not a class of the dataset (valid: 0-24 except 9)")
    return chr(ord("A") + label)


def letter_to_label(letter: str) -> int:
    """Return the dataset label of a letter ('A' -> 0, 'Y' -> 24); J and Z are not classes."""
    if not isinstance(letter, str) or len(letter) != 1 or letter.upper() not in LETTERS:
        raise ValueError(f"letter {letter!r} is not a class of the dataset (valid: A-Y except J)")
    return ord(letter.upper()) - ord("A")


def label_to_index(labels: np.ndarray) -> np.ndarray:
    """Map dataset labels (0-24 without 9) to contiguous class indices 0-23."""
    labels = np.asarray(labels)
    bad = ~np.isin(labels, CLASS_LABELS)
    if bad.any():
        raise ValueError(f"label {labels[bad][0]} is not a class of the dataset (valid: 0-24 except 9)")
    return np.where(labels > 9, labels - 1, labels).astype(np.int64)


def index_to_label(indices: np.ndarray) -> np.ndarray:
    """Map contiguous class indices 0-23 back to dataset labels (0-24 without 9)."""
    indices = np.asarray(indices)
    if indices.size and (indices.min() < 0 or indices.max() >= NUM_CLASSES):
        raise ValueError(f"class indices must lie in 0-{NUM_CLASSES - 1}")
    return np.where(indices >= 9, indices + 1, indices).astype(np.int64)


# --------------------------------------------------------------------------- files


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


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8", newline="")


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's uncompressed content (``.gz`` files are decompressed on the fly)."""
    path = Path(path)
    digest = hashlib.sha256()
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as error:
        raise DataValidationError(
            f"{path}: cannot be read completely ({_describe_io_error(error)})"
        ) from error
    return digest.hexdigest()


def _describe_io_error(error: BaseException) -> str:
    if isinstance(error, EOFError):
        return "the gzip stream is truncated"
    if isinstance(error, gzip.BadGzipFile | zlib.error):
        return f"not a valid gzip file: {error}"
    return str(error) or type(error).__name__


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


def _network_reachable(host: str = "www.kaggle.com", port: int = 443, timeout: float = 5.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _download_with_kagglehub(timeout: float) -> Path:
    """Download the public dataset with kagglehub into its cache; fail fast when offline."""
    if not _network_reachable(timeout=timeout):
        raise DataNotFoundError(
            f"kagglehub download of {KAGGLE_DATASET} skipped: www.kaggle.com is not reachable "
            f"within {timeout:.0f} s (offline?)"
        )
    try:
        import kagglehub

        folder = Path(kagglehub.dataset_download(KAGGLE_DATASET))
    except Exception as error:  # kagglehub raises many kinds; all mean "not downloaded"
        raise DataNotFoundError(f"kagglehub download of {KAGGLE_DATASET} failed: {error}") from error
    pair = _search_tree(folder)
    if pair is None:
        raise DataNotFoundError(
            f"kagglehub downloaded {KAGGLE_DATASET} to {folder}, but it holds no {TRAIN_FILE} and {TEST_FILE}"
        )
    return pair[0].parent


def _files_in(folder: Path, origin: str) -> DataFiles:
    pair = _find_pair(folder)
    if pair is None:
        raise DataNotFoundError(
            f"{folder} does not hold {TRAIN_FILE} and {TEST_FILE} (plain or .gz); "
            f"found: {sorted(p.name for p in folder.iterdir())[:10] if folder.is_dir() else 'no such folder'}"
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
        return _files_in(Path(explicit).expanduser().resolve(), origin)

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
        from .synthetic import write_standin

        folder = repo_data / "synthetic"
        from .synthetic import GENERATOR_VERSION

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


# --------------------------------------------------------------------------- parsing


def _line(row: int) -> str:
    """Human row reference: data row ``row`` (0-based) is on line ``row + 2`` of the file."""
    return f"row {row + 1} (line {row + 2})"


def read_sign_mnist_csv(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Parse one Kaggle-format CSV strictly into ``(images uint8 (N,28,28), labels int64 (N,))``.

    Raises :class:`DataValidationError` naming the file, row and column of the first problem:
    missing or misordered header, wrong column count, empty or non-numeric cells, non-integer
    values, pixels outside 0-255, labels outside 0-24 or equal to 9, no data rows, or a
    truncated or corrupt gzip stream.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{path}: no such file")
    frame = _read_frame(path, as_text=False)
    if not all(dtype == np.int64 for dtype in frame.dtypes):
        frame = _read_frame(path, as_text=True)  # slow path: find the offending cell
    if frame.empty:
        raise DataValidationError(f"{path}: no data rows after the header")
    values = _to_integers(path, frame)
    labels = values[:, 0]
    _check_range(path, values[:, 1:], 0, 255, first_column=1, what="pixel")
    _check_range(path, labels[:, None], 0, 24, first_column=0, what="label")
    bad = np.flatnonzero(labels == 9)
    if bad.size:
        raise DataValidationError(
            f"{path}: {_line(bad[0])}, column 'label': label 9 (J) is not a class of the dataset"
        )
    images = values[:, 1:].astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    return images, labels.astype(np.int64)


def _read_frame(path: Path, *, as_text: bool) -> pd.DataFrame:
    """Read the data rows after checking the header; ``as_text`` keeps every cell a string."""
    try:
        with _open_text(path) as handle:
            header_line = handle.readline()
            if not header_line.strip():
                raise DataValidationError(f"{path}: the file is empty (no header line)")
            _check_header(path, [cell.strip() for cell in header_line.rstrip("\r\n").split(",")])
            options = {"dtype": str, "na_filter": False} if as_text else {}
            return pd.read_csv(handle, header=None, names=list(CSV_HEADER), engine="c", **options)
    except DataValidationError:
        raise
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=list(CSV_HEADER), dtype=np.int64)
    except pd.errors.ParserError as error:
        raise DataValidationError(f"{path}: {_parser_message(str(error))}") from error
    except (EOFError, gzip.BadGzipFile, zlib.error, UnicodeDecodeError, OSError) as error:
        raise DataValidationError(
            f"{path}: cannot be read completely ({_describe_io_error(error)})"
        ) from error


def _check_header(path: Path, header: list[str]) -> None:
    if header == list(CSV_HEADER):
        return
    if len(header) != len(CSV_HEADER):
        raise DataValidationError(
            f"{path}: header has {len(header)} columns, expected {len(CSV_HEADER)} (label, pixel1..pixel784)"
        )
    for position, (got, expected) in enumerate(zip(header, CSV_HEADER)):
        if got != expected:
            raise DataValidationError(
                f"{path}: header column {position + 1} is {got!r}, expected {expected!r} "
                "(missing or misordered header)"
            )


def _parser_message(message: str) -> str:
    # pandas: "Error tokenizing data. C error: Expected 785 fields in line 7, saw 786"

    match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if match:
        expected, line, saw = (int(group) for group in match.groups())
        line += 1  # pandas counts the lines it parsed; the header line was read before it
        return f"row {line - 1} (line {line}) has {saw} columns, expected {expected}"
    return f"malformed CSV: {message}"


def _to_integers(path: Path, frame: pd.DataFrame) -> np.ndarray:
    if all(dtype == np.int64 for dtype in frame.dtypes):
        return frame.to_numpy()
    cells = frame.to_numpy(dtype=object)
    empty = cells == ""
    if empty.any():
        row, column = np.argwhere(empty)[0]
        what = "missing cell (the row has too few columns?)" if cells[row, -1] == "" else "empty cell"
        raise DataValidationError(f"{path}: {_line(row)}, column {CSV_HEADER[column]!r}: {what}")
    for column in frame.columns:
        is_integer = frame[column].str.fullmatch(r"\s*[+-]?\d{1,18}\s*").to_numpy(dtype=bool)
        if not is_integer.all():
            row = int(np.flatnonzero(~is_integer)[0])
            raise DataValidationError(
                f"{path}: {_line(row)}, column {column!r}: {frame[column].iloc[row]!r} is not an integer"
            )
    return frame.astype(np.int64).to_numpy()


def _check_range(
    path: Path, values: np.ndarray, low: int, high: int, *, first_column: int, what: str
) -> None:
    bad = (values < low) | (values > high)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise DataValidationError(
            f"{path}: {_line(row)}, column {CSV_HEADER[first_column + column]!r}: "
            f"{what} {values[row, column]} outside {low}-{high}"
        )


# --------------------------------------------------------------------------- dataset


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
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    synthetic_fallback: bool = True,
) -> SignMNIST:
    """Find, verify and strictly parse both CSV files (see :func:`find_data_files`)."""
    files = find_data_files(data_dir, download=download, synthetic_fallback=synthetic_fallback)
    x_train, y_train = read_sign_mnist_csv(files.train)
    x_test, y_test = read_sign_mnist_csv(files.test)
    return SignMNIST(x_train, y_train, x_test, y_test, files)


def read_standin_marker(folder: Path) -> dict:
    """The generator settings recorded beside a stand-in, or an empty dict."""
    marker = Path(folder) / STANDIN_MARKER
    return json.loads(marker.read_text()) if marker.exists() else {}
