"""A process of the report that ends when the process that started it is gone.

The runner starts a worker for each notebook and the worker starts the notebook's Jupyter kernel;
if the runner is killed (SIGKILL, an out-of-memory kill, a closed terminal), nothing should be
left computing. Each process watches its own parent's process ID: when the parent is gone, the
operating system gives the orphan a new parent, and :func:`watch_parent` sees the change.

ipykernel has a watcher of its own, but it starts only after the kernel has initialised and,
if the parent has already gone by then, it only notices a new parent that is process 1; where
orphans go to another process (a container's init, a CI service, any ``PR_SET_CHILD_SUBREAPER``
process) such a kernel would live on. :func:`end_kernel_with_its_launcher` closes that gap: the
kernel runs it before the first cell (see :data:`labutils.report.notebooks.KERNEL_OPTIONS`) and
compares with the process ID its launcher recorded, so a parent gone at any moment is noticed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

__all__ = ["LAUNCHER_VARIABLE", "PARENT_POLL_SECONDS", "end_kernel_with_its_launcher", "watch_parent"]

#: Seconds between two looks at whether the parent is still there.
PARENT_POLL_SECONDS = 1.0

#: Where ``jupyter_client`` records, for the kernel, the process ID of the process that launched it.
LAUNCHER_VARIABLE = "JPY_PARENT_PID"


def watch_parent(
    parent: int, when_gone: Callable[[], None], poll_seconds: float = PARENT_POLL_SECONDS
) -> threading.Thread:
    """Call ``when_gone`` in a daemon thread once this process's parent is no longer ``parent``.

    The first look is at once, so that a parent that is already gone is noticed without a wait.
    """
    if parent <= 1:
        raise ValueError(f"parent must be the process ID of a process that can end, not {parent}")

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        when_gone()

    thread = threading.Thread(target=watch, name="watch-parent", daemon=True)
    thread.start()
    return thread


def end_kernel_with_its_launcher() -> threading.Thread | None:
    """In a Jupyter kernel: exit at once when the process that launched it is gone.

    A kernel launched without a recorded parent (``JPY_PARENT_PID`` unset, as for an independent
    kernel, or process 1) is left alone. Returns the watching thread, or ``None`` for such a kernel.
    """
    recorded = os.environ.get(LAUNCHER_VARIABLE, "")
    if not recorded.isdigit() or int(recorded) <= 1:
        return None
    return watch_parent(int(recorded), lambda: os._exit(1))
