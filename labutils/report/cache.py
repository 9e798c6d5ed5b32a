"""Reuse of a notebook's last result while nothing it depends on has changed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..results.schema import read_notebook_metrics
from .execution import describe_error
from .files import read_json_or_none
from .state import NotebookResult

__all__ = ["INPUTS_FILE", "cached_entry", "notebook_fingerprint", "sources_digest", "upstream_fingerprint"]


def sources_digest() -> str:
    """SHA-256 over the labutils package's sources and templates: any change re-runs the notebooks."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for path in sorted(package.rglob("*")):
        if path.is_file() and path.suffix in {".py", ".j2", ".json"}:
            digest.update(path.relative_to(package).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def notebook_fingerprint(
    source: Path,
    parameters: dict[str, Any],
    package_digest: str,
    data_sha256: dict[str, str],
    upstream: Sequence[str],
) -> str:
    """What a notebook's result depends on: its source, parameters, labutils, the data, earlier notebooks' results."""
    document = {
        "source": hashlib.sha256(source.read_bytes()).hexdigest(),
        "parameters": parameters,
        "labutils": package_digest,
        "data": data_sha256,
        "upstream": list(upstream),
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


#: The record of a completed notebook's inputs, in its folder.
INPUTS_FILE = ".inputs.json"


def cached_entry(
    folder: Path, stem: str, fingerprint: str, log: Callable[[str], None]
) -> NotebookResult | None:
    """The previous result of a notebook whose inputs have not changed, if all its files are there.

    A record or ``metrics.json`` that cannot be read means "not done": the notebook runs again.
    """
    record = read_json_or_none(folder / INPUTS_FILE, log)
    needed = [folder / f"{stem}.ipynb", folder / f"{stem}.html", folder / "metrics.json"]
    if (
        not isinstance(record, dict)
        or record.get("fingerprint") != fingerprint
        or not all(p.exists() for p in needed)
    ):
        return None
    try:
        metrics = read_notebook_metrics(folder / "metrics.json", stem)
    except (OSError, ValueError) as error:
        log(f"note: {describe_error(error)}; treated as not done")
        return None
    return NotebookResult(
        stem,
        "cached",
        seconds=float(record.get("seconds", 0.0)),
        parameters=record.get("parameters", {}),
        notebook_file=f"{stem}/{stem}.ipynb",
        html_file=f"{stem}/{stem}.html",
        metrics=metrics,
    )


def upstream_fingerprint(folder: Path, log: Callable[[str], None]) -> str:
    record = read_json_or_none(folder / INPUTS_FILE, log)
    return record.get("fingerprint", "none") if isinstance(record, dict) else "none"
