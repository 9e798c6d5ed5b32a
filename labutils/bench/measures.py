"""What the benchmark measures beyond the notebooks: one image at a time, the grouped validation's
hard families (those whose most similar training image shows another letter), and Sign-MNIST-C."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..metrics import family_neighbours

__all__ = ["corruption_scores", "hard_families", "hard_family_score", "single_image_rate"]


def single_image_rate(model, x: np.ndarray, *, images: int = 200) -> float:
    """Images per second answering one image per call (batch 1), for up to ``images`` images of ``x``.

    Each call goes through the model's compiled predict function (``predict_on_batch``), which one
    warm-up call compiles first: calling the model eagerly (``model(image)``) would mostly time
    Keras' per-layer Python overhead (8 to 28 times slower for this project's networks on 2 CPU cores).
    """
    if len(x) == 0:
        raise ValueError("single_image_rate needs at least one image")
    if images < 1:
        raise ValueError(f"images must be a positive number of calls, got {images}")
    count = min(images, len(x))
    model.predict_on_batch(x[:1])
    start = time.perf_counter()
    for index in range(count):
        model.predict_on_batch(x[index : index + 1])
    return count / (time.perf_counter() - start)


def hard_families(
    images: np.ndarray, labels: np.ndarray, families: np.ndarray, x_train: np.ndarray, y_train: np.ndarray
) -> np.ndarray:
    """Per image, whether its family is hard: the training image most like the family shows another letter.

    The photographs a network finds hardest to read right are of this kind (a test family read
    wrong by a whole seed has been one). Scored on grouped-validation families against the
    split's training side, they let a recipe be judged on them without the test set.
    ``families``: the images' families of near-copies; similarity as in :func:`family_neighbours`.
    """
    table = family_neighbours(images, labels, families, x_train, y_train)
    return np.isin(np.asarray(families), table.index[table["nearest_letter"] != table["letter"]])


def hard_family_score(
    labels: np.ndarray, probabilities: np.ndarray, families: np.ndarray, hard: np.ndarray
) -> dict[str, Any]:
    """A network's figures on the hard families' images (``hard``, from :func:`hard_families`).

    ``families`` and ``images``: how many there are; ``errors``: images read wrong, and
    ``families_with_errors``: the families they fall in (a few whole families, or errors spread
    thin); ``log_loss``: the mean of −ln(probability of the true letter) over them (probabilities
    clipped at 1e-7), which moves before an error does. JSON-ready; ``log_loss`` is ``None`` where
    there is no hard family.
    """
    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    families, hard = np.asarray(families), np.asarray(hard, dtype=bool)
    if not len(labels) == len(probabilities) == len(families) == len(hard):
        raise ValueError(
            f"labels ({len(labels)}), probabilities ({len(probabilities)}), families ({len(families)}) "
            f"and hard ({len(hard)}) must have one entry per image"
        )
    score = {
        "families": int(np.unique(families[hard]).size),
        "images": int(hard.sum()),
        "errors": 0,
        "families_with_errors": 0,
        "log_loss": None,
    }
    if hard.any():
        labels, probabilities, families = labels[hard], probabilities[hard], families[hard]
        wrong = probabilities.argmax(axis=1) != labels
        score["errors"] = int(wrong.sum())
        score["families_with_errors"] = int(np.unique(families[wrong]).size)
        true = probabilities[np.arange(len(labels)), labels]
        score["log_loss"] = float(np.mean(-np.log(np.clip(true, 1e-7, 1.0))))
    return score


def corruption_scores(
    model, images: np.ndarray, labels: np.ndarray, *, count: int, named_only: bool
) -> dict[str, Any]:
    """Sign-MNIST-C on a seeded sample of ``count`` of ``images``, as notebook 03 scores it: accuracy per
    corruption and severity, :func:`~labutils.perturb.corruption_summary`'s means and worst type, the
    worst type at severity 3, the images and the seconds. ``named_only``: the held-out types left out
    (the grouped validation, where choices are made)."""
    from ..perturb import (
        CORRUPTION_FAMILIES,
        HELD_OUT_CORRUPTIONS,
        corrupt,
        corruption_summary,
        robustness_by_model,
        robustness_table,
    )

    start = time.perf_counter()
    count = min(count, len(images))
    sample = np.sort(np.random.default_rng(0).choice(len(images), count, replace=False))
    kinds = [kind for kind in CORRUPTION_FAMILIES if not (named_only and kind in HELD_OUT_CORRUPTIONS)]
    table = robustness_table(
        {"model": lambda batch: model.predict(batch, batch_size=1024, verbose=0)},
        images[sample], labels[sample], strengths={kind: (1, 2, 3, 4, 5) for kind in kinds}, seed=0, apply=corrupt,
    )  # fmt: skip
    summary = corruption_summary(table).loc["model"]
    at_3 = table[table.strength == 3].set_index("perturbation").accuracy
    return {
        "corruptions": robustness_by_model(table)["model"]["robustness"],
        "corruption_mean_1_3": float(summary.corruption_mean_1_3),
        "corruption_mean_1_5": float(summary.corruption_mean_1_5),
        "held_out_mean_1_3": None if named_only else float(summary.held_out_mean_1_3),
        "corruption_worst_1_3": {summary.worst_type_1_3: float(summary.corruption_worst_1_3)},
        "corruption_worst_3": {at_3.idxmin(): float(at_3.min())},
        "images": count,
        "seconds": round(time.perf_counter() - start, 3),
    }  # fmt: skip
