"""A sweep spread over Dask: its points checked, submitted, followed and written down as they finish.

Each point is a report of its own (``OUT/points/NAME``), run by :func:`labutils.sweep.point.run_point`
on a Dask worker: on a ``LocalCluster`` of this machine by default, its workers and threads chosen so
that the points' TensorFlow threads together use each core once, or on an existing cluster
(``scheduler``: ``tcp://HOST:PORT``). A point whose worker dies is run again once, then marked failed
with the reason; a notebook that fails is its point's failure. ``summary.csv`` and ``index.html`` are
written again as each point ends, so Ctrl-C keeps every finished point. A point the report would reuse
(:func:`labutils.report.runner.reusable_result`: its inputs unchanged since it completed) is read here
before anything is submitted, so a rerun of a finished sweep starts neither a cluster nor a report.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..report.cache import sources_digest
from ..report.notebooks import discover_notebooks
from ..report.runner import reusable_result
from ..results.registry import NOTEBOOKS, folder_parameters
from . import point as point_module
from .cluster import dask_client
from .grid import Point, make_points
from .render import summary_frame, write_summary

__all__ = ["local_layout", "run_sweep"]

#: How many times a point's worker may die before the point is marked failed (Dask's ``allowed-failures``
#: counts the deaths after the first): once retried.
WORKER_DEATHS_RETRIED = 1


def local_layout(points: int, workers: int | None = None, cores: int | None = None) -> tuple[int, int]:
    """(workers, threads per point) for a ``LocalCluster``: one single-threaded Dask worker per point
    running at once, each point's TensorFlow given an equal share of the cores (at least one)."""
    cores = cores or os.cpu_count() or 1
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    workers = workers or max(1, min(points, cores))
    return workers, max(1, cores // workers)


def _notebook(prefix: str, sources: Sequence[Path]) -> Path:
    matches = [source for source in sources if source.stem.startswith(prefix)] if prefix.strip() else []
    if len(matches) != 1:
        names = ", ".join(source.stem for source in sources)
        which = "matches no notebook" if not matches else "matches more than one notebook"
        raise ValueError(f"NOTEBOOK {prefix!r} {which} (the notebooks: {names}); give one, e.g. 02")
    return matches[0]


def _upstream(source: Path, reports: Path) -> dict[str, str]:
    """The earlier notebooks' result folders ``source`` reads (``TASK2_DIR``...), from ``reports``."""
    text = source.read_text(encoding="utf-8")
    upstream = {}
    for parameter, notebook in folder_parameters().items():
        if notebook < source.stem and f"{parameter} =" in text:
            folder = (reports / notebook).resolve()
            if not (folder / "metrics.json").is_file():
                raise ValueError(
                    f"{source.stem} reads {notebook}'s results, and {folder / 'metrics.json'} does not exist: "
                    f"run `report --only {notebook[:2]}` first, or give --reports DIR"
                )
            upstream[notebook] = str(folder)
    return upstream


def run_sweep(
    notebook: str,
    values: Mapping[str, Sequence[Any]],
    *,
    seeds: Sequence[int] | None = None,
    profile: str = "full",
    data_dir: str | Path | None = None,
    reports: str | Path = "reports",
    out: str | Path | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    force: bool = False,
    log: Callable[[str], None] = print,
) -> Any:
    """Run ``notebook`` (a prefix, as ``report --only`` takes it) at every point of the grid; returns the
    summary table (one row per point; ``attrs["out"]``: the folder of its files). Every point is checked
    before anything runs."""
    if profile not in ("quick", "full"):
        raise ValueError(f"--profile must be quick or full, got {profile!r}")
    sources = discover_notebooks()
    source = _notebook(notebook, sources)
    points = make_points(source, values, seeds, sources)
    upstream = _upstream(source, Path(reports))
    local_layout(len(points), workers)  # a bad --workers is refused before anything is read
    out = Path(out or Path("sweeps") / source.stem).resolve()
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a folder")
    base = ["--profile", profile, "--only", source.stem[:2], *(["--force"] if force else [])]
    if data_dir is not None:
        base += ["--data-dir", str(Path(data_dir).expanduser().resolve())]
    entry = NOTEBOOKS.get(source.stem)
    headline = entry.headline if entry else None
    swept = list(points[0].parameters)
    title = f"Sweep of {source.stem} ({profile} profile): " + ", ".join(swept)
    results: dict[str, dict[str, Any]] = {}

    def record(point: Point, result: dict[str, Any]) -> None:
        results[point.name] = result
        write_summary(out, summary_frame(points, results, headline), swept, headline, title)

    if not force:  # a point the report would reuse is read here, without a worker or a report's start
        digest = sources_digest()
        for point in points:
            reused = reusable_result(
                source, profile, out / "points" / point.name, data_dir=data_dir,
                overrides=point.parameters, package_digest=digest,
            )  # fmt: skip
            if reused is not None:
                result = {
                    "status": "reused",
                    "seconds": reused.seconds,
                    "error": None,
                    "metrics": reused.metrics,
                }
                results[point.name] = result
                log(_progress(point, result, results, len(points), 0.0, headline))
        if len(results) == len(points):
            log(
                f"sweep: all {len(points)} points of {source.stem} reused from {out}; --force runs them again"
            )
            summary = summary_frame(points, results, headline)
            write_summary(out, summary, swept, headline, title)
            summary.attrs["out"] = str(out)
            return summary
    waiting = [point for point in points if point.name not in results]
    count, threads = (None, None) if scheduler else local_layout(len(waiting), workers)

    from distributed import KilledWorker, as_completed

    with dask_client(
        workers=count or 1, scheduler=scheduler, ship=point_module, allowed_failures=WORKER_DEATHS_RETRIED
    ) as (client, where):
        if threads:
            where += f", {threads} TensorFlow threads per point"
        try:
            (out / "points").mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ValueError(
                f"--out {out}: cannot create the output folder ({error.strerror or error})"
            ) from error
        reused = f" ({len(results)} reused)" if results else ""
        plural = "s" if len(waiting) != 1 else ""
        log(f"sweep: {len(waiting)} point{plural} of {source.stem}{reused} on {where}; results in {out}")
        started = time.perf_counter()
        slots = sum(worker["nthreads"] for worker in client.scheduler_info()["workers"].values()) or 1
        futures = {}
        try:
            for point in waiting:
                arguments = base + [
                    item for name, value in point.parameters.items() for item in ("-p", name, repr(value))
                ]
                future = client.submit(
                    point_module.run_point,
                    arguments,
                    str(out / "points" / point.name),
                    source.stem,
                    threads,
                    upstream,
                    key=f"sweep-point-{point.name}-{time.time_ns()}",
                    pure=False,
                )
                futures[future] = point
            for future in as_completed(futures):
                point = futures[future]
                try:
                    result = future.result()
                except KilledWorker:
                    result = {
                        "status": "failed",
                        "error": f"its worker died {WORKER_DEATHS_RETRIED + 1} times while running it",
                        "metrics": None,
                    }
                except Exception as error:  # the point's own failure, never the sweep's
                    result = {
                        "status": "failed",
                        "error": f"{type(error).__name__}: {error}",
                        "metrics": None,
                    }
                record(point, result)
                running = min(slots, len(points) - len(results))
                log(
                    _progress(
                        point, result, results, len(points), time.perf_counter() - started, headline, running
                    )
                )
        except KeyboardInterrupt:
            for future, point in futures.items():
                if point.name not in results:
                    future.cancel()
                    results[point.name] = {"status": "interrupted", "metrics": None}
            write_summary(out, summary_frame(points, results, headline), swept, headline, title)
            log(
                f"sweep interrupted: {sum(r['status'] in ('completed', 'reused') for r in results.values())} "
                "finished points kept; a rerun continues from them"
            )
            raise
    summary = summary_frame(points, results, headline)
    summary.attrs["out"] = str(out)
    return summary


def _progress(
    point: Point,
    result: dict[str, Any],
    results: dict,
    total: int,
    elapsed: float,
    headline: tuple[str, str] | None,
    running: int = 0,
) -> str:
    """``[3/4 done · 1 running · 1 failed · 1 min 12 s] WIDTH=16 SEED=0: completed in 41 s (compact_cnn
    val_accuracy_grouped 0.9403)``; a reused point says how long its run took."""
    failed = sum(r["status"] == "failed" for r in results.values())
    minutes, seconds = divmod(int(elapsed), 60)
    clock = f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"
    counts = f"[{len(results)}/{total} done{f' · {running} running' if running else ''}"
    counts += f"{f' · {failed} failed' if failed else ''} · {clock}]"
    if result["status"] == "failed":
        return f"{counts} {point.label}: failed: {result['error']}"
    figure = ""
    models = (result.get("metrics") or {}).get("models") or {}
    if headline is not None and (models.get(headline[0]) or {}).get(headline[1]) is not None:
        figure = f" ({headline[0]} {headline[1]} {models[headline[0]][headline[1]]:.4f})"
    if result["status"] == "reused":
        return f"{counts} {point.label}: reused (its run took {result['seconds']:.0f} s){figure}"
    return f"{counts} {point.label}: {result['status']} in {result['seconds']:.0f} s{figure}"
