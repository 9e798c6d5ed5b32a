"""The JSON records the runs write (metrics.json, run.json, saved bench jobs), read with errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["read_json"]


def read_json(path: str | Path) -> Any:
    """A JSON file's content; a :class:`ValueError` names the file and the place where it cannot be parsed.

    A missing file raises :class:`FileNotFoundError` as usual.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path} is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno}); "
            "it may have been cut off: write it again (re-run what made it)"
        ) from None
