"""One notebook executed by papermill in a process of its own: ``python -P .../report/worker.py JOB``.

The report runner starts this process for each notebook and waits on it, so that the runner
itself never sits inside papermill's event loop: a signal (Ctrl-C, SIGTERM, SIGHUP) always
reaches plain Python code there, and the runner can stop the notebook by stopping this
process (the Jupyter kernel watches its parent and exits with it). ``JOB`` is a JSON file:
``{"notebook", "output", "parameters", "kernel", "cwd", "timeout", "error_file", "runner"}``, where
``parameters`` is the ``repr`` of a dict of Python literals (tuples and sets survive it, as they
would not JSON) and ``runner`` the runner's process ID. The executed notebook is written to
``output`` after every cell; on failure the error, as one line, goes to ``error_file`` and the
exit status is 1.

This process only waits on papermill, so it runs by path (:func:`worker_command`) and never imports
the ``labutils`` package, whose import loads TensorFlow (about 4 s and 600 MB for each notebook, for
nothing). The three helpers it needs come from modules of the package that import only the standard
library, executed from their files by :func:`standalone`.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import runpy
import signal
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["PACKAGE_FOLDER", "main", "standalone", "worker_command"]

#: The ``labutils`` folder this file belongs to.
PACKAGE_FOLDER = Path(__file__).resolve().parents[1]


def standalone(module_file: str) -> dict[str, Any]:
    """The names a standard-library-only module of the package defines, run from its file
    (``"report/orphans.py"``) without importing the package."""
    return runpy.run_path(str(PACKAGE_FOLDER / module_file))


def worker_command(job_file: Path) -> list[str]:
    """The command that runs this file for ``job_file``; ``-P`` keeps its folder off ``sys.path``."""
    return [sys.executable, "-P", str(Path(__file__).resolve()), str(job_file)]


#: Papermill's notes on the parameters it infers from the cell tagged ``parameters``. That tag is on
#: the cell after a notebook's parameters (its ``profile`` cell, so that the injected values come
#: after it), which papermill cannot read as assignments; the runner checks every parameter itself.
PAPERMILL_PARAMETER_NOTES = ("Passed unknown parameter:", "Unable to parse line ")


def _not_a_parameter_note(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith(PAPERMILL_PARAMETER_NOTES)


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


#: Seconds this process has to stop after the runner is gone.
ORPHAN_GRACE_SECONDS = 5.0


def _stop_without_runner() -> None:
    """Stop this process once the runner that started it is gone (killed with SIGKILL, say).

    SIGTERM first (papermill then shuts the kernel down); if that has not ended the process
    within :data:`ORPHAN_GRACE_SECONDS`, it exits at once, and the kernel, which watches this
    process in turn (:func:`~labutils.report.orphans.end_kernel_with_its_launcher`), follows.
    """
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(ORPHAN_GRACE_SECONDS)
    os._exit(137)


def main(argv: list[str] | None = None) -> int:
    job = json.loads(Path((argv or sys.argv[1:])[0]).read_text())
    signal.signal(signal.SIGTERM, _stop)  # the runner stops this process with SIGTERM first
    error_text = standalone("report/errors.py")["error_text"]
    try:
        # the runner's own process ID, so that a runner gone before this line is noticed too
        standalone("report/orphans.py")["watch_parent"](job["runner"], _stop_without_runner)
        quiet_native_stderr = standalone("runtime/quiet.py")["quiet_native_stderr"]
        import papermill

        for logger in ("papermill", "papermill.translators"):
            logging.getLogger(logger).addFilter(_not_a_parameter_note)
        with quiet_native_stderr():  # the kernel inherits the filtered standard error
            papermill.execute_notebook(
                job["notebook"],
                job["output"],
                parameters=ast.literal_eval(job["parameters"]),
                kernel_name=job["kernel"],
                progress_bar=False,
                cwd=job["cwd"],
                execution_timeout=job["timeout"],
            )
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        Path(job["error_file"]).write_text(error_text(error), encoding="utf-8")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
