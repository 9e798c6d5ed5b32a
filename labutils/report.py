"""The report runner: execute every notebook with papermill, export HTML, write the index page.

Each notebook ``notebooks/NN_name.py`` (jupytext percent format, the source of truth) is
converted to ``.ipynb``, executed with the profile's parameters into ``reports/NN_name/``, and
exported to HTML beside it. ``reports/index.html`` links them all with the data source, profile,
timings and status. A failing notebook keeps its partial output, is marked failed in the index,
and does not stop the others; the run then exits non-zero.
"""

from __future__ import annotations

import html
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .data import DataFiles, find_data_files, repository_root

__all__ = [
    "KERNEL_NAME",
    "NotebookResult",
    "PROFILES",
    "ReportResult",
    "declared_parameters",
    "discover_notebooks",
    "ensure_kernel",
    "notebook_parameters",
    "run_report",
    "write_index",
]

KERNEL_NAME = "sign-mnist"

#: Parameters per profile and notebook (by the notebook's file stem); "*" applies to all.
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "quick": {
        "*": {"PROFILE": "quick"},
        "01_data": {"SAMPLE_SIZE": 500},
        "02_cnn": {"EPOCHS": 4, "WIDTH": 8, "RANDOM_SPLIT_EPOCHS": 1, "TRAIN_LIMIT": 3000},
        "03_augmentation": {"EPOCHS": 2, "TRAIN_LIMIT": 3000, "ROBUSTNESS_IMAGES": 500},
        "04_transfer": {
            "WEIGHTS": None, "TRAIN_LIMIT": 1000, "HEAD_EPOCHS": 5, "FINE_TUNE_EPOCHS": 1, "FINE_TUNE_SECONDS": 30,
            "FINE_TUNE_VALIDATION_IMAGES": 300,
        },
    },
    "full": {
        "*": {"PROFILE": "full"},
        "01_data": {"SAMPLE_SIZE": 3000},
    },
}

#: Longest time one cell may run, per profile (seconds).
CELL_TIMEOUT = {"quick": 600, "full": 3600}


@dataclass
class NotebookResult:
    """What happened to one notebook in a run."""

    name: str
    status: str  # "completed" | "failed" | "pending"
    seconds: float = 0.0
    error: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    notebook_file: str | None = None
    html_file: str | None = None
    metrics: dict[str, Any] | None = None


@dataclass
class ReportResult:
    """The whole run: what data, which profile, and each notebook's result."""

    profile: str
    data: dict[str, Any]
    started: str
    notebooks: list[NotebookResult]
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(result.status == "completed" for result in self.notebooks)


def discover_notebooks(folder: Path | None = None) -> list[Path]:
    """The notebook sources ``NN_name.py`` in run order."""
    folder = Path(folder) if folder else repository_root() / "notebooks"
    return sorted(path for path in folder.glob("[0-9][0-9]_*.py") if path.is_file())


def notebook_parameters(profile: str, name: str, common: dict[str, Any]) -> dict[str, Any]:
    """Parameters for one notebook: the profile's, then the run's common ones (data dir, output)."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {profile!r}")
    return {**PROFILES[profile].get("*", {}), **PROFILES[profile].get(name, {}), **common}


def ensure_kernel(name: str = KERNEL_NAME) -> str:
    """Install (once) a Jupyter kernel that runs this Python, so notebooks use the project's venv."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    manager = KernelSpecManager()
    try:
        spec = manager.get_kernel_spec(name)
        if spec.argv and Path(spec.argv[0]).resolve() == Path(sys.executable).resolve():
            return name
    except NoSuchKernel:
        pass
    from ipykernel.kernelspec import install

    install(kernel_name=name, display_name="Python (sign-mnist)", prefix=sys.prefix)
    return name


def _to_ipynb(source: Path, target: Path) -> Path:
    import jupytext

    notebook = jupytext.read(source)
    notebook.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python (sign-mnist)", "language": "python"}
    jupytext.write(notebook, target, fmt="ipynb")
    return target


def _export_html(notebook_file: Path, html_file: Path) -> None:
    import nbformat
    from nbconvert import HTMLExporter

    notebook = nbformat.read(notebook_file, as_version=4)
    # "offline": the lab template minus require.js and MathJax, which it would load from a CDN
    exporter = HTMLExporter(template_name="offline", extra_template_basedirs=[str(Path(__file__).parent / "templates")])
    body, _ = exporter.from_notebook_node(notebook)
    html_file.write_text(body, encoding="utf-8")


def declared_parameters(source: Path) -> dict[str, Any]:
    """The parameters a notebook source declares in its ``parameters`` cell, with their defaults."""
    import papermill

    with tempfile.TemporaryDirectory() as folder:
        staged = _to_ipynb(source, Path(folder) / f"{source.stem}.ipynb")
        return {name: info["default"] for name, info in papermill.inspect_notebook(str(staged)).items()}


def _execute(source: Path, folder: Path, parameters: dict[str, Any], timeout: int, kernel: str) -> Path:
    import papermill

    folder.mkdir(parents=True, exist_ok=True)
    staged = _to_ipynb(source, folder / f".{source.stem}.source.ipynb")
    executed = folder / f"{source.stem}.ipynb"
    try:
        papermill.execute_notebook(
            str(staged),
            str(executed),
            parameters=parameters,
            kernel_name=kernel,
            progress_bar=False,
            cwd=str(source.parent),
            execution_timeout=timeout,
        )
    finally:
        staged.unlink(missing_ok=True)
    return executed


def _error_text(error: BaseException) -> str:
    name = type(error).__name__
    if name == "PapermillExecutionError":
        return f"{error.ename}: {error.evalue} (cell {error.exec_count})"  # type: ignore[attr-defined]
    return "".join(traceback.format_exception_only(type(error), error)).strip()


def run_report(
    profile: str = "full",
    *,
    data_dir: str | Path | None = None,
    out: str | Path = "reports",
    only: Sequence[str] | None = None,
    notebooks_dir: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> ReportResult:
    """Execute the notebooks (all, or those whose name starts with one of ``only``)."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {profile!r}")
    out = Path(out).resolve()
    sources = discover_notebooks(Path(notebooks_dir) if notebooks_dir else None)
    if only:
        sources = [path for path in sources if any(path.stem.startswith(prefix) for prefix in only)]
        if not sources:
            raise ValueError(f"--only {' '.join(only)} matches no notebook")
    if not sources:
        raise ValueError("no notebooks found")
    started = time.perf_counter()
    files: DataFiles = find_data_files(data_dir)
    data = {
        "data_source": files.source,
        "origin": files.origin,
        "folder": str(files.train.parent),
        "checksums": files.checksum_status(),
    }
    log(f"data: {files.source} ({files.origin}) in {files.train.parent}")
    kernel = ensure_kernel()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the kernels inherit it: no TensorFlow start-up chatter
    result = ReportResult(
        profile=profile,
        data=data,
        started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        notebooks=[NotebookResult(path.stem, "pending") for path in sources],
    )
    out.mkdir(parents=True, exist_ok=True)
    for source, entry in zip(sources, result.notebooks):
        folder = out / source.stem
        common = {
            "DATA_DIR": str(files.train.parent),
            "OUTPUT_DIR": str(folder),
            "TASK2_DIR": str(out / "02_cnn"),
            "TASK3_DIR": str(out / "03_augmentation"),
            "FEATURE_CACHE_DIR": str(out / ".cache" / "features"),
        }
        declared = declared_parameters(source)
        entry.parameters = {
            name: value for name, value in notebook_parameters(profile, source.stem, common).items() if name in declared
        }
        log(f"[{source.stem}] running ({profile} profile)")
        begin = time.perf_counter()
        executed = folder / f"{source.stem}.ipynb"
        try:
            _execute(source, folder, entry.parameters, CELL_TIMEOUT[profile], kernel)
            entry.status = "completed"
        except Exception as error:  # a failed notebook must not stop the others
            entry.status, entry.error = "failed", _error_text(error)
        entry.seconds = round(time.perf_counter() - begin, 1)
        if executed.exists():
            entry.notebook_file = executed.relative_to(out).as_posix()
            try:
                _export_html(executed, folder / f"{source.stem}.html")
                entry.html_file = f"{source.stem}/{source.stem}.html"
            except Exception as error:
                entry.error = (entry.error + "; " if entry.error else "") + f"HTML export failed: {_error_text(error)}"
        metrics = folder / "metrics.json"
        entry.metrics = json.loads(metrics.read_text()) if entry.status == "completed" and metrics.exists() else None
        log(f"[{source.stem}] {entry.status} in {entry.seconds:.1f} s" + (f": {entry.error}" if entry.error else ""))
        result.seconds = round(time.perf_counter() - started, 1)
        write_index(result, out)
    return result


# --------------------------------------------------------------------------- index page


def _versions() -> dict[str, str]:
    from importlib import metadata

    versions = {"python": sys.version.split()[0]}
    for package in ("tensorflow", "tensorflow-cpu", "keras", "numpy", "pandas", "scikit-learn", "papermill", "labutils"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def write_index(result: ReportResult, out: Path) -> Path:
    """Write ``index.html`` (and ``run.json``) for a finished, partial or interrupted run."""
    from .index import render_index

    out = Path(out)
    run = asdict(result)
    run["ok"] = result.ok
    run["versions"] = _versions()
    (out / "index.html").write_text(render_index(run, out), encoding="utf-8")
    (out / "run.json").write_text(json.dumps(run, indent=2) + "\n", encoding="utf-8")
    return out / "index.html"
