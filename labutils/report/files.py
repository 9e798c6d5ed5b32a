"""The runner's own files: read without failing the run, written so a reader never sees half of one."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["read_json_or_none", "write_atomically"]


def read_json_or_none(path: Path, log: Callable[[str], None] | None = None) -> Any:
    """A JSON file's content, or None where it is missing or cannot be read (said in ``log``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        if log:
            log(f"note: {path} cannot be read ({error.strerror or error}); treated as not done")
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        if log:
            log(f"note: {path} is not valid JSON ({error.msg}, line {error.lineno}); treated as not done")
        return None


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` beside ``path`` and rename it into place: a reader sees the old file or the new one."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
