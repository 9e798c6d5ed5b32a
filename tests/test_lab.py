"""JupyterLab as a student uses it: the notebooks open as notebooks, keep their outputs in a git-ignored
folder, take the quick profile themselves, write beside the report, and never leak edits into it unseen."""

from __future__ import annotations

import ast
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import jupytext
import nbformat
import pytest

from labutils.report import run_report
from labutils.report.notebooks import LAB_SETTINGS, ensure_lab_settings, to_ipynb
from labutils.session import QUICK_SETTINGS
from tests.notebook_texts import PARAMETERS

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))


def _cells(path: Path) -> list:
    return jupytext.read(path).cells


def _tagged(path: Path, tag: str):
    return next(cell for cell in _cells(path) if tag in cell.metadata.get("tags", []))


def test_the_lab_settings_open_python_files_as_notebooks_and_keep_the_others(tmp_path):
    settings_file = tmp_path / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    settings_file.parent.mkdir(parents=True)
    theme = {"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"}}
    viewers = {
        "@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"markdown": "Markdown Preview"}}
    }
    settings_file.write_text(json.dumps({**theme, **viewers}))
    assert ensure_lab_settings(tmp_path) == settings_file
    written = json.loads(settings_file.read_text())
    assert written["@jupyterlab/apputils-extension:themes"] == theme["@jupyterlab/apputils-extension:themes"]
    assert written["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"] == {
        "markdown": "Markdown Preview",
        "python": "Jupytext Notebook",
    }
    settings_file.write_text("{not json")
    with pytest.raises(ValueError, match="overrides.json: not valid JSON"):
        ensure_lab_settings(tmp_path)
    assert LAB_SETTINGS["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]["python"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_saving_from_jupyterlab_leaves_the_source_as_it_is(path):
    """Jupytext writes the .py back unchanged, whatever metadata JupyterLab adds to the notebook."""
    text = path.read_text(encoding="utf-8")
    notebook = jupytext.reads(text, fmt="py:percent")
    notebook.metadata["language_info"] = {"name": "python", "version": "3.11.7"}
    for cell in notebook.cells:
        cell.metadata.update({"execution": {"iopub.status.busy": "2026-12-07T07:00:00Z"}, "scrolled": True})
    assert jupytext.writes(notebook, fmt="py:percent") == text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_each_notebook_keeps_its_outputs_in_a_git_ignored_folder(path):
    formats = jupytext.read(path).metadata["jupytext"]["formats"]
    assert formats == "py:percent,outputs//ipynb"
    paired = path.parent / "outputs" / f"{path.stem}.ipynb"
    if shutil.which("git") and (ROOT / ".git").exists():
        ignored = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", str(paired)])
        assert ignored.returncode == 0, f"{paired} is not git-ignored"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_interactive_runs_write_beside_the_report_never_into_it(path):
    parameters = ast.parse(_tagged(path, "parameters").source)
    folders = {
        node.targets[0].id: node.value.value
        for node in parameters.body
        if isinstance(node, ast.Assign) and node.targets[0].id in {"OUTPUT_DIR", "TASK2_DIR", "TASK3_DIR"}
    }
    assert folders["OUTPUT_DIR"] == f"outputs/{path.stem}"
    assert all(folder.startswith("outputs/") for folder in folders.values()), folders


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
@pytest.mark.parametrize("profile", ["quick", "full"])
def test_the_profile_cell_takes_the_quick_settings_the_runner_uses(path, profile):
    """The parameters cell then the profile cell, as a student runs them with PROFILE set."""
    namespace: dict = {}
    exec(_tagged(path, "parameters").source, namespace)
    defaults = dict(namespace)
    namespace["PROFILE"] = profile
    exec(_tagged(path, "profile").source, namespace)
    expected = QUICK_SETTINGS[path.stem] if profile == "quick" else {}
    assert expected or profile == "full"
    for name in defaults:
        if not name.startswith("__") and name != "PROFILE":
            assert namespace[name] == expected.get(name, defaults[name]), name
    assert set(expected) <= set(defaults)


PROFILED = (
    PARAMETERS
    + """EPOCHS = 8
RATE = 0.5

# %% tags=["profile"]
quick = {"EPOCHS": 2, "RATE": 0.1} if PROFILE == "quick" else {}
EPOCHS = quick.get("EPOCHS", EPOCHS)
RATE = quick.get("RATE", RATE)

# %%
import json, pathlib
pathlib.Path(OUTPUT_DIR).mkdir(parents=True, exist_ok=True)
pathlib.Path(OUTPUT_DIR, "metrics.json").write_text(json.dumps({"EPOCHS": EPOCHS, "RATE": RATE}))
"""
)


def test_the_run_values_come_after_the_profile_cell(tmp_path):
    source = tmp_path / "01_profiled.py"
    source.write_text(PROFILED)
    staged = nbformat.read(to_ipynb(source, tmp_path / "staged.ipynb"), as_version=4)
    tags = [cell.metadata.get("tags", []) for cell in staged.cells]
    assert tags[:2] == [[], ["profile", "parameters"]]  # papermill injects after the profile cell


@pytest.mark.notebook
def test_a_run_sets_every_parameter_and_overrides_beat_the_notebooks_quick_settings(tmp_path, standin_dir):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    (folder / "01_profiled.py").write_text(PROFILED.replace('PROFILE = "full"', 'PROFILE = "quick"'))
    out = tmp_path / "reports"
    lines: list[str] = []
    result = run_report(
        "full", data_dir=standin_dir, out=out, notebooks_dir=folder, overrides={"RATE": 0.3}, log=lines.append
    )
    assert result.ok, result.notebooks[0].error
    # PROFILE = "quick" left in the source does not make a full run quick; -p RATE wins
    written = json.loads((out / "01_profiled" / "metrics.json").read_text())
    assert (written["EPOCHS"], written["RATE"]) == (8, 0.3)
    assert set(result.notebooks[0].parameters) == {"OUTPUT_DIR", "PROFILE", "DATA_DIR", "EPOCHS", "RATE"}
    assert written["parameters"] == {**result.notebooks[0].parameters, "OUTPUT_DIR": str(out / "01_profiled")}
    index = (out / "index.html").read_text()
    assert (
        "<summary>parameters</summary>" in index
        and "RATE = 0.3" in index
        and "PROFILE = &#x27;full&#x27;" in index
    )
    assert result.notebooks[0].edited_parameters is None  # not a git checkout: edits cannot be told


@pytest.mark.notebook
@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_parameters_edited_since_the_commit_are_named_on_the_terminal_and_the_index(tmp_path, standin_dir):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    source = folder / "01_profiled.py"
    source.write_text(PROFILED)
    git = ["git", "-C", str(folder), "-c", "user.name=lab", "-c", "user.email=lab@example.org"]
    for command in (["init", "-q"], ["add", "01_profiled.py"], ["commit", "-q", "-m", "notebook"]):
        subprocess.run([*git, *command], check=True, capture_output=True)
    out = tmp_path / "reports"
    clean = run_report("full", data_dir=standin_dir, out=out, notebooks_dir=folder, log=lambda line: None)
    assert clean.notebooks[0].edited_parameters == {}
    # as JupyterLab's autosave leaves it: three values changed, of which the run uses one
    source.write_text(
        PROFILED.replace("EPOCHS = 8", "EPOCHS = 3")
        .replace("RATE = 0.5", "RATE = 0.9")
        .replace('PROFILE = "full"', 'PROFILE = "quick"')
    )
    lines: list[str] = []
    edited = run_report(
        "full", data_dir=standin_dir, out=out, notebooks_dir=folder, overrides={"RATE": 0.3}, log=lines.append
    )
    assert edited.notebooks[0].edited_parameters == {"EPOCHS": {"committed": "8", "now": "3"}}
    written = json.loads((out / "01_profiled" / "metrics.json").read_text())
    assert (written["EPOCHS"], written["RATE"]) == (3, 0.3)
    said = [line for line in lines if "parameters edited" in line]
    assert said == [
        "[01_profiled] parameters edited since the last commit, and this run uses them: EPOCHS = 3 (committed: 8)"
    ]
    index = (out / "index.html").read_text()
    assert "parameters edited</strong> since the last commit: EPOCHS = 3 (committed: 8)" in index
    run = json.loads((out / "run.json").read_text())
    assert run["notebooks"][0]["edited_parameters"] == {"EPOCHS": {"committed": "8", "now": "3"}}


# --- in a real browser: JupyterLab as `make lab` starts it, driven by Selenium on headless Chromium ---


def test_each_notebook_gets_its_paired_ipynb_with_the_kernels_language_once(tmp_path):
    from labutils.report.notebooks import ensure_paired_notebooks

    folder = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", folder, ignore=shutil.ignore_patterns("outputs", "__pycache__"))
    written = ensure_paired_notebooks(folder)
    assert written == [folder / "outputs" / f"{path.stem}.ipynb" for path in NOTEBOOKS]
    for source, paired in zip(sorted(folder.glob("*.py")), written, strict=True):
        notebook = nbformat.read(paired, as_version=4)
        assert notebook.metadata["language_info"]["name"] == "python"
        assert notebook.metadata["language_info"]["version"] == ".".join(map(str, sys.version_info[:3]))
        assert [cell.source for cell in notebook.cells] == [
            cell.source for cell in jupytext.read(source).cells
        ]
        assert paired.stat().st_mtime == source.stat().st_mtime  # jupytext reads the source as the newer
    session = written[0].read_bytes() + b" "  # a session's outputs are never written over
    written[0].write_bytes(session)
    assert ensure_paired_notebooks(folder) == [] and written[0].read_bytes() == session


@pytest.fixture
def jupyterlab(tmp_path, standin_dir):
    """JupyterLab serving a copy of notebooks/ on 127.0.0.1 with a token, data: the stand-in;
    yields (url, notebooks folder). Its own config, runtime, settings and workspace folders."""
    from labutils.report.browser import find_chromedriver, find_chromium
    from labutils.report.notebooks import ensure_kernel, ensure_paired_notebooks

    if find_chromium() is None or find_chromedriver() is None:
        pytest.skip("no Chromium or ChromeDriver (Debian: apt-get install chromium chromium-driver)")
    overrides = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    assert overrides.exists(), f"{overrides} is missing: `make install` writes it"
    ensure_kernel()
    folder = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", folder, ignore=shutil.ignore_patterns("outputs", "__pycache__"))
    # a student who wants the quick settings sets them in 02's parameters cell
    edited = folder / "02_cnn.py"
    edited.write_text(edited.read_text().replace('PROFILE = "full"', 'PROFILE = "quick"', 1))
    ensure_paired_notebooks(folder)  # as `make install` and `make lab` do
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = secrets.token_hex(16)
    environment = {
        **os.environ,
        "SIGN_MNIST_DIR": str(standin_dir),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    command = [
        str(Path(sys.executable).with_name("jupyter")),
        "lab",
        "--no-browser",
        "--allow-root",  # CI runs as root
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={folder}",
        f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
        f"--LabApp.user_settings_dir={tmp_path / 'settings'}",
    ]
    log = tmp_path / "jupyterlab.log"
    with open(log, "w") as output:
        server = subprocess.Popen(command, env=environment, stdout=output, stderr=subprocess.STDOUT)
    try:
        _until(
            lambda: _answers(f"http://127.0.0.1:{port}/api/status?token={token}"), 120, f"JupyterLab ({log})"
        )
        yield f"http://127.0.0.1:{port}/lab?token={token}", folder
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def _until(check, seconds: float, what: str):
    """The first true value ``check()`` returns within ``seconds`` (an exception counts as not yet)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            value = check()
        except Exception:  # an element not there yet, or gone stale as the page re-renders
            value = None
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what}: not seen within {seconds:.0f} s")


def _named(driver, selector: str, text: str):
    from selenium.webdriver.common.by import By

    return next(e for e in driver.find_elements(By.CSS_SELECTOR, selector) if e.text.strip().startswith(text))


def _run_all(driver, name: str, seconds: float) -> None:
    """Open ``name`` by double-click, check it opens unmarked, run every cell and wait for the last."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    item = _until(lambda: _named(driver, ".jp-DirListing-item", name), 120, "the file browser")
    ActionChains(driver).double_click(item).perform()  # as a student opens it: no Open With
    _until(
        lambda: driver.find_elements(By.CSS_SELECTOR, f"{PANEL} .jp-CodeCell"), 60, f"{name} as a notebook"
    )
    _until(lambda: "Idle" in driver.find_element(By.CSS_SELECTOR, STATUS).text, 120, "the kernel, started")
    time.sleep(2)  # the kernel's language_info has reached the notebook
    assert not driver.find_elements(By.CSS_SELECTOR, ".lm-TabBar-tab.jp-mod-dirty"), (
        f"{name}: unsaved on opening"
    )
    _named(driver, ".lm-MenuBar-item", "Run").click()
    _until(lambda: _named(driver, ".lm-Menu-item", "Run All Cells"), 10, "Run → Run All Cells").click()

    def finished() -> bool:
        prompts = [
            prompt.text.strip()
            for prompt in driver.find_elements(By.CSS_SELECTOR, f"{PANEL} .jp-CodeCell .jp-InputArea-prompt")
        ]
        return bool(prompts) and all(re.fullmatch(r"\[\d+\]:", prompt) for prompt in prompts)

    _until(finished, seconds, f"every cell of {name} run")


def _saved(paired: Path, figures: int):
    """The notebook JupyterLab saved: every cell ran, none failed, at least ``figures`` figures."""
    _until(lambda: paired.exists() and nbformat.read(paired, as_version=4), 60, "the saved notebook")
    saved = nbformat.read(paired, as_version=4)
    code = [cell for cell in saved.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code), f"{paired.name}: a cell did not run"
    errors = [output for cell in code for output in cell.outputs if output.output_type == "error"]
    assert not errors, errors[0]["ename"] + ": " + errors[0]["evalue"]
    shown = sum("image/png" in output.get("data", {}) for cell in code for output in cell.outputs)
    assert shown >= figures, (paired.name, shown)
    return saved


PANEL, STATUS = ".jp-NotebookPanel:not(.lm-mod-hidden)", "#jp-main-statusbar"


@pytest.mark.notebook
def test_a_student_runs_notebook_01_and_02_quick_in_jupyterlab_and_keeps_the_outputs(jupyterlab, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from labutils.report.browser import _driver, find_chromedriver, find_chromium

    url, folder = jupyterlab
    sources = {path: path.read_bytes() for path in folder.glob("*.py")}
    driver = _driver(find_chromium(), find_chromedriver(), 1400, 120)
    try:
        driver.get(url)
        _run_all(driver, "01_data.py", 300)
        ActionChains(driver).key_down(Keys.CONTROL).send_keys("s").key_up(Keys.CONTROL).perform()
        _until(
            lambda: len(_saved(folder / "outputs" / "01_data.ipynb", 4).cells),
            60,
            "01 saved with its outputs",
        )
        assert (folder / "outputs" / "01_data" / "metrics.json").exists()  # beside, not in, the report
        driver.refresh()
        shown = _until(
            lambda: driver.find_elements(By.CSS_SELECTOR, f"{PANEL} .jp-OutputArea-output img"),
            120,
            "the figures after a reload",
        )
        assert shown
        assert not driver.find_elements(By.CSS_SELECTOR, ".lm-TabBar-tab.jp-mod-dirty"), (
            "unsaved after a reload"
        )
        _run_all(driver, "02_cnn.py", 600)
        ActionChains(driver).key_down(Keys.CONTROL).send_keys("s").key_up(Keys.CONTROL).perform()
        _until(
            lambda: len(_saved(folder / "outputs" / "02_cnn.ipynb", 4).cells), 60, "02 saved with its outputs"
        )
        metrics = json.loads((folder / "outputs" / "02_cnn" / "metrics.json").read_text())
        assert metrics["profile"] == "quick" and metrics["models"]["compact_cnn"]["train_images"] <= 3000
    finally:
        driver.save_screenshot(str(tmp_path / "jupyterlab.png"))
        driver.quit()
    assert {path: path.read_bytes() for path in folder.glob("*.py")} == sources, "saving changed a .py"
