"""The work of one job (a contender and seed), done in a fresh process: train, then measure."""

from __future__ import annotations

import functools
import math
import os
import sys
import time
from typing import Any

from ..recipes import Augmentation, steps_per_epoch
from .settings import (
    BATCH1_IMAGES,
    BENCH_SPLIT,
    EXPLANATION_IMAGES,
    MISSED_FAMILIES_LISTED,
    BenchSettings,
    recipe_from_dict,
)


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
            from ..metrics import classification_metrics

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

    from ..metrics import errors_by_family, family_neighbours, missed_family_records

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


def _robustness(model, images, labels) -> dict[str, dict[str, float]]:
    """Accuracy under each perturbation at its target strengths (``TARGET_STRENGTHS``), on every one
    of ``images``: a sample of 1,000 would leave a figure near 0.95 about 0.7 points of sampling error,
    a quarter of the 3 points by which the grouped validation may miss the test."""
    from ..perturb import TARGET_STRENGTHS, robustness_by_model, robustness_table

    table = robustness_table(
        {"model": lambda batch: model.predict(batch, batch_size=1024, verbose=0)},
        images,
        labels,
        strengths=TARGET_STRENGTHS,
        seed=0,
    )
    return robustness_by_model(table)["model"]["robustness"]


def _explanation(model, images, labels) -> dict[str, Any]:
    """What the network looks at, measured as the notebooks do: Grad-CAM's deletion test against random
    pixels and its maps' correlation under the mild camera, on a seeded sample of ``EXPLANATION_IMAGES``."""
    import numpy as np

    from ..explain import deletion_curve, deletion_scores, grad_cam, map_correlation
    from ..perturb import perturb

    start = time.perf_counter()
    count = min(EXPLANATION_IMAGES, len(images))
    sample = np.sort(np.random.default_rng(0).choice(len(images), count, replace=False))
    x, y = images[sample], labels[sample]
    maps = grad_cam(model, x)
    camera = grad_cam(model, perturb(x, "mixed", 1.0, seed=0))
    return {
        "method": "grad_cam",
        **deletion_scores(deletion_curve(model, x, y, maps, seed=0)),
        "stability_mixed": map_correlation(maps, camera),
        "images": count,
        "seconds": round(time.perf_counter() - start, 3),
    }


def _finish(
    model,
    curve: list,
    clock: _Clock,
    state: dict,
    *,
    data,
    families,
    trained_on_validation: bool,
    train_images: int,
    corruption_images: int,
    training: tuple | None = None,
    trained_epochs: int | None = None,
    validation_families: tuple | None = None,
    **extra,
) -> dict[str, Any]:
    """The contender's figures after training (the evaluation here is not counted as training).

    ``families``: the test images' families of near-copies (``near_duplicate_families``);
    ``trained_on_validation``: no validation figures then (the model has seen those rows);
    ``training``: the (images, class indices) it trained on, to find the training images most like
    each test family it misses (``missed_families``); ``validation_families``: the grouped
    validation images' (families, hard-family mask), for the figures on its hard families.
    """
    import numpy as np

    from ..metrics import classification_metrics, inference_rate
    from ..models import count_weights
    from .measures import corruption_scores, hard_family_score, single_image_rate

    seconds = curve[-1]["train_seconds"] if curve else clock.seconds()  # training ends with its last epoch
    probabilities = model.predict(data.x_test, batch_size=1024, verbose=0)
    final = classification_metrics(data.y_test, probabilities)
    wrong = probabilities.argmax(axis=1) != data.y_test
    # the grouped validation rows say something only about a model that did not train on them
    val_probabilities = (
        None if trained_on_validation else model.predict(data.x_val, batch_size=1024, verbose=0)
    )
    val_accuracy = (
        None if val_probabilities is None else float(np.mean(val_probabilities.argmax(axis=1) == data.y_val))
    )
    batch1 = single_image_rate(model, data.x_test, images=BATCH1_IMAGES)
    robustness = _robustness(model, data.x_test, data.y_test)
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
        "train_images": train_images,
        # every point of the curve is an epoch on all the images, unless the contender says how many are
        "train_images_per_second": train_images * (trained_epochs or len(curve)) / seconds,
        "inference_images_per_second_batch512": inference_rate(model, data.x_test, batch_size=512),
        "inference_images_per_second_batch1": batch1,
        "curve": curve,
        "capped": bool(state.get("capped")),
        "robustness": robustness,
        "robustness_mixed": robustness["mixed"]["1"],
        "robustness_images": int(len(data.x_test)),
        # what the grouped validation predicts of the test figures above, for a model that did not train on it
        "val_robustness": None if trained_on_validation else _robustness(model, data.x_val, data.y_val),
        "val_robustness_images": None if trained_on_validation else int(len(data.x_val)),
        "explanation": _explanation(model, data.x_test, data.y_test),
        "corruption": corruption_scores(
            model, data.x_test, data.y_test, count=corruption_images, named_only=False
        ),
        "val_corruption": None
        if trained_on_validation
        else corruption_scores(model, data.x_val, data.y_val, count=corruption_images, named_only=True),
        "val_hard_families": (
            None
            if val_probabilities is None or validation_families is None
            else hard_family_score(data.y_val, val_probabilities, *validation_families)
        ),
        "total_weights": count_weights(model)["total"],
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

    from ..runtime.device import training_device
    from ..session import prepare_task_data
    from ..split import near_duplicate_families
    from ..training import training_dataset
    from .measures import hard_families

    settings = recipe_from_dict(BenchSettings, job["settings"], source="the job's settings")
    seed, budget = job["seed"], job["budget"]
    keras.utils.set_random_seed(seed)
    _, split, data = prepare_task_data(
        job["data_dir"],
        split_kind=BENCH_SPLIT["kind"],
        validation_fraction=BENCH_SPLIT["validation_fraction"],
        split_seed=BENCH_SPLIT["seed"],
        family_threshold=BENCH_SPLIT["family_threshold"],
        train_limit=settings.train_limit,
        seed=seed,
    )
    if settings.train_rows == "all":
        x_fit, y_fit = data.x_all, data.y_all
    else:
        x_fit, y_fit = data.x_train, data.y_train
    n_train, results = len(x_fit), {}
    validation_families = None
    if settings.train_rows != "all":  # the validation rows are unseen: their hard families are scored too
        families = split.families[split.validation_index]
        validation_families = (
            families,
            hard_families(data.x_val, data.y_val, families, data.x_train, data.y_train),
        )
    finish = functools.partial(
        _finish,
        data=data,
        families=near_duplicate_families(data.x_test, data.y_test),  # once per job
        trained_on_validation=settings.train_rows == "all",
        train_images=n_train,
        corruption_images=settings.corruption_images,
        training=(x_fit, y_fit),
        validation_families=validation_families,
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
        model.compile(optimizer=recipe.optimizer(), loss=loss, metrics=["accuracy"])
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
        results["reference"] = finish(model, curve, clock, state, epochs_without_augmentation=phase1)
    elif job["kind"] == "ours":
        task2, task3 = settings.task2, settings.task3
        model, clock, curve, state = task2.network(), _Clock(), [], {}
        model.compile(optimizer=task2.optimizer(n_train), loss=loss, metrics=["accuracy"])
        plain = training_dataset(x_fit, y_fit, batch_size=task2.batch_size, seed=seed)
        fit(model, plain, task2.epochs, clock, curve, state)
        results["task2"] = finish(model, list(curve), clock, dict(state))
        task2_epochs = len(curve)
        # Task 2's final evaluation is not training
        clock.excluded += clock.seconds() - results["task2"]["train_seconds"]
        model.compile(optimizer=task3.optimizer(n_train), loss=loss, metrics=["accuracy"])
        augmented = training_dataset(
            x_fit,
            y_fit,
            batch_size=task3.batch_size,
            seed=seed,
            augmentation=task3.augmentation.pipeline(seed),
        )
        fit(model, augmented, task3.epochs, clock, curve, state, task3.callbacks(x_fit, seed))
        results["task3"] = finish(model, curve, clock, state, epochs_without_augmentation=task2_epochs)
    elif job["kind"] == "transfer":
        from ..transfer import build_transfer_model, cached_features, unfreeze

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
        transfer.model.compile(optimizer=recipe.fine_tune_optimizer(n_train), loss=loss, metrics=["accuracy"])
        augmented = training_dataset(
            x_fit, y_fit, batch_size=recipe.batch_size, seed=seed, augmentation=Augmentation().pipeline(seed)
        )
        fit(transfer.model, augmented, recipe.fine_tune_epochs, clock, curve, state)
        results["transfer"] = finish(
            transfer.model,
            curve,
            clock,
            state,
            trained_epochs=len(curve) - 1,  # the curve's first point is the feature-extraction model
            backbone=recipe.backbone,
            fine_tune_seconds=round(curve[-1]["train_seconds"] - curve[0]["train_seconds"], 3),
            image_size=recipe.image_size,
            pretrained=transfer.pretrained,
            weights_status=transfer.weights_status,
            weights_source=transfer.weights_source,
        )
    elif job["kind"] == "transfer_control":
        from ..transfer import build_transfer_model, unfreeze

        recipe = settings.transfer
        control = build_transfer_model(
            recipe.backbone,
            image_size=recipe.image_size,
            weights=None,
            train_batch_norm=True,
            inner_features=False,
        )
        unfreeze(control, "all")
        clock, curve, state = _Clock(), [], {}
        steps = recipe.control_steps(len(x_fit))  # the fine-tuning's seconds, in steps calibrated once
        control.model.compile(optimizer=recipe.control_optimizer(steps), loss=loss, metrics=["accuracy"])
        augmented = training_dataset(
            x_fit, y_fit, batch_size=recipe.batch_size, seed=seed, augmentation=Augmentation().pipeline(seed)
        )
        callbacks = recipe.control_callbacks(steps, control, x_fit, seed)
        epochs = math.ceil(steps / steps_per_epoch(len(x_fit), recipe.batch_size))
        fit(control.model, augmented, epochs, clock, curve, state, callbacks)
        results["transfer_control"] = finish(
            control.model,
            curve,
            clock,
            state,
            backbone=recipe.backbone,
            image_size=recipe.image_size,
            pretrained=False,
            weights_status=control.weights_status,
            weights_source=control.weights_source,
        )
    else:
        raise ValueError(f"unknown job kind {job['kind']!r}")
    peak, device = _peak_rss_mb(), training_device().as_record()
    for figures in results.values():
        figures["peak_rss_mb"] = peak
        figures["device"] = device
    return results


if __name__ == "__main__":  # python -m labutils.bench.jobs JOB.json FIGURES.json: one job, in this process
    import json
    from pathlib import Path

    figures = _job(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")))
    Path(sys.argv[2]).write_text(json.dumps(figures), encoding="utf-8")
