"""The report runner: execute every notebook with papermill, export HTML, write the index page.

Each notebook ``notebooks/NN_name.py`` (jupytext percent format, the source of truth) is
converted to ``.ipynb``, executed with the profile's parameters into ``reports/NN_name/``, and
exported to HTML beside it. ``reports/index.html`` links them all with the data source, profile,
timings and status. A failing notebook keeps its partial output, is marked failed in the index,
and does not stop the others; the run then exits non-zero.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .notebook_worker import error_text
from .parameters import (
    RUNNER_PARAMETERS,
    declared_parameters,
    parse_parameter_value,
    validate_overrides,
)
from .progress import ProgressReporter
from .provenance import machine_info, package_versions
from .registry import folder_parameters
from .results import read_notebook_metrics
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
    status: str  # "pending" | "running" | "completed" | "cached" | "failed" | "interrupted"
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
    state: str = "completed"  # "running" (while a notebook runs) | "completed" | "interrupted"

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


#: The kernel leaves output written below Python (TensorFlow's C++ start-up lines) to the process's
#: standard error, where :mod:`labutils.quiet` filters it, instead of copying it into the notebook;
#: Python's own warnings still show in the notebook.
KERNEL_OPTIONS = ("--IPKernelApp.capture_fd_output=False",)


def ensure_kernel(name: str = KERNEL_NAME) -> str:
    """Install (once) a Jupyter kernel that runs this Python, so notebooks use the project's venv."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    manager = KernelSpecManager()
    try:
        spec = manager.get_kernel_spec(name)
        if (
            spec.argv
            and Path(spec.argv[0]).resolve() == Path(sys.executable).resolve()
            and all(option in spec.argv for option in KERNEL_OPTIONS)
        ):
            return name
    except NoSuchKernel:
        pass
    from ipykernel.kernelspec import install

    folder = Path(install(kernel_name=name, display_name="Python (sign-mnist)", prefix=sys.prefix))
    spec_file = folder / "kernel.json"
    spec = json.loads(spec_file.read_text(encoding="utf-8"))
    spec["argv"] = [*spec["argv"], *KERNEL_OPTIONS]
    spec_file.write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
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
    _write_atomically(html_file, body)


class RunInterrupted(KeyboardInterrupt):
    """The run was stopped by a signal: Ctrl-C (SIGINT), SIGTERM or SIGHUP, named in ``signal_name``."""

    def __init__(self, signal_name: str = "SIGINT") -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name

    @property
    def exit_status(self) -> int:
        """The shell's convention: 128 plus the signal's number."""
        return 128 + int(getattr(signal, self.signal_name, signal.SIGINT))


#: Signals that stop a run the way Ctrl-C does.
STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


@contextlib.contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """While the run goes on, each of :data:`STOP_SIGNALS` raises :class:`RunInterrupted` once.

    A second signal during the clean-up that follows is ignored, so that the index is still
    written. Outside the main thread (where Python cannot set handlers) nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = False

    def stop(signum: int, frame: object) -> None:
        nonlocal raised
        if not raised:
            raised = True
            raise RunInterrupted(signal.Signals(signum).name)

    names = [name for name in STOP_SIGNALS if hasattr(signal, name)]
    previous = {name: signal.signal(getattr(signal, name), stop) for name in names}
    try:
        yield
    finally:
        for name, handler in previous.items():
            signal.signal(getattr(signal, name), handler)


class NotebookFailed(RuntimeError):
    """A notebook raised an error (the message is its one-line description)."""


#: Seconds a notebook's process has to stop after SIGTERM before it is killed.
STOP_GRACE_SECONDS = 5.0
#: Seconds between two looks at the running notebook's progress (see :mod:`labutils.progress`).
PROGRESS_POLL_SECONDS = 5.0


def _execute(
    source: Path,
    folder: Path,
    parameters: dict[str, Any],
    timeout: int,
    kernel: str,
    log: Callable[[str], None] = print,
) -> Path:
    """Execute one notebook in a process of its own (:mod:`labutils.notebook_worker`) into ``folder``.

    The executed notebook is written aside (``.NAME.partial.ipynb``) and renamed to ``NAME.ipynb``
    when the process ends, whatever the outcome, so that a notebook file is always either an
    earlier complete one or the one this run has just finished with. Raises
    :class:`NotebookFailed` when a cell fails; a signal stops the process and propagates.
    """
    folder.mkdir(parents=True, exist_ok=True)
    staged = _to_ipynb(source, folder / f".{source.stem}.source.ipynb")
    partial = folder / f".{source.stem}.partial.ipynb"
    executed = folder / f"{source.stem}.ipynb"
    error_file = folder / f".{source.stem}.error.txt"
    job_file = folder / f".{source.stem}.job.json"
    for path in (partial, error_file):
        path.unlink(missing_ok=True)
    job = {
        "notebook": str(staged),
        "output": str(partial),
        "parameters": repr(parameters),
        "kernel": kernel,
        "cwd": str(source.parent),
        "timeout": timeout,
        "error_file": str(error_file),
    }
    job_file.write_text(json.dumps(job), encoding="utf-8")
    worker = None
    try:
        worker = subprocess.Popen(
            [sys.executable, "-m", "labutils.notebook_worker", str(job_file)],
            start_new_session=True,  # a terminal's Ctrl-C reaches the runner, which stops the worker
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(_package_parent()), os.environ.get("PYTHONPATH")])
                ),
            },
        )
        reporter = ProgressReporter(source.stem, partial, log)
        while True:
            try:
                status = worker.wait(timeout=PROGRESS_POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                reporter.poll()
    except BaseException:
        if worker is not None:
            _stop_process(worker)
        raise
    finally:
        if partial.exists():
            os.replace(partial, executed)
        for path in (staged, job_file):
            path.unlink(missing_ok=True)
    if status != 0:
        message = (
            error_file.read_text(encoding="utf-8")
            if error_file.exists()
            else f"the notebook's process ended with status {status}"
        )
        error_file.unlink(missing_ok=True)
        raise NotebookFailed(message)
    return executed


def _package_parent() -> Path:
    """The folder that holds this ``labutils`` package (the worker imports the same one)."""
    return Path(__file__).resolve().parent.parent


def _stop_process(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after :data:`STOP_GRACE_SECONDS`; the kernel exits with its parent."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _error_text(error: BaseException) -> str:
    if isinstance(error, NotebookFailed):
        return str(error)
    return error_text(error)


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


def _cached_entry(
    folder: Path, stem: str, fingerprint: str, log: Callable[[str], None]
) -> NotebookResult | None:
    """The previous result of a notebook whose inputs have not changed, if all its files are there.

    A record or ``metrics.json`` that cannot be read means "not done": the notebook runs again.
    """
    record = _read_json(folder / _INPUTS_FILE, log)
    needed = [folder / f"{stem}.ipynb", folder / f"{stem}.html", folder / "metrics.json"]
    if (
        not isinstance(record, dict)
        or record.get("fingerprint") != fingerprint
        or not all(p.exists() for p in needed)
    ):
        return None
    try:
        metrics = read_notebook_metrics(folder / "metrics.json", stem)
    except (OSError, ValueError) as error:
        log(f"note: {_error_text(error)}; treated as not done")
        return None
    return NotebookResult(
        stem,
        "cached",
        seconds=float(record.get("seconds", 0.0)),
        parameters=record.get("parameters", {}),
        notebook_file=f"{stem}/{stem}.ipynb",
        html_file=f"{stem}/{stem}.html",
        metrics=metrics,
    )


def _upstream_fingerprint(folder: Path, log: Callable[[str], None]) -> str:
    record = _read_json(folder / _INPUTS_FILE, log)
    return record.get("fingerprint", "none") if isinstance(record, dict) else "none"


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
    if only is not None:
        empty = [prefix for prefix in only if not prefix.strip()]
        if not only or empty:
            raise ValueError(
                "--only needs notebook name prefixes, such as --only 02 03 (an empty one selects nothing)"
            )
        sources = [path for path in sources if any(path.stem.startswith(prefix) for prefix in only)]
        if not sources:
            names = ", ".join(path.stem for path in all_sources)
            raise ValueError(f"--only {' '.join(only)} matches no notebook (the notebooks: {names})")
    if not sources:
        raise ValueError("no notebooks found")
    extra = validate_overrides(dict(overrides or {}), sources, all_sources)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(
            f"--out {out}: cannot create the output folder ({error.strerror or error})"
        ) from error
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
    context = _RunContext(out, profile, files, kernel, extra, all_sources, force, _sources_digest(), log)
    with _output_lock(out), _stopped_by_signals():
        current: NotebookResult | None = None
        begin = time.perf_counter()
        try:
            for source, entry in zip(sources, result.notebooks):
                current, begin = entry, time.perf_counter()
                _run_one(source, entry, result, context)
                result.seconds = round(time.perf_counter() - started, 1)
                write_index(result, out, log)
            current = None
        except KeyboardInterrupt as error:
            signal_name = getattr(error, "signal_name", "SIGINT")
            result.state = "interrupted"
            if current is not None and current.status in {"pending", "running"}:
                current.status = "interrupted"
                current.error = (
                    f"interrupted ({_SIGNAL_WORDS.get(signal_name, signal_name)}) while this notebook ran"
                )
                current.seconds = round(time.perf_counter() - begin, 1)
                executed = out / current.name / f"{current.name}.ipynb"
                current.notebook_file = executed.relative_to(out).as_posix() if executed.exists() else None
                current.html_file = None
            result.seconds = round(time.perf_counter() - started, 1)
            write_index(result, out, log)
            if current is not None:
                log(
                    f"[{current.name}] interrupted after {current.seconds:.1f} s; "
                    "finished notebooks are kept and reused next time"
                )
            raise
    return result


_SIGNAL_WORDS = {"SIGINT": "Ctrl-C", "SIGTERM": "SIGTERM", "SIGHUP": "SIGHUP: the terminal closed"}


_LOCK_FILE = ".lock"


@contextlib.contextmanager
def _output_lock(out: Path) -> Iterator[None]:
    """Hold ``out/.lock`` for the run; a second run into the same folder is refused, not interleaved.

    The lock is the operating system's (``flock``): it goes with the process, so a killed run
    never leaves a stale lock behind.
    """
    import fcntl

    try:
        handle = open(out / _LOCK_FILE, "a+", encoding="utf-8")
    except OSError as error:
        raise ValueError(
            f"--out {out}: cannot write into the output folder ({error.strerror or error})"
        ) from error
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise ValueError(
                f"--out {out}: another report run (process {holder}) is writing into this folder; "
                "wait for it to finish or choose another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()


@dataclass(frozen=True)
class _RunContext:
    """What every notebook of one run shares."""

    out: Path
    profile: str
    files: DataFiles
    kernel: str
    overrides: dict[str, dict[str, Any]]  # per notebook stem
    all_sources: list[Path]
    force: bool
    package_digest: str
    log: Callable[[str], None]


def _run_one(source: Path, entry: NotebookResult, result: ReportResult, context: _RunContext) -> None:
    """Run (or reuse) one notebook and fill in its ``entry``; ``result`` is only written to disk."""
    out, profile, files, log = context.out, context.profile, context.files, context.log
    folder = out / source.stem
    common = {
        "DATA_DIR": str(files.train.parent),
        "OUTPUT_DIR": str(folder),
        **{parameter: str(out / notebook) for parameter, notebook in folder_parameters().items()},
        "FEATURE_CACHE_DIR": str(out / ".cache" / "features"),
        "WEIGHTS_CACHE_DIR": str(out / ".cache" / "weights"),
    }
    declared = declared_parameters(source)
    entry.parameters = {
        name: value
        for name, value in notebook_parameters(profile, source.stem, common).items()
        if name in declared
    }
    entry.parameters.update(context.overrides.get(source.stem, {}))
    upstream = [
        _upstream_fingerprint(out / earlier.stem, log)
        for earlier in context.all_sources
        if earlier.stem < source.stem
    ]
    fingerprint = notebook_fingerprint(
        source, entry.parameters, context.package_digest, files.sha256, upstream
    )
    cached = None if context.force else _cached_entry(folder, source.stem, fingerprint, log)
    if cached is not None:
        result.notebooks[result.notebooks.index(entry)] = cached
        log(
            f"[{source.stem}] cached (inputs unchanged since its run of {cached.seconds:.1f} s; --force re-runs it)"
        )
        return
    # the record of what is about to happen goes to disk first: a run killed from here on leaves
    # run.json saying "running" for this notebook, never "completed" beside a partial file
    (folder / _INPUTS_FILE).unlink(missing_ok=True)
    entry.status = "running"
    result.state = "running"
    write_index(result, out, log)
    log(f"[{source.stem}] running ({profile} profile)")
    begin = time.perf_counter()
    executed = folder / f"{source.stem}.ipynb"
    html = folder / f"{source.stem}.html"
    html.unlink(missing_ok=True)  # an earlier run's page must not stand beside this run's notebook
    try:
        _execute(source, folder, entry.parameters, CELL_TIMEOUT[profile], context.kernel, log)
        entry.status = "completed"
    except NotebookFailed as error:  # a failed notebook must not stop the others
        entry.status, entry.error = "failed", str(error)
    except (OSError, ValueError) as error:
        entry.status, entry.error = "failed", _error_text(error)
    entry.seconds = round(time.perf_counter() - begin, 1)
    if executed.exists():
        entry.notebook_file = executed.relative_to(out).as_posix()
        try:
            _export_html(executed, html)
            entry.html_file = html.relative_to(out).as_posix()
        except Exception as error:
            entry.status = "failed" if entry.status == "completed" else entry.status
            entry.error = (
                entry.error + "; " if entry.error else ""
            ) + f"HTML export failed: {_error_text(error)}"
    if entry.status == "completed":
        try:
            entry.metrics = read_notebook_metrics(folder / "metrics.json", source.stem)
        except (OSError, ValueError) as error:
            entry.status, entry.error = (
                "failed",
                f"the notebook wrote no valid metrics.json: {_error_text(error)}",
            )
    if entry.status == "completed":
        _write_atomically(
            folder / _INPUTS_FILE,
            json.dumps(
                {"fingerprint": fingerprint, "seconds": entry.seconds, "parameters": entry.parameters},
                indent=2,
                default=str,
            ),
        )
    result.state = "completed"
    cells = _cell_count(executed) if executed.exists() else 0
    log(
        f"[{source.stem}] {entry.status} in {entry.seconds:.1f} s ({cells} code cells)"
        + (f": {entry.error}" if entry.error else "")
    )


def _read_json(path: Path, log: Callable[[str], None] | None = None) -> Any:
    """A JSON file's content, or None where it is missing or cannot be read (said in ``log``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        if log:
            log(f"note: {path} cannot be read ({error.strerror or error}); treated as not done")
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        if log:
            log(f"note: {path} is not valid JSON ({error.msg}, line {error.lineno}); treated as not done")
        return None


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` beside ``path`` and rename it into place: a reader sees the old file or the new one."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _cell_count(notebook_file: Path) -> int:
    import nbformat

    try:
        return sum(cell.cell_type == "code" for cell in nbformat.read(notebook_file, as_version=4).cells)
    except Exception:  # an unreadable partial notebook: the count is only for the progress line
        return 0


# --------------------------------------------------------------------------- index page


def write_index(result: ReportResult, out: Path, log: Callable[[str], None] | None = None) -> Path:
    """Write ``index.html`` (and ``run.json``) for a running, finished, partial or interrupted run.

    Both are written aside and renamed into place. Notebooks that are not part of this run keep
    their entries from the previous ``run.json`` (an unreadable one is noted in ``log`` and dropped).
    """
    from .index import render_index

    out = Path(out)
    run = asdict(result)
    run["ok"] = result.ok
    run["versions"] = package_versions()
    machine = machine_info()
    run["machine"] = f"{machine['cpu_count']} CPU cores ({machine['cpu_model']})"
    # notebooks not part of this run (e.g. --only 03) keep their entries from the previous run
    previous = _read_json(out / "run.json", log)
    if isinstance(previous, dict):
        names = {entry["name"] for entry in run["notebooks"]}
        kept = [
            entry
            for entry in previous.get("notebooks", [])
            if entry.get("name") not in names and (out / entry["name"]).is_dir()
        ]
        run["notebooks"] = sorted(run["notebooks"] + kept, key=lambda entry: entry["name"])
    _write_atomically(out / "index.html", render_index(run, out))
    _write_atomically(out / "run.json", json.dumps(run, indent=2) + "\n")
    return out / "index.html"
