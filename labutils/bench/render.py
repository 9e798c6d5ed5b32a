"""The benchmark's results in words: the Markdown table, its sentences and target lines, and the plot.

The robustness figures' own lines, and the grouped validation set against them, are :mod:`labutils.bench.robustness`'s.
"""

from __future__ import annotations

import functools
import math
import statistics
from pathlib import Path
from typing import Any

from .corruption import corruption_lines, corruption_target_lines
from .robustness import (
    formatted,
    hard_family_lines,
    robustness_lines,
    robustness_target_lines,
)
from .settings import (
    PUBLISHED,
    TARGET_FAITHFUL_MARGIN,
    TARGET_INFERENCE_BATCH512,
    TARGET_SHARE_OF_REFERENCE,
    TARGET_TASK2_ACCURACY,
    TARGET_TASK2_GAP_POINTS,
    BenchSettings,
    recipe_from_dict,
)
from .summary import _median, time_to_accuracy


def markdown_table(results: dict[str, Any]) -> str:
    """The headline table of ``results.json`` as Markdown."""
    settings = recipe_from_dict(BenchSettings, results["settings"], source="results.json's settings")
    lines = [
        f"Benchmark of {results['date']} on {results['machine']['cpu_count']} × {results['machine']['cpu_model']}, "
        f"trained on {results.get('device', 'a device not recorded')}, "
        f"{results['data_source']} data, seeds {results['seeds']}, every contender trained on "
        + (
            "the grouped split's training side"
            if settings.train_rows == "split"
            else "all training rows (the grouped split's two sides, as the report's final networks)"
        )
        + (
            f", each contender capped at {results['budget_seconds']:.0f} s of training"
            if results.get("budget_seconds")
            else ""
        )
        + (" (quick smoke settings)" if results.get("quick") else "")
        + ". "
        + _settings_sentence(settings),
        *(
            [
                "Reused from an earlier run (`--resume`), so measured apart from the others: "
                + ", ".join(f"{job['job']} (finished {job['finished']})" for job in results["reused_jobs"])
                + "."
            ]
            if results.get("reused_jobs")
            else []
        ),
        *([f"**{results['timing_note']}**"] if results.get("timing_note") else []),
        "",
        "| contender | test accuracy mean (min–max) | errors mean | test families with errors (per seed) "
        "| train s (median) | s to reference final (median) "
        "| × reference total time | inference img/s @512 / @1 | peak RSS MB | capped |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, c in results["contenders"].items():
        ratio = c.get("ratios", {}).get("seconds_to_reference_final_vs_reference_total")
        reached = [s for s in c["seconds_to_reference_final"] if s is not None]
        lines.append(
            f"| {name} ({c['role']}) | {c['test_accuracy_mean']:.4f} ({c['test_accuracy_min']:.4f}–{c['test_accuracy_max']:.4f}) "
            f"| {c['test_errors_mean']:.1f} | {' / '.join(formatted(n, 'd') for n in c.get('test_families_with_errors', []))}"
            f" of {formatted(c.get('test_families'), 'd')} | {_median(c['train_seconds']):.0f} "
            f"| {formatted(_median(c['seconds_to_reference_final']), '.0f')} to {c['reference_final_accuracy']:.4f}"
            f" ({len(reached)}/{len(c['seeds'])} seeds) | {formatted(ratio, '.3f')} "
            f"| {c['inference_images_per_second_batch512']:,.0f} / {c['inference_images_per_second_batch1']:,.0f} "
            f"| {c['peak_rss_mb']:.0f} | {'yes' if c['capped'] else 'no'} |"
        )
    lines += robustness_lines(results)
    lines += explanation_lines(results)
    lines += corruption_lines(results)
    lines += hard_family_lines(results)
    reference = results["contenders"].get("reference")
    if reference is not None:
        lines += ["", reference_summary(reference, settings)]
    transfer, control = results["contenders"].get("transfer"), results["contenders"].get("transfer_control")
    if transfer is not None:
        lines += [
            "",
            f"Transfer contender: {transfer.get('backbone')} at {transfer.get('image_size')} px — "
            f"{transfer.get('weights_status')}.",
        ]
    if control is not None:
        lines += [
            "",
            f"Transfer control: the same {control.get('backbone')} at {control.get('image_size')} px from random "
            "initialisation, batch norm trained, for the fine-tuning's steps divided by "
            f"{settings.transfer.control_step_cost:g} (the seconds of a control step per fine-tuning step, "
            "calibrated once); it trained for "
            + ", ".join(f"{seconds:,.0f} s" for seconds in control.get("train_seconds", []))
            + ".",
        ]
    lines += [
        "",
        f"Inference @1: {results['batch1_inference']}."
        if results.get("batch1_inference")
        else "Inference @1 in this run: 50 test images, one per eager call of the model (`model(image)`), which mostly "
        "times Keras' per-layer Python overhead; later runs call the compiled predict function instead.",
    ]
    missed = results["contenders"].get("task3", {}).get("missed_families")
    if missed is not None:
        lines += ["", missed_families_sentence(missed)]
    if not results.get("quick") and "task2" in results["contenders"]:
        lines += [
            "",
            "Targets for the Task 2 model:",
            "",
            *(f"- {line}" for line in task2_target_lines(results["contenders"]["task2"], settings)),
        ]
    if not results.get("quick") and "task3" in results["contenders"]:
        lines += [
            "",
            "Targets for the Task 3 model:",
            "",
            *(f"- {line}" for line in target_lines(results["contenders"], settings)),
        ]
    return "\n".join(lines) + "\n"


def _per_seed(runs: list[dict[str, Any]], pattern: str) -> str:
    """``pattern`` filled with each seed's figures, the seeds apart by " / "."""
    return " / ".join(pattern.format(**figures) for figures in runs)


def explanation_lines(results: dict[str, Any]) -> list[str]:
    """What each contender looks at, per seed: Grad-CAM's deletion test and the maps' camera stability."""
    explained = {name: c["explanation"] for name, c in results["contenders"].items() if c.get("explanation")}
    if not explained:
        return []
    first = next(iter(next(iter(explained.values())).values()))
    lines = [
        "",
        f"What each network looks at (Grad-CAM on {first['images']:,} seeded test images; per seed: accuracy "
        "with the 15 % most attributed pixels deleted → with 15 % random ones; the maps' correlation under the "
        "mild camera; seconds):",
        "",
        "| contender | 15 % deleted → random | deletion AUC → random | camera stability | seconds |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, per_seed in explained.items():
        runs = list(per_seed.values())
        column = functools.partial(_per_seed, runs)
        lines.append(
            f"| {name} | {column('{accuracy_15_deleted:.3f} → {accuracy_15_random:.3f}')} "
            f"| {column('{deletion_auc:.3f} → {random_deletion_auc:.3f}')} "
            f"| {column('{stability_mixed:.2f}')} | {column('{seconds:.0f}')} |"
        )
    return lines


def missed_families_sentence(missed: dict[str, list[dict[str, Any]]]) -> str:
    """Per seed, the test families the Task 3 model misses and whether each looks more like another letter's training image."""

    def family(entry: dict[str, Any]) -> str:
        text = f"#{entry['family']} {entry['letter']}→{entry['predicted_as']} ({entry['errors']}/{entry['images']}"
        if entry["nearest_letter"] != entry["letter"]:
            text += (
                f"; nearest training image {entry['nearest_letter']} r {entry['nearest_similarity']:.2f}, "
            )
            own = entry["own_letter_similarity"]
            text += (
                f"nearest {entry['letter']} r {own:.2f}"
                if own is not None
                else f"no {entry['letter']} among the training images"
            )
        return text + ")"

    parts = [
        f"seed {seed}: " + (", ".join(family(entry) for entry in entries) if entries else "none")
        for seed, entries in missed.items()
    ]
    return (
        "Test families the Task 3 model misses (true→predicted letter, errors/images; where the nearest training "
        "image shows another letter, its correlation and that of the nearest of the family's own letter): "
        + "; ".join(parts)
        + "."
    )


def _settings_sentence(settings: BenchSettings) -> str:
    reference, task2, task3, transfer = settings.reference, settings.task2, settings.task3, settings.transfer
    kept = (
        f"a moving average of its weights, momentum {task3.ema_momentum:g}"
        if task3.ema_momentum
        else "its last weights"
    )
    if task3.statistics_images:
        kept += f" with batch-norm statistics of {task3.statistics_images:,} clean training images"
    camera, with_camera = task3.augmentation, ""
    if camera.blur or camera.noise or camera.corruption_rate:
        faults = (
            f", and a share {camera.corruption_rate:g} of the images under a named Sign-MNIST-C type "
            f"up to severity {camera.corruption_severity}"
            if camera.corruption_rate
            else ""
        )
        with_camera = (
            f" (with camera blur up to σ {camera.blur:g} px and noise up to σ {camera.noise:g}{faults})"
        )
    return (
        f"Reference: {reference.epochs} + {reference.augmented_epochs} epochs (without, then with augmentation); "
        f"ours: {task2.epochs} epochs for Task 2, then {task3.epochs} augmented epochs for Task 3{with_camera}"
        f" keeping {kept}, width {task2.width}, "
        f"{'anti-aliased' if task2.pooling == 'blur' else 'max'} pooling, "
        f"{'global average' if task2.head == 'average' else 'flatten'} head; "
        f"transfer: {transfer.backbone} at {transfer.image_size} px, "
        f"{transfer.head_epochs} head + {transfer.fine_tune_epochs} fine-tuning epochs "
        f"({transfer.fine_tune_depth} of the backbone trained, peak learning rate "
        f"{transfer.fine_tune_learning_rate:g}; the control's {transfer.control_learning_rate:g})."
    )


def _full_recipe(reference: dict[str, Any], settings: BenchSettings) -> bool:
    """Whether the reference ran every epoch of its recipe (not capped, not shortened)."""
    planned = settings.reference.epochs + settings.reference.augmented_epochs
    return not reference["capped"] and all(epochs == planned for epochs in reference["epochs"])


def reference_summary(reference: dict[str, Any], settings: BenchSettings) -> str:
    """What the reference recipe did in this run, in words: its epochs and seconds, and where its test accuracy went."""
    seed = reference["seeds"][0]
    curve, seconds = reference["curves"][str(seed)], reference["train_seconds"][0]
    plain = reference["epochs_without_augmentation"]
    text = (
        f"Reference recipe (seed {seed}): {len(curve)} of its {settings.reference.epochs} + "
        f"{settings.reference.augmented_epochs} epochs "
        f"({plain} without augmentation, {len(curve) - plain} with) in {seconds:,.0f} s of training, "
        f"{seconds / max(len(curve), 1):.1f} s per epoch"
    )
    if not _full_recipe(reference, settings):
        text += (
            " — capped by `--budget`, so its total time and every ratio against it stand for this shortened run, "
            "not for the full recipe"
            if reference["capped"]
            else " — a shortened recipe"
        )
    augmented = [point["test_accuracy"] for point in curve[plain:]]
    if len(augmented) == 1:
        text += f"; after its one augmented epoch the test accuracy was {augmented[0]:.4f}"
    elif augmented:
        text += (
            f"; over its augmented epochs the test accuracy moved between {min(augmented):.4f} and "
            f"{max(augmented):.4f}, ending at {augmented[-1]:.4f}"
        )
    for role in ("task2", "task3"):
        epoch, reached = time_to_accuracy(curve, PUBLISHED[role])
        text += (
            f"; it first reached the published {PUBLISHED[role]:.4f} at epoch {epoch} ({reached:,.0f} s)"
            if epoch is not None
            else f"; it never reached the published {PUBLISHED[role]:.4f}"
        )
    return text + "."


def target_lines(contenders: dict[str, dict[str, Any]], settings: BenchSettings) -> list[str]:
    """The Task 3 model's targets, each with "met" or "not met" and the figures that decide it."""
    task3, reference = contenders["task3"], contenders.get("reference")
    errors, families = task3["test_errors"], task3.get("test_families_with_errors", [])
    clean = "at most one test family misread with every seed, none with the median seed"
    if not families or None in families:
        lines = [f"{clean}: **not measured** (errors per seed {' / '.join(str(n) for n in errors)})"]
    else:
        met = max(families) <= 1 and statistics.median(families) == 0
        lines = [
            f"{clean}: **{'met' if met else 'not met'}** (families per seed {' / '.join(map(str, families))}; "
            f"errors {' / '.join(map(str, errors))})"
        ]
    goal = (
        f"the published {PUBLISHED['task3']:.4f} in at most {TARGET_SHARE_OF_REFERENCE:g} of the full reference "
        "recipe's training seconds (medians over seeds; a seed that never reaches it counts as never)"
    )
    reached = statistics.median(math.inf if s is None else s for s in task3["seconds_to_reference_final"])
    if reference is None or not _full_recipe(reference, settings):
        lines.append(f"{goal}: **not measured** (the full reference recipe did not run in this benchmark)")
    elif math.isinf(reached):
        lines.append(f"{goal}: **not met** (not reached with most seeds)")
    else:
        total = _median(reference["train_seconds"])
        share = reached / total
        lines.append(
            f"{goal}: **{'met' if share <= TARGET_SHARE_OF_REFERENCE else 'not met'}** ({share:.3f}: "
            f"{reached:,.0f} s of {total:,.0f} s)"
        )
    speed = task3["inference_images_per_second_batch512"]
    lines.append(
        f"at least {TARGET_INFERENCE_BATCH512:,.0f} images/s at batch 512: "
        f"**{'met' if speed >= TARGET_INFERENCE_BATCH512 else 'not met'}** ({speed:,.0f})"
    )
    explained = task3.get("explanation")
    if explained:
        margins = [e["accuracy_15_random"] - e["accuracy_15_deleted"] for e in explained.values()]
        lines.append(
            f"Grad-CAM faithful: deleting the top 15 % of pixels costs at least {100 * TARGET_FAITHFUL_MARGIN:g} "
            f"points more than 15 % random pixels with every seed: "
            f"**{'met' if min(margins) >= TARGET_FAITHFUL_MARGIN else 'not met'}** "
            f"({' / '.join(f'{100 * m:.1f}' for m in margins)} points)"
        )
    return lines + robustness_target_lines(task3) + corruption_target_lines(task3)


def task2_target_lines(task2: dict[str, Any], settings: BenchSettings) -> list[str]:
    """The Task 2 model's targets, each with "met", "not met" or "not measured" and the figures that decide it."""
    accuracy, errors = task2["test_accuracy"], task2["test_errors"]
    trained_on = (
        "trained on all training rows"
        if settings.train_rows == "all"
        else "trained on the grouped split's training side"
    )
    lines = [
        f"test accuracy at least {TARGET_TASK2_ACCURACY:.3f} with every seed: "
        f"**{'met' if all(a >= TARGET_TASK2_ACCURACY for a in accuracy) else 'not met'}** "
        f"({trained_on}; {' / '.join(f'{a:.4f}' for a in accuracy)}, errors per seed {' / '.join(str(n) for n in errors)})"
    ]
    goal = f"grouped validation accuracy within {TARGET_TASK2_GAP_POINTS:g} points of the test accuracy with every seed"
    gaps = task2.get("val_test_gap") or [None]
    if any(gap is None for gap in gaps):
        lines.append(
            f"{goal}: **not measured** (no validation images left out: run with `--train-rows split`)"
        )
    else:
        points = [100 * gap for gap in gaps]
        met = all(abs(p) <= TARGET_TASK2_GAP_POINTS for p in points)
        lines.append(
            f"{goal}: **{'met' if met else 'not met'}** (validation − test, points per seed: "
            f"{' / '.join(f'{p:+.2f}' for p in points)})"
        )
    return lines


def _plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    for index, (name, contender) in enumerate(results["contenders"].items()):
        for k, curve in enumerate(contender["curves"].values()):
            ax.plot(
                [p["train_seconds"] for p in curve],
                [p["test_accuracy"] for p in curve],
                marker=".",
                color=f"C{index}",
                alpha=0.9 if k == 0 else 0.5,
                label=name if k == 0 else None,
            )
    for value, style in ((PUBLISHED["task2"], ":"), (PUBLISHED["task3"], "--")):
        ax.axhline(value, color="grey", linestyle=style, linewidth=1, label=f"published {value:.4f}")
    ax.set_xscale("log")
    ax.set_xlabel("training seconds (log scale)")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(max(0.0, min(ax.get_ylim()[0], 0.9)), 1.001)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110)
    plt.close(fig)
