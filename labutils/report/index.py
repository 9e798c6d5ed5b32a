"""The report's front page: the lab's questions answered from the notebooks' ``metrics.json``.

:func:`render_index` turns a run (the runner's ``run.json`` content: data, profile, date,
versions and each notebook's status and metrics) into one self-contained HTML page — inline CSS,
thumbnails as local PNG files, nothing fetched from the network. Each answer names the numbers
it rests on; a task that did not run says so instead of guessing.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..display import source_banner_html
from ..results.registry import NOTEBOOKS
from ..results.schema import run_devices
from ..runtime.device import timing_note
from ..saving import SEED_REPORT
from .table import entry_device, figure, run_time_summary, trained_on

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


def _e(value: Any) -> str:
    return html.escape(str(value))


def _metrics(run: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    for entry in run.get("notebooks", []):
        if entry["name"] == name and entry.get("status") in {"completed", "cached"}:
            return entry.get("metrics")
    return None


def _data_banner(data: Mapping[str, Any]) -> str:
    return source_banner_html(data.get("data_source", "?"), data.get("checksums", {}), data.get("origin"))


def _missing(notebook: str) -> str:
    task = NOTEBOOKS[notebook].task
    return f'<p class="missing">{_e(task)}: notebook {_e(notebook)} did not complete in this run, so there is no answer.</p>'


def _task1(metrics: Mapping[str, Any] | None) -> str:
    if not metrics:
        return _missing("01_data")
    kind = metrics["split_kind"]
    split = metrics["splits"][kind]
    nn, families = metrics["nearest_neighbour_median"], metrics["families"]
    return (
        '<div class="answer"><strong>How were the data split?</strong> '
        f"{metrics['data']['train']['rows']:,} training and {metrics['data']['test']['rows']:,} test images. "
        f"The {_e(kind)} split keeps {split['train_rows']:,} for training and {split['validation_rows']:,} "
        f"({100 * split['validation_fraction']:.1f} %) for validation"
        + (
            f", whole families of near-duplicates at a time ({families['count']:,} families, "
            f"{split['validation_families']} in validation)"
            if kind == "grouped"
            else ""
        )
        + ". Why: a validation image's nearest training image correlates at "
        f"{figure(nn.get('random_validation_to_train'), 3)} (median) under a random split but "
        f"{figure(nn.get('grouped_validation_to_train'), 3)} under the grouped one, against "
        f"{figure(nn.get('test_to_train'), 3)} for the test images.</div>"
    )


def _in_families(record: Mapping[str, Any], metrics: Mapping[str, Any]) -> str:
    """' in K of N test families': the errors counted by families of near-copies."""
    wrong, total = record["test_families_with_errors"], metrics["test_families"]
    return (
        f": all {total} test families read right"
        if wrong == 0
        else f" in {wrong} of the {total} test families"
    )


def _errors(count: int) -> str:
    return f"{count} error" if count == 1 else f"{count} errors"


def _unlike_own_letter(metrics: Mapping[str, Any]) -> str:
    """'; J of them look more like ... another letter' from Task 3's missed families (else '')."""
    missed = metrics["missed_families"]
    if not missed:
        return ""
    elsewhere = sum(family["nearest_letter"] != family["letter"] for family in missed)
    if not elsewhere:
        return "; none of them looks more like a training photograph of another letter than of its own"
    if len(missed) == 1:
        return "; it looks more like a training photograph of another letter than like any of its own"
    verb, own = ("looks", "its own") if elsewhere == 1 else ("look", "their own")
    return f"; {elsewhere} of them {verb} more like a training photograph of another letter than like any of {own}"


def _gap_points(record: Mapping[str, Any]) -> str:
    """A model's grouped validation accuracy minus its test accuracy, in signed percentage points."""
    return f"{100 * (record['val_accuracy_grouped'] - record['test_accuracy']):+.2f}"


def _design(recipe: Mapping[str, Any]) -> str:
    """Our network in words, from notebook 02's recipe."""
    parts = [
        "per-image standardisation",
        "three convolution blocks with batch normalisation",
        "anti-aliased pooling" if recipe["pooling"] == "blur" else "max pooling",
        "a global-average head" if recipe["head"] == "average" else "a flatten head",
    ]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _task2(metrics: Mapping[str, Any] | None) -> str:
    if not metrics:
        return _missing("02_cnn")
    models = metrics["models"]
    split_ours, reference, ours = models["compact_cnn"], models["seed_cnn"], models["compact_cnn_final"]
    twin = metrics["random_split_twin"]
    text = (
        '<div class="answer"><strong>Which architecture, which quality?</strong> '
        f"Our compact CNN ({ours['total_weights']:,} weights: {_design(metrics['recipe'])}) "
        f"reaches <strong>{ours['test_accuracy']:.4f}</strong> test "
        f"accuracy ({_errors(ours['test_errors'])}{_in_families(ours, metrics)}, log-loss {ours['test_log_loss']:.3f}) "
        f"in {ours['train_seconds']:.0f} s, trained on all {ours['train_images']:,} training images with the recipe "
        f"chosen on the grouped split. Trained on the split's training side it reaches {split_ours['test_accuracy']:.4f} "
        f"({_errors(split_ours['test_errors'])}) in {split_ours['train_seconds']:.0f} s; "
        f"the seed report's network ({reference['total_weights']:,} weights) reaches "
        f"{reference['test_accuracy']:.4f} on the same images in about the same seconds; "
        f"the seed report published {SEED_REPORT.task2_accuracy:.4f} after 50 epochs. "
    )
    if split_ours["val_accuracy_grouped"] is not None:
        text += (
            f"Grouped validation accuracy {split_ours['val_accuracy_grouped']:.4f} "
            f"({_gap_points(split_ours)} points from the same network's test); "
        )
    text += (
        f"on the random split, validation {twin['val_accuracy']:.4f} vs test {twin['test_accuracy']:.4f} "
        f"({100 * (twin['val_accuracy'] - twin['test_accuracy']):+.1f} points)"
    )
    return text + ".</div>"


def _task3(metrics: Mapping[str, Any] | None, task2: Mapping[str, Any] | None) -> str:
    if not metrics:
        return _missing("03_augmentation")
    split_ours = metrics["models"]["compact_cnn_augmented"]
    ours = metrics["models"]["compact_cnn_augmented_final"]
    before = task2["models"]["compact_cnn_final"] if task2 else None
    text = '<div class="answer"><strong>How did augmentation change the classifier?</strong> Test accuracy '
    text += (
        f"{before['test_accuracy']:.4f} → <strong>{ours['test_accuracy']:.4f}</strong> ({before['test_errors']} → "
        if before
        else f"<strong>{ours['test_accuracy']:.4f}</strong> ("
    )
    text += (
        f"{_errors(ours['test_errors'])}{_in_families(ours, metrics)}{_unlike_own_letter(metrics)}; "
        f"trained on all {ours['train_images']:,} training images). "
    )
    if split_ours["val_accuracy_grouped"] is not None:
        text += (
            f"On the split's training side: {split_ours['test_accuracy']:.4f}, grouped validation "
            f"{_gap_points(split_ours)} points from test. "
        )
    text += f"The seed report published {SEED_REPORT.task3_accuracy:.4f}. "
    return text + _robustness(metrics, ours) + _explanation(metrics) + "</div>"


def _explanation(metrics: Mapping[str, Any]) -> str:
    """What the final network looks at (Grad-CAM): deletion against random pixels, stability under the camera."""
    explained = metrics.get("explanation_by_model") or {}
    ours, before = explained.get("compact_cnn_augmented_final"), explained.get("compact_cnn_final (Task 2)")
    if not ours:
        return ""
    return (
        f" What it looks at (Grad-CAM, {ours['images']:,} test images): with the 15 % most attributed pixels "
        f"deleted it reads {ours['accuracy_15_deleted']:.3f} right, with 15 % random ones "
        f"{ours['accuracy_15_random']:.3f}; its maps under the mild camera correlate "
        f"{ours['stability_mixed']:.2f} with the clean ones"
        + (f" (without augmentation {before['stability_mixed']:.2f})" if before else "")
        + "."
    )


def _robustness(metrics: Mapping[str, Any], ours: Mapping[str, Any]) -> str:
    """The final network's mean accuracy under each perturbation and the mild camera, against Task 2's."""
    baseline_name = "compact_cnn_final (Task 2)"
    baseline: dict[str, list[float]] = {}
    for row in metrics["robustness"]:
        if row["strength"] > 0 and row["model"] == baseline_name:
            baseline.setdefault(row["perturbation"], []).append(row["accuracy"])
    text = ""
    robustness = ours.get("robustness_mean_accuracy") or {}
    if robustness:
        parts = []
        for kind, value in sorted(robustness.items()):
            old = baseline.get(kind)
            parts.append(
                f"{_e(kind)} {sum(old) / len(old):.3f} → {value:.3f}" if old else f"{_e(kind)} {value:.3f}"
            )
        text += (
            "Mean accuracy on perturbed test images, without → with augmentation: " + ", ".join(parts) + ". "
        )
    mixed = ours.get("robustness_mixed")
    before = (metrics["robustness_by_model"].get(baseline_name) or {}).get("robustness_mixed")
    if mixed is not None:
        text += (
            f"Under a mild camera (every perturbation at once, {metrics['robustness_images']:,} test images): "
            f"<strong>{mixed:.3f}</strong>"
            + (f" (without augmentation {before:.3f})" if before is not None else "")
            + "."
        )
    return text


def _task4(metrics: Mapping[str, Any] | None) -> str:
    if not metrics:
        return _missing("04_transfer")
    models = metrics["models"]
    text = ""
    if not any(record["pretrained"] for record in models.values()):
        text += (
            '<div class="banner nopretrain"><strong>NO PRETRAINED WEIGHTS</strong> — the backbones started from '
            "random initialisation in this run: the Task 4 numbers are not transfer learning.</div>"
        )
    rows = "".join(
        f"<tr><td>{_e(name)}</td><td>{_e(record['regime'])}</td>"
        f"<td>{'yes' if record['pretrained'] else '<strong>no</strong>'}</td>"
        f"<td>{_e(record['weights_source'])}</td><td class=num>{_e(record['image_size'])}</td>"
        f"<td class=num>{record['test_accuracy']:.4f}</td><td class=num>{record['test_errors']}</td>"
        f"<td class=num>{record['trainable_weights']:,}</td><td class=num>{record['total_weights']:,}</td>"
        f"<td class=num>{record['train_seconds']:.0f}</td><td "
        f"class=num>{record['inference_images_per_second']:,.0f}</td></tr>"
        for name, record in models.items()
    )
    table = (
        "<table><thead><tr><th>model</th><th>regime</th><th>pretrained</th><th>weights from</th><th class=num>px</th>"
        "<th class=num>test acc.</th><th class=num>errors</th><th class=num>trainable</th><th class=num>weights</th>"
        f"<th class=num>train s</th><th class=num>img/s</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    # the notebook's own conclusion, computed by the run
    paragraphs = [paragraph for paragraph in metrics["answers"].split("\n\n") if paragraph.strip()]
    return text + "".join(f'<div class="answer">{_markdown_inline(p)}</div>' for p in paragraphs) + table


def _markdown_inline(text: str) -> str:
    """The Markdown of a computed paragraph as HTML: escaped, with ``**bold**`` kept bold."""
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", _e(text.strip()))


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
{_task1(task1)}
<h2>Task 2 — a deep convolutional network</h2>
{_task2(task2)}
<h2>Task 3 — data augmentation</h2>
{_task3(task3, task2)}
<h2>Task 4 — transfer learning</h2>
{_task4(task4)}
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
