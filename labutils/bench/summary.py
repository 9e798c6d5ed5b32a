"""Per-contender summaries over seeds, and ratios against the reference measured in the same run."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from .settings import PUBLISHED, REFERENCE_FINAL


def time_to_accuracy(curve: Sequence[dict[str, float]], target: float) -> tuple[int | None, float | None]:
    """(epoch, training seconds) of the first point of ``curve`` whose test accuracy reaches ``target``.

    ``curve`` holds one dict per evaluated epoch with ``epoch``, ``train_seconds`` and
    ``test_accuracy``, in training order; (None, None) if the target is never reached.
    """
    for point in curve:
        if point["test_accuracy"] >= target:
            return int(point["epoch"]), float(point["train_seconds"])
    return None, None


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _summarise(role: str, per_seed: dict[int, dict[str, Any]]) -> dict[str, Any]:
    seeds = sorted(per_seed)
    runs = [per_seed[seed] for seed in seeds]
    target = REFERENCE_FINAL[role]
    reached = [time_to_accuracy(run["curve"], target) for run in runs]
    to_published = {
        f"{value:.4f}": {
            "epochs": [time_to_accuracy(run["curve"], value)[0] for run in runs],
            "seconds": [time_to_accuracy(run["curve"], value)[1] for run in runs],
        }
        for value in (PUBLISHED["task2"], PUBLISHED["task3"])
    }
    accuracy = [run["test_accuracy"] for run in runs]
    summary = {
        "role": role,
        "seeds": seeds,
        "test_accuracy": accuracy,
        "test_errors": [run["test_errors"] for run in runs],
        "test_families": runs[0].get("test_families"),
        "test_families_with_errors": [run.get("test_families_with_errors") for run in runs],
        "test_log_loss": [run["test_log_loss"] for run in runs],
        "train_seconds": [run["train_seconds"] for run in runs],
        "epochs": [run["epochs"] for run in runs],
        "seconds_to_reference_final": [seconds for _, seconds in reached],
        "epochs_to_reference_final": [epochs for epochs, _ in reached],
        "reference_final_accuracy": target,
        "time_to_published": to_published,
        "test_accuracy_mean": statistics.fmean(accuracy),
        "test_accuracy_min": min(accuracy),
        "test_accuracy_max": max(accuracy),
        "test_errors_mean": statistics.fmean(run["test_errors"] for run in runs),
        "val_test_gap": [run["val_test_gap"] for run in runs],
        "train_images_per_second": [run["train_images_per_second"] for run in runs],
        "inference_images_per_second_batch512": _median(
            [run["inference_images_per_second_batch512"] for run in runs]
        ),
        "inference_images_per_second_batch1": _median(
            [run["inference_images_per_second_batch1"] for run in runs]
        ),
        "peak_rss_mb": max(run["peak_rss_mb"] for run in runs),
        "capped": any(run["capped"] for run in runs),
        "total_weights": runs[0].get("total_weights"),
        "curves": {str(seed): per_seed[seed]["curve"] for seed in seeds},
        # the device each seed trained on (a job saved before devices were recorded has none)
        "devices": {str(seed): per_seed[seed].get("device") for seed in seeds},
    }
    if all("missed_families" in run for run in runs):
        summary["missed_families"] = {str(seed): per_seed[seed]["missed_families"] for seed in seeds}
    summary["robustness"] = {str(seed): per_seed[seed]["robustness"] for seed in seeds}
    summary["robustness_mixed"] = [run["robustness_mixed"] for run in runs]
    summary["robustness_images"] = runs[0]["robustness_images"]
    if all(run.get("val_robustness") for run in runs):
        summary["val_robustness"] = {str(seed): per_seed[seed]["val_robustness"] for seed in seeds}
        summary["val_robustness_images"] = {
            str(seed): per_seed[seed]["val_robustness_images"] for seed in seeds
        }
    if all(run.get("explanation") for run in runs):  # a job saved before explanations were measured has none
        summary["explanation"] = {str(seed): per_seed[seed]["explanation"] for seed in seeds}
    for key in ("corruption", "val_corruption"):  # a job saved before Sign-MNIST-C was scored has none
        if all(run.get(key) for run in runs):
            summary[key] = {str(seed): per_seed[seed][key] for seed in seeds}
    if all(run.get("val_hard_families") for run in runs):
        summary["val_hard_families"] = {str(seed): per_seed[seed]["val_hard_families"] for seed in seeds}
    for key in (
        "train_images",
        "backbone",
        "image_size",
        "pretrained",
        "weights_status",
        "weights_source",
        "epochs_without_augmentation",
    ):
        if key in runs[0]:
            summary[key] = runs[0][key]
    return summary


def _ratios(contenders: dict[str, dict[str, Any]]) -> None:
    """Ratios against the reference measured in the same run (medians over seeds)."""
    reference = contenders.get("reference")
    if reference is None:
        return
    reference_total = _median(reference["train_seconds"])
    for summary in contenders.values():
        seconds = _median(summary["train_seconds"])
        to_final = _median(summary["seconds_to_reference_final"])
        summary["ratios"] = {
            "train_seconds_vs_reference_total": seconds / reference_total if reference_total else None,
            "seconds_to_reference_final_vs_reference_total": (
                to_final / reference_total if to_final is not None and reference_total else None
            ),
            "inference_batch512_vs_reference": (
                summary["inference_images_per_second_batch512"]
                / reference["inference_images_per_second_batch512"]
            ),
        }
