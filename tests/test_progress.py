"""The running notebook's progress lines: read from papermill's saved state, paced, never wrong."""

from __future__ import annotations

import json
from pathlib import Path

from labutils.report.progress import (
    CHANGE_SECONDS,
    REPEAT_SECONDS,
    CellProgress,
    ProgressReporter,
    read_progress,
)


def _write(path: Path, statuses: list[str]) -> None:
    """A notebook of a markdown cell and one code cell per status, as papermill saves it."""
    cells = [{"cell_type": "markdown", "metadata": {}, "source": "# title"}]
    cells += [
        {"cell_type": "code", "metadata": {"papermill": {"status": status}}, "source": "", "outputs": []}
        for status in statuses
    ]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


def test_the_running_cell_is_counted_among_code_cells_only(tmp_path):
    notebook = tmp_path / "n.ipynb"
    _write(notebook, ["completed", "completed", "running", "pending"])
    assert read_progress(notebook) == CellProgress(3, 4)
    _write(notebook, ["completed", "completed"])  # finished: nothing runs
    assert read_progress(notebook) is None
    assert read_progress(tmp_path / "missing.ipynb") is None
    notebook.write_text('{"cells": [{"cell_type": "co')  # caught half-written
    assert read_progress(notebook) is None
    notebook.write_text("[1, 2]")
    assert read_progress(notebook) is None


def test_lines_come_when_a_cell_starts_and_while_a_long_one_runs_on_but_not_more_often(tmp_path):
    notebook, now, lines = tmp_path / "n.ipynb", [100.0], []
    reporter = ProgressReporter("02_cnn", notebook, lines.append, clock=lambda: now[0])

    def at(seconds: float, statuses: list[str]) -> str | None:
        now[0] = 100.0 + seconds
        _write(notebook, statuses)
        return reporter.poll()

    assert (
        at(1, ["running", "pending", "pending"])
        == "[02_cnn] cell 1 of 3 running for 0 s (1 s into the notebook)"
    )
    assert at(5, ["completed", "running", "pending"]) is None  # a new cell, but too soon after the last line
    assert at(1 + CHANGE_SECONDS, ["completed", "running", "pending"]) == (
        f"[02_cnn] cell 2 of 3 running for {CHANGE_SECONDS - 4:.0f} s ({1 + CHANGE_SECONDS:.0f} s into the notebook)"
    )
    assert at(30, ["completed", "running", "pending"]) is None  # the same cell: once a minute
    long = at(1 + CHANGE_SECONDS + REPEAT_SECONDS, ["completed", "running", "pending"])
    assert long == "[02_cnn] cell 2 of 3 running for 1 min 16 s (1 min 21 s into the notebook)"
    assert at(200, ["completed", "completed", "completed"]) is None  # done: nothing to say
    assert lines == [line for line in lines if line] and len(lines) == 3
