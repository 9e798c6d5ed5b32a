"""What a report run records: each notebook's outcome and the run's, as ``run.json`` holds them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["NotebookResult", "ReportResult"]


@dataclass
class NotebookResult:
    """What happened to one notebook in a run."""

    name: str
    status: str  # "pending" | "running" | "completed" | "cached" | "failed" | "interrupted"
    seconds: float = 0.0
    error: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    # the parameters cell's values this run used that differ from the committed file's:
    # {name: {"committed", "now"}}; None where that cannot be told (not a git checkout)
    edited_parameters: dict[str, dict[str, str]] | None = None
    notebook_file: str | None = None
    html_file: str | None = None
    metrics: dict[str, Any] | None = None


@dataclass
class ReportResult:
    """The whole run: what data, which profile, and each notebook's result."""

    profile: str
    data: dict[str, Any]
    started: str
    notebooks: list[NotebookResult]
    seconds: float = 0.0
    state: str = "completed"  # "running" (while a notebook runs) | "completed" | "interrupted"

    @property
    def ok(self) -> bool:
        return self.state == "completed" and all(r.status in {"completed", "cached"} for r in self.notebooks)
