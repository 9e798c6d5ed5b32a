"""One point of a sweep, run on a Dask worker: ``python -m labutils report`` into the point's folder.

It imports the standard library alone, and the sweep ships its functions to the workers by value, so a
worker never loads TensorFlow itself; the report it starts does, with as many threads as the sweep
gives each point. The report's own rules keep and reuse finished work: a point whose inputs did not
change is not executed again.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["child_of_the_worker", "run_point"]


def child_of_the_worker() -> None:
    """In a process a worker starts (Linux; ``preexec_fn``): ended with SIGTERM if the worker dies, as a
    stopped report ends, keeping its finished work; Ctrl-C's SIGINT answered again, which the local
    workers ignore. Through the C library: ``signal.signal`` works in the main thread only."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        libc.signal(signal.SIGINT, signal.SIG_DFL)
    except (OSError, AttributeError):
        pass


def _wait_for_the_folder(out: Path, seconds: float = 120.0) -> None:
    """Wait until no report holds ``out``'s lock: a point run again after its worker died may start
    while the first run's report, ended by the worker's death, is still closing."""
    try:
        import fcntl
    except ImportError:  # not on Unix: the report's own lock refuses a clash
        return
    deadline = time.monotonic() + seconds
    with open(out / ".lock", "a+", encoding="utf-8") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return  # the report says which process holds it
                time.sleep(0.5)
                continue
            fcntl.flock(handle, fcntl.LOCK_UN)
            return


def run_point(
    arguments: list[str], folder: str, notebook: str, threads: int | None, upstream: dict[str, str]
) -> dict[str, Any]:
    """Run ``python -m labutils report ARGUMENTS --out FOLDER`` and say how ``notebook`` ended.

    ``upstream`` ({folder name: path}): the earlier notebooks' results the notebook reads, linked into
    ``folder`` first. ``threads``: TensorFlow's and OpenMP's threads for the report (None: their
    defaults). Returns the status (``completed``, ``reused``, ``failed``), the seconds, the error in one
    line, the notebook's ``metrics.json`` content, and the machine.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for name, target in upstream.items():
        link = out / name
        if not link.is_symlink() and not link.exists():
            link.symlink_to(target, target_is_directory=True)
    _wait_for_the_folder(out)
    environment = dict(os.environ)
    if threads:
        environment |= {
            "TF_NUM_INTRAOP_THREADS": str(threads),
            "TF_NUM_INTEROP_THREADS": "1",
            "OMP_NUM_THREADS": str(threads),
        }
    start = time.perf_counter()
    with open(out / "sweep.log", "w", encoding="utf-8") as log:
        completed = subprocess.run(
            [sys.executable, "-m", "labutils", "report", *arguments, "--out", str(out)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=environment,
            preexec_fn=child_of_the_worker if sys.platform == "linux" else None,
            check=False,
        )
    seconds = time.perf_counter() - start
    entry = _entry(out / "run.json", notebook)
    if entry is None or entry.get("status") not in {"completed", "cached"}:
        reason = (
            (entry or {}).get("error")
            or _last_line(out / "sweep.log")
            or f"exit status {completed.returncode}"
        )
        return {"status": "failed", "seconds": seconds, "error": _one_line(reason), "metrics": None}
    return {
        "status": "reused" if entry["status"] == "cached" else "completed",
        "seconds": entry.get("seconds", seconds) if entry["status"] == "cached" else seconds,
        "error": None,
        "metrics": entry.get("metrics"),
        "host": socket.gethostname(),
    }


def _entry(run_file: Path, notebook: str) -> dict[str, Any] | None:
    try:
        run = json.loads(run_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return next((entry for entry in run.get("notebooks", []) if entry.get("name") == notebook), None)


def _last_line(path: Path) -> str | None:
    try:
        lines = [
            line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()
        ]
    except OSError:
        return None
    errors = [line for line in lines if line.startswith(("error:", "FAILED"))]
    return (errors or lines or [None])[-1]


def _one_line(text: str) -> str:
    """The last non-empty line of an error (a notebook's traceback ends with what went wrong)."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[-1] if lines else str(text)
