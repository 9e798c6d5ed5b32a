"""One notebook executed in a process of its own, stopped cleanly by a signal, its progress shown."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .errors import error_text
from .notebooks import to_ipynb
from .progress import ProgressReporter
from .worker import PACKAGE_FOLDER, worker_command

__all__ = [
    "PROGRESS_POLL_SECONDS",
    "STOP_GRACE_SECONDS",
    "STOP_SIGNALS",
    "NotebookFailed",
    "RunInterrupted",
    "describe_error",
    "execute",
    "stopped_by_signals",
]


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
def stopped_by_signals() -> Iterator[None]:
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
#: Seconds between two looks at the running notebook's progress (see :mod:`labutils.report.progress`).
PROGRESS_POLL_SECONDS = 5.0


def execute(
    source: Path,
    folder: Path,
    parameters: dict[str, Any],
    timeout: int,
    kernel: str,
    log: Callable[[str], None] = print,
) -> Path:
    """Execute one notebook in a process of its own (:mod:`labutils.report.worker`) into ``folder``.

    The executed notebook is written aside (``.NAME.partial.ipynb``) and renamed to ``NAME.ipynb``
    when the process ends, whatever the outcome, so that a notebook file is always either an
    earlier complete one or the one this run has just finished with. Raises
    :class:`NotebookFailed` when a cell fails; a signal stops the process and propagates.
    """
    folder.mkdir(parents=True, exist_ok=True)
    staged = to_ipynb(source, folder / f".{source.stem}.source.ipynb")
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
        "runner": os.getpid(),
    }
    job_file.write_text(json.dumps(job), encoding="utf-8")
    worker = None
    try:
        worker = subprocess.Popen(
            worker_command(job_file),
            start_new_session=True,  # a terminal's Ctrl-C reaches the runner, which stops the worker
            env={  # the notebook's kernel, the worker's child, imports this same package
                **os.environ,
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(PACKAGE_FOLDER.parent), os.environ.get("PYTHONPATH")])
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


def describe_error(error: BaseException) -> str:
    """One line for an error of a run: a failed notebook's own message, else the error's type and text."""
    if isinstance(error, NotebookFailed):
        return str(error)
    return error_text(error)
