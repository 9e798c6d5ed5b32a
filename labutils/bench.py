"""The benchmark: the seed report's recipe and the project's models, side by side, in one run.

``python -m labutils bench`` trains each contender on the same rows and evaluates it on the test
set after every epoch (that evaluation is excluded from the training seconds). By default those
rows are every labelled training image — the grouped split's two sides together, as the report's
final networks are trained once the recipe has been chosen on the split; ``train_rows="split"``
trains on the split's training side instead and also measures the grouped-validation–test gap:

* ``reference`` — the seed report's network and recipe: Nadam, batch 128, 50 epochs, then 50
  more on augmented batches (rotation 10°, shift 0.05, shear 0.1, zoom 0.075);
* ``task2`` — the project's network as notebook 02 trains it (no augmentation);
* ``task3`` — that same model trained further on augmented batches, as in notebook 03;
* ``transfer`` — notebook 04's fine-tuned configuration: the packaged EfficientNet-Lite0's frozen,
  pooled ImageNet features plus a head (the curve's first point), then the backbone fine-tuned
  (batch norm frozen) on augmented batches (``weights_status`` says which weights it started from);
* ``transfer_control`` — the same network from random initialisation, batch norm trained, for the
  seconds the transfer contender's fine-tuning took with the same seed (its warm-up and cosine
  decay spread over those seconds); it needs ``transfer`` in the same run.

Every contender reports its final-epoch figures (the bench selects nothing on validation data) —
among them how many test families (near-copies of one photograph) it gets at least partly wrong —
the epochs and training seconds until its test accuracy first reached the reference's published
figures, training and inference speed and its process's peak memory. ``--budget`` caps each
contender's whole training (a capped contender still completes one epoch of each phase, and
its results say ``capped``). Each contender and seed
runs in a fresh process (so peak RSS is its own); ratios are taken against the reference
measured in the same run. Results go to ``results.json``, ``results.md`` and a plot.

Each finished job (a contender and seed) is also saved at once to ``OUT/jobs/``, so that a long
run that stops — a crash, a closed session — loses only the job in progress: ``--resume`` reuses
the saved jobs whose settings, budget, data and code match, and the results list them as reused
(their figures were then measured in an earlier run than the others).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import multiprocessing
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .recipes import (
    Augmentation,
    ReferenceRecipe,
    Task2Recipe,
    Task3Recipe,
    TransferRecipe,
    recipe_from_dict,
    replace_field,
)

__all__ = [
    "CONTENDERS",
    "PUBLISHED",
    "BenchSettings",
    "QUICK_SETTINGS",
    "markdown_table",
    "missed_families_sentence",
    "reference_summary",
    "run_bench",
    "target_lines",
    "task2_target_lines",
    "time_to_accuracy",
    "update_readme",
]

#: The seed lab report's published test accuracies.
PUBLISHED = {"task2": 0.9714, "task3": 0.9964, "transfer": 0.8073}
#: What the contenders train on (see :class:`BenchSettings`).
TRAIN_ROWS = ("all", "split")
#: The accuracy each role's ``seconds_to_reference_final`` is measured against.
REFERENCE_FINAL = {
    "reference": 0.9964,
    "task2": 0.9714,
    "task3": 0.9964,
    "transfer": 0.9964,
    "transfer_control": 0.9964,
}
#: The contenders, in the order they run and are listed.
CONTENDERS: tuple[str, ...] = tuple(REFERENCE_FINAL)
#: The benchmark's targets for the Task 3 model (2 CPU cores, real data): at most this share of the
#: full reference recipe's training seconds to reach its published Task 3 accuracy, and this many
#: images per second at batch 512.
TARGET_SHARE_OF_REFERENCE, TARGET_INFERENCE_BATCH512 = 0.1, 5000.0
#: The benchmark's targets for the Task 2 model: this test accuracy with every seed and, trained on the
#: grouped split's training side, a grouped validation accuracy within this many points of it.
TARGET_TASK2_ACCURACY, TARGET_TASK2_GAP_POINTS = 0.999, 1.5
#: How many of a contender's missed test families (most errors first) results.json describes per seed.
MISSED_FAMILIES_LISTED = 5
#: Test images answered one per call for the batch-1 inference figure, and how (results.json's ``batch1_inference``).
BATCH1_IMAGES = 200
BATCH1_METHOD = (
    f"{BATCH1_IMAGES} test images, one per call of the compiled predict function "
    "(`predict_on_batch`, after a warm-up call)"
)


@dataclass(frozen=True)
class BenchSettings:
    """What each contender trains: the recipes the notebooks train with, and which rows.

    The defaults are the full benchmark, the recipes' own defaults (notebooks 02, 03 and 04 build the
    same recipes from the same values). ``train_rows``: "all" trains on the training and validation
    rows together (the report's final fit), "split" on the grouped split's training side only;
    ``train_limit`` caps the training rows (quick runs).
    """

    reference: ReferenceRecipe = ReferenceRecipe()
    task2: Task2Recipe = Task2Recipe()
    task3: Task3Recipe = Task3Recipe()
    transfer: TransferRecipe = TransferRecipe()
    train_rows: str = "all"
    train_limit: int | None = None

    def __post_init__(self) -> None:
        if self.train_rows not in TRAIN_ROWS:
            raise ValueError(f"train_rows must be one of {', '.join(TRAIN_ROWS)}, got {self.train_rows!r}")
        limit = self.train_limit
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValueError(f"train_limit must be a number of rows >= 1 or None, got {limit!r}")
        for name, kind in (
            ("reference", ReferenceRecipe),
            ("task2", Task2Recipe),
            ("task3", Task3Recipe),
            ("transfer", TransferRecipe),
        ):
            if not isinstance(getattr(self, name), kind):
                raise ValueError(
                    f"BenchSettings.{name} must be a {kind.__name__}, got {getattr(self, name)!r}"
                )

    def with_values(self, assignments: dict[str, Any]) -> BenchSettings:
        """A copy with the fields named ``recipe.field`` (or ``train_rows``, ``train_limit``) set, each checked."""
        settings = self
        for name, value in assignments.items():
            try:
                settings = replace_field(settings, name, value)
            except (TypeError, ValueError) as error:
                raise ValueError(f"setting {name}={value!r}: {error}") from None
        return settings


QUICK_SETTINGS = BenchSettings(
    reference=ReferenceRecipe(epochs=1, augmented_epochs=1),
    task2=Task2Recipe(epochs=2, width=8),
    task3=Task3Recipe(epochs=2, ema_momentum=0.5, statistics_images=256),
    transfer=TransferRecipe(
        image_size=32, head_epochs=2, fine_tune_epochs=1, fine_tune_learning_rate=1e-4, statistics_images=256
    ),
    train_limit=600,
)


def time_to_accuracy(curve: Sequence[dict[str, float]], target: float) -> tuple[int | None, float | None]:
    """(epoch, training seconds) of the first point of ``curve`` whose test accuracy reaches ``target``.

    ``curve`` holds one dict per evaluated epoch with ``epoch``, ``train_seconds`` and
    ``test_accuracy``, in training order; (None, None) if the target is never reached.
    """
    for point in curve:
        if point["test_accuracy"] >= target:
            return int(point["epoch"]), float(point["train_seconds"])
    return None, None


# --- the work done in each child process -------------------------------------------------------


def _peak_rss_mb() -> float:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


class _Clock:
    """Training seconds, with the per-epoch test evaluation left out."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.excluded = 0.0

    def seconds(self) -> float:
        return time.perf_counter() - self.start - self.excluded


def _test_curve_callback(clock: _Clock, curve: list, x_test, y_test, budget: float | None, state: dict):
    import keras

    class TestCurve(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            from .evaluation import classification_metrics

            seconds = clock.seconds()
            begin = time.perf_counter()
            metrics = classification_metrics(y_test, self.model.predict(x_test, batch_size=1024, verbose=0))
            curve.append(
                {
                    "epoch": len(curve) + 1,
                    "train_seconds": round(seconds, 3),
                    "test_accuracy": metrics["accuracy"],
                    "test_errors": int(metrics["errors"]),
                    "test_log_loss": metrics["log_loss"],
                }
            )
            clock.excluded += time.perf_counter() - begin
            if budget is not None and seconds >= budget:
                state["capped"] = True
                self.model.stop_training = True

    return TestCurve()


def _missed_families(predicted, data, families, training, limit: int) -> list[dict[str, Any]]:
    """The test families with errors (most errors first, at most ``limit``) and the training images most like them."""
    import numpy as np

    from .evaluation import errors_by_family, family_neighbours, missed_family_records

    table = errors_by_family(data.y_test, predicted, families)
    table = table[table["errors"] > 0].head(limit)
    if table.empty:
        return []
    members = np.isin(families, table.index)
    x_train, y_train = training
    return missed_family_records(
        table,
        family_neighbours(data.x_test[members], data.y_test[members], families[members], x_train, y_train),
    )


#: Test images (a sample seeded with 0, the same for every contender and seed) scored under perturbations.
ROBUSTNESS_IMAGES = 1000


def _robustness(model, data) -> dict[str, dict[str, float]]:
    """Test accuracy under each perturbation at its target strengths (``TARGET_STRENGTHS``), on the seeded sample."""
    import numpy as np

    from .perturb import TARGET_STRENGTHS, robustness_by_model, robustness_table

    count = min(ROBUSTNESS_IMAGES, len(data.x_test))
    sample = np.sort(np.random.default_rng(0).choice(len(data.x_test), count, replace=False))
    table = robustness_table(
        {"model": lambda images: model.predict(images, batch_size=1024, verbose=0)},
        data.x_test[sample],
        data.y_test[sample],
        strengths=TARGET_STRENGTHS,
        seed=0,
    )
    return robustness_by_model(table)["model"]["robustness"]


def _finish(
    model,
    curve: list,
    clock: _Clock,
    images_seen: int,
    state: dict,
    *,
    data,
    families,
    trained_on_validation: bool,
    training: tuple | None = None,
    **extra,
) -> dict[str, Any]:
    """The contender's figures after training (the evaluation here is not counted as training).

    ``families``: the test images' families of near-copies (``near_duplicate_groups``);
    ``trained_on_validation``: no validation figures then (the model has seen those rows);
    ``training``: the (images, class indices) it trained on, to find the training images most like
    each test family it misses (``missed_families``).
    """
    import numpy as np

    from .evaluation import classification_metrics, inference_rate, single_image_rate
    from .models import count_weights

    seconds = curve[-1]["train_seconds"] if curve else clock.seconds()  # training ends with its last epoch
    probabilities = model.predict(data.x_test, batch_size=1024, verbose=0)
    final = classification_metrics(data.y_test, probabilities)
    wrong = probabilities.argmax(axis=1) != data.y_test
    # the grouped validation rows say something only about a model that did not train on them
    val_accuracy = (
        float(np.mean(model.predict(data.x_val, batch_size=1024, verbose=0).argmax(axis=1) == data.y_val))
        if not trained_on_validation
        else None
    )
    batch1 = single_image_rate(model, data.x_test, images=BATCH1_IMAGES)
    robustness = _robustness(model, data)
    return {
        "test_accuracy": final["accuracy"],
        "test_log_loss": final["log_loss"],
        "test_errors": int(final["errors"]),
        "test_families": int(len(np.unique(families))),
        "test_families_with_errors": int(len(np.unique(families[wrong]))),
        "val_accuracy_grouped": val_accuracy,
        "val_test_gap": None if val_accuracy is None else val_accuracy - final["accuracy"],
        "train_seconds": round(seconds, 3),
        "epochs": len(curve),
        "train_images_per_second": images_seen / seconds,
        "inference_images_per_second_batch512": inference_rate(model, data.x_test, batch_size=512),
        "inference_images_per_second_batch1": batch1,
        "curve": curve,
        "capped": bool(state.get("capped")),
        "robustness": robustness,
        "robustness_mixed": robustness["mixed"]["1"],
        "weights": count_weights(model)["total"],
        **(
            {
                "missed_families": _missed_families(
                    probabilities.argmax(axis=1), data, families, training, MISSED_FAMILIES_LISTED
                )
            }
            if training is not None
            else {}
        ),
        **extra,
    }


def _job(job: dict[str, Any]) -> dict[str, Any]:
    """One contender (or Tasks 2+3) for one seed, in a fresh process: returns {role: figures}."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from .inputs import prepare_task_data
    from .split import near_duplicate_groups
    from .training import training_dataset

    settings = recipe_from_dict(BenchSettings, job["settings"], source="the job's settings")
    seed, budget = job["seed"], job["budget"]
    keras.utils.set_random_seed(seed)
    _, _, data = prepare_task_data(
        job["data_dir"], split_kind="grouped", train_limit=settings.train_limit, seed=seed
    )
    if settings.train_rows == "all":
        x_fit, y_fit = data.x_all, data.y_all
    else:
        x_fit, y_fit = data.x_train, data.y_train
    n_train, results = len(x_fit), {}
    finish = functools.partial(
        _finish,
        data=data,
        families=near_duplicate_groups(data.x_test, data.y_test),  # once per job
        trained_on_validation=settings.train_rows == "all",
        train_images=n_train,
        training=(x_fit, y_fit),
    )
    loss = "sparse_categorical_crossentropy"

    def fit(model, dataset, epochs, clock, curve, state, recipe_callbacks=()):
        # the budget counts the contender's whole training; each phase still completes one epoch. The
        # recipe's callbacks run first, so that the curve (and the budget's last epoch) scores what
        # the recipe keeps: with a weight average, the averaged weights and their clean statistics
        # (the recomputing counts as training time)
        if epochs > 0:
            test_curve = _test_curve_callback(clock, curve, data.x_test, data.y_test, budget, state)
            model.fit(dataset, epochs=epochs, verbose=0, callbacks=[*recipe_callbacks, test_curve])

    if job["kind"] == "reference":
        recipe = settings.reference
        model, clock, curve, state = recipe.network(), _Clock(), [], {}
        model.compile(optimizer=recipe.optimizer(), loss=loss, metrics=["accuracy"], jit_compile=False)
        batch = recipe.batch_size
        fit(
            model,
            training_dataset(x_fit, y_fit, batch_size=batch, seed=seed),
            recipe.epochs,
            clock,
            curve,
            state,
        )
        phase1 = len(curve)
        augmented = training_dataset(
            x_fit, y_fit, batch_size=batch, seed=seed, augmentation=recipe.augmentation(seed)
        )
        fit(model, augmented, recipe.augmented_epochs, clock, curve, state)
        results["reference"] = finish(
            model,
            curve,
            clock,
            n_train * len(curve),
            state,
            epochs_without_augmentation=phase1,
        )
    elif job["kind"] == "ours":
        task2, task3 = settings.task2, settings.task3
        model, clock, curve, state = task2.network(), _Clock(), [], {}
        model.compile(optimizer=task2.optimizer(n_train), loss=loss, metrics=["accuracy"], jit_compile=False)
        plain = training_dataset(x_fit, y_fit, batch_size=task2.batch_size, seed=seed)
        fit(model, plain, task2.epochs, clock, curve, state)
        results["task2"] = finish(
            model,
            list(curve),
            clock,
            n_train * len(curve),
            dict(state),
        )
        task2_epochs = len(curve)
        # Task 2's final evaluation is not training
        clock.excluded += clock.seconds() - results["task2"]["train_seconds"]
        model.compile(optimizer=task3.optimizer(n_train), loss=loss, metrics=["accuracy"], jit_compile=False)
        augmented = training_dataset(
            x_fit,
            y_fit,
            batch_size=task3.batch_size,
            seed=seed,
            augmentation=task3.augmentation.pipeline(seed),
        )
        fit(model, augmented, task3.epochs, clock, curve, state, task3.callbacks(x_fit, seed))
        results["task3"] = finish(
            model,
            curve,
            clock,
            n_train * len(curve),
            state,
            epochs_without_augmentation=task2_epochs,
        )
    elif job["kind"] == "transfer":
        from .transfer import build_transfer_model, cached_features, unfreeze

        recipe = settings.transfer
        transfer = build_transfer_model(
            recipe.backbone, image_size=recipe.image_size, weights=recipe.weights, inner_features=False
        )  # as notebook 04 fine-tunes
        clock, curve, state = _Clock(), [], {}  # the weight download or conversion (if any) is not training
        train_features, _ = cached_features(transfer, x_fit)
        transfer.adapt_head(train_features)
        transfer.head.compile(optimizer=recipe.head_optimizer(), loss=loss, metrics=["accuracy"])
        transfer.head.fit(
            train_features, y_fit, batch_size=recipe.batch_size, epochs=recipe.head_epochs, verbose=0
        )
        callback = _test_curve_callback(clock, curve, data.x_test, data.y_test, budget, state)
        callback.set_model(transfer.model)
        callback.on_epoch_end(0)  # the feature-extraction model is the curve's first point
        unfreeze(transfer, recipe.fine_tune_depth)
        transfer.model.compile(
            optimizer=recipe.fine_tune_optimizer(n_train), loss=loss, metrics=["accuracy"], jit_compile=False
        )
        augmented = training_dataset(
            x_fit, y_fit, batch_size=recipe.batch_size, seed=seed, augmentation=Augmentation().pipeline(seed)
        )
        fit(transfer.model, augmented, recipe.fine_tune_epochs, clock, curve, state)
        results["transfer"] = finish(
            transfer.model,
            curve,
            clock,
            n_train * (len(curve) - 1),
            state,
            backbone=recipe.backbone,
            fine_tune_seconds=round(curve[-1]["train_seconds"] - curve[0]["train_seconds"], 3),
            image_size=recipe.image_size,
            pretrained=transfer.pretrained,
            weights_status=transfer.weights_status,
            weights_source=transfer.weights_source,
        )
    elif job["kind"] == "transfer_control":
        from .transfer import build_transfer_model, unfreeze

        recipe = settings.transfer
        control = build_transfer_model(
            recipe.backbone,
            image_size=recipe.image_size,
            weights=None,
            train_batch_norm=True,
            inner_features=False,
        )
        unfreeze(control, "all")
        clock, curve, state, seconds = _Clock(), [], {}, job["seconds"]
        control.model.compile(
            optimizer=recipe.control_optimizer(), loss=loss, metrics=["accuracy"], jit_compile=False
        )
        # the transfer contender's fine-tuning seconds, with the learning rate's decay spread over them
        augmented = training_dataset(
            x_fit, y_fit, batch_size=recipe.batch_size, seed=seed, augmentation=Augmentation().pipeline(seed)
        )
        callbacks = recipe.control_callbacks(seconds, control, x_fit, seed, clock=clock.seconds)
        fit(
            control.model, augmented, 10 * recipe.fine_tune_epochs, clock, curve, state, callbacks
        )  # the seconds end it
        results["transfer_control"] = finish(
            control.model,
            curve,
            clock,
            n_train * len(curve),
            state,
            backbone=recipe.backbone,
            image_size=recipe.image_size,
            pretrained=False,
            weights_status=control.weights_status,
            weights_source=control.weights_source,
        )
    else:
        raise ValueError(f"unknown job kind {job['kind']!r}")
    peak = _peak_rss_mb()
    for figures in results.values():
        figures["peak_rss_mb"] = peak
    return results


def _run_in_child(job: dict[str, Any]) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(_job, (job,))


# --- assembling the results --------------------------------------------------------------------


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
        "weights": runs[0].get("weights"),
        "curves": {str(seed): per_seed[seed]["curve"] for seed in seeds},
    }
    if all("missed_families" in run for run in runs):
        summary["missed_families"] = {str(seed): per_seed[seed]["missed_families"] for seed in seeds}
    if all("robustness" in run for run in runs):  # a saved job from before the field has none
        summary["robustness"] = {str(seed): per_seed[seed]["robustness"] for seed in seeds}
        summary["robustness_mixed"] = [run["robustness_mixed"] for run in runs]
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


def robustness_lines(results: dict[str, Any]) -> list[str]:
    """The robustness table: per contender, test accuracy under each target perturbation, per seed."""
    scored = {name: c["robustness"] for name, c in results["contenders"].items() if c.get("robustness")}
    if not scored:
        return []
    columns = list(dict.fromkeys((kind, strength) for per_seed in scored.values() for run in per_seed.values()
                                 for kind, grid in run.items() for strength in grid))  # fmt: skip
    columns.sort(key=lambda column: (column[0] != "mixed", column[0], float(column[1])))
    lines = [
        "",
        f"Robustness: test accuracy per seed on {ROBUSTNESS_IMAGES:,} test images (seeded sample), "
        "under each perturbation at the strength its target names (`mixed` 1: a mild camera, every "
        "perturbation at once).",
        "",
        "| contender | "
        + " | ".join(f"{kind.replace('_', ' + ')} {strength}" for kind, strength in columns)
        + " |",
        "| --- |" + " --- |" * len(columns),
    ]
    for name, per_seed in scored.items():
        cells = [
            " / ".join(_format(run.get(kind, {}).get(strength), ".3f") for _, run in sorted(per_seed.items()))
            for kind, strength in columns
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _format(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def markdown_table(results: dict[str, Any]) -> str:
    """The headline table of ``results.json`` as Markdown."""
    settings = recipe_from_dict(BenchSettings, results["settings"], source="results.json's settings")
    lines = [
        f"Benchmark of {results['date']} on {results['machine']['cpu_count']} × {results['machine']['cpu_model']}, "
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
    return lines


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


def update_readme(readme: str | Path, table: str, *, section: str = "bench") -> None:
    """Replace the text between the ``<!-- SECTION:begin -->`` and ``<!-- SECTION:end -->`` markers of ``readme``."""
    path = Path(readme)
    text = path.read_text()
    begin, end = f"<!-- {section}:begin -->", f"<!-- {section}:end -->"
    if begin not in text or end not in text:
        raise ValueError(f"{path} has no {begin} … {end} section to fill")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{begin}\n{table}{end}{tail}")


#: The modules whose code decides what a job measures; a saved job is reused only if they are unchanged.
_JOB_CODE = (
    "bench.py",
    "models.py",
    "training.py",
    "inputs.py",
    "callbacks.py",
    "recipes.py",
    "choices.py",
    "layers.py",
    "backbones.py",
    "sources.py",
    "transfer.py",
    "efficientnet_lite.py",
    "torch_legacy.py",
    "evaluation.py",
    "data.py",
    "split.py",
)


def _code_fingerprint() -> str:
    digest = hashlib.sha256()
    for name in _JOB_CODE:
        digest.update(name.encode() + b"\0" + (Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()[:16]


def _job_identity(job: dict[str, Any], sha256: dict[str, str], code: str) -> dict[str, Any]:
    """What must match for a saved job to stand for a new one (not the data folder's path)."""
    return {
        "kind": job["kind"],
        "seed": job["seed"],
        "budget": job["budget"],
        "settings": job["settings"],
        "seconds": job.get("seconds"),
        "data_sha256": sha256,
        "code": code,
    }


def _saved_job(path: Path, identity: dict[str, Any], log: Callable[[str], None]) -> dict[str, Any] | None:
    """The saved figures of a finished job, if ``path`` holds one with this identity."""
    if not path.exists():
        return None
    try:
        saved = json.loads(path.read_text())
        figures, same = saved["figures"], saved["identity"] == json.loads(json.dumps(identity))
    except (ValueError, KeyError, TypeError) as error:
        log(f"[bench] {path} is not a readable saved job ({error}): running the job again")
        return None
    if not same:
        log(f"[bench] {path} was measured with other settings, budget, data or code: running the job again")
        return None
    return {"figures": figures, "finished": saved.get("finished")}


def _save_job(path: Path, identity: dict[str, Any], figures: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(
        json.dumps(
            {
                "identity": identity,
                "finished": datetime.now(UTC).isoformat(timespec="seconds"),
                "figures": figures,
            },
            indent=1,
        )
    )
    partial.replace(path)  # a job file is either whole or absent


def run_bench(
    data_dir: str | Path | None,
    *,
    out: str | Path = "bench",
    seeds: Sequence[int] = (0, 1, 2),
    budget: float | None = None,
    quick: bool = False,
    contenders: Sequence[str] = CONTENDERS,
    settings: BenchSettings | None = None,
    log: Callable[[str], None] = print,
    in_child: bool = True,
    resume: bool = False,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the benchmark and write ``results.json``, ``results.md`` and ``accuracy_vs_seconds.png`` to ``out``.

    Every finished job is saved to ``out/jobs/`` as it ends; with ``resume=True`` the saved jobs
    whose settings, budget, data and code match are reused instead of run again. ``overrides`` sets
    fields of the settings by name (:meth:`BenchSettings.with_values`): ``{"train_rows": "split",
    "task2.width": 16}`` trains on the grouped split's training side, where a few values of one
    field are compared on the grouped validation accuracy; that is how each was chosen.
    """
    from .provenance import machine_info, package_versions
    from .sources import find_data_files

    if budget is not None and budget <= 0:
        raise ValueError(f"--budget must be a positive number of seconds, got {budget}")
    if not seeds:
        raise ValueError("--seeds needs at least one seed")
    unknown = set(contenders) - set(REFERENCE_FINAL)
    if unknown:
        raise ValueError(f"unknown contenders {sorted(unknown)}; choose from {sorted(REFERENCE_FINAL)}")
    if "transfer_control" in contenders and "transfer" not in contenders:
        raise ValueError(
            "transfer_control trains for the seconds of the transfer contender's fine-tuning: "
            "add transfer to --contenders"
        )
    settings = (settings or (QUICK_SETTINGS if quick else BenchSettings())).with_values(overrides or {})
    if quick and data_dir is None:
        from .synthetic import write_standin

        data_dir = write_standin(Path(out) / "standin", 1200, 480, seed=0)
    files = find_data_files(data_dir, download=not quick)
    seeds = list(dict.fromkeys(int(seed) for seed in seeds))
    jobs = []
    if "reference" in contenders:
        jobs.append(("reference", seeds[0]))
    if {"task2", "task3"} & set(contenders):
        jobs += [("ours", seed) for seed in seeds]
    jobs += [
        (kind, seed) for kind in ("transfer", "transfer_control") if kind in contenders for seed in seeds
    ]
    per_role: dict[str, dict[int, dict[str, Any]]] = {}
    started = time.perf_counter()
    jobs_folder, code, reused = Path(out) / "jobs", _code_fingerprint(), []
    for number, (kind, seed) in enumerate(jobs, start=1):
        job = {
            "kind": kind,
            "seed": seed,
            "budget": budget,
            "data_dir": str(files.train.parent),
            "settings": asdict(settings),
        }
        if (
            kind == "transfer_control"
        ):  # the same seconds as the pretrained network's fine-tuning with this seed
            job["seconds"] = per_role["transfer"][seed]["fine_tune_seconds"]
        identity, checkpoint = _job_identity(job, files.sha256, code), jobs_folder / f"{kind}-seed{seed}.json"
        saved = _saved_job(checkpoint, identity, log) if resume else None
        begin = time.perf_counter()
        if saved is not None:
            figures = saved["figures"]
            reused.append({"job": f"{kind} seed {seed}", "finished": saved["finished"]})
            log(
                f"[bench] {kind} seed {seed} (job {number} of {len(jobs)}): reusing the job saved in {checkpoint} "
                f"(finished {saved['finished']})"
            )
        else:
            log(
                f"[bench] {kind} seed {seed} (job {number} of {len(jobs)}, {time.perf_counter() - started:.0f} s into the run) …"
            )
            try:
                figures = _run_in_child(job) if in_child else _job(job)
            except Exception as error:
                done = sorted(path.name for path in jobs_folder.glob("*.json"))
                raise RuntimeError(
                    f"bench job '{kind}' seed {seed} failed ({type(error).__name__}: {error}); the finished jobs "
                    f"{done or '(none)'} are saved in {jobs_folder}: run again with --resume to keep them"
                ) from error
            _save_job(checkpoint, identity, figures)
        for role, result in figures.items():
            if role in contenders:
                per_role.setdefault(role, {})[seed] = result
                log(
                    f"[bench] {role} seed {seed}: test accuracy {result['test_accuracy']:.4f} "
                    f"({result['test_errors']} errors), {result['train_seconds']:.0f} s of training"
                    + (" — capped" if result["capped"] else "")
                )
        log(f"[bench] {kind} seed {seed} done in {time.perf_counter() - begin:.0f} s")
    summaries = {role: _summarise(role, per_role[role]) for role in contenders if role in per_role}
    _ratios(summaries)
    results = {
        "data_source": files.source,
        "data": {
            "folder": str(files.train.parent),
            "checksums": files.checksum_status(),
            "sha256": files.sha256,
        },
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**machine_info(), "python": platform.python_version()},
        "packages": package_versions(),
        "quick": quick,
        "seeds": seeds,
        "budget_seconds": budget,
        "settings": asdict(settings),
        "published": PUBLISHED,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "reused_jobs": reused,
        "batch1_inference": BATCH1_METHOD,
        "contenders": summaries,
    }
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results, indent=2))
    (folder / "results.md").write_text(markdown_table(results))
    _plot(results, folder / "accuracy_vs_seconds.png")
    log(
        f"[bench] wrote {folder / 'results.json'}, results.md and accuracy_vs_seconds.png "
        f"in {results['wall_seconds']:.0f} s"
    )
    return results
