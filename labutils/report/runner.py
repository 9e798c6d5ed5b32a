"""The report run: which notebooks, in which order, with which parameters, and the index after each one.

A notebook's result is reused while its inputs are unchanged (:mod:`.cache`); one that fails keeps
its partial output and is marked failed without stopping the others; a signal stops the run with
the index saying so (:mod:`.execution`). ``run.json`` and ``index.html`` are rewritten whenever a
notebook starts or ends, so they always describe the run as it stands.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..results.registry import folder_parameters
from ..results.schema import check_run_entry, read_notebook_metrics, run_devices
from ..runtime.device import describe_devices
from ..sources import DataFiles, find_data_files
from .cache import INPUTS_FILE, cached_entry, notebook_fingerprint, sources_digest, upstream_fingerprint
from .execution import NotebookFailed, describe_error, execute, stopped_by_signals
from .files import read_json_or_none, write_atomically
from .notebooks import cell_count, discover_notebooks, ensure_kernel, export_html
from .parameters import edited_parameters, parameter_specs, validate_overrides
from .profiles import CELL_TIMEOUT, PROFILES, notebook_parameters
from .provenance import describe_machine, machine_info, package_versions
from .state import NotebookResult, ReportResult

__all__ = ["reusable_result", "run_report", "write_index"]


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
    context = _RunContext(out, profile, files, kernel, extra, all_sources, force, sources_digest(), log)
    with _output_lock(out), stopped_by_signals():
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


def _inputs(source: Path, context: _RunContext) -> tuple[dict[str, Any], set[str], str]:
    """What a run of ``source`` gives it: its parameters, the names its profile or ``-p`` set, and the
    fingerprint of its inputs, which decides whether its last result is reused."""
    out, files = context.out, context.files
    common = {
        "DATA_DIR": str(files.train.parent),
        "OUTPUT_DIR": str(out / source.stem),
        **{parameter: str(out / notebook) for parameter, notebook in folder_parameters().items()},
        "FEATURE_CACHE_DIR": str(out / ".cache" / "features"),
        "WEIGHTS_CACHE_DIR": str(out / ".cache" / "weights"),
    }
    # every declared parameter, so that the run's values follow from its profile and options alone
    # (a notebook's PROFILE edited in its source cannot turn a full run into a quick one)
    declared = {name: spec.default for name, spec in parameter_specs(source).items()}
    profiled = notebook_parameters(context.profile, source.stem, common)
    parameters = {name: profiled.get(name, default) for name, default in declared.items()}
    overrides = context.overrides.get(source.stem, {})
    parameters.update(overrides)
    upstream = [
        upstream_fingerprint(out / earlier.stem, context.log)
        for earlier in context.all_sources
        if earlier.stem < source.stem
    ]
    fingerprint = notebook_fingerprint(source, parameters, context.package_digest, files.sha256, upstream)
    return parameters, set(profiled) | set(overrides), fingerprint


def reusable_result(
    source: Path,
    profile: str,
    out: str | Path,
    *,
    data_dir: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    package_digest: str | None = None,
) -> NotebookResult | None:
    """The result ``report --profile PROFILE --only SOURCE --out OUT -p ...`` would reuse without
    executing anything; None where it would run the notebook, or where the data is not at hand without
    a download (then only a run can tell). ``package_digest``: :func:`.cache.sources_digest`'s, if known."""
    all_sources = discover_notebooks(source.parent)
    extra = validate_overrides(dict(overrides or {}), [source], all_sources)
    try:
        files = find_data_files(data_dir, download=False, synthetic_fallback=False)
    except (OSError, ValueError):
        return None
    quiet: Callable[[str], None] = lambda line: None  # noqa: E731
    context = _RunContext(
        Path(out).resolve(),
        profile,
        files,
        "",
        extra,
        all_sources,
        False,
        package_digest or sources_digest(),
        quiet,
    )
    _, _, fingerprint = _inputs(source, context)
    return cached_entry(context.out / source.stem, source.stem, fingerprint, quiet)


def _run_one(source: Path, entry: NotebookResult, result: ReportResult, context: _RunContext) -> None:
    """Run (or reuse) one notebook and fill in its ``entry``; ``result`` is only written to disk."""
    out, profile, log = context.out, context.profile, context.log
    folder = out / source.stem
    entry.parameters, set_by_run, fingerprint = _inputs(source, context)
    edited = edited_parameters(source)
    entry.edited_parameters = (
        None
        if edited is None
        else {
            name: change
            for name, change in edited.items()
            if name in entry.parameters and name not in set_by_run
        }
    )
    if entry.edited_parameters:
        log(
            f"[{source.stem}] parameters edited since the last commit, and this run uses them: "
            + ", ".join(
                f"{name} = {change['now']} (committed: {change['committed']})"
                for name, change in entry.edited_parameters.items()
            )
        )
    cached = None if context.force else cached_entry(folder, source.stem, fingerprint, log)
    if cached is not None:
        cached.edited_parameters = entry.edited_parameters  # the same source as when it ran
        result.notebooks[result.notebooks.index(entry)] = cached
        log(
            f"[{source.stem}] cached (inputs unchanged since its run of {cached.seconds:.1f} s; --force re-runs it)"
        )
        return
    # the record of what is about to happen goes to disk first: a run killed from here on leaves
    # run.json saying "running" for this notebook, never "completed" beside a partial file
    (folder / INPUTS_FILE).unlink(missing_ok=True)
    entry.status = "running"
    result.state = "running"
    write_index(result, out, log)
    log(f"[{source.stem}] running ({profile} profile)")
    begin = time.perf_counter()
    executed = folder / f"{source.stem}.ipynb"
    html = folder / f"{source.stem}.html"
    html.unlink(missing_ok=True)  # an earlier run's page must not stand beside this run's notebook
    try:
        execute(source, folder, entry.parameters, CELL_TIMEOUT[profile], context.kernel, log)
        entry.status = "completed"
    except NotebookFailed as error:  # a failed notebook must not stop the others
        entry.status, entry.error = "failed", str(error)
    except (OSError, ValueError) as error:
        entry.status, entry.error = "failed", describe_error(error)
    entry.seconds = round(time.perf_counter() - begin, 1)
    if executed.exists():
        entry.notebook_file = executed.relative_to(out).as_posix()
        try:
            export_html(executed, html)
            entry.html_file = html.relative_to(out).as_posix()
        except Exception as error:
            entry.status = "failed" if entry.status == "completed" else entry.status
            entry.error = (
                entry.error + "; " if entry.error else ""
            ) + f"HTML export failed: {describe_error(error)}"
    if entry.status == "completed":
        try:
            metrics = read_notebook_metrics(folder / "metrics.json", source.stem)
            entry.metrics = {**metrics, "parameters": entry.parameters}  # what this run set, on record
            write_atomically(folder / "metrics.json", json.dumps(entry.metrics, indent=2, default=str) + "\n")
        except (OSError, ValueError) as error:
            entry.status, entry.error = (
                "failed",
                f"the notebook wrote no valid metrics.json: {describe_error(error)}",
            )
    if entry.status == "completed":
        write_atomically(
            folder / INPUTS_FILE,
            json.dumps(
                {"fingerprint": fingerprint, "seconds": entry.seconds, "parameters": entry.parameters},
                indent=2,
                default=str,
            ),
        )
    result.state = "completed"
    cells = cell_count(executed) if executed.exists() else 0
    log(
        f"[{source.stem}] {entry.status} in {entry.seconds:.1f} s ({cells} code cells)"
        + (f": {entry.error}" if entry.error else "")
    )


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
    run["machine"] = describe_machine(machine_info())
    # notebooks not part of this run (e.g. --only 03) keep their entries from the previous run
    previous = read_json_or_none(out / "run.json", log)
    if isinstance(previous, dict):
        names = {entry["name"] for entry in run["notebooks"]}
        kept = [
            entry
            for entry in previous.get("notebooks", [])
            if isinstance(entry, dict)
            and entry.get("name") not in names
            and (out / str(entry.get("name"))).is_dir()
            and _still_readable(entry, log)
        ]
        run["notebooks"] = sorted(run["notebooks"] + kept, key=lambda entry: entry["name"])
    run["device"] = describe_devices(run_devices(run))
    write_atomically(out / "index.html", render_index(run, out))
    write_atomically(out / "run.json", json.dumps(run, indent=2) + "\n")
    return out / "index.html"


def _still_readable(entry: dict[str, Any], log: Callable[[str], None] | None) -> bool:
    """Whether an earlier run's entry can stand on this run's index: a finished notebook's metrics must
    follow this version's contract (an older record is dropped, said in ``log``)."""
    try:
        check_run_entry(entry, f"run.json entry {entry.get('name')}")
    except ValueError as error:
        if log:
            log(f"note: {error}; that notebook is left off the index until it runs again")
        return False
    return True
