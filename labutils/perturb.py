"""Controlled perturbations of test images, to measure how robust a classifier is.

Each perturbation takes images scaled to 0-1, shape (N, 28, 28) or (N, 28, 28, 1), a strength in
natural units (degrees, image fractions, pixels...) and a seed; strength 0 returns the images
unchanged. Where a perturbation has a direction (rotation sign, shift direction, zoom in or out,
brighter or darker) it is drawn per image from the seed, so results are repeatable.

``mixed`` stands for a real camera: every other perturbation at once, in the order a picture
meets them (the hand's pose, the lens, the exposure, the sensor), each at
:data:`CAMERA` times the strength (strength 1: a mild, everyday camera).

:func:`corrupt`: Sign-MNIST-C (:mod:`labutils.corruptions.suite`), camera corruptions at severity 1-5.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from scipy import ndimage

from .corruptions.suite import CORRUPTIONS, HELD_OUT, corrupt_images

__all__ = [
    "CAMERA",
    "CORRUPTION_FAMILIES",
    "HELD_OUT_CORRUPTIONS",
    "PERTURBATIONS",
    "ROBUSTNESS_STRENGTHS",
    "TARGET_STRENGTHS",
    "corrupt",
    "corruption_summary",
    "perturb",
    "plot_robustness",
    "robustness_by_model",
    "robustness_table",
]

#: Strength grids for the robustness plot, in each perturbation's unit.
ROBUSTNESS_STRENGTHS: dict[str, tuple[float, ...]] = {
    "rotation": (0, 5, 10, 15, 20, 25, 30),
    "shift": (0, 0.05, 0.1, 0.15, 0.2),
    "scale": (0, 0.1, 0.2, 0.3),
    "brightness_contrast": (0, 0.2, 0.4, 0.6, 0.8),
    "noise": (0, 0.05, 0.1, 0.15, 0.2, 0.25),
    "blur": (0, 0.5, 1.0, 1.5, 2.0),
    "mixed": (0, 0.5, 1.0, 1.5, 2.0),
}

#: The strengths the robustness targets name: noise at 0.05 and 0.10, blur at 1 px, the mixed camera
#: at 1, every other perturbation at its grid's middle strength. The benchmark scores these.
TARGET_STRENGTHS: dict[str, tuple[float, ...]] = {
    **{kind: (grid[len(grid) // 2],) for kind, grid in ROBUSTNESS_STRENGTHS.items()},
    "noise": (0.05, 0.1),
    "blur": (1.0,),
    "mixed": (1.0,),
}

#: The mixed perturbation at strength 1, per family, in the order it is applied.
CAMERA: dict[str, float] = {
    "rotation": 5.0,
    "scale": 0.05,
    "shift": 0.05,
    "blur": 0.5,
    "brightness_contrast": 0.2,
    "noise": 0.03,
}
UNITS = {
    "rotation": "degrees",
    "shift": "fraction of the image",
    "scale": "zoom factor change",
    "brightness_contrast": "contrast loss and brightness shift",
    "noise": "std of Gaussian noise",
    "blur": "Gaussian blur sigma, pixels",
    "mixed": "times a mild camera (all at once)",
}


def _affine(images: np.ndarray, matrices: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    out = np.empty_like(images)
    for index, image in enumerate(images):
        out[index] = ndimage.affine_transform(image, matrices[index], offsets[index], order=1, mode="nearest")
    return out


def _around_centre(matrices: np.ndarray, shifts: np.ndarray | None = None) -> np.ndarray:
    centre = np.array([13.5, 13.5])
    offsets = centre - np.einsum("nij,j->ni", matrices, centre)
    return offsets if shifts is None else offsets + shifts


def _rotation(images, strength, rng):
    angles = np.deg2rad(strength) * rng.choice([-1.0, 1.0], len(images))
    cos, sin = np.cos(angles), np.sin(angles)
    matrices = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], 1)
    return _affine(images, matrices, _around_centre(matrices))


def _shift(images, strength, rng):
    direction = rng.uniform(0, 2 * np.pi, len(images))
    shifts = strength * 28 * np.stack([np.sin(direction), np.cos(direction)], 1)
    matrices = np.repeat(np.eye(2)[None], len(images), 0)
    return _affine(images, matrices, _around_centre(matrices, -shifts))


def _scale(images, strength, rng):
    factors = 1.0 + strength * rng.choice([-1.0, 1.0], len(images))
    matrices = np.eye(2)[None] / factors[:, None, None]
    return _affine(images, matrices, _around_centre(matrices))


def _brightness_contrast(images, strength, rng):
    means = images.mean(axis=(1, 2), keepdims=True)
    sign = rng.choice([-1.0, 1.0], (len(images), 1, 1))
    return np.clip((images - means) * (1.0 - 0.8 * strength) + means + sign * 0.4 * strength, 0.0, 1.0)


def _noise(images, strength, rng):
    return np.clip(images + rng.normal(0.0, strength, images.shape), 0.0, 1.0)


def _blur(images, strength, rng):
    return ndimage.gaussian_filter(images, sigma=(0, strength, strength), mode="nearest")


def _mixed(images, strength, rng):
    for kind, camera_strength in CAMERA.items():
        images = PERTURBATIONS[kind](images, strength * camera_strength, rng)
    return images


PERTURBATIONS: dict[str, Callable[[np.ndarray, float, np.random.Generator], np.ndarray]] = {
    "rotation": _rotation,
    "shift": _shift,
    "scale": _scale,
    "brightness_contrast": _brightness_contrast,
    "noise": _noise,
    "blur": _blur,
    "mixed": _mixed,
}


def perturb(images: np.ndarray, kind: str, strength: float, *, seed: int = 0) -> np.ndarray:
    """Apply one perturbation at one strength; the result has the input's shape and float32 dtype."""
    if kind not in PERTURBATIONS:
        raise ValueError(f"perturbation must be one of {sorted(PERTURBATIONS)}, got {kind!r}")
    if strength < 0:
        raise ValueError(f"strength must be >= 0, got {strength}")
    images = np.asarray(images, dtype=np.float32)
    shape = images.shape
    flat = images[..., 0] if images.ndim == 4 else images  # (N, height, width)
    if flat.size and (flat.min() < 0 or flat.max() > 1):
        raise ValueError("images must be scaled to 0-1")
    if strength == 0:
        return images.copy()
    result = PERTURBATIONS[kind](flat, float(strength), np.random.default_rng(seed))
    return result.astype(np.float32).reshape(shape)


#: Sign-MNIST-C: each corruption's family, and the types held out from every choice.
CORRUPTION_FAMILIES: dict[str, str] = {kind: entry[0] for kind, entry in CORRUPTIONS.items()}
HELD_OUT_CORRUPTIONS: tuple[str, ...] = HELD_OUT


def corrupt(images: np.ndarray, kind: str, severity: int, *, seed: int = 0) -> np.ndarray:
    """One Sign-MNIST-C corruption at ``severity`` (1-5) of images in 0-1, seeded; the shape kept, float32."""
    return corrupt_images(images, kind, severity, seed)


def robustness_table(
    models: Mapping[str, Callable[[np.ndarray], np.ndarray]],
    images: np.ndarray,
    y_true: np.ndarray,
    *,
    strengths: Mapping[str, Sequence[float]] = ROBUSTNESS_STRENGTHS,
    seed: int = 0,
    apply: Callable[..., np.ndarray] = perturb,
) -> pd.DataFrame:
    """Accuracy of each model (a function images -> class probabilities) per perturbation and strength;
    ``apply=corrupt`` with severities for strengths scores Sign-MNIST-C instead.

    Every model sees the very same perturbed images: all strengths of one perturbation in one call.
    """
    y_true = np.asarray(y_true)
    if len(y_true) != len(images):
        raise ValueError(f"y_true ({len(y_true)}) must have one entry per image ({len(images)})")
    rows = []
    for kind, grid in strengths.items():
        perturbed = np.concatenate([apply(images, kind, strength, seed=seed) for strength in grid])
        answers = {
            name: np.asarray(predict(perturbed)).argmax(axis=1).reshape(len(grid), len(images))
            for name, predict in models.items()
        }
        for position, strength in enumerate(grid):
            for name in models:
                rows.append(
                    {
                        "model": name,
                        "perturbation": kind,
                        "strength": float(strength),
                        "accuracy": float(np.mean(answers[name][position] == y_true)),
                    }
                )
    return pd.DataFrame(rows)


def robustness_by_model(table: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per model, what ``metrics.json`` records: ``robustness`` {perturbation: {strength: accuracy}}
    (strengths as text, ``"0.05"``) and ``robustness_mixed``, the accuracy under the mixed
    perturbation at strength 1 (a mild camera; None if the table has no such row)."""
    documents: dict[str, dict[str, Any]] = {}
    for model, rows in table.groupby("model", sort=False):
        robustness: dict[str, dict[str, float]] = {}
        for row in rows.itertuples():
            robustness.setdefault(row.perturbation, {})[f"{row.strength:g}"] = round(float(row.accuracy), 6)
        documents[str(model)] = {
            "robustness": robustness,
            "robustness_mixed": robustness.get("mixed", {}).get("1"),
        }
    return documents


def corruption_summary(table: pd.DataFrame, held_out: Sequence[str] = HELD_OUT) -> pd.DataFrame:
    """Per model of a Sign-MNIST-C :func:`robustness_table`: mean accuracies over types (each over severities
    1-3 or 1-5), over the ``held_out`` types at 1-3, and the worst type at 1-3 with its mean."""
    up_to_3 = table[table.strength <= 3].pivot_table(index="model", columns="perturbation", values="accuracy")
    every = table.pivot_table(index="model", columns="perturbation", values="accuracy")
    held = [kind for kind in held_out if kind in up_to_3.columns]
    summary = {
        "corruption_mean_1_3": up_to_3.mean(axis=1),
        "corruption_mean_1_5": every.mean(axis=1),
        "held_out_mean_1_3": up_to_3[held].mean(axis=1) if held else np.nan,
        "worst_type_1_3": up_to_3.idxmin(axis=1),
        "corruption_worst_1_3": up_to_3.min(axis=1),
    }
    return pd.DataFrame(summary).loc[list(dict.fromkeys(table["model"]))]


def plot_robustness(
    table: pd.DataFrame,
    *,
    axes: Sequence[plt.Axes] | None = None,
    title: str = "Test accuracy under controlled perturbations",
) -> plt.Figure:
    """One panel per perturbation (or corruption, against its severity): accuracy against strength, one
    line per model."""
    kinds = list(dict.fromkeys(table["perturbation"]))
    if axes is None:
        columns = min(3 if len(kinds) <= 9 else 6, len(kinds))
        figure, grid = plt.subplots(
            -(-len(kinds) // columns),
            columns,
            figsize=(4 * columns, 3.2 * -(-len(kinds) // columns)),
            layout="constrained",
            sharey=True,
            squeeze=False,
        )
        axes = list(grid.flat)
        for unused in axes[len(kinds) :]:
            unused.set_visible(False)
    else:
        figure = axes[0].figure
    for ax, kind in zip(axes, kinds):
        sns.lineplot(
            data=table[table.perturbation == kind],
            x="strength",
            y="accuracy",
            hue="model",
            marker="o",
            ax=ax,
            legend=ax is axes[0],
        )
        name = kind.replace("_", " + " if kind == "brightness_contrast" else " ")
        ax.set(title=name, xlabel=UNITS.get(kind, "severity"), ylim=(0, 1.02))
        ax.grid(alpha=0.3)
    figure.suptitle(title)
    return figure
