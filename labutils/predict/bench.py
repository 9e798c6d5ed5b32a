"""``python -m labutils bench-predict``: the peak memory and speed of ``predict`` against the number of CSV rows.

For each row count, a CSV file of that many seeded random 28x28 images (pixels only, the usual
shape of data to be predicted) is written, and ``python -m labutils predict FILE --json`` runs on
it in a process of its own, whose peak resident memory is read from the operating system
(``getrusage`` of the finished child). Streaming keeps the peak flat: the target is the largest
count within 1.2 times the smallest's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

__all__ = ["PredictMeasurement", "measure_predict", "predict_table", "run_predict_bench", "write_pixel_csv"]


@dataclass
class PredictMeasurement:
    """One run of ``predict`` on ``rows`` CSV rows."""

    rows: int
    peak_rss_mb: float
    seconds: float
    rows_per_second: float


def write_pixel_csv(path: Path, rows: int, seed: int = 0, chunk: int = 5000) -> Path:
    """A header-less CSV of ``rows`` random images (784 pixel columns), written a chunk at a time."""
    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8") as handle:
        for start in range(0, rows, chunk):
            block = rng.integers(0, 256, (min(chunk, rows - start), 784))
            np.savetxt(handle, block, fmt="%d", delimiter=",")
    return path


def _peak_of_child(command: list[str]) -> tuple[float, float]:
    """(peak resident MB, seconds) of one command run in a fresh process (the only child it waits for)."""
    wrapper = (
        "import resource, subprocess, sys, time\n"
        "start = time.perf_counter()\n"
        "done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)\n"
        "seconds = time.perf_counter() - start\n"
        "if done.returncode: sys.exit(done.stderr[-2000:])\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, seconds)\n"
    )
    completed = subprocess.run([sys.executable, "-c", wrapper, *command], capture_output=True, text=True)
    if completed.returncode:
        raise RuntimeError(f"predict failed: {completed.stderr.strip()}")
    kilobytes, seconds = completed.stdout.split()
    return int(kilobytes) / 1024, float(seconds)


def measure_predict(
    row_counts: list[int], model_file: str | Path | None = None, *, batch_size: int = 512, seed: int = 0
) -> list[PredictMeasurement]:
    """Peak memory and speed of ``predict`` for each row count (a fresh compact network if no ``model_file``)."""
    if not row_counts or any(count < 1 for count in row_counts):
        raise ValueError(f"--rows needs positive row counts, got {row_counts}")
    results = []
    with tempfile.TemporaryDirectory() as folder:
        folder_path = Path(folder)
        if model_file is None:
            import keras

            from ..recipes import Task2Recipe

            keras.utils.set_random_seed(seed)
            model_file = folder_path / "compact_cnn.keras"
            Task2Recipe().network().save(
                model_file
            )  # the final networks' architecture: the memory is the same untrained
        for rows in row_counts:
            csv = write_pixel_csv(folder_path / f"rows_{rows}.csv", rows, seed=seed)
            command = [sys.executable, "-m", "labutils", "predict", str(csv), "--json", "--model", str(model_file),
                       "--batch-size", str(batch_size)]  # fmt: skip
            peak, seconds = _peak_of_child(command)
            results.append(
                PredictMeasurement(rows, round(peak, 1), round(seconds, 2), round(rows / seconds, 1))
            )
            csv.unlink()
    return results


def predict_table(results: list[PredictMeasurement]) -> str:
    """A Markdown table of the measurements, with each peak as a ratio to the first row count's."""
    first = results[0].peak_rss_mb
    lines = [
        "| CSV rows | peak RSS MB | × the first | seconds | rows/s |",
        "| --- | --- | --- | --- | --- |",
    ]
    for result in results:
        lines.append(
            f"| {result.rows:,} | {result.peak_rss_mb:,.0f} | {result.peak_rss_mb / first:.2f} | "
            f"{result.seconds:.1f} | {result.rows_per_second:,.0f} |"
        )
    return "\n".join(lines)


def run_predict_bench(
    row_counts: list[int], out: str | Path, model_file: str | Path | None = None, *, batch_size: int = 512
) -> str:
    """Measure, write ``OUT/predict_memory.json`` and ``.md``, and return the table.

    The record names the device ``predict`` ran on: the one TensorFlow uses here, as in its processes.
    """
    import tensorflow  # noqa: F401  (so that the device is TensorFlow's answer, as predict's processes get it)

    from ..recipes import Task2Recipe
    from ..report.provenance import machine_info
    from ..runtime.device import training_device

    started = time.perf_counter()
    results = measure_predict(row_counts, model_file, batch_size=batch_size)
    table = predict_table(results)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    document = {
        "machine": machine_info(),
        "device": training_device().as_record(),
        "model_file": str(model_file) if model_file else f"a fresh compact_cnn (width {Task2Recipe().width})",
        "batch_size": batch_size,
        "measurements": [asdict(result) for result in results],
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out / "predict_memory.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    (out / "predict_memory.md").write_text(table + "\n", encoding="utf-8")
    return table
