"""CSV files of images to predict, read in chunks of bounded memory.

``predict`` takes more kinds of CSV than the data loader (:func:`labutils.data.read_sign_mnist_csv`),
because data to be predicted rarely has labels:

- the Kaggle layout ``label,pixel1,...,pixel784``, or the pixels alone ``pixel1,...,pixel784``;
- with that header line, or without one (then the first line is a row of 785 or 784 numbers);
- plain or gzipped (``.csv.gz``), UTF-8 with or without a byte-order mark (Excel's "CSV UTF-8").

A label column is not used for predicting: its cells are passed on as they are, never
checked. Pixels are checked as strictly as in the data: a row with too few or too many columns, or a
cell that is empty, not an integer or outside 0-255, raises :class:`labutils.data.DataValidationError`
naming the file, row, line and column, after every row before it has been handed out. Rows are
numbered from 1, not counting a header or blank lines; lines are the file's.
"""

from __future__ import annotations

import gzip
import io
import itertools
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..data import CSV_HEADER, IMAGE_SIZE, DataNotFoundError, DataValidationError, data_lines

__all__ = ["PixelChunk", "iter_pixel_rows"]

PIXEL_COLUMNS: tuple[str, ...] = CSV_HEADER[1:]
_INTEGER = re.compile(r"\s*[+-]?\d{1,18}\s*")
#: A pixel cell as text: an integer from 0 to 255.
_PIXEL = re.compile(r"\s*\+?0*(?:25[0-5]|2[0-4]\d|1\d\d|\d?\d)\s*")


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
    def header_lines(self) -> int:
        return 1 if self.header else 0

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
    """The file's rows a chunk at a time; at a bad row, the good rows before it, then the error."""
    source = handle if layout.header else _Prepended(first_line, handle)
    reader = pd.read_csv(source, header=None, names=layout.columns, engine="c", chunksize=chunk_rows,
                         dtype={"label": str} if layout.labelled else None, na_filter=False)  # fmt: skip
    first_row = 1
    try:
        for frame in reader:
            yield from _checked(path, layout, frame, first_row)
            first_row += len(frame)
    except pd.errors.ParserError as error:
        yield from _before_a_long_row(path, layout, str(error), first_row)
    if first_row == 1:
        raise DataValidationError(f"{path}: no data rows" + (" after the header" if layout.header else ""))


def _as_text(path: Path, layout: _Layout, first_row: int, rows: int) -> pd.DataFrame:
    """Rows ``first_row`` to ``first_row + rows - 1`` of the file, every cell as the text it holds."""
    lines = [
        text
        for _, text in itertools.islice(
            data_lines(path, layout.header_lines), first_row - 1, first_row - 1 + rows
        )
    ]
    return pd.read_csv(
        io.StringIO("".join(lines)), header=None, names=layout.columns, dtype=str, na_filter=False
    )


def _checked(path: Path, layout: _Layout, frame: pd.DataFrame, first_row: int) -> Iterator[PixelChunk]:
    """The rows of ``frame`` as one chunk; where a row is bad, the rows before it, then its error."""
    pixels = frame[list(PIXEL_COLUMNS)]
    if all(dtype == np.int64 for dtype in pixels.dtypes):
        values = pixels.to_numpy()
        good = ((values >= 0) & (values <= 255)).all(axis=1)
    else:  # a cell pandas could not read as an integer: each cell checked as the file writes it
        pixels = _as_text(path, layout, first_row, len(frame))[list(PIXEL_COLUMNS)]
        good = np.ones(len(frame), dtype=bool)
        for column in PIXEL_COLUMNS:
            good &= pixels[column].astype(str).str.fullmatch(_PIXEL.pattern).to_numpy(dtype=bool)
    bad = None if good.all() else int(np.flatnonzero(~good)[0])
    rows = pixels if bad is None else pixels.iloc[:bad]
    if len(rows):
        values = rows.to_numpy() if bad is None else rows.astype(str).to_numpy().astype(np.int64)
        labels = [_label_cell(cell) for cell in frame["label"].iloc[: len(rows)]] if layout.labelled else None
        yield PixelChunk(first_row, values.astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE), labels)
    if bad is not None:
        raise DataValidationError(_bad_row(path, layout, first_row + bad, pixels.iloc[bad]))


def _bad_row(path: Path, layout: _Layout, row: int, cells: pd.Series) -> str:
    """What is wrong with a row, where: too few columns, or its first bad pixel cell."""
    line, text = next(itertools.islice(data_lines(path, layout.header_lines), row - 1, None))
    columns = text.rstrip("\r\n").count(",") + 1
    if columns < len(layout.columns):
        return f"{path}: {_where(row, line)} has {columns} columns, expected {len(layout.columns)}"
    for column in PIXEL_COLUMNS:
        value = str(cells[column]).strip()
        if not value:
            return f"{path}: {_where(row, line)}, column {column!r}: empty cell"
        if not re.fullmatch(r"[+-]?\d+", value):
            return f"{path}: {_where(row, line)}, column {column!r}: {cells[column]!r} is not an integer"
        if not 0 <= int(value) <= 255:
            return f"{path}: {_where(row, line)}, column {column!r}: pixel {int(value)} outside 0-255"
    raise AssertionError(f"{path}: row {row} was called bad, but each of its cells holds a pixel")


def _before_a_long_row(path: Path, layout: _Layout, message: str, first_row: int) -> Iterator[PixelChunk]:
    """pandas stops at a row with too many columns, and the rows of its chunk before it go unread: those
    rows, read again, then the error that names the long row."""
    # pandas: "Error tokenizing data. C error: Expected 785 fields in line 7, saw 786", counting the
    # lines it was given (after a header), blank ones too
    match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if not match:
        raise DataValidationError(f"{path}: malformed CSV: {message}")
    expected, line, saw = (int(group) for group in match.groups())
    line += layout.header_lines
    rows = itertools.islice(data_lines(path, layout.header_lines), first_row - 1, None)
    before = sum(1 for _ in itertools.takewhile(lambda item: item[0] < line, rows))
    if before:
        yield from _checked(path, layout, _as_text(path, layout, first_row, before), first_row)
    row = first_row + before
    raise DataValidationError(f"{path}: {_where(row, line)} has {saw} columns, expected {expected}")


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


def _where(row: int, line: int) -> str:
    return f"row {row} (line {line})"


def _label_cell(cell: str) -> int | str:
    text = cell.strip()
    return int(text) if _INTEGER.fullmatch(text) else text
