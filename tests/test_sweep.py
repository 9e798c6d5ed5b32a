"""``python -m labutils sweep``: the grid checked before anything runs, the points spread over a Dask
cluster (local, or at a TCP address), written down as they finish and reused on a rerun."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from labutils.report.notebooks import discover_notebooks
from labutils.sweep.grid import Point, make_points
from labutils.sweep.run import local_layout, run_sweep

SOURCES = discover_notebooks()
TASK2 = next(source for source in SOURCES if source.stem == "02_cnn")


def test_the_grid_is_the_product_of_the_values_then_the_seeds_in_the_order_given():
    points = make_points(
        TASK2, {"WIDTH": [16, 32], "POOLING": ["max", "blur"]}, seeds=[0, 1], all_sources=SOURCES
    )
    assert [p.parameters for p in points[:3]] == [
        {"WIDTH": 16, "POOLING": "max", "SEED": 0},
        {"WIDTH": 16, "POOLING": "max", "SEED": 1},
        {"WIDTH": 16, "POOLING": "blur", "SEED": 0},
    ]
    assert len(points) == 8 and points[0].name == "WIDTH=16,POOLING=max,SEED=0"
    assert points[0].label == "WIDTH=16 POOLING='max' SEED=0"
    # a folder name keeps letters, digits and =,.+-_ only, and stays short
    odd = Point({"BACKBONES": ["vgg16", "mobilenet_v2"], "IMAGE_SIZES": {"vgg16": 32, "x" * 200: 64}})
    assert (
        odd.name.startswith("BACKBONES=_vgg16_,_mobilenet_v2_,IMAGE_SIZES=_vgg16_32,_x")
        and len(odd.name) <= 100
    )


@pytest.mark.parametrize(
    "values, seeds, words",
    [
        ({}, None, "nothing to sweep"),
        ({"WIDTH": [16, 16]}, None, "-p WIDTH: the value 16 is given twice"),
        ({"SEED": [0, 1]}, [2], "give the seeds with --seeds or with -p SEED, not both"),
        ({"WIDTH": [16, 0]}, None, "WIDTH"),  # outside [1, 512]
        ({"POOLING": ["max", "average"]}, None, "POOLING"),  # not one of its choices
        ({"WIDHT": [16]}, None, "unknown parameter 'WIDHT'"),
        ({"OUTPUT_DIR": ["x"]}, None, "set by the runner"),
    ],
)
def test_a_bad_grid_is_refused_by_name_before_anything_runs(values, seeds, words, tmp_path):
    with pytest.raises(ValueError, match=words):
        make_points(TASK2, values, seeds, SOURCES)
    with pytest.raises(ValueError, match=words):
        run_sweep("02", values, seeds=seeds, out=tmp_path / "sweep")
    assert not (tmp_path / "sweep").exists()  # refused before any folder or cluster


def test_a_notebook_that_reads_an_earlier_ones_results_needs_them_first(tmp_path):
    with pytest.raises(
        ValueError, match=r"03_augmentation reads 02_cnn's results, and .*02_cnn/metrics.json does not"
    ):
        run_sweep("03", {"EPOCHS": [1, 2]}, reports=tmp_path / "reports", out=tmp_path / "sweep")
    with pytest.raises(ValueError, match="'0' matches more than one notebook"):
        run_sweep("0", {"EPOCHS": [1]}, out=tmp_path / "sweep")
    assert not (tmp_path / "sweep").exists()


def test_the_local_cluster_gives_each_core_one_thread():
    assert local_layout(4, cores=2) == (2, 1)  # two single-threaded points at a time
    assert local_layout(1, cores=2) == (1, 2)  # one point gets both cores
    assert local_layout(4, workers=1, cores=16) == (1, 16)
    with pytest.raises(ValueError, match="--workers must be at least 1"):
        local_layout(4, workers=0)


GRID = {"EPOCHS": [1], "WIDTH": [4, 8], "POOLING": ["max", "blur"]}


@pytest.fixture(scope="module")
def local_sweep(standin_dir, tmp_path_factory):
    """A 2x2 quick sweep of notebook 02 on the stand-in, on a local cluster of 2 single-threaded workers."""
    out = tmp_path_factory.mktemp("sweep")
    lines: list[str] = []
    summary = run_sweep(
        "02", GRID, profile="quick", data_dir=standin_dir, out=out, workers=2, log=lines.append
    )
    return out, summary, lines


def test_a_local_sweep_runs_every_point_and_writes_its_summary(local_sweep):
    out, summary, lines = local_sweep
    assert lines[0].startswith(
        "sweep: 4 points of 02_cnn on a local cluster of 2 workers, 1 TensorFlow threads"
    )
    assert len(lines) == 5 and all(" completed in " in line for line in lines[1:]), lines
    table = pd.read_csv(out / "summary.csv")
    assert list(table["point"]) == [
        f"EPOCHS=1,WIDTH={w},POOLING={p}" for w in (4, 8) for p in ("max", "blur")
    ]
    assert set(table["status"]) == {"completed"} and (table["seconds"] > 0).all()
    for row in table.itertuples():
        metrics = json.loads((out / "points" / row.point / "02_cnn" / "metrics.json").read_text())
        assert metrics["recipe"]["width"] == row.WIDTH and metrics["recipe"]["pooling"] == row.POOLING
        assert row.headline == metrics["models"]["compact_cnn"]["val_accuracy_grouped"]
        assert (out / "points" / row.point / "02_cnn" / "02_cnn.html").exists()
    page = (out / "index.html").read_text()
    assert "4 points: 4 completed." in page
    assert page.count('src="data:image/png;base64,') == 2  # against WIDTH and POOLING; EPOCHS has one value
    assert "compact_cnn val_accuracy_grouped per setting, over seeds" in page
    assert summary["status"].tolist() == ["completed"] * 4 and summary.attrs["out"] == str(out)


def test_a_rerun_of_a_finished_sweep_executes_nothing(local_sweep, standin_dir):
    out, _, _ = local_sweep
    lines: list[str] = []
    summary = run_sweep("02", GRID, profile="quick", data_dir=standin_dir, out=out, log=lines.append)
    assert summary["status"].tolist() == ["reused"] * 4, lines
    assert lines[-1] == f"sweep: all 4 points of 02_cnn reused from {out}; --force runs them again", lines
    # each reused point reports its run's seconds, as summary.csv holds them
    table = pd.read_csv(out / "summary.csv")
    assert table["status"].tolist() == ["reused"] * 4 and (table["seconds"] > 1).all()


def test_a_rerun_against_a_tcp_cluster_runs_the_missing_point_there(local_sweep, standin_dir):
    import shutil

    out, _, _ = local_sweep
    shutil.rmtree(out / "points" / "EPOCHS=1,WIDTH=8,POOLING=blur")
    address, processes = _start_cluster(2)
    try:
        lines: list[str] = []
        summary = run_sweep(
            "02", GRID, profile="quick", data_dir=standin_dir, out=out, scheduler=address, log=lines.append
        )
    finally:
        _stop(processes)
    start = next(line for line in lines if line.startswith("sweep: "))
    assert start.startswith(f"sweep: 1 point of 02_cnn (3 reused) on the cluster at {address}"), lines
    assert summary["status"].tolist() == ["reused", "reused", "reused", "completed"], lines
    assert (out / "points" / "EPOCHS=1,WIDTH=8,POOLING=blur" / "02_cnn" / "metrics.json").is_file()


def _address(scheduler: subprocess.Popen) -> str:
    """The TCP address a ``dask scheduler`` started on port 0 says it listens at."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = scheduler.stdout.readline()
        if "Scheduler at:" in line:
            return line.split("Scheduler at:")[1].strip()
    raise AssertionError("the scheduler did not say its address within 60 s")


def test_the_command_line_refuses_a_bad_sweep_in_one_line(tmp_path, capsys):
    from labutils.cli.command import main

    for arguments, words in (
        (["-p", "WIDTH", "16", "0"], "WIDTH"),
        (["-p", "WIDTH"], "-p WIDTH: give at least one value"),
        (["-p", "WIDTH", "16", "-p", "WIDTH", "32"], "-p WIDTH is given twice"),
        (["--seeds", "0", "--workers", "0"], "--workers must be at least 1"),
    ):
        assert main(["sweep", "02", *arguments, "--out", str(tmp_path / "sweep")]) == 1
        error = capsys.readouterr().err
        assert error.startswith("error: ") and words in error and len(error.strip().splitlines()) == 1, error
    assert not (tmp_path / "sweep").exists()


def test_a_scheduler_that_does_not_answer_is_named(tmp_path):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(
        ValueError, match=f"--scheduler tcp://127.0.0.1:{port}: no Dask scheduler answers there"
    ):
        run_sweep("02", {"WIDTH": [16]}, scheduler=f"tcp://127.0.0.1:{port}", out=tmp_path / "sweep")
    assert not (tmp_path / "sweep").exists()


def test_a_point_runs_on_the_standard_library_alone():
    """The sweep ships ``run_point`` to the workers by value: were it to import the package, every
    worker would load TensorFlow for nothing (the report it starts loads it)."""
    import ast

    import labutils.sweep.point as point

    tree = ast.parse(Path(point.__file__).read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 0
    }
    assert not any(isinstance(node, ast.ImportFrom) and node.level for node in ast.walk(tree))
    assert imported - {"__future__"} <= set(sys.stdlib_module_names), imported


def _start_cluster(
    workers: int, *, allowed_failures: int | None = None
) -> tuple[str, list[subprocess.Popen]]:
    """A scheduler (with ``allowed_failures``, else Dask's default) and ``workers`` single-threaded workers
    on 127.0.0.1, without nannies (a killed worker stays dead); the address and the processes, the
    scheduler first."""
    import os

    environment = dict(os.environ)
    if allowed_failures is not None:
        environment["DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES"] = str(allowed_failures)
    scheduler = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
    )
    address = _address(scheduler)
    started = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_worker",
                address,
                "--nthreads",
                "1",
                "--no-nanny",
                "--no-dashboard",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    return address, [scheduler, *started]


def _stop(processes: list[subprocess.Popen]) -> None:
    """End a cluster :func:`_start_cluster` started (killed: the scheduler's unread output pipe could
    block a graceful shutdown)."""
    for process in processes:
        process.kill()
        process.wait(timeout=60)


def _kill_the_worker_running(folder: Path, seconds: float = 180) -> int:
    """Kill (SIGKILL) the Dask worker whose report writes into ``folder``, once that report runs; its pid."""
    import psutil

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for process in psutil.process_iter(["cmdline"]):
            command = process.info["cmdline"] or []
            if "report" not in command or str(folder) not in command:
                continue
            try:
                worker = process.parent()  # an orphan of a killed worker has another parent: left alone
                if worker is not None and any("dask_worker" in part for part in worker.cmdline()):
                    worker.kill()
                    return worker.pid
            except psutil.Error:  # the process ended meanwhile
                continue
        time.sleep(0.2)
    raise AssertionError(f"no report started into {folder} within {seconds} s")


@pytest.mark.parametrize("deaths, status", [(1, "completed"), (2, "failed")])
def test_a_point_whose_worker_dies_is_run_again_once_and_the_others_are_kept(
    deaths, status, standin_dir, tmp_path
):
    import threading

    address, processes = _start_cluster(3, allowed_failures=1)  # as the local cluster: one retry
    out, grid = tmp_path / "sweep", {"SAMPLE_SIZE": [100, 200]}
    outcome: dict = {}
    lines: list[str] = []

    def sweep() -> None:
        outcome["summary"] = run_sweep(
            "01", grid, profile="quick", data_dir=standin_dir, out=out, scheduler=address, log=lines.append
        )

    try:
        runner = threading.Thread(target=sweep)
        runner.start()
        killed = set()
        for _ in range(deaths):
            killed.add(_kill_the_worker_running(out / "points" / "SAMPLE_SIZE=100"))
            time.sleep(2)  # the next report into the folder is the retry's
        runner.join(timeout=600)
    finally:
        _stop(processes)
    assert len(killed) == deaths and not runner.is_alive()
    summary = outcome["summary"].set_index("point")
    assert summary.loc["SAMPLE_SIZE=200", "status"] == "completed"  # the other point is kept
    assert summary.loc["SAMPLE_SIZE=100", "status"] == status, lines
    if status == "failed":
        assert summary.loc["SAMPLE_SIZE=100", "error"] == "its worker died 2 times while running it"
        assert any("SAMPLE_SIZE=100: failed: its worker died 2 times" in line for line in lines)
    else:
        metrics = json.loads((out / "points" / "SAMPLE_SIZE=100" / "01_data" / "metrics.json").read_text())
        assert metrics["notebook"] == "01_data"


def test_ctrl_c_stops_the_sweep_keeps_its_finished_points_and_a_rerun_continues(standin_dir, tmp_path):
    """Ctrl-C as a terminal sends it: SIGINT to the sweep's whole process group, workers and reports too."""
    import os
    import signal

    import psutil

    out = tmp_path / "sweep"
    command = [sys.executable, "-m", "labutils", "sweep", "01", "--profile", "quick", "--data-dir",
               str(standin_dir), "-p", "SAMPLE_SIZE", "100", "200", "300", "--workers", "1", "--out", str(out)]  # fmt: skip
    runner = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    lines, deadline = [], time.monotonic() + 300
    for line in runner.stdout:
        lines.append(line)
        if line.startswith("[1/3"):
            break
        assert time.monotonic() < deadline, "".join(lines)
    time.sleep(3)  # the second point's report is running
    os.killpg(runner.pid, signal.SIGINT)
    rest, _ = runner.communicate(timeout=120)
    output = "".join(lines) + rest
    assert runner.returncode == 130, output
    assert "sweep interrupted: 1 finished points kept; a rerun continues from them" in output, output
    assert "Traceback" not in output, output
    table = pd.read_csv(out / "summary.csv")
    assert table["status"].tolist() == ["completed", "interrupted", "interrupted"], output
    time.sleep(2)
    left = [p for p in psutil.process_iter(["cmdline"]) if str(out) in " ".join(p.info["cmdline"] or [])]
    assert not left, [p.info["cmdline"] for p in left]  # no worker or report outlives the sweep
    lines = []
    summary = run_sweep(
        "01", {"SAMPLE_SIZE": [100, 200, 300]}, profile="quick", data_dir=standin_dir, out=out, workers=1,
        log=lines.append,
    )  # fmt: skip
    assert summary["status"].tolist() == ["reused", "completed", "completed"], lines


def test_a_point_that_fails_says_why_in_one_line(tmp_path):
    from labutils.sweep.point import run_point

    nowhere = tmp_path / "nowhere"
    arguments = ["--profile", "quick", "--only", "01", "--data-dir", str(nowhere)]
    result = run_point(arguments, str(tmp_path / "point"), "01_data", 1, {})
    assert result["status"] == "failed" and result["metrics"] is None
    assert "\n" not in result["error"] and str(nowhere) in result["error"], result
