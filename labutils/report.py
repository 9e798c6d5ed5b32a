"""The report runner: execute every notebook with papermill, export HTML, write the index page.

Each notebook ``notebooks/NN_name.py`` (jupytext percent format, the source of truth) is
converted to ``.ipynb``, executed with the profile's parameters into ``reports/NN_name/``, and
exported to HTML beside it. ``reports/index.html`` links them all with the data source, profile,
timings and status. A failing notebook keeps its partial output, is marked failed in the index,
and does not stop the others; the run then exits non-zero.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .provenance import machine_info, package_versions
from .sources import DataFiles, find_data_files, repository_root

__all__ = [
    "KERNEL_NAME",
    "NotebookResult",
    "PROFILES",
    "RUNNER_PARAMETERS",
    "ReportResult",
    "declared_parameters",
    "discover_notebooks",
    "ensure_kernel",
    "notebook_fingerprint",
    "notebook_parameters",
    "parse_parameter_value",
    "run_report",
    "validate_overrides",
    "write_index",
]

KERNEL_NAME = "sign-mnist"

#: Parameters per profile and notebook (by the notebook's file stem); "*" applies to all.
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "quick": {
        "*": {"PROFILE": "quick"},
        "01_data": {"SAMPLE_SIZE": 500},
        "02_cnn": {"EPOCHS": 12, "WIDTH": 16, "RANDOM_SPLIT_EPOCHS": 1, "TRAIN_LIMIT": 3000},
        "03_augmentation": {
            "EPOCHS": 2,
            "TRAIN_LIMIT": 3000,
            "ROBUSTNESS_IMAGES": 300,
            "EMA_MOMENTUM": 0.9,
            "STATISTICS_IMAGES": 512,
        },
        # the packaged backbone is pretrained here too; VGG16 asks for no download (a labelled random start)
        "04_transfer": {
            "BACKBONES": ["efficientnet_lite0", "vgg16"],
            "IMAGE_SIZES": {"efficientnet_lite0": 32, "vgg16": 32},
            "WEIGHTS": {"vgg16": None},
            "TRAIN_LIMIT": 1000,
            "HEAD_EPOCHS": 5,
            "FINE_TUNE_EPOCHS": 1,
            "FINE_TUNE_LEARNING_RATE": 1e-4,
            "FINE_TUNE_VALIDATION_IMAGES": 300,
            "STEP_PROBE_BATCHES": 1,
            "STATISTICS_IMAGES": 256,
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
    status: str  # "completed" | "cached" | "failed" | "interrupted" | "pending"
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
    state: str = "completed"  # "completed" | "interrupted"

    @property
    def ok(self) -> bool:
        return self.state == "completed" and all(r.status in {"completed", "cached"} for r in self.notebooks)


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
    notebook.metadata["kernelspec"] = {
        "name": KERNEL_NAME,
        "display_name": "Python (sign-mnist)",
        "language": "python",
    }
    jupytext.write(notebook, target, fmt="ipynb")
    return target


def _export_html(notebook_file: Path, html_file: Path) -> None:
    import nbformat
    from nbconvert import HTMLExporter

    notebook = nbformat.read(notebook_file, as_version=4)
    # "offline": the lab template minus require.js and MathJax, which it would load from a CDN
    exporter = HTMLExporter(
        template_name="offline", extra_template_basedirs=[str(Path(__file__).parent / "templates")]
    )
    body, _ = exporter.from_notebook_node(notebook)
    html_file.write_text(body, encoding="utf-8")


def declared_parameters(source: Path) -> dict[str, Any]:
    """The parameters a notebook source declares in its ``parameters`` cell, with their defaults."""
    import papermill

    with tempfile.TemporaryDirectory() as folder:
        staged = _to_ipynb(source, Path(folder) / f"{source.stem}.ipynb")
        return {name: info["default"] for name, info in papermill.inspect_notebook(str(staged)).items()}


def _execute(
    source: Path,
    folder: Path,
    parameters: dict[str, Any],
    timeout: int,
    kernel: str,
    log: Callable[[str], None] = print,
) -> Path:
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


#: Parameters the runner sets itself; ``-p`` may not override them (use --data-dir / --out).
RUNNER_PARAMETERS = frozenset(
    {"DATA_DIR", "OUTPUT_DIR", "TASK2_DIR", "TASK3_DIR", "FEATURE_CACHE_DIR", "WEIGHTS_CACHE_DIR", "PROFILE"}
)


def parse_parameter_value(text: str) -> Any:
    """A ``-p NAME VALUE`` value: a Python literal (``3``, ``1e-3``, ``None``, ``["vgg16"]``), else the text itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _type_ok(value: Any, default: Any) -> bool:
    if default is None or value is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, type(default))


def validate_overrides(overrides: dict[str, Any], sources: Sequence[Path]) -> dict[str, dict[str, Any]]:
    """Check ``-p`` overrides against the notebooks' parameters cells before anything runs.

    Returns {notebook stem: {name: value}} for the notebooks that declare each name. Unknown
    names, names the runner sets, and values of the wrong type are a ``ValueError`` that lists
    the valid parameters.
    """
    declared = {source.stem: declared_parameters(source) for source in sources}
    valid: dict[str, Any] = {}
    for stem, parameters in declared.items():
        for name, default in parameters.items():
            if name not in RUNNER_PARAMETERS:
                valid.setdefault(name, {})[stem] = default
    listing = "; ".join(f"{name} (in {', '.join(sorted(where))})" for name, where in sorted(valid.items()))
    per_notebook: dict[str, dict[str, Any]] = {source.stem: {} for source in sources}
    for name, value in overrides.items():
        if name in RUNNER_PARAMETERS:
            raise ValueError(
                f"parameter {name} is set by the runner (use --data-dir, --out or --profile); "
                f"valid parameters: {listing}"
            )
        if name not in valid:
            raise ValueError(f"unknown parameter {name!r}; valid parameters: {listing}")
        for stem, default_text in valid[name].items():
            default = parse_parameter_value(default_text)
            if not _type_ok(value, default):
                raise ValueError(
                    f"parameter {name} of {stem} takes a {type(default).__name__} "
                    f"(default {default_text}), got {value!r} ({type(value).__name__})"
                )
            per_notebook[stem][name] = value
    return per_notebook


def _sources_digest() -> str:
    """SHA-256 over the labutils package's sources and templates: any change re-runs the notebooks."""
    digest = hashlib.sha256()
    package = Path(__file__).parent
    for path in sorted(package.rglob("*")):
        if path.is_file() and path.suffix in {".py", ".j2", ".json"}:
            digest.update(path.relative_to(package).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def notebook_fingerprint(
    source: Path,
    parameters: dict[str, Any],
    package_digest: str,
    data_sha256: dict[str, str],
    upstream: Sequence[str],
) -> str:
    """What a notebook's result depends on: its source, parameters, labutils, the data, earlier notebooks' results."""
    document = {
        "source": hashlib.sha256(source.read_bytes()).hexdigest(),
        "parameters": parameters,
        "labutils": package_digest,
        "data": data_sha256,
        "upstream": list(upstream),
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


_INPUTS_FILE = ".inputs.json"


def _cached_entry(folder: Path, stem: str, fingerprint: str) -> NotebookResult | None:
    """The previous result of a notebook whose inputs have not changed, if all its files are there."""
    record_path = folder / _INPUTS_FILE
    if not record_path.exists():
        return None
    try:
        record = json.loads(record_path.read_text())
    except json.JSONDecodeError:
        return None
    needed = [folder / f"{stem}.ipynb", folder / f"{stem}.html", folder / "metrics.json"]
    if record.get("fingerprint") != fingerprint or not all(path.exists() for path in needed):
        return None
    return NotebookResult(
        stem,
        "cached",
        seconds=float(record.get("seconds", 0.0)),
        parameters=record.get("parameters", {}),
        notebook_file=f"{stem}/{stem}.ipynb",
        html_file=f"{stem}/{stem}.html",
        metrics=json.loads((folder / "metrics.json").read_text()),
    )


def _upstream_fingerprint(folder: Path) -> str:
    try:
        return json.loads((folder / _INPUTS_FILE).read_text()).get("fingerprint", "none")
    except (OSError, json.JSONDecodeError):
        return "none"


def run_report(
    profile: str = "full",
    *,
    data_dir: str | Path | None = None,
    out: str | Path = "reports",
    only: Sequence[str] | None = None,
    notebooks_dir: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    force: bool = False,
    log: Callable[[str], None] = print,
) -> ReportResult:
    """Execute the notebooks (all, or those whose name starts with one of ``only``).

    A notebook whose inputs (source, parameters, labutils sources, data checksums, earlier
    notebooks' results) are unchanged since its last completed run is not executed again: its
    result is reused and marked "cached" (``force=True`` re-runs it). ``overrides`` ({NAME:
    value}) reach every notebook that declares NAME; they are validated before anything runs.
    Ctrl-C stops the run, marks the running notebook "interrupted" in the index, and re-raises.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {profile!r}")
    out = Path(out).resolve()
    all_sources = discover_notebooks(Path(notebooks_dir) if notebooks_dir else None)
    sources = all_sources
    if only:
        sources = [path for path in sources if any(path.stem.startswith(prefix) for prefix in only)]
        if not sources:
            raise ValueError(f"--only {' '.join(only)} matches no notebook")
    if not sources:
        raise ValueError("no notebooks found")
    extra = validate_overrides(dict(overrides or {}), sources)
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
    os.environ.setdefault(
        "TF_CPP_MIN_LOG_LEVEL", "2"
    )  # the kernels inherit it: no TensorFlow start-up chatter
    result = ReportResult(
        profile=profile,
        data=data,
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        notebooks=[NotebookResult(path.stem, "pending") for path in sources],
    )
    out.mkdir(parents=True, exist_ok=True)
    package_digest = _sources_digest()
    for source, entry in zip(sources, result.notebooks):
        folder = out / source.stem
        common = {
            "DATA_DIR": str(files.train.parent),
            "OUTPUT_DIR": str(folder),
            "TASK2_DIR": str(out / "02_cnn"),
            "TASK3_DIR": str(out / "03_augmentation"),
            "FEATURE_CACHE_DIR": str(out / ".cache" / "features"),
            "WEIGHTS_CACHE_DIR": str(out / ".cache" / "weights"),
        }
        declared = declared_parameters(source)
        entry.parameters = {
            name: value
            for name, value in notebook_parameters(profile, source.stem, common).items()
            if name in declared
        }
        entry.parameters.update(extra.get(source.stem, {}))
        upstream = [
            _upstream_fingerprint(out / earlier.stem) for earlier in all_sources if earlier.stem < source.stem
        ]
        fingerprint = notebook_fingerprint(source, entry.parameters, package_digest, files.sha256, upstream)
        cached = None if force else _cached_entry(folder, source.stem, fingerprint)
        if cached is not None:
            result.notebooks[result.notebooks.index(entry)] = cached
            log(
                f"[{source.stem}] cached (inputs unchanged since its run of {cached.seconds:.1f} s; --force re-runs it)"
            )
            result.seconds = round(time.perf_counter() - started, 1)
            write_index(result, out)
            continue
        (folder / _INPUTS_FILE).unlink(missing_ok=True)  # a stale record must not survive a failed re-run
        log(f"[{source.stem}] running ({profile} profile)")
        begin = time.perf_counter()
        executed = folder / f"{source.stem}.ipynb"
        try:
            _execute(source, folder, entry.parameters, CELL_TIMEOUT[profile], kernel, log)
            entry.status = "completed"
        except KeyboardInterrupt:
            entry.status, entry.error = "interrupted", "interrupted (Ctrl-C) while this notebook ran"
            entry.seconds = round(time.perf_counter() - begin, 1)
            if executed.exists():
                entry.notebook_file = executed.relative_to(out).as_posix()
            result.state = "interrupted"
            result.seconds = round(time.perf_counter() - started, 1)
            write_index(result, out)
            log(
                f"[{source.stem}] interrupted after {entry.seconds:.1f} s; finished notebooks are kept and reused next time"
            )
            raise
        except Exception as error:  # a failed notebook must not stop the others
            entry.status, entry.error = "failed", _error_text(error)
        entry.seconds = round(time.perf_counter() - begin, 1)
        if executed.exists():
            entry.notebook_file = executed.relative_to(out).as_posix()
            try:
                _export_html(executed, folder / f"{source.stem}.html")
                entry.html_file = f"{source.stem}/{source.stem}.html"
            except Exception as error:
                entry.status = "failed" if entry.status == "completed" else entry.status
                entry.error = (
                    entry.error + "; " if entry.error else ""
                ) + f"HTML export failed: {_error_text(error)}"
        metrics = folder / "metrics.json"
        entry.metrics = (
            json.loads(metrics.read_text()) if entry.status == "completed" and metrics.exists() else None
        )
        if entry.status == "completed":
            (folder / _INPUTS_FILE).write_text(
                json.dumps(
                    {"fingerprint": fingerprint, "seconds": entry.seconds, "parameters": entry.parameters},
                    indent=2,
                    default=str,
                )
            )
        cells = _cell_count(executed) if executed.exists() else 0
        log(
            f"[{source.stem}] {entry.status} in {entry.seconds:.1f} s ({cells} code cells)"
            + (f": {entry.error}" if entry.error else "")
        )
        result.seconds = round(time.perf_counter() - started, 1)
        write_index(result, out)
    return result


def _cell_count(notebook_file: Path) -> int:
    import nbformat

    try:
        return sum(cell.cell_type == "code" for cell in nbformat.read(notebook_file, as_version=4).cells)
    except Exception:  # an unreadable partial notebook: the count is only for the progress line
        return 0


# --------------------------------------------------------------------------- index page


def write_index(result: ReportResult, out: Path) -> Path:
    """Write ``index.html`` (and ``run.json``) for a finished, partial or interrupted run."""
    from .index import render_index

    out = Path(out)
    run = asdict(result)
    run["ok"] = result.ok
    run["versions"] = package_versions()
    machine = machine_info()
    run["machine"] = f"{machine['cpu_count']} CPU cores ({machine['cpu_model']})"
    # notebooks not part of this run (e.g. --only 03) keep their entries from the previous run
    previous_file = out / "run.json"
    if previous_file.exists():
        try:
            previous = json.loads(previous_file.read_text())
        except json.JSONDecodeError:
            previous = {}
        names = {entry["name"] for entry in run["notebooks"]}
        kept = [
            entry
            for entry in previous.get("notebooks", [])
            if entry.get("name") not in names and (out / entry["name"]).is_dir()
        ]
        run["notebooks"] = sorted(run["notebooks"] + kept, key=lambda entry: entry["name"])
    (out / "index.html").write_text(render_index(run, out), encoding="utf-8")
    (out / "run.json").write_text(json.dumps(run, indent=2) + "\n", encoding="utf-8")
    return out / "index.html"
