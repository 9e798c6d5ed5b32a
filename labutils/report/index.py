"""The report's front page: the lab's questions answered from the notebooks' ``metrics.json``.

:func:`render_index` turns a run (the runner's ``run.json`` content: data, profile, date,
versions and each notebook's status and metrics) into one self-contained HTML page — inline CSS,
thumbnails as local PNG files, nothing fetched from the network. Each answer names the numbers
it rests on; a task that did not run says so instead of guessing.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..results.banners import source_banner_html
from ..results.registry import NOTEBOOKS
from ..results.schema import run_devices
from ..runtime.device import timing_note
from ..saving import SEED_REPORT
from . import answers
from .answers import escape as _e
from .table import entry_device, run_time_summary, trained_on

__all__ = [
    "extract_thumbnails",
    "render_index",
]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:64em;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;margin:.6em 0}th,td{border-bottom:1px solid #ddd;padding:.35em .5em;text-align:left}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.completed,.cached{color:#1b5e20}.failed,.interrupted{color:#b00020;font-weight:bold}.pending{color:#777}.running{color:#8a5a00;font-weight:bold}
.banner{padding:.8em 1em;margin:1em 0;border-radius:4px}
.synthetic,.nopretrain{background:#b00020;color:#fff;font-size:1.1em}.real{background:#e8f5e9;color:#1b5e20}
.mismatch{background:#e65100;color:#fff}pre{white-space:pre-wrap;background:#fbe9e7;padding:.5em;font-size:.85em}
.answer{background:#f6f8fa;border-left:4px solid #1565c0;padding:.6em 1em;margin:.6em 0}
.missing{color:#777;font-style:italic}.edited{color:#e65100}.meta{color:#555;font-size:.92em}
.thumbs{display:flex;flex-wrap:wrap;gap:1em}.thumbs figure{margin:0;width:15em}
.thumbs img{width:100%;border:1px solid #ccc}.thumbs figcaption{font-size:.85em;color:#555}
"""


def _metrics(run: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    for entry in run.get("notebooks", []):
        if entry["name"] == name and entry.get("status") in {"completed", "cached"}:
            return entry.get("metrics")
    return None


def _data_banner(data: Mapping[str, Any]) -> str:
    return source_banner_html(data.get("data_source", "?"), data.get("checksums", {}), data.get("origin"))


def extract_thumbnails(notebook_file: Path, target_folder: Path, prefix: str) -> list[tuple[str, str]]:
    """Save the last PNG output of each cell tagged ``thumbnail``; returns (file name, caption) pairs."""
    import nbformat

    notebook = nbformat.read(notebook_file, as_version=4)
    saved = []
    for cell in notebook.cells:
        if cell.cell_type != "code" or "thumbnail" not in cell.metadata.get("tags", []):
            continue
        images = [
            output["data"]["image/png"]
            for output in cell.get("outputs", [])
            if output.get("output_type") in {"display_data", "execute_result"}
            and "image/png" in output.get("data", {})
        ]
        if not images:
            continue
        name = f"{prefix}-{len(saved) + 1}.png"
        target_folder.mkdir(parents=True, exist_ok=True)
        (target_folder / name).write_bytes(base64.b64decode(images[-1]))
        first_line = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
        saved.append((name, first_line))
    return saved


def render_index(run: Mapping[str, Any], out: Path) -> str:
    """The index page's HTML for a run (``run.json`` content); writes thumbnails under ``out/figures``."""
    out = Path(out)
    data = run.get("data", {})
    notebooks = run.get("notebooks", [])
    task1, task2, task3, task4 = (_metrics(run, name) for name in NOTEBOOKS)
    thumbs = []
    for entry in notebooks:
        if not entry.get("notebook_file") or not (out / entry["notebook_file"]).exists():
            continue
        captions = NOTEBOOKS[entry["name"]].captions if entry["name"] in NOTEBOOKS else ()
        for k, (name, _) in enumerate(
            extract_thumbnails(out / entry["notebook_file"], out / "figures", entry["name"])
        ):
            caption = captions[k] if k < len(captions) else entry["name"]
            link = entry.get("html_file") or entry["notebook_file"]
            thumbs.append(
                f'<figure><a href="{_e(link)}"><img src="figures/{_e(name)}" alt="{_e(caption)}"></a>'
                f"<figcaption>{_e(entry['name'])}: {_e(caption)}</figcaption></figure>"
            )
    rows = []
    for entry in notebooks:
        links = []
        if entry.get("html_file"):
            links.append(f'<a href="{_e(entry["html_file"])}">HTML</a>')
        if entry.get("notebook_file"):
            links.append(f'<a href="{_e(entry["notebook_file"])}">notebook (.ipynb)</a>')
        error = f"<pre>{_e(entry['error'])}</pre>" if entry.get("error") else ""
        edited = entry.get("edited_parameters") or {}
        edits = (
            '<br><strong class="edited">parameters edited</strong> since the last commit: '
            + ", ".join(
                f"{_e(name)} = {_e(change['now'])} (committed: {_e(change['committed'])})"
                for name, change in edited.items()
            )
            if edited
            else ""
        )
        if entry.get("parameters"):
            listed = ", ".join(
                f"{_e(name)} = {_e(repr(value))}" for name, value in entry["parameters"].items()
            )
            links.append(f"<details><summary>parameters</summary>{listed}</details>")
        rows.append(
            f'<tr><td>{_e(entry["name"])}</td><td class="{_e(entry["status"])}">{_e(entry["status"])}{edits}</td>'
            f"<td class=num>{entry.get('seconds', 0):.1f} s</td><td>{_e(entry_device(entry))}</td>"
            f"<td>{' · '.join(links)}{error}</td></tr>"
        )
    versions = ", ".join(
        f"{_e(name)} {_e(version)}" for name, version in sorted(run.get("versions", {}).items())
    )
    devices = run_devices(run)
    note = timing_note(devices)
    state = run.get("state", "completed")
    state_words = {
        "running": "run in progress (written when a notebook started; "
        "if no run is going on, it was killed before it could finish)"
    }
    state_line = (
        ""
        if state == "completed"
        else f' · <strong class="{_e(state)}">{_e(state_words.get(state, "run " + state))}</strong>'
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign Language MNIST lab report</title><link rel="icon" href="data:,">
<style>{_CSS}</style></head><body>
<h1>Sign Language MNIST — lab report</h1>
{_data_banner(data)}
<p class="meta">Profile <strong>{_e(run.get("profile", "?"))}</strong> · started {_e(run.get("started", "?"))} ·
{_e(run_time_summary(run))}, {_e(trained_on(devices))} ·
data: {_e(data.get("data_source", "?"))} ({_e(data.get("origin", "?"))}){state_line}<br>
{"" if note is None else f"<strong>{_e(note)}</strong><br>"}
{versions}</p>
<h2>Task 1 — the data and the split</h2>
{answers.task1(task1)}
<h2>Task 2 — a deep convolutional network</h2>
{answers.task2(task2)}
<h2>Task 3 — data augmentation</h2>
{answers.task3(task3, task2)}
<h2>Task 4 — transfer learning</h2>
{answers.task4(task4)}
<h2>Key figures</h2>
<div class="thumbs">{"".join(thumbs) or '<p class="missing">No figures: no notebook completed.</p>'}</div>
<h2>Notebooks</h2>
<table><thead><tr><th>notebook</th><th>status</th><th class=num>time</th><th>trained on</th><th>output</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<p class="meta">Every number on this page is read from the notebooks' <code>metrics.json</code> files of this run;
the seed lab report's published figures ({SEED_REPORT.task2_accuracy:.4f} / {SEED_REPORT.task3_accuracy:.4f} /
{SEED_REPORT.task4_accuracy:.4f} for Tasks 2 / 3 / 4) are quoted for comparison.</p>
</body></html>
"""
