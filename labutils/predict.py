"""``python -m labutils predict``: letters for image files or Kaggle-format CSV rows.

Images (PNG, JPEG, … of any size and colour) become what the networks saw in training: gray,
centre-cropped to a square, resized to 28x28, scaled to 0-1. CSV files are read with the same
strict parser as the data. All inputs are predicted in batches, in one model call per batch.
An input that cannot be read gets an error entry; the others are still answered.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .data import (
    IMAGE_SIZE,
    DataNotFoundError,
    DataValidationError,
    index_to_label,
    label_to_letter,
    read_sign_mnist_csv,
)

__all__ = ["Prediction", "best_model_file", "image_to_array", "load_inputs", "predict_files"]

CSV_SUFFIXES = (".csv", ".csv.gz")


@dataclass
class Prediction:
    """One answered (or failed) input: a file, or one row of a CSV file (rows numbered from 1)."""

    input: str
    row: int | None
    top3: list[dict[str, Any]] | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {"input": self.input, "row": self.row}
        if self.error is None:
            document["top3"] = self.top3
        else:
            document["error"] = self.error
        return document


def image_to_array(path: str | Path) -> np.ndarray:
    """A picture file as a 28x28 uint8 gray image: converted to gray, centre-cropped to a square, resized."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            gray = image.convert("L")
    except UnidentifiedImageError as error:
        raise ValueError(f"{path}: not a readable image ({error})") from error
    except OSError as error:
        raise ValueError(f"{path}: cannot read the image ({error})") from error
    width, height = gray.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = gray.crop((left, top, left + side, top + side))
    return np.asarray(square.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR), dtype=np.uint8)


def load_inputs(paths: Sequence[str | Path]) -> tuple[np.ndarray, list[Prediction], list[Prediction]]:
    """(images (N, 28, 28) uint8, one Prediction per image in order, Predictions for the failed inputs)."""
    images, answered, failed = [], [], []
    for path in paths:
        name = str(path)
        if not Path(path).exists():
            failed.append(Prediction(name, None, error=f"{name}: no such file"))
            continue
        if name.lower().endswith(CSV_SUFFIXES):
            try:
                pixels, _ = read_sign_mnist_csv(path)
            except (DataNotFoundError, DataValidationError, OSError, ValueError) as error:
                failed.append(Prediction(name, None, error=str(error)))
                continue
            images.extend(pixels)
            answered.extend(Prediction(name, row) for row in range(1, len(pixels) + 1))
            continue
        try:
            images.append(image_to_array(path))
        except ValueError as error:
            failed.append(Prediction(name, None, error=str(error)))
            continue
        answered.append(Prediction(name, None))
    stacked = np.stack(images) if images else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    return stacked, answered, failed


def best_model_file(reports: str | Path = "reports") -> Path:
    """The ``.keras`` file of the most accurate model (test accuracy) of the latest report run in ``reports``."""
    folder = Path(reports)
    run_file = folder / "run.json"
    if not run_file.exists():
        raise FileNotFoundError(
            f"{run_file} not found: run the report first (make report) or pass --model FILE.keras"
        )
    run = json.loads(run_file.read_text())
    candidates = []
    for entry in run.get("notebooks", []):
        for name, record in ((entry.get("metrics") or {}).get("models") or {}).items():
            path = folder / entry["name"] / str(record.get("model_file"))
            if record.get("model_file") and path.exists():
                candidates.append((record["test_accuracy"], name, path))
    if not candidates:
        raise FileNotFoundError(
            f"no model file listed in {run_file} exists: re-run the report or pass --model FILE.keras"
        )
    return max(candidates, key=lambda candidate: candidate[0])[2]


def predict_files(
    paths: Sequence[str | Path], model_file: str | Path, *, batch_size: int = 512
) -> list[Prediction]:
    """Top-3 letters for every image file and CSV row in ``paths`` (inputs that fail carry an error)."""
    model_path = Path(model_file)
    if not model_path.exists():  # said before TensorFlow loads, which takes seconds
        raise FileNotFoundError(f"model file {model_path} not found")
    from .inputs import to_model_input
    from .models import load_model

    images, answered, failed = load_inputs(paths)
    if len(images):
        model = load_model(model_path)
        probabilities = model.predict(to_model_input(images), batch_size=batch_size, verbose=0)
        if probabilities.ndim != 2 or probabilities.shape[1] != 24:
            raise ValueError(
                f"{model_path} returns shape {probabilities.shape[1:]}, not 24 letter probabilities"
            )
        order = np.argsort(-probabilities, axis=1)[:, :3]
        labels = index_to_label(order.reshape(-1)).reshape(order.shape)
        for prediction, indices, row_labels, row in zip(answered, order, labels, probabilities):
            prediction.top3 = [
                {
                    "letter": label_to_letter(int(label)),
                    "label": int(label),
                    "probability": round(float(row[index]), 6),
                }
                for index, label in zip(indices, row_labels)
            ]
    by_input = {str(path): k for k, path in enumerate(paths)}
    return sorted(answered + failed, key=lambda p: (by_input.get(p.input, 0), p.row or 0))
