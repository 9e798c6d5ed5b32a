"""The benchmark's robustness in words: the figures per perturbation and seed, the grouped validation set
against the final networks' test figures, the hard families' score, and the robustness target lines."""

from __future__ import annotations

import statistics
from typing import Any

from .settings import ROBUSTNESS_TARGET_OTHERS, ROBUSTNESS_TARGETS, TARGET_VALIDATION_ROBUSTNESS_POINTS

__all__ = [
    "formatted",
    "hard_family_lines",
    "perturbation_words",
    "robustness_lines",
    "robustness_target_lines",
    "validation_prediction",
    "validation_runs",
]


def formatted(value: float | None, spec: str) -> str:
    """``value`` in ``spec``, or "—" where there is none."""
    return "—" if value is None else format(value, spec)


def _seed_mean(per_seed: dict[str, dict[str, dict[str, float]]], kind: str, strength: str) -> float | None:
    values = [run[kind][strength] for run in per_seed.values() if strength in run.get(kind, {})]
    return statistics.fmean(values) if len(values) == len(per_seed) else None


def validation_runs(contender: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
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
    validation, test = validation_runs(contender)[0], contender.get("robustness")
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
        validation, paired = validation_runs(results["contenders"][name])
        if validation:
            rows.append((f"{name}, grouped validation" + (" (split run)" if paired else ""), validation))
        for label, runs in rows:
            cells = [
                " / ".join(
                    formatted(run.get(kind, {}).get(strength), ".3f") for _, run in sorted(runs.items())
                )
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
        losses = " / ".join(formatted(run["log_loss"], ".3f") for run in runs)
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


def perturbation_words(kind: str, strength: str) -> str:
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
                f"under {perturbation_words(kind, strength)}, at least {minimum:g} with every seed: "
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
            else f"lowest {lowest[0]:.3f}: {perturbation_words(lowest[1], lowest[2])}, seed {lowest[3]}"
        )
        names = ", ".join(perturbation_words(kind, strength) for kind, strength, _ in others)
        lines.append(
            f"under {names}, at least {ROBUSTNESS_TARGET_OTHERS:g} each with every seed: **{overall}** ({shown})"
        )
    validation, paired = validation_runs(task3)
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
        f"{perturbation_words(kind, strength)}: validation {validation[seed][kind][strength]:.3f}, test "
        f"{per_seed[seed][kind][strength]:.3f}"
        + (
            ")"
            if paired
            else "; the final networks train on the validation rows too: pair a run on all rows with this one "
            "by `--validation-from` to measure theirs)"
        )
    ]
