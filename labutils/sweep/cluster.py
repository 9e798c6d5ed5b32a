"""The Dask cluster a sweep or a benchmark runs on: a ``LocalCluster`` of this machine, or an existing one."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from types import ModuleType

__all__ = ["dask_client"]

#: Seconds to wait for the scheduler of ``--scheduler`` to answer.
CONNECT_SECONDS = 10


@contextlib.contextmanager
def dask_client(
    *,
    workers: int,
    scheduler: str | None,
    ship: ModuleType | tuple[ModuleType, ...],
    allowed_failures: int | None = None,
) -> Iterator[tuple]:
    """(client, where): a client of the cluster at ``scheduler``, else of a new ``LocalCluster`` of
    ``workers`` single-threaded worker processes; ``where`` says which in words. The local workers
    ignore Ctrl-C: a terminal sends it to every process of the command, and the command alone answers
    it, closing the cluster (the processes the workers start take it as usual). ``ship``'s functions
    go to the workers by value, so the workers need not import ``labutils``. ``allowed_failures``: the
    local scheduler's ``allowed-failures`` (how often a task's worker may die before it is given up);
    an existing scheduler keeps its own. Both close on leaving."""
    import cloudpickle
    import dask
    from distributed import Client, LocalCluster

    for module in ship if isinstance(ship, tuple) else (ship,):
        cloudpickle.register_pickle_by_value(module)
    settings = (
        {} if allowed_failures is None else {"distributed.scheduler.allowed-failures": allowed_failures}
    )
    with dask.config.set(settings):
        if scheduler:
            try:
                client = Client(scheduler, timeout=f"{CONNECT_SECONDS}s")
            except (OSError, TimeoutError, ValueError) as error:
                raise ValueError(
                    f"--scheduler {scheduler}: no Dask scheduler answers there ({error})"
                ) from error
            with client:
                yield (
                    client,
                    f"the cluster at {scheduler} ({len(client.scheduler_info()['workers'])} workers)",
                )
            return
        with _interrupts_ignored_by_new_processes():
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",  # a free port: two clusters on one machine never clash
                silence_logs=logging.CRITICAL,
            )
        with cluster, Client(cluster) as client:
            yield client, f"a local cluster of {workers} worker{'s' if workers > 1 else ''}"


@contextlib.contextmanager
def _interrupts_ignored_by_new_processes() -> Iterator[None]:
    """SIGINT ignored while the workers start: a process started meanwhile keeps it ignored (Python leaves
    an inherited SIG_IGN alone), and this one answers it again afterwards. Outside the main thread,
    where Python cannot set handlers, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
