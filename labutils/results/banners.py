"""The banners that say what a result was made from, as HTML for a notebook and the index page alike:
the data (the real files, verified or not, or the generated stand-in) and a transfer network's weights."""

from __future__ import annotations

import html
from collections.abc import Mapping

__all__ = ["source_banner_html", "weights_banner_html"]

_STYLES = {
    "synthetic": "background:#b00020;color:#fff;border:4px solid #600010",
    "mismatch": "background:#e65100;color:#fff;border:4px solid #8a3000",
    "real": "background:#e8f5e9;color:#1b5e20;border:1px solid #1b5e20",
}


def source_banner_html(data_source: str, checksums: Mapping[str, str], origin: str | None = None) -> str:
    """The one banner saying where the data came from, for a notebook and for the index page alike.

    Loud for the stand-in (``data_source`` "synthetic") or a checksum that is not "verified";
    ``checksums`` maps each file name to ``"verified"``, ``"MISMATCH"`` or ``"stand-in"``.
    """
    if data_source == "synthetic":
        kind, title = "synthetic", "SYNTHETIC STAND-IN DATA — these results are NOT from Sign Language MNIST"
        body = (
            "The real Kaggle files could not be found or downloaded, so this run uses a generated "
            "stand-in in the same CSV format."
        )
    elif not checksums or any(state != "verified" for state in checksums.values()):
        bad = [name for name, state in checksums.items() if state != "verified"] or [
            "(no checksums recorded)"
        ]
        kind, title = "mismatch", "CHECKSUM MISMATCH — the data differ from the Kaggle originals"
        body = f"Files whose SHA-256 differs from the published one: {', '.join(bad)}."
    else:
        kind, title = "real", "Real Sign Language MNIST data, SHA-256 verified"
        body = ", ".join(f"{name} ✓" for name in checksums) + "."
    if origin:
        body += f" Origin: {origin}."
    return (
        f'<div class="banner {kind} data-banner" style="{_STYLES[kind]};padding:0.8em 1em;margin:0.5em 0;'
        f'font-family:sans-serif"><strong style="font-size:1.2em">{html.escape(title)}</strong>'
        f"<br>{html.escape(body)}</div>"
    )


def weights_banner_html(backbone: str, pretrained: bool, status: str) -> str:
    """A banner saying which weights a transfer network started from; loud when none were pretrained."""
    if pretrained:
        style, title = _STYLES["real"], f"{backbone}: pretrained weights"
    else:
        style, title = (
            _STYLES["synthetic"],
            f"{backbone}: NO PRETRAINED WEIGHTS — this is not transfer learning",
        )
    return (
        f'<div class="weights-banner weights-{"pretrained" if pretrained else "none"}" style="{style};'
        f'padding:0.8em 1em;margin:0.5em 0;font-family:sans-serif"><strong style="font-size:1.2em">'
        f"{html.escape(title)}</strong><br>{html.escape(status)}</div>"
    )
