"""The Kaggle format of Sign Language MNIST: its constants, labels and a strict CSV parser.

The Kaggle dataset ``datamunge/sign-language-mnist`` ships two CSV files,
``sign_mnist_train.csv`` and ``sign_mnist_test.csv``, each with a header
``label,pixel1,...,pixel784`` and one 28x28 grayscale image per row. This module knows that
format and nothing else (it imports no other module of the package): the published files'
SHA-256, the labels and letters, and :func:`read_sign_mnist_csv`, which parses a file strictly:
any malformed cell raises a :class:`DataValidationError` that names the file, the row and the
column. Where the files come from is :mod:`labutils.sources`' job.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import json
import os
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "CLASS_LABELS",
    "CSV_HEADER",
    "DataNotFoundError",
    "DataValidationError",
    "IMAGE_SIZE",
    "KAGGLE_DATASET",
    "KNOWN_SHA256",
    "LETTERS",
    "NUM_CLASSES",
    "STANDIN_MARKER",
    "data_lines",
    "file_sha256",
    "index_to_label",
    "label_to_index",
    "label_to_letter",
    "read_sign_mnist_csv",
    "read_standin_marker",
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

#: Name of the file that marks a folder as holding the generated stand-in.
STANDIN_MARKER = "STANDIN.json"


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


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix.lower() == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
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


# --------------------------------------------------------------------------- parsing


def data_lines(path: Path, header_lines: int = 1) -> Iterator[tuple[int, str]]:
    """(line number, text) of each row of a CSV file: its lines after the header, blank lines left out
    as pandas leaves them out. Read again only where a row is bad, to name the line that holds it."""
    with _open_text(path) as handle:
        for number, text in enumerate(handle, 1):
            if number > header_lines and text.rstrip("\r\n"):
                yield number, text


def _where(path: Path, row: int) -> str:
    """'row R (line L)' for data row ``row`` (0-based): R counts rows from 1, L is the file's line."""
    line, _ = next(itertools.islice(data_lines(path), row, None))
    return f"row {row + 1} (line {line})"


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
            f"{path}: {_where(path, bad[0])}, column 'label': label 9 (J) is not a class of the dataset"
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
        raise DataValidationError(f"{path}: {_parser_message(path, str(error))}") from error
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


def _parser_message(path: Path, message: str) -> str:
    # pandas: "Error tokenizing data. C error: Expected 785 fields in line 7, saw 786", counting the
    # lines it parsed (blank ones too); the header line was read before it
    match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if match:
        expected, line, saw = (int(group) for group in match.groups())
        line += 1
        row = sum(1 for _ in itertools.takewhile(lambda item: item[0] < line, data_lines(path))) + 1
        return f"row {row} (line {line}) has {saw} columns, expected {expected}"
    return f"malformed CSV: {message}"


def _to_integers(path: Path, frame: pd.DataFrame) -> np.ndarray:
    if all(dtype == np.int64 for dtype in frame.dtypes):
        return frame.to_numpy()
    cells = frame.to_numpy(dtype=object)
    empty = cells == ""
    if empty.any():
        row, column = np.argwhere(empty)[0]
        _, text = next(itertools.islice(data_lines(path), row, None))
        columns = text.rstrip("\r\n").count(",") + 1
        if columns < len(CSV_HEADER):  # pandas fills a short row's missing cells with empty ones
            raise DataValidationError(
                f"{path}: {_where(path, row)} has {columns} columns, expected {len(CSV_HEADER)}"
            )
        raise DataValidationError(f"{path}: {_where(path, row)}, column {CSV_HEADER[column]!r}: empty cell")
    for column in frame.columns:
        text = frame[column].str.strip()
        is_integer = text.str.fullmatch(r"[+-]?\d+").to_numpy(dtype=bool)
        if not is_integer.all():
            row = int(np.flatnonzero(~is_integer)[0])
            raise DataValidationError(
                f"{path}: {_where(path, row)}, column {column!r}: {frame[column].iloc[row]!r} is not an integer"
            )
        # past 18 digits an integer is outside every range here, and outside what int64 holds
        huge = (text.str.lstrip("+-").str.lstrip("0").str.len() > 18).to_numpy(dtype=bool)
        if huge.any():
            row = int(np.flatnonzero(huge)[0])
            what, low, high = ("label", 0, 24) if column == "label" else ("pixel", 0, 255)
            raise DataValidationError(
                f"{path}: {_where(path, row)}, column {column!r}: {what} {text.iloc[row]} outside {low}-{high}"
            )
    return frame.astype(np.int64).to_numpy()


def _check_range(
    path: Path, values: np.ndarray, low: int, high: int, *, first_column: int, what: str
) -> None:
    bad = (values < low) | (values > high)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise DataValidationError(
            f"{path}: {_where(path, row)}, column {CSV_HEADER[first_column + column]!r}: "
            f"{what} {values[row, column]} outside {low}-{high}"
        )


# --------------------------------------------------------------------------- dataset


def read_standin_marker(folder: Path) -> dict:
    """The generator settings recorded beside a stand-in, or an empty dict."""
    marker = Path(folder) / STANDIN_MARKER
    return json.loads(marker.read_text()) if marker.exists() else {}
