"""The set-up stays consistent: pyproject vs environment.yml, the two make commands, CI, notebooks."""

from __future__ import annotations

import re
import tomllib

import jupytext
import yaml

from labutils.report import discover_notebooks
from labutils.sources import repository_root

ROOT = repository_root()


def _name(requirement: str) -> str:
    return re.split(r"[<>=!;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(entry["pip"] for entry in environment["dependencies"] if isinstance(entry, dict))
    assert [entry for entry in pip_section if entry != "-e ."] == project
    assert "python=3.11" in environment["dependencies"]


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
        assert "format_name: percent" in source.read_text(), f"{source.name} is not a percent-format script"
        again = jupytext.reads(jupytext.writes(notebook, fmt="py:percent"), fmt="py:percent")
        assert [cell.source for cell in again.cells] == [cell.source for cell in notebook.cells]
        assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith("# ")
