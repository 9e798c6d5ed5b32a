"""Every command that cannot go on says so in one ``error:`` line that names the culprit, never a traceback.

A table of failing invocations, each given to the command line's ``main`` as a user's words, each
with the words its one line must contain; one of them also runs as ``python -m labutils ...`` in a
subprocess, where ``--debug`` brings the traceback back.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

Setup = Callable[[Path], list[str]]


def _symlink_loop(tmp: Path) -> list[str]:
    (tmp / "loop").symlink_to(tmp / "loop")
    return ["data", "--data-dir", str(tmp / "loop"), "--no-download"]


def _out_is_a_file(tmp: Path) -> list[str]:
    (tmp / "taken").write_text("not a folder")
    return ["report", "--profile", "quick", "--out", str(tmp / "taken"), "--only", "01"]


def _not_hdf5(tmp: Path) -> list[str]:
    (tmp / "model.h5").write_text("this is not HDF5")
    (tmp / "hand.png").write_bytes(b"")
    return ["predict", str(tmp / "hand.png"), "--model", str(tmp / "model.h5")]


def _not_a_zip(tmp: Path) -> list[str]:
    (tmp / "model.keras").write_text("this is not a zip archive")
    return ["predict", str(tmp / "hand.png"), "--model", str(tmp / "model.keras")]


def _unknown_class(tmp: Path) -> list[str]:
    config = {
        "module": "keras",
        "class_name": "NoSuchLayerAnywhere",
        "config": {},
        "registered_name": "NoSuch>Layer",
    }
    with zipfile.ZipFile(tmp / "odd.keras", "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
    from PIL import Image

    Image.new("L", (28, 28), 100).save(tmp / "hand.png")
    return ["predict", str(tmp / "hand.png"), "--model", str(tmp / "odd.keras")]


def _keras_archive(tmp: Path, members: dict[str, str]) -> list[str]:
    """``odd.keras`` holding ``members`` (deflated), and a picture to predict with it."""
    with zipfile.ZipFile(tmp / "odd.keras", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    from PIL import Image

    Image.new("L", (28, 28), 100).save(tmp / "hand.png")
    return ["predict", str(tmp / "hand.png"), "--model", str(tmp / "odd.keras")]


def _inflating_config(tmp: Path) -> list[str]:
    # 16 MiB and a byte of spaces: a few kB in the archive (issue 47, item 11)
    return _keras_archive(tmp, {"config.json": " " * (16 * 2**20 + 1), "metadata.json": "{}"})


def _nested_config(tmp: Path) -> list[str]:
    return _keras_archive(
        tmp, {"config.json": "[" * 100_000 + "]" * 100_000, "metadata.json": "{}"}
    )  # item 12


def _traversing_member(tmp: Path) -> list[str]:
    return _keras_archive(
        tmp, {"config.json": "{}", "metadata.json": "{}", "../../evil.py": "print(1)"}
    )  # 13


def _wrong_input_shape(tmp: Path) -> list[str]:
    import keras

    inputs = keras.Input((32, 32, 3))
    keras.Model(inputs, keras.layers.Dense(24, activation="softmax")(keras.layers.Flatten()(inputs))).save(
        tmp / "wide.keras"
    )
    from PIL import Image

    Image.new("L", (28, 28), 100).save(tmp / "hand.png")
    return ["predict", str(tmp / "hand.png"), "--model", str(tmp / "wide.keras")]  # item 14


def _model_is_a_folder(tmp: Path) -> list[str]:
    (tmp / "model.keras").mkdir()
    return ["predict", str(tmp / "hand.png"), "--model", str(tmp / "model.keras")]


def _cut_run_json(tmp: Path) -> list[str]:
    (tmp / "reports").mkdir()
    (tmp / "reports" / "run.json").write_text('{"notebooks": [')
    return ["predict", str(tmp / "hand.png"), "--reports", str(tmp / "reports")]


CASES: dict[str, tuple[Setup, list[str]]] = {
    "a data folder that is a symlink loop": (_symlink_loop, ["loop", "cannot be followed"]),
    "a data folder that does not exist": (
        lambda tmp: ["data", "--data-dir", str(tmp / "nowhere"), "--no-download"],
        ["nowhere", "no such folder"],
    ),
    "--out that is an existing file": (_out_is_a_file, ["--out", "taken", "not a folder"]),
    "a .h5 model that is not HDF5": (_not_hdf5, ["model.h5", "not an HDF5 file"]),
    "a .keras model that is not a zip": (_not_a_zip, ["model.keras", "not a Keras model file"]),
    "a model naming an unknown class": (_unknown_class, ["odd.keras", "cannot be loaded"]),
    "a model path that is a folder": (_model_is_a_folder, ["model.keras", "is a folder"]),
    "a config.json that inflates past any model's": (
        _inflating_config,
        ["odd.keras", "config.json inflates to 16,777,217 bytes", "16,777,216"],
    ),
    "a config.json nested too deeply": (_nested_config, ["odd.keras", "nested too deeply"]),
    "a zip member that points outside the archive": (
        _traversing_member,
        ["odd.keras", "'../../evil.py'", "outside"],
    ),
    "a model that takes other inputs": (_wrong_input_shape, ["wide.keras", "(None, 32, 32, 3)", "28x28x1"]),
    "a cut-off run.json": (_cut_run_json, ["run.json", "not valid JSON"]),
    "a deeply nested -p value": (
        lambda tmp: ["report", "--profile", "quick", "-p", "EPOCHS", "[" + "-" * 9_000 + "1]"],
        ["-p EPOCHS", "nested too deeply"],
    ),
    "a -p value longer than any constant": (
        lambda tmp: ["report", "--profile", "quick", "-p", "EPOCHS", "[" * 100_000],
        ["-p EPOCHS", "100,000 characters"],
    ),
    "an empty --only": (lambda tmp: ["report", "--profile", "quick", "--only", ""], ["--only", "empty"]),
    "-p EPOCHS -1": (
        lambda tmp: ["report", "-p", "EPOCHS", "-1"],
        ["EPOCHS", "-1", "out of range", "[1, 1000]"],
    ),
    "-p EPOCHS 1000000000": (
        lambda tmp: ["report", "-p", "EPOCHS", "1000000000"],
        ["EPOCHS", "out of range"],
    ),
    "-p WIDTH 0": (lambda tmp: ["report", "-p", "WIDTH", "0"], ["WIDTH of 02_cnn", "out of range"]),
    "-p VALIDATION_FRACTION 1e999": (
        lambda tmp: ["report", "-p", "VALIDATION_FRACTION", "1e999"],
        ["VALIDATION_FRACTION", "inf", "not a finite number"],
    ),
    "-p EPOCHS None": (lambda tmp: ["report", "-p", "EPOCHS", "None"], ["EPOCHS", "None", "not allowed"]),
    "-p SPLIT_KIND that is not a choice": (
        lambda tmp: ["report", "-p", "SPLIT_KIND", "family"],
        ["SPLIT_KIND", "'family'", "not a choice", "'grouped', 'random'"],
    ),
    "-p POOLING that is not a choice": (
        lambda tmp: ["report", "-p", "POOLING", "average"],
        ["POOLING of 02_cnn", "not a choice", "'blur', 'max'"],
    ),
    "a parameter of a notebook --only leaves out": (
        lambda tmp: ["report", "--only", "01", "-p", "EPOCHS", "3"],
        ["EPOCHS", "belongs to 02_cnn, 03_augmentation", "--only leaves out"],
    ),
    "--batch-size 0": (lambda tmp: ["predict", "x.png", "--batch-size", "0"], ["--batch-size", "from 1 to"]),
    "--batch-size -5": (lambda tmp: ["predict", "x.png", "--batch-size", "-5"], ["--batch-size", "'-5'"]),
}


def _run(arguments: list[str], cwd: Path, debug: bool = False) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key != "LABUTILS_DEBUG"}
    command = [sys.executable, "-m", "labutils", *arguments, *(["--debug"] if debug else [])]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=cwd, env=environment)


@pytest.mark.parametrize("case", list(CASES))
def test_each_failure_is_one_line_that_names_the_culprit(case, tmp_path, monkeypatch, capsys):
    from labutils.cli.command import main

    setup, words = CASES[case]
    arguments = setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LABUTILS_DEBUG", raising=False)
    try:
        status = main(arguments)
    except SystemExit as stop:  # argparse's refusals
        status = stop.code
    stderr = capsys.readouterr().err
    assert status != 0
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:") or "error:" in line]
    assert len(errors) == 1, stderr
    for word in words:
        assert word in errors[0], (word, errors[0])


def test_a_failure_of_python_m_labutils_is_one_line_and_debug_shows_its_traceback(tmp_path):
    arguments = _not_a_zip(tmp_path)
    completed = _run(arguments, tmp_path)
    assert completed.returncode == 1 and completed.stderr.count("error:") == 1, completed.stderr
    assert "Traceback" not in completed.stderr


def test_debug_shows_the_traceback_of_the_same_failure(tmp_path):
    arguments = _not_a_zip(tmp_path)
    completed = _run(arguments, tmp_path, debug=True)
    assert (
        completed.returncode != 0
        and "Traceback" in completed.stderr
        and "not a Keras model file" in completed.stderr
    )


def test_a_data_folder_that_cannot_be_read_is_named(tmp_path, monkeypatch):
    # root reads every folder, so the refusal is simulated where the listing is made
    from labutils.data import DataNotFoundError
    from labutils.sources import find_data_files

    folder = tmp_path / "locked"
    folder.mkdir()
    original = Path.iterdir

    def refuse(self):
        if self == folder:
            raise PermissionError(13, "Permission denied", str(self))
        return original(self)

    monkeypatch.setattr(Path, "iterdir", refuse)
    with pytest.raises(DataNotFoundError, match=r"locked: the folder cannot be read \(Permission denied\)"):
        find_data_files(folder)


def test_an_output_folder_that_cannot_be_written_is_named(tmp_path, monkeypatch, standin_dir):
    from labutils.report import run_report

    out = tmp_path / "readonly"
    original = Path.mkdir

    def refuse(self, *args, **kwargs):
        if self == out:
            raise PermissionError(13, "Permission denied", str(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(
        ValueError, match=r"--out .*readonly: cannot create the output folder \(Permission denied\)"
    ):
        run_report("quick", data_dir=standin_dir, out=out, log=lambda line: None)


@pytest.mark.parametrize("damage", ["broken link", "folder"])
def test_a_data_file_that_is_not_a_file_is_named_for_what_it_is(tmp_path, standin_dir, damage):
    """Not "does not hold sign_mnist_train.csv ...; found: ['sign_mnist_train.csv', ...]" (issue 47, item 16)."""
    from labutils.data import DataNotFoundError
    from labutils.sources import find_data_files

    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(standin_dir / "sign_mnist_test.csv", folder)
    if damage == "broken link":
        (folder / "sign_mnist_train.csv").symlink_to(tmp_path / "elsewhere.csv")
        words = "sign_mnist_train.csv is a broken symbolic link (its target does not exist)"
    else:
        (folder / "sign_mnist_train.csv").mkdir()
        words = "sign_mnist_train.csv is a folder"
    with pytest.raises(DataNotFoundError) as caught:
        find_data_files(folder)
    assert str(caught.value) == f"{folder}: {words} (each data file must be a regular file)"
