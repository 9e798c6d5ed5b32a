"""Each task's answer on the report's front page, as HTML, from its notebook's ``metrics.json``.

Every sentence names the numbers it rests on; a task whose notebook did not complete says so
instead of guessing. :mod:`labutils.report.index` puts the answers on the page.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

from ..results.registry import NOTEBOOKS
from ..saving import SEED_REPORT
from .table import figure

__all__ = ["escape", "task1", "task2", "task3", "task4"]


def escape(value: Any) -> str:
    """``value`` as text safe inside HTML."""
    return html.escape(str(value))


_e = escape


def _missing(notebook: str) -> str:
    task = NOTEBOOKS[notebook].task
    return f'<p class="missing">{_e(task)}: notebook {_e(notebook)} did not complete in this run, so there is no answer.</p>'


def task1(metrics: Mapping[str, Any] | None) -> str:
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


def task2(metrics: Mapping[str, Any] | None) -> str:
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
        f"({100 * (twin['val_accuracy'] - twin['test_accuracy']):+.1f} points)."
    )
    return text + _explanation(metrics, "compact_cnn_final") + "</div>"


def task3(metrics: Mapping[str, Any] | None, task2: Mapping[str, Any] | None) -> str:
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
    explained = _explanation(metrics, "compact_cnn_augmented_final", "compact_cnn_final (Task 2)")
    return text + _robustness(metrics, ours) + _corruptions(metrics) + explained + "</div>"


def _deleted(explained: Mapping[str, Any]) -> str:
    """The deletion test in words: the accuracy with the top 15 % of the pixels deleted, and with random ones."""
    return (
        f"with the 15 % most attributed pixels deleted it reads {explained['accuracy_15_deleted']:.3f} right, "
        f"with 15 % random ones {explained['accuracy_15_random']:.3f}"
    )


def _explanation(metrics: Mapping[str, Any], final: str, before: str | None = None) -> str:
    """What a task's final network looks at (Grad-CAM, and integrated gradients where the notebook computed
    them): the deletion test against random pixels and the maps' stability under the mild camera."""
    explained = metrics.get("explanation_by_model") or {}
    ours, earlier = explained.get(final), explained.get(before)
    if not ours:
        return ""
    text = f" What it looks at (Grad-CAM, {ours['images']:,} test images): {_deleted(ours)}"
    gradients = (metrics.get("explanation_methods") or {}).get("integrated_gradients")
    if gradients:
        text += (
            f" (by integrated gradients, on {gradients['images']:,} of them: {gradients['accuracy_15_deleted']:.3f}"
            f" against {gradients['accuracy_15_random']:.3f})"
        )
    text += f"; its maps under the mild camera correlate {ours['stability_mixed']:.2f} with the clean ones"
    return text + (f" (without augmentation {earlier['stability_mixed']:.2f})" if earlier else "") + "."


def _transfer_explanation(metrics: Mapping[str, Any]) -> str:
    """What each explained Task 4 network looks at, pretrained or not: Grad-CAM's deletion test and stability."""
    models, explained = metrics["models"], metrics.get("explanation_by_model") or {}
    parts = [
        f"{_e(name)} ({_e(models.get(name, {}).get('regime', '?'))}) {e['accuracy_15_deleted']:.3f} against "
        f"{e['accuracy_15_random']:.3f}, camera stability {e['stability_mixed']:.2f}"
        for name, e in explained.items()
    ]
    if not parts:
        return ""
    return (
        '<div class="answer"><strong>What the networks look at</strong> (Grad-CAM, '
        f"{next(iter(explained.values()))['images']:,} test images; accuracy with the 15 % most attributed "
        "pixels deleted against 15 % random ones): " + "; ".join(parts) + ".</div>"
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


def _corruptions(metrics: Mapping[str, Any]) -> str:
    """Sign-MNIST-C in one sentence: the final network's means at severities 1-3 (all types, held-out
    types), its worst type, its mean at 1-5 and its clean accuracy on the same images, against Task 2's."""
    by_model = metrics["corruption_by_model"]
    ours, before = by_model.get("compact_cnn_augmented_final"), by_model.get("compact_cnn_final (Task 2)")
    if not ours:
        return ""
    ((worst, worst_accuracy),) = ours["corruption_worst_1_3"].items()
    was = f" (without augmentation {before['corruption_mean_1_3']:.3f})" if before else ""
    return (
        f" Under Sign-MNIST-C ({len(ours['corruptions'])} camera corruptions, the held-out ones never trained on, "
        f"{metrics['corruption_images']:,} test images), the mean accuracy at severities 1–3 is "
        f"<strong>{ours['corruption_mean_1_3']:.3f}</strong>{was}, on the held-out types "
        f"<strong>{ours['held_out_mean_1_3']:.3f}</strong> and at worst {worst_accuracy:.3f} ({_e(worst)}); at "
        f"1–5 {ours['corruption_mean_1_5']:.3f}; clean, the same images {ours['corruption_clean_accuracy']:.3f}."
    )


def task4(metrics: Mapping[str, Any] | None) -> str:
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
    answers = "".join(f'<div class="answer">{_markdown_inline(p)}</div>' for p in paragraphs)
    return text + answers + _transfer_explanation(metrics) + _transfer_corruptions(metrics) + table


def _transfer_corruptions(metrics: Mapping[str, Any]) -> str:
    """Sign-MNIST-C per explained model: its means at severities 1-3 over every type and the held-out ones."""
    scored = metrics["corruption_by_model"]
    if not scored:
        return ""
    parts = [
        f"{_e(name)} {record['corruption_mean_1_3']:.3f} (held-out {record['held_out_mean_1_3']:.3f})"
        for name, record in scored.items()
    ]
    return (
        f'<div class="answer"><strong>Under Sign-MNIST-C</strong> ({metrics["corruption_images"]:,} test images; '
        "mean accuracy at severities 1–3, over every corruption and the held-out ones): "
        + "; ".join(parts)
        + ".</div>"
    )


def _markdown_inline(text: str) -> str:
    """The Markdown of a computed paragraph as HTML: escaped, with ``**bold**`` kept bold."""
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", _e(text.strip()))
