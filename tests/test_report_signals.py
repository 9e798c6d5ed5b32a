"""The report runner under signals, kills, a second run and damaged records: it never lies.

Each test drives ``python -m labutils report`` as a user's shell would, with real signals to
the process, and reads back ``run.json`` and the files beside it.
"""

from __future__ import annotations

import fcntl
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from labutils.report import run_report
from tests.notebook_texts import GOOD, SLOW


@pytest.fixture
def notebooks(tmp_path: Path) -> Path:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    (folder / "01_first.py").write_text(GOOD)
    (folder / "02_second.py").write_text(GOOD)
    return folder


def _start(notebooks: Path, data: Path, out: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "labutils", "report", "--profile", "quick", "--data-dir", str(data),
               "--notebooks", str(notebooks), "--out", str(out)]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(runner: subprocess.Popen, text: str, seconds: float = 240) -> str:
    lines, deadline = [], time.monotonic() + seconds
    for line in runner.stdout:
        lines.append(line)
        if text in line:
            return "".join(lines)
        assert time.monotonic() < deadline, "".join(lines)
    raise AssertionError(f"{text!r} never came:\n" + "".join(lines))


def _complete(notebook_file: Path) -> bool:
    """Whether papermill finished every cell of this executed notebook."""
    cells = nbformat.read(notebook_file, as_version=4).cells
    return all(cell.metadata.get("papermill", {}).get("status") == "completed" for cell in cells)


def _entries(out: Path) -> dict[str, dict]:
    return {entry["name"]: entry for entry in json.loads((out / "run.json").read_text())["notebooks"]}


@pytest.mark.parametrize(("signal_name", "status"), [("SIGTERM", 143), ("SIGHUP", 129)])
def test_sigterm_and_sighup_stop_a_run_as_ctrl_c_does(notebooks, standin_dir, tmp_path, signal_name, status):
    # with a profile cell, as the project's notebooks have: papermill's parameters tag moves onto it
    (notebooks / "02_second.py").write_text(
        SLOW.replace("\n# %%\n", '\n# %% tags=["profile"]\nquick = {}\n\n# %%\n', 1)
    )
    out = tmp_path / "out"
    runner = _start(notebooks, standin_dir, out)
    before = _wait_for(runner, "[02_second] running")
    # the runner tells which cell runs (the parameters, the profile cell, papermill's injected parameters, two cells)
    during = _wait_for(runner, "[02_second] cell ", seconds=60)
    progress = during.splitlines()[-1]
    assert "Passed unknown parameter" not in before + during and "Unable to parse" not in during, during
    assert re.fullmatch(r"\[02_second\] cell 5 of 5 running for \d+ s \(\d+ s into the notebook\)", progress)
    runner.send_signal(getattr(signal, signal_name))
    rest, _ = runner.communicate(timeout=60)
    assert runner.returncode == status, rest
    assert f"interrupted ({signal_name})" in rest
    # the kernel, shut down in the middle of a cell, does not print its failed reply's traceback
    assert "Traceback" not in rest and "ZMQError" not in rest, rest
    run = json.loads((out / "run.json").read_text())
    assert run["state"] == "interrupted" and run["ok"] is False
    assert [entry["status"] for entry in run["notebooks"]] == ["completed", "interrupted"]
    assert signal_name in run["notebooks"][1]["error"]


@pytest.mark.parametrize("delay", [0.0, 3.0, 8.0])
def test_a_kill_during_a_rerun_never_leaves_completed_beside_a_partial_notebook(
    notebooks, standin_dir, tmp_path, delay
):
    out = tmp_path / "out"
    first = run_report("quick", data_dir=standin_dir, out=out, notebooks_dir=notebooks, log=lambda line: None)
    assert first.ok
    (notebooks / "02_second.py").write_text(SLOW)  # the rerun executes 02 over its complete result
    runner = _start(notebooks, standin_dir, out)
    _wait_for(runner, "[02_second] running")
    time.sleep(delay)
    runner.kill()
    runner.communicate(timeout=60)
    time.sleep(2)  # the kernel notices its parent is gone
    entries = _entries(out)
    assert entries["01_first"]["status"] in {"completed", "cached"}
    second = entries["02_second"]
    notebook_file = out / "02_second" / "02_second.ipynb"
    assert second["status"] != "completed", second
    assert second["status"] == "running"
    assert json.loads((out / "run.json").read_text())["state"] == "running"
    assert "killed before it could finish" in (out / "index.html").read_text()
    # whatever notebook file is there is the earlier complete one, never a partial one
    if notebook_file.exists():
        assert _complete(notebook_file)
    # the next run does not take the half-done notebook for done
    (notebooks / "02_second.py").write_text(GOOD)
    again = run_report("quick", data_dir=standin_dir, out=out, notebooks_dir=notebooks, log=lambda line: None)
    assert [entry.status for entry in again.notebooks] == ["cached", "completed"] and again.ok


def test_a_second_run_into_the_same_folder_is_refused(notebooks, standin_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".lock", "a+") as handle:  # another run holds the folder
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        handle.write("4242\n")
        handle.flush()
        with pytest.raises(
            ValueError, match=r"another report run \(process 4242\) is writing into this folder"
        ):
            run_report("quick", data_dir=standin_dir, out=out, notebooks_dir=notebooks, log=lambda line: None)
    assert not (out / "run.json").exists()
    # once it has gone, the folder is free again (a killed holder frees it too: the lock is the kernel's)
    assert run_report(
        "quick", data_dir=standin_dir, out=out, notebooks_dir=notebooks, log=lambda line: None
    ).ok


@pytest.mark.parametrize("damaged", ["01_first/metrics.json", "01_first/.inputs.json", "run.json"])
def test_a_cut_off_record_is_named_and_treated_as_not_done(notebooks, standin_dir, tmp_path, damaged):
    out = tmp_path / "out"
    assert run_report(
        "quick", data_dir=standin_dir, out=out, notebooks_dir=notebooks, log=lambda line: None
    ).ok
    path = out / damaged
    path.write_text(path.read_text()[: len(path.read_text()) // 2])
    lines: list[str] = []
    result = run_report("quick", data_dir=standin_dir, out=out, notebooks_dir=notebooks, log=lines.append)
    assert result.ok
    statuses = [entry.status for entry in result.notebooks]
    if damaged == "run.json":  # run.json is the index's, not a notebook's record: both stay cached
        assert statuses == ["cached", "cached"]
    else:
        assert statuses == ["completed", "cached"]
    assert any(str(path) in line and "not valid JSON" in line for line in lines), lines
    json.loads((out / "run.json").read_text())
