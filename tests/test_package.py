"""The package's public surface: every exported name resolves, and the export table matches __all__."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import labutils


def test_the_names_read_from_each_modules_source_are_its_all():
    for module in labutils._PUBLIC_MODULES:
        declared = labutils._declared_names(module)
        assert declared == tuple(importlib.import_module(f"labutils.{module}").__all__), module
    # no name is exported by two modules
    assert len(labutils._MODULE_OF) == sum(len(labutils._declared_names(m)) for m in labutils._PUBLIC_MODULES)


def test_every_exported_name_resolves():
    for name in labutils.__all__:
        assert getattr(labutils, name) is not None
    assert labutils.label_to_letter(0) == "A"


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = labutils.no_such_thing


def test_importing_the_package_does_not_import_plotting_or_tensorflow():
    # the CLI and the benchmark's settings (built when labutils.bench is imported) check their choices without Keras
    code = "import sys, labutils.cli, labutils.bench; print(any(m in sys.modules for m in ('seaborn', 'tensorflow', 'keras')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr


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
    assert {"labutils.report.runner", "labutils.bench.run", "labutils.results"} <= set(graph)
    assert "labutils.results" in graph["labutils.report.runner"]  # relative imports of both levels are seen
    assert "labutils.report.provenance" in graph["labutils.bench.run"]
    assert "labutils.report.index" in graph["labutils.report.runner"]  # and those inside functions
    assert _circle(graph) is None, " -> ".join(_circle(graph))
    # the check finds a circle where there is one
    assert _circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _circle({"p": {"p.m"}, "p.m": {"p"}}) is None


def test_the_report_package_does_not_import_its_worker():
    """``python -m labutils.report.worker`` runs that module as ``__main__``: imported already by the
    package, it would run twice and Python warns on every notebook."""
    code = "import sys, labutils.report; print('labutils.report.worker' in sys.modules)"
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert imported.stdout.strip() == "False"
    started = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-m", "labutils.report.worker"],
        capture_output=True,
        text=True,
    )
    assert "RuntimeWarning" not in started.stderr and "found in sys.modules" not in started.stderr
