"""The data layer: label mapping, strict CSV validation, checksums and where the files come from."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest

import labutils.data as data
import labutils.datasets.kaggle as kaggle
import labutils.sources as sources
from labutils.data import (
    CLASS_LABELS,
    LETTERS,
    DataNotFoundError,
    DataValidationError,
    file_sha256,
    index_to_label,
    label_to_index,
    label_to_letter,
    read_sign_mnist_csv,
)
from labutils.sources import find_data_files, load_dataset
from tests.conftest import csv_text, valid_row

# --------------------------------------------------------------------------- labels


def test_letters_are_a_to_y_without_j():
    assert len(LETTERS) == len(CLASS_LABELS) == 24
    assert "".join(LETTERS) == "ABCDEFGHIKLMNOPQRSTUVWXY"


@pytest.mark.parametrize("label, letter", [(0, "A"), (8, "I"), (10, "K"), (24, "Y")])
def test_label_to_letter(label, letter):
    assert label_to_letter(label) == letter


@pytest.mark.parametrize("label", [9, 25, -1])
def test_label_to_letter_rejects_non_classes(label):
    with pytest.raises(ValueError, match=str(label)):
        label_to_letter(label)


def test_label_index_mapping_is_contiguous_and_invertible():
    labels = np.array(CLASS_LABELS)
    indices = label_to_index(labels)
    assert indices.tolist() == list(range(24))
    assert index_to_label(indices).tolist() == list(CLASS_LABELS)
    with pytest.raises(ValueError, match="9"):
        label_to_index(np.array([3, 9]))
    with pytest.raises(ValueError):
        index_to_label(np.array([24]))


# --------------------------------------------------------------------------- parsing


def test_reads_a_valid_file(write_csv):
    rows = [valid_row(0, 0), valid_row(24, 255), valid_row(10, 7)]
    images, labels = read_sign_mnist_csv(write_csv(csv_text(rows)))
    assert images.shape == (3, 28, 28) and images.dtype == np.uint8
    assert labels.tolist() == [0, 24, 10] and labels.dtype == np.int64
    assert images[1].min() == 255 and images[2].max() == 7


def test_pixel_order_is_row_major(write_csv):
    row = [3] + list(range(256)) + list(range(256)) + list(range(256)) + list(range(16))
    images, _ = read_sign_mnist_csv(write_csv(csv_text([row])))
    assert images[0, 0, :3].tolist() == [0, 1, 2]
    assert images[0, 1, 0] == 28  # pixel29 starts the second image row


def test_reads_gzip(write_csv):
    images, labels = read_sign_mnist_csv(write_csv(csv_text([valid_row(5)]), gz=True))
    assert images.shape == (1, 28, 28) and labels.tolist() == [5]


def _bad(rows, header=None):
    return csv_text(rows, header)


BAD_INPUTS = {
    "header missing": (
        lambda: _bad([valid_row()], header=[str(v) for v in valid_row()]),
        r"header column 1 is '0'",
    ),
    "header misordered": (
        lambda: _bad(
            [valid_row()], header=["label", "pixel2", "pixel1"] + [f"pixel{i}" for i in range(3, 785)]
        ),
        r"header column 2 is 'pixel2', expected 'pixel1'",
    ),
    "header short": (
        lambda: _bad([valid_row()], header=["label", "pixel1"]),
        r"header has 2 columns, expected 785",
    ),
    "too many columns": (
        lambda: _bad([valid_row(), valid_row() + [1]]),
        r"row 2 \(line 3\) has 786 columns, expected 785",
    ),
    "too few columns": (
        lambda: _bad([valid_row(), valid_row()[:-1]]),
        r"row 2 \(line 3\) has 784 columns, expected 785",
    ),
    "an integer past int64": (
        lambda: _bad([valid_row(), valid_row()[:-1] + ["99999999999999999999999"]]),
        r"row 2 \(line 3\), column 'pixel784': pixel 99999999999999999999999 outside 0-255",
    ),
    "a label past int64": (
        lambda: _bad([["-123456789012345678901"] + valid_row()[1:]]),
        r"row 1 \(line 2\), column 'label': label -123456789012345678901 outside 0-24",
    ),
    # blank lines are not rows, but they are lines of the file
    "a bad cell after blank lines": (
        lambda: _bad([valid_row(), [], [], valid_row()[:5] + ["abc"] + valid_row()[6:]]),
        r"row 2 \(line 5\), column 'pixel5': 'abc' is not an integer",
    ),
    "a long row after blank lines": (
        lambda: _bad([valid_row(), [], valid_row(), valid_row() + [1]]),
        r"row 3 \(line 5\) has 786 columns, expected 785",
    ),
    "a pixel out of range after blank lines": (
        lambda: _bad([[], valid_row(), valid_row(0, 300)]),
        r"row 2 \(line 4\), column 'pixel1': pixel 300 outside 0-255",
    ),
    "non-numeric": (
        lambda: _bad([valid_row(), valid_row()[:5] + ["abc"] + valid_row()[6:]]),
        r"row 2 \(line 3\), column 'pixel5': 'abc' is not an integer",
    ),
    "NaN cell": (
        lambda: _bad([valid_row()[:100] + ["NaN"] + valid_row()[101:]]),
        r"row 1 \(line 2\), column 'pixel100': 'NaN' is not an integer",
    ),
    "empty cell": (
        lambda: _bad([valid_row()[:3] + [""] + valid_row()[4:]]),
        r"row 1 \(line 2\), column 'pixel3': empty cell",
    ),
    "float pixel": (
        lambda: _bad([valid_row()[:2] + ["12.5"] + valid_row()[3:]]),
        r"column 'pixel2': '12.5' is not an integer",
    ),
    "pixel above 255": (
        lambda: _bad([valid_row(), valid_row(), valid_row(0, 256)]),
        r"row 3 \(line 4\), column 'pixel1': pixel 256 outside 0-255",
    ),
    "negative pixel": (
        lambda: _bad([valid_row()[:784] + [-1]]),
        r"column 'pixel784': pixel -1 outside 0-255",
    ),
    "label 9": (
        lambda: _bad([valid_row(3), valid_row(9)]),
        r"row 2 \(line 3\), column 'label': label 9 \(J\)",
    ),
    "label 25": (lambda: _bad([valid_row(25)]), r"row 1 \(line 2\), column 'label': label 25 outside 0-24"),
    "negative label": (lambda: _bad([valid_row(-2)]), r"column 'label': label -2 outside 0-24"),
    "header only": (lambda: _bad([]), r"no data rows"),
    "empty file": (lambda: "", r"the file is empty"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
@pytest.mark.parametrize("gz", [False, True], ids=["csv", "gz"])
def test_bad_input_names_file_row_and_column(write_csv, case, gz):
    make_text, message = BAD_INPUTS[case]
    path = write_csv(make_text(), gz=gz)
    with pytest.raises(DataValidationError, match=message) as caught:
        read_sign_mnist_csv(path)
    assert str(path) in str(caught.value)


def test_truncated_gzip_is_reported(write_csv, tmp_path):
    path = write_csv(csv_text([valid_row(i % 9) for i in range(200)]), gz=True)
    truncated = tmp_path / "sign_mnist_test.csv.gz"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataValidationError, match="truncated") as caught:
        read_sign_mnist_csv(truncated)
    assert str(truncated) in str(caught.value)
    with pytest.raises(DataValidationError, match="truncated"):
        file_sha256(truncated)


def test_not_a_gzip_is_reported(tmp_path):
    path = tmp_path / "sign_mnist_train.csv.gz"
    path.write_text("label,pixel1\n")
    with pytest.raises(DataValidationError, match="not a valid gzip"):
        read_sign_mnist_csv(path)


def test_missing_file():
    with pytest.raises(DataNotFoundError, match="no such file"):
        read_sign_mnist_csv("/nonexistent/sign_mnist_train.csv")


# --------------------------------------------------------------------------- checksums and sources


def test_sha256_of_gzip_is_that_of_its_content(write_csv):
    text = csv_text([valid_row(1)])
    plain = write_csv(text, "a.csv")
    packed = write_csv(text, "b.csv", gz=True)
    assert file_sha256(plain) == file_sha256(packed)
    import hashlib

    assert file_sha256(plain) == hashlib.sha256(text.encode()).hexdigest()


def test_known_checksums_match_the_shared_list():
    sums = Path(__file__).resolve().parents[2] / "shared" / "data" / "sign-language-mnist" / "SHA256SUMS"
    if not sums.exists():
        pytest.skip("no shared SHA256SUMS")
    listed = dict(reversed(line.split()) for line in sums.read_text().splitlines() if line.strip())
    assert listed == data.KNOWN_SHA256


def test_standin_folder_is_synthetic(standin_dir):
    files = find_data_files(standin_dir)
    assert files.source == "synthetic"
    assert files.origin == "explicit folder"
    assert not files.checksums_verified
    assert set(files.checksum_status().values()) == {"stand-in"}


def test_real_looking_folder_with_wrong_checksum_is_flagged(standin_dir, tmp_path):
    for name in ("sign_mnist_train.csv", "sign_mnist_test.csv"):
        shutil.copy(standin_dir / name, tmp_path / name)  # no STANDIN.json marker
    files = find_data_files(tmp_path)
    assert files.source == "real"
    assert files.checksum_status() == {"sign_mnist_train.csv": "MISMATCH", "sign_mnist_test.csv": "MISMATCH"}


def test_explicit_folder_without_files_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "repository_root", lambda: tmp_path / "repo")
    with pytest.raises(DataNotFoundError, match=str(tmp_path / "empty")):
        find_data_files(tmp_path / "empty")


def test_environment_variable_is_used(standin_dir, monkeypatch):
    monkeypatch.setenv("SIGN_MNIST_DIR", str(standin_dir))
    files = find_data_files()
    assert files.origin == "SIGN_MNIST_DIR" and files.train.parent == standin_dir


def test_explicit_argument_beats_environment_variable(standin_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SIGN_MNIST_DIR", str(tmp_path / "elsewhere"))
    assert find_data_files(standin_dir).train.parent == standin_dir


def test_repository_data_folder_comes_before_download(standin_dir, tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    shutil.copytree(standin_dir, repo / "data")
    monkeypatch.delenv("SIGN_MNIST_DIR", raising=False)
    monkeypatch.setattr(sources, "repository_root", lambda: repo)
    monkeypatch.setattr(sources, "_download_with_kagglehub", lambda timeout: pytest.fail("must not download"))
    files = find_data_files()
    assert files.origin == "repository data/ folder" and files.train.parent == repo / "data"


def test_kagglehub_download_is_searched_for_the_files(standin_dir, tmp_path, monkeypatch):
    download = tmp_path / "cache" / "datasets" / "datamunge" / "sign-language-mnist" / "versions" / "1"
    nested = download / "sign_mnist_train"
    nested.mkdir(parents=True)
    for name in ("sign_mnist_train.csv", "sign_mnist_test.csv"):
        shutil.copy(standin_dir / name, nested / name)
    calls = []

    class FakeKagglehub:
        @staticmethod
        def dataset_download(handle):
            calls.append(handle)
            return str(download)

    monkeypatch.delenv("SIGN_MNIST_DIR", raising=False)
    monkeypatch.setattr(sources, "repository_root", lambda: tmp_path / "repo")
    monkeypatch.setattr(kaggle, "network_reachable", lambda **kwargs: True)
    monkeypatch.setitem(__import__("sys").modules, "kagglehub", FakeKagglehub)
    files = find_data_files(synthetic_fallback=False)
    assert calls == ["datamunge/sign-language-mnist"]
    assert files.origin == "kagglehub download" and files.train.parent == nested


def test_offline_download_fails_fast_and_says_so(tmp_path, monkeypatch):
    monkeypatch.delenv("SIGN_MNIST_DIR", raising=False)
    monkeypatch.setattr(sources, "repository_root", lambda: tmp_path / "repo")
    monkeypatch.setattr(kaggle.socket, "create_connection", _refuse)
    start = time.perf_counter()
    with pytest.raises(DataNotFoundError, match="not reachable.*offline"):
        find_data_files(synthetic_fallback=False, download_timeout=2)
    assert time.perf_counter() - start < 5


def _refuse(*args, **kwargs):
    raise OSError("network is unreachable")


def test_offline_falls_back_to_a_generated_standin(tmp_path, monkeypatch):
    monkeypatch.delenv("SIGN_MNIST_DIR", raising=False)
    monkeypatch.setattr(sources, "repository_root", lambda: tmp_path / "repo")
    monkeypatch.setattr(kaggle.socket, "create_connection", _refuse)
    monkeypatch.setattr(sources, "FALLBACK_STANDIN_ROWS", (240, 96))
    files = find_data_files()
    assert files.source == "synthetic"
    assert files.train.parent == tmp_path / "repo" / "data" / "synthetic"
    assert "not reachable" in files.origin
    dataset = load_dataset()
    assert len(dataset.y_train) == 240 and len(dataset.y_test) == 96


def test_load_dataset_summary(standin_dir):
    dataset = load_dataset(standin_dir)
    summary = dataset.summary()
    assert summary["data_source"] == "synthetic"
    assert summary["train"] == {"rows": 1200, "classes": 24}
    assert summary["test"] == {"rows": 480, "classes": 24}
    assert dataset.x_train.shape == (1200, 28, 28)


def test_corrupt_test_file_is_named(standin_dir, tmp_path):
    for name in ("sign_mnist_train.csv", "sign_mnist_test.csv"):
        shutil.copy(standin_dir / name, tmp_path / name)
    lines = (tmp_path / "sign_mnist_test.csv").read_text().splitlines()
    cells = lines[5].split(",")
    cells[300] = "x"
    lines[5] = ",".join(cells)
    (tmp_path / "sign_mnist_test.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(
        DataValidationError, match=r"sign_mnist_test.csv: row 5 \(line 6\), column 'pixel300'"
    ):
        load_dataset(tmp_path)
