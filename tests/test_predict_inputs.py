"""What ``predict`` makes of real pictures and of CSV files to be predicted (no network needed).

Pictures the way cameras and editors make them: 16-bit and float images, EXIF orientation,
transparency, decompression bombs, tiny and uniform pictures. CSV files the way people have
them: pixels only, no header, a byte-order mark, labels that are not classes. All generated here.
"""

from __future__ import annotations

import gzip
import os
import struct
import tracemalloc
import zlib
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from labutils.data import CSV_HEADER, DataValidationError
from labutils.predict.command import iter_predictions, predict_files
from labutils.predict.pictures import MAX_IMAGE_PIXELS, read_picture
from labutils.predict.rows import iter_pixel_rows


def _hand(seed: int = 0) -> np.ndarray:
    """A 28x28 uint8 picture with structure in both directions (so that a rotation shows)."""
    rng = np.random.default_rng(seed)
    image = np.zeros((28, 28))
    image[4:24, 6:12] = 200  # a bar on the left
    image[4:10, 6:22] = 160  # and one along the top
    image += rng.normal(0, 10, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def test_a_16_bit_png_is_scaled_by_its_range_not_clipped_to_white(tmp_path):
    hand = _hand()
    Image.fromarray(hand.astype(np.uint16) * 257).save(tmp_path / "deep.png")  # 16-bit gray
    picture = read_picture(tmp_path / "deep.png")
    assert picture.mode == "I;16"
    np.testing.assert_array_equal(picture.pixels, hand)


def test_float_images_are_read_in_0_1_and_otherwise_by_their_range_with_a_warning(tmp_path):
    hand = _hand()
    Image.fromarray(hand.astype(np.float32) / 255).save(tmp_path / "unit.tif")
    unit = read_picture(tmp_path / "unit.tif")
    assert np.abs(unit.pixels.astype(int) - hand).max() <= 1 and not unit.warnings
    Image.fromarray(hand.astype(np.float32) * 4 - 100).save(tmp_path / "wide.tif")
    wide = read_picture(tmp_path / "wide.tif")
    assert any("scaled by its own range" in text for text in wide.warnings)
    assert np.corrcoef(wide.pixels.ravel(), hand.ravel())[0, 1] > 0.99


def test_the_exif_orientation_is_applied(tmp_path):
    upright = np.kron(_hand(), np.ones((4, 4), np.uint8))
    stored = Image.fromarray(upright).rotate(90, expand=True)  # as a sideways sensor stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to show"
    stored.save(tmp_path / "phone.jpg", quality=95, exif=exif)
    Image.fromarray(upright).save(tmp_path / "upright.jpg", quality=95)
    read = read_picture(tmp_path / "phone.jpg").pixels.astype(float)
    reference = read_picture(tmp_path / "upright.jpg").pixels.astype(float)
    assert np.abs(read - reference).mean() < 3
    sideways = np.asarray(stored.resize((28, 28)), dtype=float)
    assert np.abs(sideways - reference).mean() > 20  # the tag matters: ignoring it would read sideways


def test_transparency_is_composited_on_white(tmp_path):
    hand = _hand()
    rgba = np.zeros((28, 28, 4), np.uint8)  # transparent black everywhere ...
    rgba[..., 3] = 0
    rgba[8:20, 8:20] = (0, 0, 0, 255)  # ... but an opaque black square
    Image.fromarray(rgba, "RGBA").save(tmp_path / "cutout.png")
    pixels = read_picture(tmp_path / "cutout.png").pixels
    assert pixels[0, 0] == 255 and pixels[14, 14] == 0
    assert hand.shape == pixels.shape


def _png_declaring(path: Path, width: int, height: int) -> None:
    """A tiny PNG file whose header declares ``width`` x ``height`` pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\x00" * (width + 1) * 4)  # a few rows only: the rest is missing
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def test_a_decompression_bomb_is_that_inputs_error_and_the_others_are_answered(tmp_path, model_file):
    _png_declaring(tmp_path / "bomb.png", 20000, 20000)
    assert (tmp_path / "bomb.png").stat().st_size < 10_000 and 20000 * 20000 > MAX_IMAGE_PIXELS
    Image.fromarray(_hand()).save(tmp_path / "fine.png")
    first, bomb, last = predict_files(
        [tmp_path / "fine.png", tmp_path / "bomb.png", tmp_path / "fine.png"], model_file
    )
    assert first.top3 and last.top3 and first.top3 == last.top3
    assert bomb.top3 is None and "bomb.png" in bomb.error and "more than the limit" in bomb.error


def test_tiny_and_uniform_pictures_are_answered_with_a_warning(tmp_path, model_file):
    Image.fromarray(_hand()[::3, ::3]).save(tmp_path / "tiny.png")
    Image.fromarray(np.full((60, 60), 128, np.uint8)).save(tmp_path / "gray.png")
    Image.fromarray(np.kron(_hand(), np.ones((2, 2), np.uint8))).save(tmp_path / "fine.png")
    tiny, gray, fine = predict_files(
        [tmp_path / "tiny.png", tmp_path / "gray.png", tmp_path / "fine.png"], model_file
    )
    assert tiny.top3 and any("only 10x10 pixels" in text for text in tiny.warnings)
    assert gray.top3 and any("one grey level" in text for text in gray.warnings)
    assert fine.top3 and fine.warnings == []
    assert "warnings" in tiny.as_dict() and "warnings" not in fine.as_dict()


def _csv(path: Path, rows: np.ndarray, header: tuple[str, ...] | None, bom: bool = False) -> Path:
    lines = ([",".join(header)] if header else []) + [",".join(map(str, row)) for row in rows]
    data = ("\ufeff" if bom else "") + "\n".join(lines) + "\n"
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(data.encode("utf-8")))
    else:
        path.write_text(data, encoding="utf-8")
    return path


@pytest.fixture
def pixel_rows() -> np.ndarray:
    return np.stack([_hand(seed).reshape(-1) for seed in range(7)])


def test_csv_files_of_every_usual_shape_are_read_alike(tmp_path, pixel_rows):
    labels = np.array([[9], [-1], [3], [0], [24], [25], [100]])  # not classes, and never checked
    files = [
        _csv(tmp_path / "kaggle.csv", np.hstack([labels, pixel_rows]), CSV_HEADER),
        _csv(tmp_path / "pixels.csv", pixel_rows, CSV_HEADER[1:]),
        _csv(tmp_path / "bare.csv", pixel_rows, None),
        _csv(tmp_path / "bare_labelled.csv.gz", np.hstack([labels, pixel_rows]), None),
        _csv(tmp_path / "excel.csv", pixel_rows, CSV_HEADER[1:], bom=True),
        _csv(tmp_path / "excel_labelled.csv", np.hstack([labels, pixel_rows]), CSV_HEADER, bom=True),
    ]
    for path in files:
        chunks = list(iter_pixel_rows(path, chunk_rows=3))
        assert [chunk.first_row for chunk in chunks] == [1, 4, 7], path.name
        np.testing.assert_array_equal(np.concatenate([c.pixels for c in chunks]).reshape(7, -1), pixel_rows)
        read_labels = [label for chunk in chunks for label in (chunk.labels or [])]
        assert read_labels == (
            [9, -1, 3, 0, 24, 25, 100] if "labelled" in path.name or "kaggle" in path.name else []
        )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda rows: rows.__setitem__((4, 10), "x"),
            r"row 5 \(line 6\), column 'pixel11': 'x' is not an integer",
        ),
        (lambda rows: rows.__setitem__((5, 783), ""), r"row 6 \(line 7\), column 'pixel784': empty cell"),
        (
            lambda rows: rows.__setitem__((6, 0), 256),
            r"row 7 \(line 8\), column 'pixel1': pixel 256 outside 0-255",
        ),
        (
            lambda rows: rows.__setitem__((2, 1), "2.5"),
            r"row 3 \(line 4\), column 'pixel2': '2.5' is not an integer",
        ),
    ],
)
def test_a_bad_pixel_is_named_by_row_and_column(tmp_path, pixel_rows, edit, message):
    rows = pixel_rows.astype(object)
    edit(rows)
    path = _csv(tmp_path / "bad.csv", rows, CSV_HEADER[1:])
    with pytest.raises(DataValidationError, match=message):
        list(iter_pixel_rows(path, chunk_rows=2))


def _lines(pixel_rows: np.ndarray, labelled: bool = True) -> list[str]:
    labels = np.arange(len(pixel_rows))[:, None] % 24
    rows = np.hstack([labels, pixel_rows]) if labelled else pixel_rows
    return [",".join(str(value) for value in row) for row in rows]


def _short(lines: list[str], row: int = 3) -> None:
    lines[row] = lines[row].rsplit(",", 1)[0]


def _long(lines: list[str], row: int = 3) -> None:
    lines[row] += ",1"


def _huge(lines: list[str], row: int = 3) -> None:
    lines[row] = lines[row].rsplit(",", 1)[0] + ",99999999999999999999999"


def _not_a_number(lines: list[str], row: int = 3) -> None:
    lines[row] = lines[row].rsplit(",", 1)[0] + ",x"


def _after_blank_lines(damage):
    """Three blank lines before the third row, then ``damage`` on the fourth (now line 8 of the file)."""

    def damaged(lines: list[str]) -> None:
        lines[2:2] = ["", "", ""]
        damage(lines, row=6)

    return damaged


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        # a row one value short is a short row, as a long one is a long row (issue 47, item 5)
        (_short, r"row 4 \(line 5\) has 784 columns, expected 785"),
        (_long, r"row 4 \(line 5\) has 786 columns, expected 785"),
        # an integer too large for any machine type is still an integer, outside 0-255 (item 9)
        (_huge, r"row 4 \(line 5\), column 'pixel784': pixel 99999999999999999999999 outside 0-255"),
        # blank lines are not rows, but they are lines: the line named holds the row (item 8)
        (_after_blank_lines(_not_a_number), r"row 4 \(line 8\), column 'pixel784': 'x' is not an integer"),
        (_after_blank_lines(_long), r"row 4 \(line 8\) has 786 columns, expected 785"),
    ],
    ids=["short row", "long row", "huge integer", "bad cell after blank lines", "long row after blank lines"],
)
@pytest.mark.parametrize("chunk_rows", [2, 512])
def test_a_bad_row_comes_after_every_row_before_it_and_names_its_line(
    tmp_path, pixel_rows, damage, message, chunk_rows
):
    lines = _lines(pixel_rows)
    damage(lines)
    path = tmp_path / "rows.csv"
    path.write_text("\n".join([",".join(CSV_HEADER), *lines]) + "\n")
    read = []
    with pytest.raises(DataValidationError, match=message):
        for chunk in iter_pixel_rows(path, chunk_rows=chunk_rows):
            read.extend(chunk.pixels)
    assert len(read) == 3  # rows 1-3, each one before the bad row 4 (item 6)
    np.testing.assert_array_equal(np.stack(read).reshape(3, -1), pixel_rows[:3])


def test_a_header_without_rows_says_so(tmp_path):
    for text in (",".join(CSV_HEADER) + "\n", ",".join(CSV_HEADER) + "\n\n\n"):
        (tmp_path / "empty.csv").write_text(text)
        with pytest.raises(DataValidationError, match=r"empty.csv: no data rows after the header$"):
            list(iter_pixel_rows(tmp_path / "empty.csv"))


def test_predict_answers_every_row_before_a_bad_one_then_names_it(tmp_path, model_file, pixel_rows):
    rows = np.tile(pixel_rows, (100, 1))[:700]
    lines = _lines(rows)
    lines[599] += ",7"  # row 600 of 700 is long
    path = tmp_path / "rows.csv"
    path.write_text("\n".join([",".join(CSV_HEADER), *lines]) + "\n")
    predictions = list(iter_predictions([path], model_file, batch_size=512))
    assert [p.row for p in predictions[:-1]] == list(range(1, 600))
    assert all(p.error is None for p in predictions[:-1])
    assert predictions[-1].error.endswith("row 600 (line 601) has 786 columns, expected 785")


def test_a_first_line_that_is_neither_header_nor_row_is_named(tmp_path, pixel_rows):
    misspelt = tuple("pixle5" if name == "pixel5" else name for name in CSV_HEADER[1:])
    path = _csv(tmp_path / "odd.csv", pixel_rows, misspelt)
    with pytest.raises(
        DataValidationError, match=r"line 1, column 5 is 'pixle5': expected the header \('pixel5' there\)"
    ):
        list(iter_pixel_rows(path))
    (tmp_path / "short.csv").write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DataValidationError, match="line 1 has 3 columns"):
        list(iter_pixel_rows(tmp_path / "short.csv"))


@pytest.fixture
def model_calls(monkeypatch) -> list[int]:
    """The number of images of each model call, as they are made."""
    calls: list[int] = []
    original = keras.Model.predict_on_batch

    def counting(self, x):
        calls.append(len(x))
        return original(self, x)

    monkeypatch.setattr(keras.Model, "predict_on_batch", counting)
    return calls


def test_labels_are_passed_on_and_rows_predicted_a_batch_at_a_time(
    tmp_path, model_file, pixel_rows, model_calls
):
    labels = np.arange(len(pixel_rows))[:, None] - 1  # -1, 0, 1, ...
    path = _csv(tmp_path / "rows.csv", np.hstack([labels, pixel_rows]), CSV_HEADER)
    predictions = list(iter_predictions([path, path], model_file, batch_size=3))
    assert [p.row for p in predictions] == list(range(1, 8)) * 2
    assert [p.label_in_file for p in predictions] == list(labels.ravel()) * 2
    assert model_calls == [3, 3, 3, 3, 2]  # batches across the two files, none larger than 3
    assert predictions[0].as_dict()["label_in_file"] == -1


def test_no_model_call_reads_more_than_its_cap_whatever_the_batch_size(tmp_path, model_file, model_calls):
    """--batch-size 65536 took 10.5 GB in the network's activations (issue 47, item 10)."""
    from labutils.predict.command import MODEL_CALL_IMAGES

    rows = np.tile(np.stack([_hand(seed).reshape(-1) for seed in range(3)]), (434, 1))  # 1,302 rows
    path = _csv(tmp_path / "many.csv", rows, CSV_HEADER[1:])
    predictions = list(iter_predictions([path], model_file, batch_size=65536))
    assert len(predictions) == len(rows) and MODEL_CALL_IMAGES == 512
    assert model_calls == [512, 512, 278]


def test_memory_stays_flat_in_the_number_of_rows(tmp_path, model_file):
    rng = np.random.default_rng(0)
    small = _csv(tmp_path / "small.csv", rng.integers(0, 256, (500, 784)), CSV_HEADER[1:])
    large = _csv(tmp_path / "large.csv", rng.integers(0, 256, (6000, 784)), CSV_HEADER[1:])
    list(iter_predictions([small], model_file, batch_size=256))  # TensorFlow's first-call allocations

    def peak(path: Path) -> int:
        tracemalloc.start()
        count = sum(1 for _ in iter_predictions([path], model_file, batch_size=256))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert count in (500, 6000)
        return top

    small_peak, large_peak = peak(small), peak(large)
    assert large_peak < 1.5 * small_peak, (
        small_peak,
        large_peak,
    )  # 12 times the rows, not 12 times the memory


def test_a_folder_named_like_an_input_is_called_a_folder(tmp_path, model_file):
    (tmp_path / "rows.csv").mkdir()
    (tmp_path / "hand.png").mkdir()
    csv, png = predict_files([tmp_path / "rows.csv", tmp_path / "hand.png"], model_file)
    assert "rows.csv: is a folder, not a picture or CSV file" in csv.error
    assert "hand.png: is a folder, not a picture or CSV file" in png.error


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_only_regular_files_are_read_and_the_rest_named_for_what_they_are(tmp_path, model_file):
    """A named pipe would block the run for ever (issue 47, items 1 and 2, and 16's broken link)."""
    Image.fromarray(_hand()).save(tmp_path / "good.png")
    os.mkfifo(tmp_path / "fifo.png")
    os.mkfifo(tmp_path / "fifo.csv")
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    (tmp_path / "gone.csv").symlink_to(tmp_path / "nowhere.csv")
    names = ["fifo.png", "fifo.csv", "loop.png", "gone.csv", "good.png"]
    predictions = predict_files([tmp_path / name for name in names], model_file)
    assert [p.error.removeprefix(str(tmp_path) + "/") if p.error else None for p in predictions] == [
        "fifo.png: is a named pipe (FIFO): only regular files are read",
        "fifo.csv: is a named pipe (FIFO): only regular files are read",
        "loop.png: too many levels of symbolic links",
        "gone.csv: a broken symbolic link (its target does not exist)",
        None,
    ]
    assert predictions[-1].top3


def test_a_text_chunk_too_large_for_pillow_names_the_picture(tmp_path, model_file):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "0" * (PngImagePlugin.MAX_TEXT_CHUNK + 1), zip=True)  # tiny once compressed
    Image.fromarray(_hand()).save(tmp_path / "chatty.png", pnginfo=info)
    (prediction,) = predict_files([tmp_path / "chatty.png"], model_file)
    assert prediction.error.startswith(f"{tmp_path / 'chatty.png'}: cannot read the image (Decompressed data")


def test_a_file_name_with_a_newline_stays_on_one_line_of_the_plain_output(tmp_path, model_file, capsys):
    from labutils.cli.command import main

    odd = tmp_path / "two\nlines.png"
    Image.fromarray(_hand()).save(odd, format="PNG")
    missing = tmp_path / "no\nsuch.png"
    status = main(["predict", str(odd), str(missing), "--model", str(model_file)])
    captured = capsys.readouterr()
    assert status == 1
    answers = captured.out.splitlines()[1:]  # after the "model: ..." line
    assert len(answers) == 2 and answers[0].startswith(f"{tmp_path}/two\\nlines.png: ")
    assert answers[1] == f"{tmp_path}/no\\nsuch.png: error: {tmp_path}/no\\nsuch.png: no such file"
    assert captured.err.strip() == f"error: {tmp_path}/no\\nsuch.png: no such file"
