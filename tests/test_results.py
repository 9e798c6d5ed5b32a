"""The results contract: metrics.json written and read with checks, run.json read with them, the seed report's figures."""

from __future__ import annotations

import copy
import json

import pytest

from labutils.bench import PUBLISHED
from labutils.results.registry import NOTEBOOKS
from labutils.results.schema import (
    METRIC_FIELDS,
    SCHEMA_VERSION,
    check_metrics,
    model_record,
    read_notebook_metrics,
    read_run,
    run_models,
)
from labutils.saving import SEED_REPORT, read_task_metrics, write_metrics
from tests.test_index import GPU, METRICS

TEST = {"accuracy": 0.9, "log_loss": 0.3, "f1_weighted": 0.89, "errors": 7}
COUNTS = {"trainable": 90, "non_trainable": 10, "total": 100}


def a_record(**changes) -> dict:
    fields = dict(
        val_accuracy_random=1.0,
        val_accuracy_grouped=0.91,
        train_seconds=12.345,
        epochs=3,
        seed=0,
        model_file="m.keras",
        train_images=19118,
        weight_counts=COUNTS,
        inference_images_per_second=5000.0,
    )
    return model_record(TEST, **{**fields, **changes})


def task2_fields() -> dict:
    document = copy.deepcopy(METRICS["02_cnn"])
    return {field: document[field] for field in NOTEBOOKS["02_cnn"].fields}


def test_a_model_record_has_the_fixed_fields_first_and_refuses_to_shadow_them():
    record = a_record(kept_epoch=2)
    assert tuple(record)[: len(METRIC_FIELDS)] == METRIC_FIELDS and tuple(record)[-1] == "kept_epoch"
    assert (record["train_seconds"], record["total_weights"], record["trainable_weights"]) == (12.35, 100, 90)
    with pytest.raises(ValueError, match=r"\['test_accuracy'\] are fixed fields"):
        a_record(test_accuracy=1.0)


def test_write_metrics_writes_the_schema_and_refuses_a_document_that_breaks_it(tmp_path):
    models = {name: a_record() for name in NOTEBOOKS["02_cnn"].models}
    path = write_metrics(
        tmp_path,
        notebook="02_cnn",
        data_source="synthetic",
        profile="quick",
        models=models,
        device=GPU,
        **task2_fields(),
    )
    document = json.loads(path.read_text())
    assert tuple(document)[:6] == ("schema_version", "notebook", "data_source", "profile", "device", "models")
    assert document["schema_version"] == SCHEMA_VERSION and read_notebook_metrics(path, "02_cnn") == document
    assert document["device"]["description"] == "NVIDIA H100 80GB HBM3 GPU (79.6 GiB)"
    fields = task2_fields()
    del fields["recipe"]
    with pytest.raises(ValueError, match=r"missing \['recipe'\]"):
        write_metrics(
            tmp_path / "a", notebook="02_cnn", data_source="real", profile="full", models=models, **fields
        )
    with pytest.raises(ValueError, match=r"unknown \['weights'\]"):
        write_metrics(
            tmp_path / "b",
            notebook="02_cnn",
            data_source="real",
            profile="full",
            models=models,
            weights=1,
            **task2_fields(),
        )
    with pytest.raises(ValueError, match=r"lacks the models \['compact_cnn_final'\]"):
        write_metrics(
            tmp_path / "c",
            notebook="02_cnn",
            data_source="real",
            profile="full",
            models={"seed_cnn": a_record(), "compact_cnn": a_record()},
            **task2_fields(),
        )
    assert not any((tmp_path / folder).exists() for folder in "abc")  # nothing half-written


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("schema_version"), "has metrics schema 1, this labutils reads schema 4"),
        (lambda d: d.update(schema_version=2), "has metrics schema 2"),
        (lambda d: d.pop("device"), r"missing \['device'\]"),
        (lambda d: d.update(device={"kind": "TPU"}), "the device must be an object with the fields"),
        (lambda d: d["device"].update(kind="TPU"), "Device.kind must be one of CPU, GPU, got 'TPU'"),
        (lambda d: d["device"].update(cpu_cores=0), "Device.cpu_cores must be a whole number"),
        (lambda d: d["device"].update(cpu_model="Intel Xeon"), "description does not match its fields"),
        (lambda d: d.update(notebook="03_augmentation"), "belongs to notebook '03_augmentation'"),
        (
            lambda d: d["models"]["seed_cnn"].pop("train_images"),
            r"model 'seed_cnn' lacks the fields \['train_images'\]",
        ),
        (lambda d: d["models"]["seed_cnn"].update(test_errors="7"), "test_errors must be a number, got '7'"),
        (lambda d: d["models"]["seed_cnn"].update(test_accuracy=True), "test_accuracy must be a number"),
        (lambda d: d["models"]["seed_cnn"].update(model_file=3), "model_file must be a string"),
        (lambda d: d.update(models=[]), "models an object"),
        (
            lambda d: d["models"].update(seed_cnn={"seed": 0, **d["models"]["seed_cnn"]}),
            "must come first, in that order",
        ),
    ],
)
def test_check_metrics_names_the_file_and_what_breaks_the_contract(change, message):
    document = copy.deepcopy(METRICS["02_cnn"])
    change(document)
    with pytest.raises(ValueError, match=message) as error:
        check_metrics(document, "reports/02_cnn/metrics.json", "02_cnn")
    assert str(error.value).startswith("reports/02_cnn/metrics.json")


def test_a_validation_score_and_the_model_file_may_be_empty():
    document = copy.deepcopy(METRICS["02_cnn"])
    document["models"]["seed_cnn"].update(
        val_accuracy_grouped=None, val_accuracy_random=None, model_file=None
    )
    assert check_metrics(document, "x", "02_cnn") is document
    document["models"]["seed_cnn"]["test_accuracy"] = None
    with pytest.raises(ValueError, match="test_accuracy must be a number, got None"):
        check_metrics(document, "x", "02_cnn")


def test_read_task_metrics_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="run notebook 02_cnn first"):
        read_task_metrics(tmp_path, "02_cnn", "real")
    document = copy.deepcopy(METRICS["02_cnn"])
    (tmp_path / "metrics.json").write_text(json.dumps({**document, "data_source": "synthetic"}))
    with pytest.raises(ValueError, match="computed on 'synthetic' data"):
        read_task_metrics(tmp_path, "02_cnn", "real")
    (tmp_path / "metrics.json").write_text(
        json.dumps({key: value for key, value in document.items() if key != "schema_version"})
    )
    with pytest.raises(ValueError, match="schema 1.*run notebook 02_cnn again"):
        read_task_metrics(tmp_path, "02_cnn", "real")
    (tmp_path / "metrics.json").write_text(json.dumps(document))
    with pytest.raises(FileNotFoundError, match=r"m.keras \(model 'seed_cnn'"):
        read_task_metrics(tmp_path, "02_cnn", "real")
    (tmp_path / "m.keras").write_bytes(b"")
    assert read_task_metrics(tmp_path, "02_cnn", "real") == document


def test_a_notebook_of_ones_own_needs_only_a_json_object(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({"anything": 1}))
    assert read_notebook_metrics(tmp_path / "metrics.json", "05_mine") == {"anything": 1}
    with pytest.raises(ValueError, match="has metrics schema 1"):
        read_notebook_metrics(tmp_path / "metrics.json", "02_cnn")
    (tmp_path / "metrics.json").write_text("[1]")
    with pytest.raises(ValueError, match="holds no JSON object"):
        read_notebook_metrics(tmp_path / "metrics.json", "05_mine")


def test_read_run_checks_every_finished_notebooks_metrics(tmp_path):
    entries = [
        {"name": name, "status": "completed", "metrics": copy.deepcopy(metrics)}
        for name, metrics in METRICS.items()
    ]
    entries.append({"name": "05_mine", "status": "completed", "metrics": {"models": {"x": {}}}})
    entries.append({"name": "02_cnn", "status": "failed", "metrics": None})
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"notebooks": entries}))
    run = read_run(path)
    models = [(notebook, model) for notebook, model, _ in run_models(run)]
    assert models[0] == ("02_cnn", "seed_cnn") and ("04_transfer", "vgg16_fine_tuned") in models
    assert len(models) == 8 and "05_mine" not in {notebook for notebook, _ in models}
    del entries[2]["metrics"]["schema_version"]
    path.write_text(json.dumps({"notebooks": entries}))
    with pytest.raises(ValueError, match=r"run.json \(notebook 03_augmentation\) has metrics schema 1"):
        read_run(path)
    path.write_text(json.dumps({"profile": "full"}))
    with pytest.raises(ValueError, match="not a report run record"):
        read_run(path)


def test_the_seed_reports_figures_have_one_definition():
    assert PUBLISHED == {
        "task2": SEED_REPORT.task2_accuracy,
        "task3": SEED_REPORT.task3_accuracy,
        "transfer": SEED_REPORT.task4_accuracy,
    }
    assert (SEED_REPORT.task2_accuracy, SEED_REPORT.task3_accuracy, SEED_REPORT.task4_accuracy) == (
        0.9714,
        0.9964,
        0.8073,
    )


def test_the_results_table_refuses_a_metrics_file_the_report_would_run_again(tmp_path, capsys):
    """`results` reads run.json, and the notebooks' files it was read from must still be those (issue 47, 17)."""
    from labutils.cli.command import main

    entries = [
        {"name": name, "status": "completed", "metrics": copy.deepcopy(metrics)}
        for name, metrics in METRICS.items()
    ]
    (tmp_path / "run.json").write_text(json.dumps({"profile": "full", "notebooks": entries}))
    for entry in entries:
        (tmp_path / entry["name"]).mkdir()
        (tmp_path / entry["name"] / "metrics.json").write_text(json.dumps(entry["metrics"]))
    assert main(["results", "--reports", str(tmp_path)]) == 0
    assert "| 02_cnn | compact_cnn |" in capsys.readouterr().out
    task2 = tmp_path / "02_cnn" / "metrics.json"
    for damage, words in (
        (lambda: task2.write_text(task2.read_text()[:40]), "not valid JSON"),
        (lambda: task2.unlink(), "not found"),
        (
            lambda: task2.write_text(json.dumps({**METRICS["02_cnn"], "profile": "quick"})),
            "differs from the run.json",
        ),
    ):
        damage()
        assert main(["results", "--reports", str(tmp_path)]) == 1
        error = capsys.readouterr().err.strip()
        assert error.startswith("error: ") and str(task2) in error and words in error, error
        assert error.endswith("the report would run 02_cnn again (python -m labutils report --only 02)")
        task2.write_text(json.dumps(METRICS["02_cnn"]))
