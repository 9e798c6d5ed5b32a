"""No process of a report outlives the run that started it, whenever the run is killed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from labutils.report import ensure_kernel
from labutils.report.notebooks import to_ipynb
from labutils.report.orphans import LAUNCHER_VARIABLE, end_kernel_with_its_launcher, watch_parent
from labutils.report.worker import worker_command
from tests.notebook_texts import SLOW

# Under a process that adopts orphans (as a container's init or a CI service does), a launcher
# starts the project's kernel and dies before the kernel has finished starting up. Prints how
# many seconds the orphaned kernel lived on, or "alive" after 30 s (and then kills it).
_ADOPTING_LAUNCHER = textwrap.dedent(
    """
    import ctypes, os, subprocess, sys, time
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    launcher = '''
    from jupyter_client.manager import KernelManager
    manager = KernelManager(kernel_name=%r)
    manager.start_kernel()
    print(manager.provisioner.process.pid, flush=True)
    import os; os._exit(0)
    '''
    process = subprocess.Popen([sys.executable, "-c", launcher], stdout=subprocess.PIPE, text=True)
    kernel = int(process.stdout.readline())
    process.wait()
    start = time.monotonic()
    while time.monotonic() - start < 30:
        if os.waitpid(kernel, os.WNOHANG)[0] == kernel:
            print(round(time.monotonic() - start, 1))
            break
        time.sleep(0.2)
    else:
        os.kill(kernel, 9)
        print("alive")
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="adopting orphans is Linux's prctl")
def test_a_kernel_whose_launcher_dies_while_it_starts_exits_where_orphans_are_adopted():
    name = ensure_kernel()
    completed = subprocess.run(
        [sys.executable, "-c", _ADOPTING_LAUNCHER % name], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    lived = completed.stdout.split()[-1]
    assert lived != "alive", "the orphaned kernel lived on"
    assert float(lived) < 15


def test_watching_a_parent_already_gone_acts_at_once():
    gone = threading.Event()
    watch_parent(os.getppid() + 1 if os.getppid() > 1 else 2, gone.set, poll_seconds=60)
    assert gone.wait(timeout=5)


def test_watching_a_parent_still_there_does_nothing():
    gone = threading.Event()
    watch_parent(os.getppid(), gone.set, poll_seconds=0.05)
    assert not gone.wait(timeout=0.5)


@pytest.mark.parametrize("parent", [0, 1, -5])
def test_a_parent_that_cannot_end_is_refused(parent):
    with pytest.raises(ValueError, match=rf"process ID of a process that can end, not {parent}"):
        watch_parent(parent, lambda: None)


@pytest.mark.parametrize("recorded", [None, "", "1", "not a number", "-3"])
def test_a_kernel_without_a_recorded_launcher_is_left_alone(monkeypatch, recorded):
    if recorded is None:
        monkeypatch.delenv(LAUNCHER_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(LAUNCHER_VARIABLE, recorded)
    assert end_kernel_with_its_launcher() is None


def test_a_worker_whose_runner_is_already_gone_stops_its_notebook(tmp_path: Path):
    source = tmp_path / "slow.py"
    source.write_text(SLOW)
    staged = to_ipynb(source, tmp_path / "slow.ipynb")
    runner = subprocess.Popen([sys.executable, "-c", "pass"])
    runner.wait()  # a runner process that has ended
    job = {
        "notebook": str(staged),
        "output": str(tmp_path / "out.ipynb"),
        "parameters": repr({"OUTPUT_DIR": str(tmp_path / "out")}),
        "kernel": ensure_kernel(),
        "cwd": str(tmp_path),
        "timeout": 600,
        "error_file": str(tmp_path / "error.txt"),
        "runner": runner.pid,
    }
    (tmp_path / "job.json").write_text(json.dumps(job))
    started = time.monotonic()
    worker = subprocess.run(
        worker_command(tmp_path / "job.json"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert worker.returncode == 130, worker.stderr
    assert time.monotonic() - started < 60
    assert not (tmp_path / "error.txt").exists()
