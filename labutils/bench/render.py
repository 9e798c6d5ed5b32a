"""The benchmark's results in words: the Markdown table, its sentences and target lines, and the plot."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from ..recipes import (
    recipe_from_dict,
)
from .settings import (
    PUBLISHED,
    ROBUSTNESS_TARGET_OTHERS,
    ROBUSTNESS_TARGETS,
    TARGET_INFERENCE_BATCH512,
    TARGET_SHARE_OF_REFERENCE,
    TARGET_TASK2_ACCURACY,
    TARGET_TASK2_GAP_POINTS,
    TARGET_VALIDATION_ROBUSTNESS_POINTS,
    BenchSettings,
)
from .summary import _median, time_to_accuracy


def _seed_mean(per_seed: dict[str, dict[str, dict[str, float]]], kind: str, strength: str) -> float | None:
    values = [run[kind][strength] for run in per_seed.values() if strength in run.get(kind, {})]
    return statistics.fmean(values) if len(values) == len(per_seed) else None


def _validation(contender: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
    """The grouped validation's robustness figures set against the contender's test figures, and
    whether they come from a paired split run (the contender's networks are then final networks)."""
    if contender.get("val_robustness"):
        return contender["val_robustness"], False
    if contender.get("split_val_robustness"):
        return contender["split_val_robustness"], True
    return None, False


def validation_prediction(contender: dict[str, Any]) -> dict[str, Any] | None:
    """How far the grouped validation's robustness figures (mean over the seeds) lie from the test's.

    ``None`` unless the contender has both: ``val_robustness`` for models that did not train on the
    validation rows, else ``split_val_robustness`` from a paired split run (``--validation-from``).
    Otherwise the largest gap in points and where it is, with the two means there.
    """
    validation, test = _validation(contender)[0], contender.get("robustness")
    if not validation or not test or sorted(validation) != sorted(test):
        return None
    gaps = []
    for kind, grid in next(iter(test.values())).items():
        for strength in grid:
            val_mean, test_mean = _seed_mean(validation, kind, strength), _seed_mean(test, kind, strength)
            if val_mean is not None and test_mean is not None:
                gaps.append((abs(val_mean - test_mean), kind, strength, val_mean, test_mean))
    if not gaps:
        return None
    gap, kind, strength, val_mean, test_mean = max(gaps)
    return {
        "points": 100 * gap,
        "kind": kind,
        "strength": strength,
        "validation": val_mean,
        "test": test_mean,
    }


def _robustness_intro(results: dict[str, Any], test_images: int) -> str:
    """The sentence above the robustness table: what it scores, and whose grouped validation is below."""
    sentence = (
        f"Robustness: test accuracy per seed on all {test_images:,} test images, under each perturbation "
        "at the strength its target names (`mixed` 1: a mild camera, every perturbation at once)"
    )
    counts = next(
        (
            c["val_robustness_images"]
            for c in results["contenders"].values()
            if c.get("val_robustness_images")
        ),
        None,
    )
    if counts:
        per_seed = " / ".join(f"{counts[seed]:,}" for seed in sorted(counts, key=int))
        return (
            f"{sentence}; for a contender that did not train on the grouped validation rows, its accuracy "
            f"on all of them below ({per_seed} images per seed)."
        )
    if results.get("validation_from"):
        return (
            f"{sentence}; below each contender, the grouped validation's figures of the split run paired "
            f"with this one (`--validation-from {results['validation_from']['folder']}`: the same recipe "
            "trained without those rows)."
        )
    return f"{sentence}."


def robustness_lines(results: dict[str, Any]) -> list[str]:
    """The robustness table: per contender, test accuracy under each target perturbation, per seed,
    and the grouped validation's figures beside them where the contender did not train on it."""
    scored = {name: c["robustness"] for name, c in results["contenders"].items() if c.get("robustness")}
    if not scored:
        return []
    columns = list(dict.fromkeys((kind, strength) for per_seed in scored.values() for run in per_seed.values()
                                 for kind, grid in run.items() for strength in grid))  # fmt: skip
    columns.sort(key=lambda column: (column[0] != "mixed", column[0], float(column[1])))
    lines = [
        "",
        _robustness_intro(results, results["contenders"][next(iter(scored))]["robustness_images"]),
        "",
        "| contender | "
        + " | ".join(f"{kind.replace('_', ' + ')} {strength}" for kind, strength in columns)
        + " |",
        "| --- |" + " --- |" * len(columns),
    ]
    predictions = []
    for name, per_seed in scored.items():
        rows = [(name, per_seed)]
        validation, paired = _validation(results["contenders"][name])
        if validation:
            rows.append((f"{name}, grouped validation" + (" (split run)" if paired else ""), validation))
        for label, runs in rows:
            cells = [
                " / ".join(_format(run.get(kind, {}).get(strength), ".3f") for _, run in sorted(runs.items()))
                for kind, strength in columns
            ]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        prediction = validation_prediction(results["contenders"][name])
        if prediction is not None:
            label = f"{name}'s final networks" if paired else name
            predictions.append(
                f"{label} within {prediction['points']:.1f} points (the largest gap at "
                f"{prediction['kind'].replace('_', ' + ')} {prediction['strength']}: validation "
                f"{prediction['validation']:.3f}, test {prediction['test']:.3f})"
            )
    if predictions:
        lines += [
            "",
            "The grouped validation predicts the test robustness, mean over the seeds: "
            + "; ".join(predictions)
            + ".",
        ]
    return lines


def hard_family_lines(results: dict[str, Any]) -> list[str]:
    """Per contender that did not train on the grouped validation rows, its errors (and the families
    they fall in) and log-loss per seed on validation's hard families (``val_hard_families``: a clean
    score that moves before an error does, on the kind of photograph that costs the clean test score)."""
    scored = {
        name: c["val_hard_families"]
        for name, c in results["contenders"].items()
        if c.get("val_hard_families")
    }
    if not scored:
        return []
    parts, sizes = [], set()
    for name, per_seed in scored.items():
        runs = [run for _, run in sorted(per_seed.items(), key=lambda item: int(item[0]))]
        sizes.add(tuple((run["families"], run["images"]) for run in runs))
        errors = " / ".join(str(run["errors"]) for run in runs) + " errors"
        if all("families_with_errors" in run for run in runs):  # runs before the count was kept lack it
            errors += " in " + " / ".join(str(run["families_with_errors"]) for run in runs) + " families"
        losses = " / ".join(_format(run["log_loss"], ".3f") for run in runs)
        parts.append(f"{name} {errors}, log-loss {losses}")
    # the hard families are the split's: the same for every contender, per seed where the training rows differ
    per_seed_sizes = next(iter(sizes)) if len(sizes) == 1 else ()
    if per_seed_sizes and len(set(per_seed_sizes)) == 1:
        families, images = per_seed_sizes[0]
        counted = f"{families:,} hard families ({images:,} images"
    elif per_seed_sizes:
        counted = (
            " / ".join(f"{families:,}" for families, _ in per_seed_sizes)
            + " hard families per seed ("
            + " / ".join(f"{images:,}" for _, images in per_seed_sizes)
            + " images"
        )
    else:
        counted = "hard families (as many as each contender's training rows make"
    return [
        "",
        f"On the grouped validation's {counted}; a family is hard when the training image most like it "
        "shows another letter), per seed: " + "; ".join(parts) + ".",
    ]


def _format(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


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
            f"| {c['test_errors_mean']:.1f} | {' / '.join(_format(n, 'd') for n in c.get('test_families_with_errors', []))}"
            f" of {_format(c.get('test_families'), 'd')} | {_median(c['train_seconds']):.0f} "
            f"| {_format(_median(c['seconds_to_reference_final']), '.0f')} to {c['reference_final_accuracy']:.4f}"
            f" ({len(reached)}/{len(c['seeds'])} seeds) | {_format(ratio, '.3f')} "
            f"| {c['inference_images_per_second_batch512']:,.0f} / {c['inference_images_per_second_batch1']:,.0f} "
            f"| {c['peak_rss_mb']:.0f} | {'yes' if c['capped'] else 'no'} |"
        )
    lines += robustness_lines(results)
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
            "initialisation, batch norm trained, for the seconds of the transfer contender's fine-tuning "
            "with the same seed ("
            + ", ".join(f"{seconds:,.0f} s" for seconds in control.get("train_seconds", []))
            + ").",
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
    camera = task3.augmentation
    return (
        f"Reference: {reference.epochs} + {reference.augmented_epochs} epochs (without, then with augmentation); "
        f"ours: {task2.epochs} epochs for Task 2, then {task3.epochs} augmented epochs for Task 3"
        + (
            f" (with camera blur up to σ {camera.blur:g} px and noise up to σ {camera.noise:g})"
            if camera.blur or camera.noise
            else ""
        )
        + f" keeping {kept}, width {task2.width}, "
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
    errors = task3["test_errors"]
    lines = [
        f"every test image right with every seed: **{'met' if all(n == 0 for n in errors) else 'not met'}** "
        f"(errors per seed {' / '.join(str(n) for n in errors)})"
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
    return lines + robustness_target_lines(task3)


def _perturbation(kind: str, strength: str) -> str:
    return "the mixed camera at 1" if kind == "mixed" else f"{kind.replace('_', ' + ')} {strength}"


def robustness_target_lines(task3: dict[str, Any]) -> list[str]:
    """The Task 3 model's robustness targets (``ROBUSTNESS_TARGETS``, with every seed), and how close
    the grouped validation's figures lie to the test's where it did not train on those rows."""
    from ..perturb import TARGET_STRENGTHS

    per_seed = task3.get("robustness")
    if not per_seed:
        return ["robustness targets: **not measured** (this results.json has no robustness figures)"]
    seeds = sorted(per_seed, key=int)

    def figures(kind: str, strength: str) -> list[float] | None:
        found = [per_seed[seed].get(kind, {}).get(strength) for seed in seeds]
        return None if any(figure is None for figure in found) else found

    def verdict(found: list[float] | None, minimum: float) -> str:
        return "not measured" if found is None else "met" if min(found) >= minimum else "not met"

    lines, others = [], []
    for kind, grid in TARGET_STRENGTHS.items():
        for strength in (f"{value:g}" for value in grid):
            found = figures(kind, strength)
            if (kind, strength) not in ROBUSTNESS_TARGETS:
                others.append((kind, strength, found))
                continue
            minimum = ROBUSTNESS_TARGETS[kind, strength]
            shown = "not scored with every seed" if found is None else " / ".join(f"{f:.3f}" for f in found)
            lines.append(
                f"under {_perturbation(kind, strength)}, at least {minimum:g} with every seed: "
                f"**{verdict(found, minimum)}** ({shown})"
            )
    if others:
        verdicts = {verdict(found, ROBUSTNESS_TARGET_OTHERS) for _, _, found in others}
        overall = next(word for word in ("not measured", "not met", "met") if word in verdicts)
        scored = [(f, kind, strength, seed) for kind, strength, found in others if found is not None
                  for seed, f in zip(seeds, found)]  # fmt: skip
        lowest = min(scored) if scored else None
        shown = (
            "none scored with every seed"
            if lowest is None
            else f"lowest {lowest[0]:.3f}: {_perturbation(lowest[1], lowest[2])}, seed {lowest[3]}"
        )
        names = ", ".join(_perturbation(kind, strength) for kind, strength, _ in others)
        lines.append(
            f"under {names}, at least {ROBUSTNESS_TARGET_OTHERS:g} each with every seed: **{overall}** ({shown})"
        )
    validation, paired = _validation(task3)
    goal = (
        f"the grouped validation within {TARGET_VALIDATION_ROBUSTNESS_POINTS:g} points of the "
        + (
            "final networks' test figures (validation from the paired split run)"
            if paired
            else "same networks' test figures"
        )
        + " at each of these strengths, with every seed"
    )
    if not validation or sorted(validation) != sorted(per_seed):
        return lines + [
            f"{goal}: **not measured** (no validation images left out: run with `--train-rows split`, or "
            "pair this run with one by `--validation-from`)"
        ]
    gaps = [
        (100 * abs(validation[seed][kind][strength] - per_seed[seed][kind][strength]), seed, kind, strength)
        for seed in seeds
        for kind, grid in per_seed[seed].items()
        for strength in grid
        if strength in validation[seed].get(kind, {})
    ]
    if not gaps:
        return lines + [f"{goal}: **not measured** (no strength scored on both)"]
    points, seed, kind, strength = max(gaps)
    met = points <= TARGET_VALIDATION_ROBUSTNESS_POINTS
    return lines + [
        f"{goal}: **{'met' if met else 'not met'}** (largest gap {points:.1f} points, seed {seed} under "
        f"{_perturbation(kind, strength)}: validation {validation[seed][kind][strength]:.3f}, test "
        f"{per_seed[seed][kind][strength]:.3f}"
        + (
            ")"
            if paired
            else "; the final networks train on the validation rows too: pair a run on all rows with this one "
            "by `--validation-from` to measure theirs)"
        )
    ]


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
