"""One line for an error of a run, shown on the terminal and on the index (a leaf: the worker imports it too)."""

from __future__ import annotations

import traceback

__all__ = ["error_text"]


def error_text(error: BaseException) -> str:
    """One line for a failed notebook: papermill's cell error, or the exception itself."""
    if type(error).__name__ == "PapermillExecutionError":
        return f"{error.ename}: {error.evalue} (cell {error.exec_count})"  # type: ignore[attr-defined]
    return "".join(traceback.format_exception_only(type(error), error)).strip()
