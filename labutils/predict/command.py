"""``python -m labutils predict``: letters for picture files and CSV rows, streamed.

Pictures (PNG, JPEG, TIFF, ... of any size, colour, bit depth and orientation) are read by
:mod:`labutils.predict.pictures` into what the networks saw in training. CSV files are read by
:mod:`labutils.predict.rows`, a chunk at a time, with or without labels and header. The inputs flow
through in batches of ``batch_size``: one model call per batch, each answer handed on as soon
as its batch is done, so memory stays flat however many rows there are. An input that cannot be
read gets an error entry (for a CSV file, after the rows before the bad one); the others are
still answered.
"""

from __future__ import annotations

import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data import IMAGE_SIZE, DataNotFoundError, DataValidationError, index_to_label, label_to_letter
from ..results.schema import read_run, run_models
from .explain import ExplanationWriter
from .model_files import check_model_file

__all__ = [
    "MAX_BATCH_SIZE",
    "MODEL_CALL_IMAGES",
    "Prediction",
    "best_model_file",
    "image_to_array",
    "iter_predictions",
    "predict_files",
]

CSV_SUFFIXES = (".csv", ".csv.gz")

#: The largest ``--batch-size`` accepted: CSV rows read and answered at a time.
MAX_BATCH_SIZE = 65536
#: The most images one model call reads, whatever ``--batch-size`` says: a network's activations grow
#: with the images of a call (65,536 at once took 10.5 GB), so memory is bounded by construction.
MODEL_CALL_IMAGES = 512


@dataclass
class Prediction:
    """One answered (or failed) input: a file, or one row of a CSV file (rows numbered from 1).

    ``label_in_file`` is a CSV row's label cell, passed on unused; ``warnings`` says what made a
    picture hard to read; ``explanation`` is the picture ``--explain`` wrote of where the network looked.
    """

    input: str
    row: int | None
    top3: list[dict[str, Any]] | None = None
    error: str | None = None
    label_in_file: int | str | None = None
    warnings: list[str] = field(default_factory=list)
    explanation: str | None = None  # the picture ``--explain`` wrote for it

    def as_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {"input": self.input, "row": self.row}
        if self.error is None:
            document["top3"] = self.top3
        else:
            document["error"] = self.error
        if self.label_in_file is not None:
            document["label_in_file"] = self.label_in_file
        if self.warnings:
            document["warnings"] = self.warnings
        if self.explanation is not None:
            document["explanation"] = self.explanation
        return document


def image_to_array(path: str | Path) -> np.ndarray:
    """A picture file as a 28x28 uint8 gray image (:func:`labutils.predict.pictures.read_picture`, without its warnings)."""
    from .pictures import read_picture

    return read_picture(path).pixels


def _inputs(paths: Iterable[str | Path], batch_size: int) -> Iterator[tuple[Prediction, np.ndarray | None]]:
    """Each input in order: (its Prediction to fill, its 28x28 image), or (a failed Prediction, None)."""
    from .pictures import read_picture
    from .rows import iter_pixel_rows

    for path in paths:
        name = str(path)
        path = Path(path)
        problem = _not_a_file(path)
        if problem is not None:  # before any read: a named pipe would block it for ever
            yield Prediction(name, None, error=f"{name}: {problem}"), None
            continue
        if name.lower().endswith(CSV_SUFFIXES):
            try:
                for chunk in iter_pixel_rows(path, chunk_rows=batch_size):
                    labels = chunk.labels or [None] * len(chunk.pixels)
                    for offset, (pixels, label) in enumerate(zip(chunk.pixels, labels)):
                        yield Prediction(name, chunk.first_row + offset, label_in_file=label), pixels
            except (DataNotFoundError, DataValidationError, OSError, ValueError) as error:
                yield Prediction(name, None, error=str(error)), None
            continue
        try:
            picture = read_picture(path)
        except ValueError as error:
            yield Prediction(name, None, error=str(error)), None
            continue
        yield Prediction(name, None, warnings=picture.warnings), picture.pixels


def _not_a_file(path: Path) -> str | None:
    """Why ``path`` cannot be read as an input, in words; None for a regular file (or a link to one)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "a broken symbolic link (its target does not exist)" if path.is_symlink() else "no such file"
    except OSError as error:  # a symbolic link loop: "Too many levels of symbolic links"
        return (error.strerror or str(error)).lower()
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a folder, not a picture or CSV file"
    kinds = {stat.S_ISFIFO: "a named pipe (FIFO)", stat.S_ISSOCK: "a socket", stat.S_ISCHR: "a device"}
    kind = next((words for test, words in kinds.items() if test(mode)), "not a regular file")
    return f"is {kind}: only regular files are read"


def iter_predictions(
    paths: Sequence[str | Path],
    model_file: str | Path,
    *,
    batch_size: int = 512,
    explain: ExplanationWriter | None = None,
) -> Iterator[Prediction]:
    """Top-3 letters for every picture file and CSV row in ``paths``, in order, a batch at a time;
    with ``explain``, a picture of where the network looked for the answers it wants.

    The model is loaded when the first image needs it, so a call whose inputs all fail does not
    wait for TensorFlow.
    """
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int)
        or not 1 <= batch_size <= MAX_BATCH_SIZE
    ):
        raise ValueError(
            f"--batch-size must be a whole number from 1 to {MAX_BATCH_SIZE}, got {batch_size!r}"
        )
    model_path = check_model_file(model_file)  # a bad file is named before Keras reads it
    model = None
    pending: list[tuple[Prediction, np.ndarray | None]] = []
    for item in _inputs(paths, batch_size):
        pending.append(item)
        if sum(image is not None for _, image in pending) >= batch_size:
            model = model or _load(model_path, explain)
            yield from _answer(pending, model, model_path, explain)
            pending = []
    if any(image is not None for _, image in pending):
        model = model or _load(model_path, explain)
    yield from _answer(pending, model, model_path, explain)


def predict_files(
    paths: Sequence[str | Path],
    model_file: str | Path,
    *,
    batch_size: int = 512,
    explain: ExplanationWriter | None = None,
) -> list[Prediction]:
    """:func:`iter_predictions` as a list (for a few inputs; the command line streams)."""
    return list(iter_predictions(paths, model_file, batch_size=batch_size, explain=explain))


def _load(model_path: Path, explain: ExplanationWriter | None = None):
    from ..explain import feature_map_layer
    from ..models import load_model

    model = load_model(model_path)
    shape = model.input_shape  # (None, 28, 28, 1) for the networks of this project, Task 4's included
    fits = (
        isinstance(shape, tuple)
        and len(shape) == 4
        and all(size in (None, wanted) for size, wanted in zip(shape[1:], (IMAGE_SIZE, IMAGE_SIZE, 1)))
    )
    if not fits:
        raise ValueError(
            f"model {model_path}: takes inputs of shape {shape}, not the {IMAGE_SIZE}x{IMAGE_SIZE}x1 images "
            "predict gives"
        )
    if explain is not None:
        try:
            feature_map_layer(model)
        except ValueError as error:
            raise ValueError(f"model {model_path} cannot be explained (--explain): {error}") from error
    return model


def _answer(
    pending: list[tuple[Prediction, np.ndarray | None]],
    model,
    model_path: Path,
    explain: ExplanationWriter | None = None,
) -> Iterator[Prediction]:
    from ..split import to_model_input

    images = [image for _, image in pending if image is not None]
    if images:
        inputs = to_model_input(np.stack(images))
        probabilities = np.concatenate(
            [
                np.asarray(model.predict_on_batch(inputs[start : start + MODEL_CALL_IMAGES]))
                for start in range(0, len(inputs), MODEL_CALL_IMAGES)
            ]
        )
        if probabilities.ndim != 2 or probabilities.shape[1] != 24:
            raise ValueError(
                f"{model_path} returns shape {probabilities.shape[1:]}, not 24 letter probabilities"
            )
        order = np.argsort(-probabilities, axis=1)[:, :3]
        labels = index_to_label(order.reshape(-1)).reshape(order.shape)
        answers = iter(zip(order, labels, probabilities))
    for prediction, image in pending:
        if image is not None:
            indices, row_labels, row = next(answers)
            prediction.top3 = [
                {
                    "letter": label_to_letter(int(label)),
                    "label": int(label),
                    "probability": round(float(row[index]), 6),
                }
                for index, label in zip(indices, row_labels)
            ]
    if explain is not None and images:
        _explain(pending, inputs, order, model, model_path, explain)
    yield from (prediction for prediction, _ in pending)


def _explain(pending, inputs: np.ndarray, order: np.ndarray, model, model_path: Path, explain) -> None:
    """Grad-CAM maps of the answers ``explain`` wants, for the letter each one said, drawn as pictures."""
    from ..explain import grad_cam

    answered = [(prediction, image) for prediction, image in pending if image is not None]
    chosen = [
        i for i, (prediction, _) in enumerate(answered) if explain.wants(prediction.input, prediction.row)
    ]
    for start in range(0, len(chosen), MODEL_CALL_IMAGES):
        part = chosen[start : start + MODEL_CALL_IMAGES]
        try:
            maps = grad_cam(model, inputs[part], classes=order[part, 0])
        except ValueError as error:
            raise ValueError(f"model {model_path} cannot be explained (--explain): {error}") from error
        for i, heat in zip(part, maps):
            prediction, image = answered[i]
            written = explain.write(prediction.input, prediction.row, image, heat, prediction.top3)
            prediction.explanation = str(written)


def best_model_file(reports: str | Path = "reports") -> Path:
    """The ``.keras`` file of the most accurate model (test accuracy) of the latest report run in ``reports``."""
    folder = Path(reports)
    run_file = folder / "run.json"
    if not run_file.exists():
        raise FileNotFoundError(
            f"{run_file} not found: run the report first (make report) or pass --model FILE.keras"
        )
    candidates = []
    for notebook, name, record in run_models(read_run(run_file)):
        path = folder / notebook / str(record["model_file"])
        if record["model_file"] and path.exists():
            candidates.append((record["test_accuracy"], name, path))
    if not candidates:
        raise FileNotFoundError(
            f"no model file listed in {run_file} exists: re-run the report or pass --model FILE.keras"
        )
    return max(candidates, key=lambda candidate: candidate[0])[2]
