"""The set-up stays consistent: pyproject vs environment.yml, the two make commands, CI, notebooks."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib

import jupytext
import pytest
import yaml
from packaging.requirements import Requirement

from labutils.report import discover_notebooks
from labutils.sources import repository_root

ROOT = repository_root()


def _name(requirement: str) -> str:
    return re.split(r"[<>=!;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


@pytest.mark.parametrize(("file", "build"), [("environment.yml", "cpu"), ("environment-gpu.yml", "gpu")])
def test_each_environment_file_lists_pyprojects_dependencies_and_installs_one_tensorflow_build(file, build):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    environment = yaml.safe_load((ROOT / file).read_text())
    pip_section = next(entry["pip"] for entry in environment["dependencies"] if isinstance(entry, dict))
    assert pip_section[:-1] == project and pip_section[-1] == f"-e .[{build}]"
    assert "python=3.11" in environment["dependencies"]


def test_tensorflows_two_builds_are_two_extras_and_never_a_base_dependency_on_linux_x86_64():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    linux = {"sys_platform": "linux", "platform_machine": "x86_64"}
    mac = {"sys_platform": "darwin", "platform_machine": "arm64"}

    def wanted(requirements, environment):
        return {
            requirement.name + "".join(f"[{extra}]" for extra in sorted(requirement.extras))
            for requirement in map(Requirement, requirements)
            if requirement.marker is None or requirement.marker.evaluate(environment)
        }

    base = project["dependencies"]
    assert not {"tensorflow", "tensorflow-cpu"} & wanted(base, linux)
    assert "tensorflow" in wanted(base, mac)
    extras = project["optional-dependencies"]
    assert wanted(extras["cpu"], linux) == {"tensorflow-cpu"}
    assert wanted(extras["gpu"], linux) == {"tensorflow[and-cuda]"}
    assert wanted(extras["cpu"], mac) == wanted(extras["gpu"], mac) == set()
    pinned = (ROOT / "constraints.txt").read_text()
    cpu = re.search(r"^tensorflow[-_]cpu==(\S+)$", pinned, re.MULTILINE)
    assert cpu and re.search(rf"^tensorflow=={re.escape(cpu.group(1))}$", pinned, re.MULTILINE), (
        "the GPU build must be pinned at the CPU build's version"
    )


def _install_commands(tmp_path, *, nvidia_smi: str | None, gpu: str | None = None) -> str:
    """What ``make install`` would run in a new virtual environment, ``nvidia-smi`` faked (or absent)."""
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir(exist_ok=True)
    for tool in ("sh", "grep", "python3", "uname"):
        found = shutil.which(tool)
        if found:
            (bin_folder / tool).unlink(missing_ok=True)
            (bin_folder / tool).symlink_to(found)
    fake = bin_folder / "nvidia-smi"
    fake.unlink(missing_ok=True)
    if nvidia_smi is not None:
        fake.write_text(f"#!/bin/sh\nprintf '%s\\n' '{nvidia_smi}'\n")
        fake.chmod(0o755)
    command = [
        shutil.which("make") or "make",
        "-n",
        "install",
        f"VENV={tmp_path / 'venv'}",
        f"PYTHON={sys.executable}",
    ]
    if gpu is not None:
        command.append(f"GPU={gpu}")
    environment = {**os.environ, "PATH": str(bin_folder)}
    environment.pop("GPU", None)
    done = subprocess.run(
        command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60, check=False
    )
    return done.stdout + done.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_installs_the_gpu_build_where_nvidia_smi_lists_a_gpu_and_the_cpu_build_elsewhere(tmp_path):
    listed = "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0f3e)"
    gpu = _install_commands(tmp_path, nvidia_smi=listed)
    assert "-e '.[gpu]'" in gpu and "-e '.[cpu]'" not in gpu
    assert "pip uninstall --quiet --yes tensorflow-cpu" in gpu  # the other build leaves first
    for nvidia_smi in (None, "No devices were found"):
        cpu = _install_commands(tmp_path, nvidia_smi=nvidia_smi)
        assert "-e '.[cpu]'" in cpu and "-e '.[gpu]'" not in cpu
        assert "pip uninstall --quiet --yes tensorflow;" in cpu
    assert "-e '.[cpu]'" in _install_commands(tmp_path, nvidia_smi=listed, gpu="0")
    assert "-e '.[gpu]'" in _install_commands(tmp_path, nvidia_smi=None, gpu="1")
    assert "GPU must be 1 (TensorFlow's GPU build) or 0 (its CPU build), got 'yes'" in _install_commands(
        tmp_path, nvidia_smi=None, gpu="yes"
    )


def test_constraints_pin_every_dependency_installed_here():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pinned = {
        _name(line): line.split("==")[1]
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    wanted = {_name(req) for req in project if "sys_platform != 'linux'" not in req}
    assert wanted <= set(pinned), f"not pinned: {sorted(wanted - set(pinned))}"


def test_make_targets_and_ci_use_the_readme_commands():
    makefile = (ROOT / "Makefile").read_text()
    for target in ("report:", "test:"):
        assert re.search(rf"^{target}", makefile, re.MULTILINE), target
    assert "-m pytest" in makefile and "-m labutils report" in makefile
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.MULTILINE)
    readme = (ROOT / "README.md").read_text()
    assert "make report" in readme and "make test" in readme


def test_every_notebook_is_percent_format_with_a_parameters_cell():
    sources = discover_notebooks()
    assert sources, "no notebooks found"
    for source in sources:
        notebook = jupytext.read(source)
        tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{source.name}: needs exactly one parameters cell"
        for name in ("DATA_DIR", "OUTPUT_DIR", "PROFILE", "SEED"):
            assert re.search(rf"^{name} = ", tagged[0].source, re.MULTILINE), (
                f"{source.name}: no {name} parameter"
            )
        formats = notebook.metadata["jupytext"]["formats"].split(",")
        assert formats[0] == "py:percent", f"{source.name} is not a percent-format script"
        again = jupytext.reads(jupytext.writes(notebook, fmt="py:percent"), fmt="py:percent")
        assert [cell.source for cell in again.cells] == [cell.source for cell in notebook.cells]
        assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith("# ")
