"""``python -m labutils``: help, the data command's summary, and one-line errors without tracebacks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """``python -m labutils ARGS`` run in this process, which has loaded TensorFlow once already."""
    from labutils.cli.command import main

    monkeypatch.delenv("LABUTILS_DEBUG", raising=False)

    def run(*arguments: str) -> subprocess.CompletedProcess:
        try:
            status = main(list(arguments))
        except SystemExit as stop:  # argparse: --help, and its refusals
            status = stop.code or 0
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(["labutils", *arguments], status, captured.out, captured.err)

    return run


def test_python_m_labutils_is_the_command_line():
    result = subprocess.run([sys.executable, "-m", "labutils", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "usage: python -m labutils" in result.stdout, result.stderr


def test_help_lists_the_commands_and_their_options(run_cli):
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("data", "report", "standin"):
        assert command in result.stdout
    report_help = run_cli("report", "--help").stdout
    for option in ("--profile", "--data-dir", "--out", "--only"):
        assert option in report_help
    assert "--data-dir" in run_cli("data", "--help").stdout
    bench_help = run_cli("bench", "--help").stdout
    for option in ("--train-rows", "--set", "--resume"):
        assert option in bench_help


def test_bench_rejects_a_bad_override_in_one_line_before_training(run_cli, tmp_path):
    result = run_cli("bench", "--quick", "--out", str(tmp_path), "--set", "task3.ema_momentum=1.5")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert (
        "setting task3.ema_momentum=1.5: Task3Recipe.ema_momentum must be a number in [0, 1), got 1.5"
        in result.stderr
    )
    assert not (tmp_path / "jobs").exists()
    for option, words in (
        ("task2.widht=16", "Task2Recipe has no field 'widht'"),
        ("task2.width", "write it as RECIPE.FIELD=VALUE"),
    ):
        result = run_cli("bench", "--quick", "--out", str(tmp_path), "--set", option)
        assert result.returncode != 0 and words in result.stderr and "Traceback" not in result.stderr


def test_data_command_describes_the_standin(run_cli, standin_dir):
    result = run_cli("data", "--data-dir", str(standin_dir))
    assert result.returncode == 0, result.stderr
    assert "synthetic" in result.stdout and "1200 rows, 24 classes" in result.stdout
    assert "480 rows" in result.stdout and "SYNTHETIC STAND-IN" in result.stdout


def test_data_command_json(run_cli, standin_dir):
    result = run_cli("data", "--data-dir", str(standin_dir), "--json")
    summary = json.loads(result.stdout)
    assert summary["data_source"] == "synthetic" and summary["train"]["rows"] == 1200


@pytest.mark.parametrize("damage", ["missing folder", "bad cell"])
def test_data_command_errors_in_one_line(run_cli, standin_dir, tmp_path, damage):
    folder = tmp_path / "data"
    if damage == "bad cell":
        folder.mkdir()
        shutil.copy(standin_dir / "sign_mnist_train.csv", folder)
        lines = (standin_dir / "sign_mnist_test.csv").read_text().splitlines()
        lines[3] = "9" + lines[3][lines[3].index(",") :]
        (folder / "sign_mnist_test.csv").write_text("\n".join(lines) + "\n")
    result = run_cli("data", "--data-dir", str(folder))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    expected = (
        "data: no such folder (it should hold sign_mnist_train.csv"
        if damage == "missing folder"
        else "row 3 (line 4), column 'label': label 9"
    )
    assert expected in result.stderr


def test_standin_command_writes_a_loadable_folder(run_cli, tmp_path):
    result = run_cli("standin", "--out", str(tmp_path / "s"), "--train-rows", "48", "--test-rows", "24")
    assert result.returncode == 0, result.stderr
    summary = json.loads(run_cli("data", "--data-dir", str(tmp_path / "s"), "--json").stdout)
    assert summary["train"]["rows"] == 48 and summary["test"]["rows"] == 24
