"""``run_bench``: the jobs of a benchmark, in order, each in a fresh process, and the files they make."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..sweep import point
from . import dispatch
from .cache import _code_fingerprint, _job_identity, _save_job, _saved_job
from .jobs import _job
from .pairing import split_validation
from .render import _plot, markdown_table
from .settings import (
    BATCH1_METHOD,
    BENCH_SPLIT,
    CONTENDERS,
    PUBLISHED,
    QUICK_SETTINGS,
    REFERENCE_FINAL,
    BenchSettings,
)
from .summary import _ratios, _summarise


def run_bench(
    data_dir: str | Path | None,
    *,
    out: str | Path = "bench",
    seeds: Sequence[int] = (0, 1, 2),
    budget: float | None = None,
    quick: bool = False,
    contenders: Sequence[str] = CONTENDERS,
    settings: BenchSettings | None = None,
    log: Callable[[str], None] = print,
    in_child: bool = True,
    resume: bool = False,
    overrides: dict[str, Any] | None = None,
    validation_from: str | Path | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
) -> dict[str, Any]:
    """Run the benchmark and write ``results.json``, ``results.md`` and ``accuracy_vs_seconds.png`` to ``out``.

    Every contender trains once per seed, except the reference, the longest, which trains with
    ``seeds[0]`` only. Every finished job is saved to ``out/jobs/`` as it ends; with ``resume=True`` the saved jobs
    whose settings, budget, data and code match are reused instead of run again. ``overrides`` sets
    fields of the settings by name (:meth:`BenchSettings.with_values`): ``{"train_rows": "split",
    "task2.width": 16}`` trains on the grouped split's training side, where a few values of one
    field are compared on the grouped validation accuracy; that is how each was chosen.
    ``validation_from``: the folder of a split run with the same settings and seeds, whose grouped-validation
    robustness is set against this run's final networks (:func:`~labutils.bench.pairing.split_validation`,
    checked before anything trains).
    """
    from ..report.provenance import machine_info, package_versions
    from ..runtime.device import describe_devices, device_from_record, timing_note
    from ..sources import find_data_files

    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    if budget is not None and budget <= 0:
        raise ValueError(f"--budget must be a positive number of seconds, got {budget}")
    if not seeds:
        raise ValueError("--seeds needs at least one seed")
    unknown = set(contenders) - set(REFERENCE_FINAL)
    if unknown:
        raise ValueError(f"unknown contenders {sorted(unknown)}; choose from {sorted(REFERENCE_FINAL)}")
    settings = (settings or (QUICK_SETTINGS if quick else BenchSettings())).with_values(overrides or {})
    if quick and data_dir is None:
        from ..datasets.standin import write_standin

        data_dir = write_standin(Path(out) / "standin", 1200, 480, seed=0)
    files = find_data_files(data_dir, download=not quick)
    seeds = list(dict.fromkeys(int(seed) for seed in seeds))
    paired = (
        None
        if validation_from is None
        else split_validation(
            validation_from, settings=settings, seeds=seeds, sha256=files.sha256, roles=contenders
        )
    )
    jobs = []
    if "reference" in contenders:
        jobs.append(("reference", seeds[0]))
    if {"task2", "task3"} & set(contenders):
        jobs += [("ours", seed) for seed in seeds]
    jobs += [
        (kind, seed) for kind in ("transfer", "transfer_control") if kind in contenders for seed in seeds
    ]
    per_role: dict[str, dict[int, dict[str, Any]]] = {}
    started = time.perf_counter()
    jobs_folder, code, reused, pending = Path(out) / "jobs", _code_fingerprint(), [], []
    for number, (kind, seed) in enumerate(jobs, start=1):
        job = {
            "kind": kind,
            "seed": seed,
            "budget": budget,
            "data_dir": str(files.train.parent),
            "settings": asdict(settings),
        }
        identity, checkpoint = _job_identity(job, files.sha256, code), jobs_folder / f"{kind}-seed{seed}.json"
        saved = _saved_job(checkpoint, identity, log) if resume else None
        if saved is None:
            pending.append((number, job, identity, checkpoint))
            continue
        reused.append({"job": f"{kind} seed {seed}", "finished": saved["finished"]})
        log(
            f"[bench] {kind} seed {seed} (job {number} of {len(jobs)}): reusing the job saved in {checkpoint} "
            f"(finished {saved['finished']})"
        )
        _collect(per_role, contenders, kind, seed, saved["figures"], log)

    def finished(
        number: int, job: dict[str, Any], identity, checkpoint: Path, figures, seconds: float
    ) -> None:
        _save_job(checkpoint, identity, figures)
        _collect(per_role, contenders, job["kind"], job["seed"], figures, log)
        log(f"[bench] {job['kind']} seed {job['seed']} (job {number} of {len(jobs)}) done in {seconds:.0f} s")

    def failed(job: dict[str, Any], error: BaseException) -> RuntimeError:
        done = sorted(path.name for path in jobs_folder.glob("*.json"))
        return RuntimeError(
            f"bench job '{job['kind']}' seed {job['seed']} failed ({type(error).__name__}: {error}); the finished "
            f"jobs {done or '(none)'} are saved in {jobs_folder}: run again with --resume to keep them"
        )

    if in_child:
        _run_on_dask(pending, finished, failed, workers=workers, scheduler=scheduler, log=log)
    else:  # in this process, one after another (the tests' way)
        for number, job, identity, checkpoint in pending:
            begin = time.perf_counter()
            log(
                f"[bench] {job['kind']} seed {job['seed']} (job {number} of {len(jobs)}, "
                f"{begin - started:.0f} s into the run) …"
            )
            try:
                figures = _job(job)
            except Exception as error:
                raise failed(job, error) from error
            finished(number, job, identity, checkpoint, figures, time.perf_counter() - begin)
    summaries = {role: _summarise(role, per_role[role]) for role in contenders if role in per_role}
    _ratios(summaries)
    for role, figures in (paired or {}).get("val_robustness", {}).items():
        if role in summaries:
            summaries[role]["split_val_robustness"] = figures
    devices = [
        device_from_record(record, f"bench job {role} seed {seed}")
        for role, summary in summaries.items()
        for seed, record in summary["devices"].items()
        if record is not None
    ]
    results = {
        "data_source": files.source,
        "data": {
            "folder": str(files.train.parent),
            "checksums": files.checksum_status(),
            "sha256": files.sha256,
        },
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**machine_info(), "python": platform.python_version()},
        "device": describe_devices(devices),
        "timing_note": timing_note(devices),
        "packages": package_versions(),
        "quick": quick,
        "seeds": seeds,
        "budget_seconds": budget,
        "settings": asdict(settings),
        "split": BENCH_SPLIT,
        "published": PUBLISHED,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "reused_jobs": reused,
        "batch1_inference": BATCH1_METHOD,
        "contenders": summaries,
        **({"validation_from": {"folder": paired["folder"], "date": paired["date"]}} if paired else {}),
    }
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results, indent=2))
    (folder / "results.md").write_text(markdown_table(results))
    _plot(results, folder / "accuracy_vs_seconds.png")
    log(
        f"[bench] wrote {folder / 'results.json'}, results.md and accuracy_vs_seconds.png "
        f"in {results['wall_seconds']:.0f} s"
    )
    return results


def _collect(per_role, contenders, kind: str, seed: int, figures: dict[str, Any], log) -> None:
    """A job's figures, filed by role (Tasks 2 and 3 come from one job)."""
    for role, result in figures.items():
        if role in contenders:
            per_role.setdefault(role, {})[seed] = result
            log(
                f"[bench] {role} seed {seed}: test accuracy {result['test_accuracy']:.4f} "
                f"({result['test_errors']} errors), {result['train_seconds']:.0f} s of training"
                + (" — capped" if result["capped"] else "")
            )


def _run_on_dask(pending, finished, failed, *, workers: int | None, scheduler: str | None, log) -> None:
    """Each pending job in a fresh process on a Dask worker (:func:`~labutils.bench.dispatch.run_job_in_process`),
    filed as it finishes; the first failure cancels the jobs not yet finished and is raised."""
    if not pending:
        return
    from distributed import as_completed

    from ..sweep.cluster import dask_client

    with dask_client(workers=workers or 1, scheduler=scheduler, ship=(dispatch, point)) as (client, where):
        if (workers or 1) > 1 and not scheduler:
            where += " (jobs side by side: their seconds do not compare with a run of one worker)"
        log(f"[bench] {len(pending)} jobs, each in a fresh process, on {where}")
        futures = {}
        for number, job, identity, checkpoint in pending:
            future = client.submit(
                dispatch.run_job_in_process,
                job,
                key=f"bench-{job['kind']}-{job['seed']}-{time.time_ns()}",
                pure=False,
            )
            futures[future] = (number, job, identity, checkpoint)
        for future in as_completed(futures):
            number, job, identity, checkpoint = futures[future]
            try:
                figures, seconds = future.result()
            except Exception as error:
                for other in futures:
                    other.cancel()
                raise failed(job, error) from error
            finished(number, job, identity, checkpoint, figures, seconds)
