"""``python -m labutils bench-predict``: predict's peak memory per row count, measured in a process of its own."""

from __future__ import annotations

import json

import keras

from labutils.models import compact_cnn
from labutils.predict.bench import PredictMeasurement, predict_table, run_predict_bench, write_pixel_csv
from labutils.predict.rows import iter_pixel_rows
from labutils.runtime.device import device_from_record, training_device


def test_the_generated_csv_is_what_predict_reads(tmp_path):
    path = write_pixel_csv(tmp_path / "rows.csv", 23, seed=1, chunk=10)
    chunks = list(iter_pixel_rows(path, chunk_rows=8))
    assert [chunk.first_row for chunk in chunks] == [1, 9, 17] and sum(len(c.pixels) for c in chunks) == 23
    assert chunks[0].labels is None


def test_each_row_count_is_measured_and_tabled(tmp_path):
    keras.utils.set_random_seed(0)
    model = tmp_path / "model.keras"
    compact_cnn(width=4).save(model)
    table = run_predict_bench([40, 200], tmp_path / "out", model, batch_size=64)
    document = json.loads((tmp_path / "out" / "predict_memory.json").read_text())
    rows = [measurement["rows"] for measurement in document["measurements"]]
    assert rows == [40, 200] and all(m["peak_rss_mb"] > 50 for m in document["measurements"])
    assert device_from_record(document["device"], "predict_memory.json") == training_device()
    assert table.splitlines()[2].startswith("| 40 |") and "| 1.00 |" in table.splitlines()[2]


def test_the_table_gives_each_peak_as_a_ratio_to_the_first():
    table = predict_table(
        [PredictMeasurement(1000, 800.0, 6.0, 166.7), PredictMeasurement(100000, 960.0, 40.0, 2500.0)]
    )
    assert "| 100,000 | 960 | 1.20 | 40.0 | 2,500 |" in table
