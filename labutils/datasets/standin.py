"""A synthetic stand-in for Sign Language MNIST, written in exactly the Kaggle CSV format.

When the real data cannot be found or downloaded (offline machines, CI without the shared
copy), the project generates this stand-in instead, and every notebook says so in a banner.

Each of the 24 classes is a "hand": an elliptic palm with a class-specific set of extended
fingers and a class-specific tilt. Like the real data, the training file is built from *source
images*, each expanded into ~20 near-identical variants (small rotation, shift, brightness and
contrast changes, pixel noise), and the test file comes from other source images. Test sources
vary more in pose (rotation, shift, scale) than training sources, so that augmentation matters.
"""

from __future__ import annotations

import json
import os
from itertools import combinations
from pathlib import Path

import numpy as np

from ..data import CLASS_LABELS, CSV_HEADER, IMAGE_SIZE, STANDIN_MARKER, TEST_FILE, TRAIN_FILE

__all__ = ["GENERATOR_VERSION", "make_standin", "write_standin"]

GENERATOR_VERSION = 1
FINGER_ANGLES = np.deg2rad([-62.0, -24.0, -7.0, 10.0, 27.0])  # thumb, index, middle, ring, little
FINGER_LENGTHS = np.array([0.42, 0.55, 0.6, 0.55, 0.45])


def _class_patterns() -> list[tuple[tuple[int, ...], float]]:
    """24 distinct (extended fingers, tilt in degrees) pairs, one per class."""
    fingers = [combo for size in (1, 2, 3, 4, 5) for combo in combinations(range(5), size)]  # 31 sets
    fingers = fingers[:24]
    tilts = [(-18.0, 0.0, 18.0)[index % 3] for index in range(24)]
    return list(zip(fingers, tilts))


def _render(params: dict[str, np.ndarray], classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Render one image per row of ``params`` (arrays of shape (N,)); returns uint8 (N, 28, 28)."""
    patterns = _class_patterns()
    coords = (np.arange(IMAGE_SIZE, dtype=np.float32) + 0.5) / IMAGE_SIZE * 2.0 - 1.0
    grid_y, grid_x = np.meshgrid(coords, coords, indexing="ij")
    column = {name: value[:, None, None].astype(np.float32) for name, value in params.items()}
    angle = column["rotation"]
    cos, sin = np.cos(angle), np.sin(angle)
    # Image coordinates -> hand coordinates (v points from wrist to fingertips).
    x = (grid_x[None] - column["shift_x"]) / column["scale"]
    y = (grid_y[None] - column["shift_y"]) / column["scale"]
    u = cos * x + sin * y
    v = sin * x - cos * y
    palm = np.sqrt((u / 0.36) ** 2 + ((v + 0.18) / 0.4) ** 2) - 1.0
    hand = 1.0 / (1.0 + np.exp(palm * 12.0))
    width = column["finger_width"]
    for finger in range(5):
        extended = np.array([finger in patterns[c][0] for c in classes], dtype=np.float32)[:, None, None]
        length = FINGER_LENGTHS[finger] * (0.25 + 0.75 * extended)
        direction_u, direction_v = np.sin(FINGER_ANGLES[finger]), np.cos(FINGER_ANGLES[finger])
        base_u, base_v = 0.3 * direction_u, 0.05 + 0.2 * direction_v
        along = np.clip((u - base_u) * direction_u + (v - base_v) * direction_v, 0.0, length)
        distance = np.hypot(u - base_u - along * direction_u, v - base_v - along * direction_v)
        hand = np.maximum(hand, 1.0 / (1.0 + np.exp((distance - width) * 40.0)))
    background = column["background"] + column["gradient"] * (grid_x[None] * 0.7 + grid_y[None] * 0.3)
    image = background + (column["foreground"] - background) * hand
    image = image * column["contrast"] + column["brightness"]
    image += rng.normal(0.0, 1.0, image.shape).astype(np.float32) * column["noise"]
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _sources(count: int, rng: np.random.Generator, *, pose_spread: float) -> tuple[np.ndarray, dict]:
    classes = rng.permutation(np.arange(count) % len(CLASS_LABELS))  # every class once per 24 sources
    tilt = np.array([_class_patterns()[c][1] for c in classes])
    background = rng.uniform(20, 130, count)
    params = {
        "rotation": np.deg2rad(tilt + rng.uniform(-8, 8, count) * pose_spread),
        "shift_x": rng.uniform(-0.06, 0.06, count) * pose_spread,
        "shift_y": 0.12 + rng.uniform(-0.06, 0.06, count) * pose_spread,
        "scale": 1.45 * (1.0 + rng.uniform(-0.08, 0.05, count) * pose_spread),
        "finger_width": rng.uniform(0.07, 0.1, count),
        "background": background,
        "foreground": np.minimum(background + rng.uniform(70, 140, count), 250.0),
        "gradient": rng.uniform(-40, 40, count),
    }
    return classes, params


def _variants(
    classes: np.ndarray, params: dict, per_source: int, total: int, rng: np.random.Generator
) -> tuple:
    source = np.repeat(np.arange(len(classes)), per_source)[:total]
    varied = {name: value[source] for name, value in params.items()}
    varied["rotation"] = varied["rotation"] + np.deg2rad(rng.uniform(-3, 3, total))
    varied["shift_x"] = varied["shift_x"] + rng.uniform(-0.02, 0.02, total)
    varied["shift_y"] = varied["shift_y"] + rng.uniform(-0.02, 0.02, total)
    varied["contrast"] = rng.uniform(0.85, 1.15, total)
    varied["brightness"] = rng.uniform(-15, 15, total)
    varied["noise"] = rng.uniform(2, 6, total)
    return classes[source], varied


def make_standin(
    n_train: int = 27455,
    n_test: int = 7172,
    *,
    seed: int = 0,
    variants_per_source: int = 20,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Generate ``(x_train, y_train, x_test, y_test)``: uint8 images (N, 28, 28), dataset labels."""
    for name, value in (
        ("n_train", n_train),
        ("n_test", n_test),
        ("variants_per_source", variants_per_source),
    ):
        if int(value) < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    rng = np.random.default_rng(seed)
    splits = []
    for total, pose_spread in ((n_train, 1.0), (n_test, 2.0)):
        per_source = max(
            1, min(variants_per_source, total // len(CLASS_LABELS))
        )  # every class where possible
        n_sources = -(-total // per_source)
        classes, params = _sources(n_sources, rng, pose_spread=pose_spread)
        classes, params = _variants(classes, params, per_source, total, rng)
        order = rng.permutation(total)
        images = np.concatenate(
            [
                _render(
                    {k: v[order[i : i + 4096]] for k, v in params.items()}, classes[order[i : i + 4096]], rng
                )
                for i in range(0, total, 4096)
            ]
        )
        splits += [images, np.asarray(CLASS_LABELS)[classes[order]].astype(np.int64)]
    return tuple(splits)  # type: ignore[return-value]


def _write_csv(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    table = np.column_stack([labels, images.reshape(len(images), -1)]).astype(np.int64)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", newline="") as handle:
        handle.write(",".join(CSV_HEADER) + "\n")
        np.savetxt(handle, table, fmt="%d", delimiter=",")
    os.replace(tmp, path)


def write_standin(
    folder: str | os.PathLike,
    n_train: int = 27455,
    n_test: int = 7172,
    *,
    seed: int = 0,
    variants_per_source: int = 20,
) -> Path:
    """Write the stand-in's two CSV files and a ``STANDIN.json`` marker into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    x_train, y_train, x_test, y_test = make_standin(
        n_train, n_test, seed=seed, variants_per_source=variants_per_source
    )
    _write_csv(folder / TRAIN_FILE, x_train, y_train)
    _write_csv(folder / TEST_FILE, x_test, y_test)
    marker = {
        "what": "synthetic stand-in for Sign Language MNIST, NOT the real data",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "n_train": n_train,
        "n_test": n_test,
        "variants_per_source": variants_per_source,
    }
    (folder / STANDIN_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return folder
