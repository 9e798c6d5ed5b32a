"""Writing a generated table into a README between its markers."""

from __future__ import annotations

from pathlib import Path

__all__ = ["update_readme"]


def update_readme(readme: str | Path, table: str, *, section: str = "bench") -> None:
    """Replace the text between the ``<!-- SECTION:begin -->`` and ``<!-- SECTION:end -->`` markers of ``readme``."""
    path = Path(readme)
    text = path.read_text()
    begin, end = f"<!-- {section}:begin -->", f"<!-- {section}:end -->"
    if begin not in text or end not in text:
        raise ValueError(f"{path} has no {begin} … {end} section to fill")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{begin}\n{table}{end}{tail}")
