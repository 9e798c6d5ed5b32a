"""The benchmark's Sign-MNIST-C in words: each contender's means per seed, and the Task 3 model's targets."""

from __future__ import annotations

from typing import Any

from .settings import CORRUPTION_TARGETS

__all__ = ["corruption_lines", "corruption_target_lines"]

#: The targets' figures in words.
_WORDS = {
    "held_out_mean_1_3": "mean accuracy over the held-out corruptions at severities 1–3",
    "corruption_mean_1_3": "mean accuracy over every corruption at severities 1–3",
    "corruption_worst_3": "the worst corruption at severity 3",
}


_MEANS = ("corruption_mean_1_3", "held_out_mean_1_3", "corruption_mean_1_5")


def _figure(scores: dict[str, Any], field: str) -> float | None:
    """A score's figure: a number, or the accuracy of a {type: accuracy} worst type."""
    value = scores.get(field)
    return next(iter(value.values())) if isinstance(value, dict) else value


def _worst(scores: dict[str, Any], field: str) -> str:
    ((kind, accuracy),) = scores[field].items()
    return f"{accuracy:.3f} {kind}"


def corruption_lines(results: dict[str, Any]) -> list[str]:
    """A table of every scored contender, per seed: the means at severities 1-3 (all types, held-out
    types), the worst type at 1-3 and at 3, the mean at 1-5, and the named types' mean on the grouped
    validation where the contender did not train on it."""
    scored = {name: c for name, c in results["contenders"].items() if c.get("corruption")}
    if not scored:
        return []
    first = next(iter(next(iter(scored.values()))["corruption"].values()))
    lines = [
        "",
        f"Sign-MNIST-C: camera corruptions at severities 1–5, on {first['images']:,} seeded test "
        "images (held-out types: never trained on nor used for a choice); per seed:",
        "",
        "| contender | mean 1–3 | held-out mean 1–3 | worst 1–3 | worst at 3 | mean 1–5 | validation, named, 1–3 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, contender in scored.items():
        runs = [contender["corruption"][seed] for seed in sorted(contender["corruption"], key=int)]
        validation = contender.get("val_corruption")
        named = (
            " / ".join(
                f"{validation[seed]['corruption_mean_1_3']:.3f}" for seed in sorted(validation, key=int)
            )
            if validation
            else "—"
        )
        mean = {field: " / ".join(f"{r[field]:.3f}" for r in runs) for field in _MEANS}
        worst = {
            field: " / ".join(_worst(r, field) for r in runs)
            for field in ("corruption_worst_1_3", "corruption_worst_3")
        }
        lines.append(
            f"| {name} | {mean['corruption_mean_1_3']} | {mean['held_out_mean_1_3']} "
            f"| {worst['corruption_worst_1_3']} | {worst['corruption_worst_3']} | {mean['corruption_mean_1_5']} "
            f"| {named} |"
        )
    return lines


def corruption_target_lines(task3: dict[str, Any]) -> list[str]:
    """The Task 3 model's Sign-MNIST-C targets, each met (with every seed), not met, or not measured."""
    per_seed = task3.get("corruption")
    if not per_seed:
        return ["Sign-MNIST-C targets: **not measured** (this results.json has no corruption scores)"]
    runs = [per_seed[seed] for seed in sorted(per_seed, key=int)]
    lines = []
    for field, minimum in CORRUPTION_TARGETS.items():
        found = [_figure(run, field) for run in runs]
        verdict = "met" if min(found) >= minimum else "not met"
        lines.append(
            f"{_WORDS[field]}, at least {minimum:g} with every seed: **{verdict}** "
            f"({' / '.join(f'{value:.3f}' for value in found)})"
        )
    return lines
