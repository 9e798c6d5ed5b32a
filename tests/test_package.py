"""The package's layout: a core the notebooks import, tooling beside it, and no import circle."""

from __future__ import annotations

import ast
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import labutils
from labutils.report.notebooks import KERNEL_START
from labutils.report.worker import main as worker_main
from labutils.report.worker import worker_command

ROOT = Path(labutils.__file__).parent
NOTEBOOKS = sorted((ROOT.parent / "notebooks").glob("[0-9][0-9]_*.py"))
#: The modules directly in labutils/: the core the notebooks import.
CORE = sorted(path.stem for path in ROOT.glob("*.py") if not path.stem.startswith("_"))


def _notebook_names() -> set[str]:
    """Every ``lu.NAME`` the notebooks use."""
    return {
        name for path in NOTEBOOKS for name in re.findall(r"\blu\.(\w+)", path.read_text(encoding="utf-8"))
    }


def _defining_module(name: str) -> str:
    """The core module whose source defines ``name`` at its top level (a def, a class or an assignment)."""
    for module in CORE:
        tree = ast.parse((ROOT / f"{module}.py").read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name == name:
                return module
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            if any(isinstance(target, ast.Name) and target.id == name for target in targets):
                return module
    raise AssertionError(f"lu.{name} is not defined in a core module")


def test_every_name_the_notebooks_use_is_defined_in_a_core_module_and_imported_from_it():
    names = _notebook_names()
    assert {"start_task", "training_dataset", "Task3Recipe", "plot_confusion_matrix"} <= names
    init = ast.parse((ROOT / "__init__.py").read_text(encoding="utf-8"))
    imported = {
        alias.name: node.module
        for node in init.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    for name in sorted(names):
        module = _defining_module(name)
        assert imported.get(name) == module, f"labutils/__init__.py should import {name} from .{module}"
        value = getattr(labutils, name)
        if inspect.isfunction(value) or inspect.isclass(value):
            assert value.__module__ == f"labutils.{module}", name


def test_the_core_is_small_and_every_module_short():
    """The core: at most 16 modules and 4,000 lines together; no module of the package over 400 lines."""
    assert len(CORE) <= 16, CORE
    core_lines = sum(len(path.read_text(encoding="utf-8").splitlines()) for path in ROOT.glob("*.py"))
    assert core_lines <= 4000, core_lines
    long = {
        str(path.relative_to(ROOT)): length
        for path in ROOT.rglob("*.py")
        if (length := len(path.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert not long, long


def test_the_front_door_is_plain_imports():
    """No lazy loader: ``__init__.py`` holds imports, one call that loads TensorFlow, and the version."""
    init = ast.parse((ROOT / "__init__.py").read_text(encoding="utf-8"))
    kinds = {type(node).__name__ for node in init.body[1:]}  # after the docstring
    assert kinds == {"ImportFrom", "Expr", "Assign"}, kinds
    assert not any(isinstance(node, ast.FunctionDef) for node in ast.walk(init))
    # nothing it imports is unused by the notebooks, apart from the set-up
    imported = {alias.name for node in init.body if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert imported - {"load_tensorflow"} == _notebook_names()


#: Where the core reaches into the tooling: these modules, each for a few named functions (docs/layout.md).
CORE_TO_TOOLING = {
    "labutils.backbones": {"labutils.pretrained.efficientnet_lite"},
    "labutils.display": {"labutils.results.banners", "labutils.runtime.device"},
    "labutils.perturb": {"labutils.corruptions.suite"},
    "labutils.models": {"labutils.predict.model_files"},
    "labutils.saving": {"labutils.results.schema", "labutils.runtime.device"},
    "labutils.session": {"labutils.runtime.device"},
    "labutils.training": {"labutils.corruptions.layer"},
    "labutils.sources": {"labutils.datasets.kaggle", "labutils.datasets.standin"},
}


def test_the_core_reaches_the_tooling_only_where_the_layout_says():
    graph = _imports_within_the_package()
    core = {f"labutils.{module}" for module in CORE}
    crossings = {module: graph[module] - core for module in sorted(core) if graph[module] - core}
    assert crossings == CORE_TO_TOOLING


def test_importing_the_package_prints_no_tensorflow_chatter():
    result = subprocess.run(
        [sys.executable, "-c", "import labutils"], capture_output=True, text=True, timeout=300, check=True
    )
    assert "oneDNN custom operations" not in result.stderr and "absl::InitializeLog" not in result.stderr


def _imports_within_the_package() -> dict[str, set[str]]:
    """{module: the labutils modules it imports}, function-level imports included, from the sources."""
    import ast
    from pathlib import Path

    root = Path(labutils.__file__).parent
    graph: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        parts = ("labutils", *path.relative_to(root).with_suffix("").parts)
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if node.level else []
                name = (
                    ".".join([*base, node.module] if node.module else base)
                    if node.level
                    else node.module or ""
                )
                targets.add(name)
                targets.update(f"{name}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[module] = targets
    return {
        module: {target for target in targets if target in graph and target != module}
        for module, targets in graph.items()
    }


def _circle(graph: dict[str, set[str]]) -> list[str] | None:
    """The first import circle in ``graph`` (a module's own packages, which Python imports first, do not count)."""
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if module.startswith(target + "."):
                continue
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state:
                found = visit(target, [*path, target])
                if found:
                    return found
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state:
            found = visit(module, [module])
            if found:
                return found
    return None


def test_no_module_imports_in_a_circle():
    graph = _imports_within_the_package()
    assert {"labutils.report.runner", "labutils.bench.run", "labutils.results.schema"} <= set(graph)
    # relative imports of both levels are seen
    assert "labutils.results.schema" in graph["labutils.report.runner"]
    assert "labutils.report.provenance" in graph["labutils.bench.run"]
    assert "labutils.report.index" in graph["labutils.report.runner"]  # and those inside functions
    assert _circle(graph) is None, " -> ".join(_circle(graph))
    # the check finds a circle where there is one
    assert _circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _circle({"p": {"p.m"}, "p.m": {"p"}}) is None


#: Modules run from their files, outside the package: by the report's worker and by a kernel before its first cell.
STANDALONE = (
    "report/worker.py",
    "report/errors.py",
    "report/orphans.py",
    "runtime/quiet.py",
    "runtime/onednn.py",
    "runtime/device.py",
)


def test_the_worker_and_the_kernel_start_load_neither_the_package_nor_tensorflow(tmp_path):
    """Each import of ``labutils`` loads TensorFlow (4 s and 600 MB a process): the process that waits
    on papermill and the code a kernel runs before its first cell use modules run from their files."""
    for module_file in STANDALONE:
        tree = ast.parse((ROOT / module_file).read_text())
        imports = [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]
        relative = [node.lineno for node in imports if isinstance(node, ast.ImportFrom) and node.level]
        assert not relative, (
            f"{module_file} imports from its package (line {relative}); it runs from its file"
        )
    assert set(re.findall(r"(\w+/\w+\.py)", KERNEL_START + inspect.getsource(worker_main))) <= set(STANDALONE)
    loaded = "import sys; print('labutils' in sys.modules, 'tensorflow' in sys.modules)"
    probe = subprocess.run(
        [sys.executable, "-P", "-c", f"{KERNEL_START}; {loaded}"], capture_output=True, text=True, check=True
    )
    assert probe.stdout.split() == ["False", "False"]
    job = tmp_path / "job.json"  # a job without its notebook: the worker fails, in one line, in its file
    job.write_text(json.dumps({"error_file": str(tmp_path / "error.txt")}))
    worker = subprocess.run(worker_command(job), capture_output=True, text=True, timeout=120)
    assert worker.returncode == 1, worker.stderr
    assert (tmp_path / "error.txt").read_text() == "KeyError: 'runner'"
