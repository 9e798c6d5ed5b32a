"""One benchmark job in a fresh Python process, started on a Dask worker.

A job must run in a process of its own: its peak memory is the process's, and TensorFlow's state must
not carry from one job to the next. This module imports the standard library and
:mod:`labutils.sweep.point` alone, and the benchmark ships both to the workers by value, so a worker
never loads TensorFlow itself; the job's process (``python -m labutils.bench.jobs``) does, and ends
with its worker.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from labutils.sweep.point import child_of_the_worker

__all__ = ["run_job_in_process"]


def run_job_in_process(job: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """The job's figures ({role: figures}) and its seconds; a job that fails raises ``RuntimeError``
    with its last line."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="labutils-bench-job-") as folder:
        job_file, figures_file, log_file = (
            Path(folder) / name for name in ("job.json", "figures.json", "job.log")
        )
        job_file.write_text(json.dumps(job), encoding="utf-8")
        with open(log_file, "w", encoding="utf-8") as log:
            completed = subprocess.run(
                [sys.executable, "-m", "labutils.bench.jobs", str(job_file), str(figures_file)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=child_of_the_worker if sys.platform == "linux" else None,
                check=False,
            )
        if completed.returncode != 0 or not figures_file.exists():
            lines = [
                line
                for line in log_file.read_text(encoding="utf-8", errors="replace").splitlines()
                if line.strip()
            ]
            raise RuntimeError(
                lines[-1] if lines else f"the job's process ended with status {completed.returncode}"
            )
        return json.loads(figures_file.read_text(encoding="utf-8")), time.perf_counter() - start
