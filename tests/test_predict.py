"""``python -m labutils predict``: images of any kind and CSV rows in, top-3 letters out."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

from labutils.data import read_sign_mnist_csv
from labutils.predict.command import best_model_file, image_to_array, predict_files
from tests.test_index import METRICS


@pytest.fixture(scope="module")
def test_images(standin_dir) -> np.ndarray:
    images, _ = read_sign_mnist_csv(next(standin_dir.glob("sign_mnist_test.csv*")))
    return images


def test_image_files_become_what_the_network_saw(tmp_path, test_images):
    image = test_images[0]
    Image.fromarray(image).save(tmp_path / "a.png")
    np.testing.assert_array_equal(image_to_array(tmp_path / "a.png"), image)
    # a colour image of another size: the hand in the centre, scaled up 3x, with margins left and right
    large = np.kron(image, np.ones((3, 3), np.uint8))
    canvas = np.zeros((84, 120, 3), np.uint8)
    canvas[:, 18:102] = large[..., None] * np.array([1, 1, 1], np.uint8)
    Image.fromarray(canvas, "RGB").save(tmp_path / "colour.jpg", quality=95)
    recovered = image_to_array(tmp_path / "colour.jpg").astype(float)
    assert recovered.shape == (28, 28)
    assert np.corrcoef(recovered.ravel(), image.astype(float).ravel())[0, 1] > 0.95


def test_png_jpeg_colour_csv_and_a_corrupt_file_in_one_call(tmp_path, model_file, test_images, standin_dir):
    Image.fromarray(test_images[0]).save(tmp_path / "a.png")
    Image.fromarray(test_images[1]).save(tmp_path / "b.jpg", quality=100)
    Image.fromarray(np.stack([test_images[2]] * 3, axis=-1)).resize((100, 100)).save(tmp_path / "c.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    csv = next(standin_dir.glob("sign_mnist_test.csv*"))
    inputs = [
        tmp_path / "a.png",
        tmp_path / "b.jpg",
        tmp_path / "c.png",
        tmp_path / "broken.png",
        csv,
        tmp_path / "gone.png",
    ]
    predictions = predict_files(inputs, model_file)
    assert [p.input for p in predictions[:4]] == [str(path) for path in inputs[:4]]
    rows = [p for p in predictions if p.input == str(csv)]
    assert [p.row for p in rows] == list(range(1, len(test_images) + 1))
    errors = {p.input: p.error for p in predictions if p.error}
    assert set(errors) == {str(tmp_path / "broken.png"), str(tmp_path / "gone.png")}
    assert (
        "broken.png" in errors[str(tmp_path / "broken.png")]
        and "no such file" in errors[str(tmp_path / "gone.png")]
    )
    for prediction in predictions:
        if prediction.error:
            continue
        top3 = prediction.top3
        assert len(top3) == 3 and [t["probability"] for t in top3] == sorted(
            (t["probability"] for t in top3), reverse=True
        )
        assert all(t["letter"] not in {"J", "Z"} and 0 <= t["label"] <= 24 and t["label"] != 9 for t in top3)
    # the PNG of a test image is answered exactly like its CSV row
    assert predictions[0].top3 == rows[0].top3
    model = keras.models.load_model(model_file)
    expected = model.predict(test_images[:1, :, :, None] / 255.0, verbose=0)[0]
    assert predictions[0].top3[0]["probability"] == pytest.approx(float(expected.max()), abs=1e-5)


def test_many_csv_rows_are_predicted_in_batches(tmp_path, model_file, standin_dir, monkeypatch):
    calls = []
    original = keras.Model.predict_on_batch

    def counting(self, x):
        calls.append(len(x))
        return original(self, x)

    monkeypatch.setattr(keras.Model, "predict_on_batch", counting)
    csv = next(standin_dir.glob("sign_mnist_test.csv*"))
    predictions = predict_files([csv, csv, csv], model_file)
    assert len(predictions) == 3 * 480 and calls == [512, 512, 416]  # full batches across the files


def test_the_cli_prints_json_with_the_fixed_names_and_fails_only_the_bad_inputs(
    tmp_path, model_file, test_images
):
    Image.fromarray(test_images[0]).save(tmp_path / "a.png")
    (tmp_path / "bad.csv").write_text("label,pixel1\n1,2\n")
    command = [
        sys.executable,
        "-m",
        "labutils",
        "predict",
        str(tmp_path / "a.png"),
        str(tmp_path / "bad.csv"),
        "--model",
        str(model_file),
        "--json",
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 1  # one input failed ...
    document = json.loads(completed.stdout)  # ... and the other is still answered
    assert document[0]["input"] == str(tmp_path / "a.png") and document[0]["row"] is None
    assert set(document[0]["top3"][0]) == {"letter", "label", "probability"}
    assert "bad.csv" in document[1]["error"] and "Traceback" not in completed.stderr
    # TensorFlow was imported, yet its start-up lines stay off the terminal
    assert "oneDNN" not in completed.stderr and "absl::InitializeLog" not in completed.stderr, (
        completed.stderr
    )
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "labutils",
            "predict",
            str(tmp_path / "a.png"),
            "--model",
            str(tmp_path / "none.keras"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (
        missing.returncode == 1
        and "none.keras not found" in missing.stderr
        and "Traceback" not in missing.stderr
    )


def test_the_default_model_is_the_best_of_the_latest_run(tmp_path, model_file):
    reports = tmp_path / "reports"
    for notebook, name in (("02_cnn", "good.keras"), ("03_augmentation", "best.keras")):
        (reports / notebook).mkdir(parents=True)
        (reports / notebook / name).write_bytes(model_file.read_bytes())
    task2, task3 = copy.deepcopy(METRICS["02_cnn"]), copy.deepcopy(METRICS["03_augmentation"])
    for document in (task2, task3):
        for record in document["models"].values():
            record.update(test_accuracy=0.5, model_file="deleted.keras")
    task2["models"]["compact_cnn_final"].update(test_accuracy=0.95, model_file="good.keras")
    task3["models"]["compact_cnn_augmented_final"].update(test_accuracy=0.99, model_file="best.keras")
    task3["models"]["seed_cnn_augmented"]["test_accuracy"] = 0.999  # the best, but its file is gone
    run = {
        "notebooks": [
            {"name": "02_cnn", "status": "completed", "metrics": task2},
            {"name": "03_augmentation", "status": "cached", "metrics": task3},
            {"name": "04_transfer", "status": "failed", "metrics": None},
        ]
    }
    (reports / "run.json").write_text(json.dumps(run))
    assert best_model_file(reports) == reports / "03_augmentation" / "best.keras"
    with pytest.raises(FileNotFoundError, match="run the report first"):
        best_model_file(tmp_path / "nowhere")


def test_explain_draws_each_picture_and_a_csv_files_first_rows(
    tmp_path, model_file, test_images, standin_dir
):
    from labutils.data import label_to_index
    from labutils.explain import grad_cam
    from labutils.predict.explain import ExplanationWriter
    from labutils.split import to_model_input

    drawn = {}

    class Capturing(ExplanationWriter):
        def write(self, input_name, row, image, heat, top3):
            drawn[(input_name, row)] = (image, heat)
            return super().write(input_name, row, image, heat, top3)

    Image.fromarray(test_images[0]).save(tmp_path / "a.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    csv = next(standin_dir.glob("sign_mnist_test.csv*"))
    writer = Capturing(tmp_path / "maps" / "new", limit=3)  # made with its parents
    inputs = [tmp_path / "a.png", tmp_path / "broken.png", csv]
    predictions = predict_files(inputs, model_file, batch_size=2, explain=writer)  # the limit spans batches
    explained = [(p.input, p.row) for p in predictions if p.explanation]
    assert explained == [(str(tmp_path / "a.png"), None)] + [(str(csv), row) for row in (1, 2, 3)]
    assert [p.as_dict().get("explanation") for p in predictions[:2]] == [predictions[0].explanation, None]
    files = sorted((tmp_path / "maps" / "new").iterdir())
    assert [f.name for f in files] == [
        "00001-a.png.png",
        f"00002-{csv.name}-row1.png",
        f"00003-{csv.name}-row2.png",
        f"00004-{csv.name}-row3.png",
    ]
    assert [str(f) for f in files] == [p.explanation for p in predictions if p.explanation]
    assert all(Image.open(f).size == (420, 250) for f in files)
    # each picture shows the image the network saw and its Grad-CAM map for the letter it said
    model = keras.models.load_model(model_file)
    for (name, row), (image, heat) in drawn.items():
        np.testing.assert_array_equal(image, test_images[0 if row is None else row - 1])
        said = next(p for p in predictions if (p.input, p.row) == (name, row)).top3[0]["label"]
        expected = grad_cam(model, to_model_input(image[None]), classes=label_to_index([said]))
        np.testing.assert_allclose(heat, expected[0], atol=1e-5)


def test_explain_refuses_what_it_cannot_do_and_names_it(tmp_path, model_file, test_images):
    from labutils.cli.command import main
    from labutils.predict.explain import ExplanationWriter

    Image.fromarray(test_images[0]).save(tmp_path / "a.png")
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(ValueError, match="taken: is a file, not a folder"):
        ExplanationWriter(tmp_path / "taken")
    for limit in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="--explain-limit must be a whole number"):
            ExplanationWriter(tmp_path / "maps", limit=limit)
    # a network with no feature map has no Grad-CAM: said before any answer
    inputs = keras.Input((28, 28, 1))
    flat = keras.Model(inputs, keras.layers.Dense(24, activation="softmax")(keras.layers.Flatten()(inputs)))
    flat.save(tmp_path / "flat.keras")
    with pytest.raises(
        ValueError,
        match="flat.keras cannot be explained .--explain.: model .* has no layer with a feature map",
    ):
        predict_files(
            [tmp_path / "a.png"], tmp_path / "flat.keras", explain=ExplanationWriter(tmp_path / "m")
        )
    assert main(["predict", str(tmp_path / "a.png"), "--model", str(model_file), "--explain-limit", "5"]) == 1
    with pytest.raises(SystemExit):
        main(["predict", str(tmp_path / "a.png"), "--explain", str(tmp_path / "m"), "--explain-limit", "0"])


def test_the_cli_writes_the_pictures_and_lists_them_in_its_json(tmp_path, model_file, test_images, capsys):
    from labutils.cli.command import main

    Image.fromarray(test_images[0]).save(tmp_path / "a.png")
    status = main(
        [
            "predict",
            str(tmp_path / "a.png"),
            "--model",
            str(model_file),
            "--json",
            "--explain",
            str(tmp_path / "maps"),
        ]
    )
    captured = capsys.readouterr()
    assert status == 0, captured.err
    [answer] = json.loads(captured.out)
    assert answer["explanation"] == str(tmp_path / "maps" / "00001-a.png.png")
    assert (tmp_path / "maps" / "00001-a.png.png").exists()
    assert f"note: 1 picture of where the network looked written to {tmp_path / 'maps'}" in captured.err
