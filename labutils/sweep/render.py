"""A sweep's results in files: ``summary.csv`` (one row per point) and ``index.html`` (the table, the
headline figure's mean, minimum and maximum over seeds per setting, and one plot of it against each
swept parameter), self-contained."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..report.files import write_atomically
from .grid import Point

__all__ = ["summary_frame", "write_summary"]


def summary_frame(
    points: Sequence[Point], results: Mapping[str, Mapping[str, Any]], headline: tuple[str, str] | None
) -> pd.DataFrame:
    """One row per point: its parameters, status, seconds, error, the ``headline`` figure ((model, field)
    of its ``metrics.json``) and every model's test and grouped validation accuracy."""
    rows = []
    for point in points:
        result = results.get(point.name, {"status": "pending"})
        row = {"point": point.name, **{name: _cell(value) for name, value in point.parameters.items()}}
        row |= {
            "status": result["status"],
            "seconds": result.get("seconds"),
            "error": result.get("error") or "",
        }
        models = (result.get("metrics") or {}).get("models") or {}
        if headline is not None:
            row["headline"] = (models.get(headline[0]) or {}).get(headline[1])
        for model, record in models.items():
            row[f"{model} test_accuracy"] = record.get("test_accuracy")
            row[f"{model} val_accuracy_grouped"] = record.get("val_accuracy_grouped")
        rows.append(row)
    return pd.DataFrame(rows)


def _cell(value: Any) -> Any:
    """A parameter value as a table holds it: numbers and text as they are, anything else written out."""
    return value if isinstance(value, (int, float, str)) and not isinstance(value, bool) else repr(value)


def write_summary(
    out: Path, frame: pd.DataFrame, swept: Sequence[str], headline: tuple[str, str] | None, title: str
) -> tuple[Path, Path]:
    """Write ``out/summary.csv`` and ``out/index.html``; returns both paths."""
    csv_file, html_file = out / "summary.csv", out / "index.html"
    write_atomically(csv_file, frame.to_csv(index=False))
    settings = [name for name in swept if name != "SEED"]
    parts = [f"<h1>{html.escape(title)}</h1>", _counts(frame)]
    if headline is not None and frame["headline"].notna().any():
        label = f"{headline[0]} {headline[1]}"
        parts.append(f"<h2>{html.escape(label)} per setting, over seeds</h2>")
        parts.append(_by_setting(frame, settings).to_html(float_format="{:.4f}".format, na_rep=""))
        varied = [name for name in settings if frame[name].nunique() > 1]  # one value: nothing to plot
        parts += [_plot(frame, name, varied, label) for name in varied]
    shown = frame.drop(
        columns=[c for c in frame.columns if c.endswith("val_accuracy_grouped") and c != "headline"]
    )
    parts += ["<h2>Every point</h2>", shown.to_html(index=False, float_format="{:.4f}".format, na_rep="")]
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>\n"
    )
    write_atomically(html_file, page)
    return csv_file, html_file


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:72em;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:.6em 0}th,td{border-bottom:1px solid #ddd;padding:.3em .5em;"
    "text-align:right}img{max-width:36em;display:block;margin:.6em 0}.failed{color:#b00020}"
)


def _counts(frame: pd.DataFrame) -> str:
    counts = frame["status"].value_counts()
    words = ", ".join(f"{count} {status}" for status, count in counts.items())
    return f"<p>{len(frame)} points: {html.escape(words)}.</p>"


def _by_setting(frame: pd.DataFrame, settings: Sequence[str]) -> pd.DataFrame:
    """The headline figure's mean, minimum and maximum over the seeds of each setting."""
    done = frame[frame["headline"].notna()]
    if not settings:
        return done["headline"].agg(["mean", "min", "max", "count"]).to_frame("over seeds").T
    return done.groupby(list(settings), sort=False)["headline"].agg(["mean", "min", "max", "count"])


def _plot(frame: pd.DataFrame, name: str, settings: Sequence[str], label: str) -> str:
    """The headline figure against ``name``'s values (mean over seeds, minimum to maximum as a bar),
    one line per combination of the other varied parameters (``settings``); an inline PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = frame[frame["headline"].notna()].copy()
    others = [other for other in settings if other != name]
    figure, ax = plt.subplots(figsize=(6, 3.6))
    groups = done.groupby(others, sort=False) if others else [((), done)]
    for key, group in groups:
        stats = group.groupby(name, sort=False)["headline"].agg(["mean", "min", "max"])
        positions = range(len(stats))
        ax.errorbar(
            positions,
            stats["mean"],
            yerr=[stats["mean"] - stats["min"], stats["max"] - stats["mean"]],
            marker="o",
            capsize=3,
            label=", ".join(f"{o}={v}" for o, v in zip(others, key if isinstance(key, tuple) else (key,)))
            or None,
        )
        ax.set_xticks(list(positions), [str(value) for value in stats.index])
    ax.set(xlabel=name, ylabel=label, title=f"{label} against {name}")
    if others:
        ax.legend(fontsize=8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return (
        f'<img alt="{html.escape(label)} against {html.escape(name)}" src="data:image/png;base64,{encoded}">'
    )
