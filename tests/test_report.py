"""The report runner: the real notebooks on the stand-in, and the failure path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from labutils.report import PROFILES, discover_notebooks, notebook_parameters, run_report

GOOD = '''# %% tags=["parameters"]
OUTPUT_DIR = "."
PROFILE = "full"
DATA_DIR = None

# %%
import json, pathlib
pathlib.Path(OUTPUT_DIR).mkdir(parents=True, exist_ok=True)
pathlib.Path(OUTPUT_DIR, "metrics.json").write_text(json.dumps({"profile": PROFILE}))
print("done")
'''

FAILING = '''# %% tags=["parameters"]
OUTPUT_DIR = "."
PROFILE = "full"
DATA_DIR = None

# %%
print("first cell ran")

# %%
raise RuntimeError("deliberate failure in cell two")

# %%
print("never reached")
'''


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
    result = run_report("quick", data_dir=standin_dir, out=out, notebooks_dir=notebooks, log=lambda line: None)
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
    assert json.loads((out / "03_after" / "metrics.json").read_text()) == {"profile": "quick"}
    run = json.loads((out / "run.json").read_text())
    assert run["ok"] is False and run["data"]["data_source"] == "synthetic"


@pytest.mark.notebook
def test_cli_exits_non_zero_when_a_notebook_fails(notebooks, standin_dir, tmp_path):
    command = [sys.executable, "-m", "labutils", "report", "--profile", "quick", "--data-dir", str(standin_dir),
               "--out", str(tmp_path / "r"), "--notebooks", str(notebooks), "--only", "02"]
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
    metrics = json.loads((out / "01_data" / "metrics.json").read_text())
    assert metrics["notebook"] == "01_data" and metrics["data_source"] == "synthetic" and metrics["profile"] == "quick"
    grouped, random_ = metrics["splits"]["grouped"], metrics["splits"]["random"]
    assert grouped["train_rows"] + grouped["validation_rows"] == 1200
    assert random_["validation_rows"] == 360
    assert 0.2 < grouped["validation_fraction"] < 0.4 and grouped["groups"] == metrics["families"]["count"]
    medians = metrics["nearest_neighbour_median"]
    assert medians["random_validation_to_train"] > medians["grouped_validation_to_train"]
    executed = (out / "01_data" / "01_data.ipynb").read_text()
    assert "SYNTHETIC STAND-IN" in executed
    html = (out / "01_data" / "01_data.html").read_text()
    assert "SYNTHETIC STAND-IN" in html and "families of near-duplicates" in html
    assert "01_data/01_data.html" in (out / "index.html").read_text()
