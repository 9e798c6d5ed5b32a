"""CSV files of images to predict, read in chunks of bounded memory.

``predict`` takes more kinds of CSV than the data loader (:func:`labutils.data.read_sign_mnist_csv`),
because data to be predicted rarely has labels:

- the Kaggle layout ``label,pixel1,...,pixel784``, or the pixels alone ``pixel1,...,pixel784``;
- with that header line, or without one (then the first line is a row of 785 or 784 numbers);
- plain or gzipped (``.csv.gz``), UTF-8 with or without a byte-order mark (Excel's "CSV UTF-8").

A label column is not used for predicting: its cells are passed on as they are, never
checked. Pixels are checked as strictly as in the data: a cell that is empty, not an integer or
outside 0-255 raises :class:`labutils.data.DataValidationError` naming the file, row and column,
after the chunks before it have been handed out. Rows are numbered from 1, not counting a header.
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..data import CSV_HEADER, IMAGE_SIZE, DataNotFoundError, DataValidationError

__all__ = ["PixelChunk", "iter_pixel_rows"]

PIXEL_COLUMNS: tuple[str, ...] = CSV_HEADER[1:]
_INTEGER = re.compile(r"\s*[+-]?\d{1,18}\s*")


@dataclass
class PixelChunk:
    """Consecutive rows of one CSV file: images uint8 (n, 28, 28) and the label cells, if the file has them."""

    first_row: int
    pixels: np.ndarray
    labels: list[int | str] | None


@dataclass(frozen=True)
class _Layout:
    labelled: bool
    header: bool

    @property
    def columns(self) -> list[str]:
        return list(CSV_HEADER if self.labelled else PIXEL_COLUMNS)


def _open_text(path: Path) -> io.TextIOBase:
    # "utf-8-sig" reads files with and without a byte-order mark alike
    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _layout(path: Path, first_line: str) -> _Layout:
    cells = [cell.strip() for cell in first_line.rstrip("\r\n").split(",")]
    if cells == list(CSV_HEADER):
        return _Layout(labelled=True, header=True)
    if cells == list(PIXEL_COLUMNS):
        return _Layout(labelled=False, header=True)
    if len(cells) in (len(CSV_HEADER), len(PIXEL_COLUMNS)) and all(
        _INTEGER.fullmatch(cell) for cell in cells
    ):
        return _Layout(labelled=len(cells) == len(CSV_HEADER), header=False)
    if len(cells) in (len(CSV_HEADER), len(PIXEL_COLUMNS)):
        expected = CSV_HEADER if len(cells) == len(CSV_HEADER) else PIXEL_COLUMNS
        for position, (got, want) in enumerate(zip(cells, expected)):
            if got != want and not _INTEGER.fullmatch(got):
                raise DataValidationError(
                    f"{path}: line 1, column {position + 1} is {got!r}: expected the header "
                    f"({want!r} there) or a row of numbers"
                )
    raise DataValidationError(
        f"{path}: line 1 has {len(cells)} columns; expected the header label,pixel1..pixel784 (785 columns), "
        "pixel1..pixel784 (784), or a row of 785 or 784 numbers without a header"
    )


def iter_pixel_rows(path: str | Path, chunk_rows: int = 512) -> Iterator[PixelChunk]:
    """The images of a CSV file, ``chunk_rows`` rows at a time (see the module's docstring)."""
    path = Path(path)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    if path.is_dir():
        raise DataNotFoundError(f"{path}: is a folder, not a CSV file")
    if not path.is_file():
        raise DataNotFoundError(f"{path}: no such file")
    try:
        with _open_text(path) as handle:
            first_line = handle.readline()
            if not first_line.strip():
                raise DataValidationError(f"{path}: the file is empty")
            layout = _layout(path, first_line)
            yield from _chunks(path, handle, first_line, layout, chunk_rows)
    except DataValidationError:
        raise
    except (EOFError, gzip.BadGzipFile, zlib.error, UnicodeDecodeError, OSError) as error:
        raise DataValidationError(f"{path}: cannot be read completely ({_io_words(error)})") from error


def _io_words(error: BaseException) -> str:
    if isinstance(error, EOFError):
        return "the gzip stream is truncated"
    if isinstance(error, UnicodeDecodeError):
        return f"not UTF-8 text at byte {error.start}"
    return str(error) or type(error).__name__


def _chunks(path: Path, handle, first_line: str, layout: _Layout, chunk_rows: int) -> Iterator[PixelChunk]:
    header_lines = 1 if layout.header else 0
    source = handle if layout.header else _Prepended(first_line, handle)
    reader = pd.read_csv(source, header=None, names=layout.columns, engine="c", chunksize=chunk_rows,
                         dtype={"label": str} if layout.labelled else None, na_filter=False)  # fmt: skip
    first_row, produced = 1, False
    try:
        for frame in reader:
            pixels = frame[list(PIXEL_COLUMNS)]
            if not all(dtype == np.int64 for dtype in pixels.dtypes):
                _raise_bad_cell(path, layout, first_row, len(frame))
            values = pixels.to_numpy()
            _check_pixel_range(path, values, first_row, header_lines)
            labels = [_label_cell(cell) for cell in frame["label"]] if layout.labelled else None
            yield PixelChunk(first_row, values.astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE), labels)
            first_row += len(frame)
            produced = True
    except pd.errors.ParserError as error:
        raise DataValidationError(f"{path}: {_parser_words(str(error), header_lines)}") from error
    except pd.errors.EmptyDataError:
        pass
    if not produced:
        raise DataValidationError(f"{path}: no data rows" + (" after the header" if layout.header else ""))


class _Prepended(io.TextIOBase):
    """A text stream that gives ``first`` back before the rest of ``handle`` (a header-less file)."""

    def __init__(self, first: str, handle) -> None:
        self._first, self._handle = first, handle

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> str:
        if self._first:
            head = self._first if size is None or size < 0 else self._first[:size]
            self._first = self._first[len(head) :]
            rest_size = -1 if size is None or size < 0 else size - len(head)
            return head + (self._handle.read(rest_size) if rest_size != 0 else "")
        return self._handle.read(size)

    def readline(self, size: int = -1) -> str:
        if self._first:
            line, self._first = self._first, ""
            return line
        return self._handle.readline(size)

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


def _where(row: int, header_lines: int) -> str:
    return f"row {row} (line {row + header_lines})"


def _label_cell(cell: str) -> int | str:
    text = cell.strip()
    return int(text) if _INTEGER.fullmatch(text) else text


def _raise_bad_cell(path: Path, layout: _Layout, first_row: int, rows: int) -> None:
    """Read these rows again as text (only on this error path) and name the first bad pixel cell."""
    header_lines = 1 if layout.header else 0
    with _open_text(path) as handle:
        for _ in range(header_lines + first_row - 1):
            handle.readline()
        cells = pd.read_csv(handle, header=None, names=layout.columns, nrows=rows, dtype=str, na_filter=False)
    for column in PIXEL_COLUMNS:
        text = cells[column]
        ok = text.str.fullmatch(_INTEGER.pattern).to_numpy(dtype=bool)
        if not ok.all():
            offset = int(np.flatnonzero(~ok)[0])
            value = text.iloc[offset]
            what = "empty cell" if not value.strip() else f"{value!r} is not an integer"
            raise DataValidationError(
                f"{path}: {_where(first_row + offset, header_lines)}, column {column!r}: {what}"
            )
    raise DataValidationError(
        f"{path}: rows {first_row}-{first_row + rows - 1}: a pixel cell is not an integer"
    )


def _check_pixel_range(path: Path, values: np.ndarray, first_row: int, header_lines: int) -> None:
    bad = (values < 0) | (values > 255)
    if bad.any():
        offset, column = np.argwhere(bad)[0]
        raise DataValidationError(
            f"{path}: {_where(first_row + int(offset), header_lines)}, column {PIXEL_COLUMNS[column]!r}: "
            f"pixel {values[offset, column]} outside 0-255"
        )


def _parser_words(message: str, header_lines: int) -> str:
    # pandas: "Error tokenizing data. C error: Expected 785 fields in line 7, saw 786"
    match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if match:
        expected, line, saw = (int(group) for group in match.groups())
        row = line  # pandas counts the lines it was given, from 1
        return f"{_where(row, header_lines)} has {saw} columns, expected {expected}"
    return f"malformed CSV: {message}"
