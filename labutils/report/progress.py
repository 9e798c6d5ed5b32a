"""A sign of life from a running notebook: which of its code cells runs, and for how long.

Papermill saves the notebook it executes each time a cell starts, with the cell's state in
``metadata.papermill.status`` ("pending", "running", "completed", "failed"). The report runner
reads that file while it waits on the notebook's process and prints a line when another cell
starts (at most one every :data:`CHANGE_SECONDS`) and, while one cell runs on, every
:data:`REPEAT_SECONDS`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CellProgress", "ProgressReporter", "read_progress"]

#: Seconds at least between two lines when cells change; seconds between lines while one cell runs on.
CHANGE_SECONDS, REPEAT_SECONDS = 20.0, 60.0


@dataclass(frozen=True)
class CellProgress:
    """The running cell: its place among the notebook's code cells (1-based) and how many there are."""

    cell: int
    cells: int


def read_progress(notebook: Path) -> CellProgress | None:
    """The running code cell of a notebook papermill is executing, or None (not started, between
    saves, finished, or a file caught half-written)."""
    try:
        document = json.loads(notebook.read_text(encoding="utf-8"))
        code = [cell for cell in document["cells"] if cell.get("cell_type") == "code"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    for index, cell in enumerate(code):
        if cell.get("metadata", {}).get("papermill", {}).get("status") == "running":
            return CellProgress(index + 1, len(code))
    return None


def _duration(seconds: float) -> str:
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


class ProgressReporter:
    """Lines like ``[02_cnn] cell 12 of 36 running for 1 min 05 s (4 min 10 s into the notebook)``.

    Call :meth:`poll` every few seconds while the notebook runs; ``clock`` (seconds) is
    ``time.monotonic`` unless a test gives another.
    """

    def __init__(
        self,
        name: str,
        notebook: Path,
        log: Callable[[str], None],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name, self.notebook, self.log, self.clock = name, notebook, log, clock
        self.started = clock()
        self.last_line: float | None = None
        self.cell: CellProgress | None = None  # the running cell, as last read
        self.reported: CellProgress | None = None  # the cell the last line named
        self.cell_since = self.started
        self.saved: tuple[int, int] | None = None  # the notebook file's mtime and size when last read
        self.running: CellProgress | None = None  # what it said then

    def poll(self) -> str | None:
        """Read the notebook's state; log and return a line when one is due, else None."""
        now = self.clock()
        try:
            stamp = self.notebook.stat()
            saved = (stamp.st_mtime_ns, stamp.st_size)
        except OSError:
            saved = None
        if saved != self.saved:  # papermill saves when a cell starts: an unchanged file is read once
            self.saved, self.running = saved, read_progress(self.notebook)
        progress = self.running
        if progress is None:
            return None
        if progress != self.cell:
            self.cell, self.cell_since = progress, now
        quiet = None if self.last_line is None else now - self.last_line
        due = quiet is None or quiet >= (CHANGE_SECONDS if progress != self.reported else REPEAT_SECONDS)
        if not due:
            return None
        self.last_line, self.reported = now, progress
        line = (
            f"[{self.name}] cell {progress.cell} of {progress.cells} running for "
            f"{_duration(now - self.cell_since)} ({_duration(now - self.started)} into the notebook)"
        )
        self.log(line)
        return line
