"""Perturbations: shape, range, identity at strength 0, and that each one changes images as described."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labutils.perturb import PERTURBATIONS, ROBUSTNESS_STRENGTHS, perturb, robustness_table


@pytest.fixture
def images(rng):
    base = np.zeros((6, 28, 28), dtype=np.float32)
    base[:, 8:20, 10:18] = 0.9  # a bright block, off the centre line
    return (base + rng.uniform(0, 0.05, base.shape)).astype(np.float32)


@pytest.mark.parametrize("kind", list(PERTURBATIONS))
def test_shape_range_and_identity(images, kind):
    for shaped in (images, images[..., None]):
        assert np.array_equal(perturb(shaped, kind, 0), shaped)
        strongest = max(ROBUSTNESS_STRENGTHS[kind])
        result = perturb(shaped, kind, strongest, seed=1)
        assert result.shape == shaped.shape and result.dtype == np.float32
        assert 0.0 <= result.min() and result.max() <= 1.0
        assert not np.allclose(result, shaped, atol=1e-3), f"{kind} at {strongest} changed nothing"


@pytest.mark.parametrize("kind", list(PERTURBATIONS))
def test_same_seed_same_result(images, kind):
    np.testing.assert_array_equal(perturb(images, kind, 0.2, seed=3), perturb(images, kind, 0.2, seed=3))


def test_effects_grow_with_strength(images):
    for kind, grid in ROBUSTNESS_STRENGTHS.items():
        changes = [np.abs(perturb(images, kind, s, seed=0) - images).mean() for s in grid]
        assert changes == sorted(changes), f"{kind}: {changes}"


def test_rotation_by_90_degrees_turns_the_image():
    image = np.zeros((1, 28, 28), dtype=np.float32)
    image[0, 2:6, 12:16] = 1.0  # near the top edge
    turned = perturb(image, "rotation", 90, seed=0)[0]
    assert turned[2:6, 12:16].mean() < 0.1
    assert max(turned[12:16, 2:6].mean(), turned[12:16, 22:26].mean()) > 0.9


def test_shift_moves_mass_by_the_fraction(images):
    shifted = perturb(images[:1], "shift", 0.1, seed=0)[0]

    def centre(image):
        return np.array(np.nonzero(image > 0.5)).mean(axis=1)

    assert np.linalg.norm(centre(shifted) - centre(images[0])) == pytest.approx(2.8, abs=0.6)


def test_rejects_bad_arguments(images):
    with pytest.raises(ValueError, match="perturbation must be one of"):
        perturb(images, "flip", 1)
    with pytest.raises(ValueError, match="strength"):
        perturb(images, "noise", -1)
    with pytest.raises(ValueError, match="0-1"):
        perturb(images * 255, "noise", 0.1)


def test_robustness_table_feeds_every_model_the_same_images(images):
    seen = {}

    def model(name):
        def predict(batch):
            seen.setdefault(name, []).append(batch.copy())
            probabilities = np.zeros((len(batch), 24))
            probabilities[:, 3] = 1
            return probabilities

        return predict

    table = robustness_table(
        {"a": model("a"), "b": model("b")},
        images,
        np.full(len(images), 3),
        strengths={"noise": (0, 0.1), "blur": (0, 1)},
    )
    assert isinstance(table, pd.DataFrame) and len(table) == 8
    assert (table.accuracy == 1.0).all()
    for first, second in zip(seen["a"], seen["b"]):
        np.testing.assert_array_equal(first, second)
    # one call per model and perturbation, all strengths at once
    assert len(seen["a"]) == len(seen["b"]) == 2 and all(len(batch) == 2 * len(images) for batch in seen["a"])


def test_robustness_table_scores_each_strength_on_its_own_images(images):
    def untouched_only(batch):  # right (class 3) exactly on the unperturbed images
        unperturbed = np.concatenate([images] * (len(batch) // len(images)))
        probabilities = np.zeros((len(batch), 24))
        probabilities[np.arange(len(batch)), np.where((batch == unperturbed).all(axis=(1, 2)), 3, 5)] = 1
        return probabilities

    table = robustness_table(
        {"m": untouched_only},
        images,
        np.full(len(images), 3),
        strengths={"noise": (0, 0.1, 0.2), "rotation": (10, 0)},
    )
    assert list(zip(table.perturbation, table.strength, table.accuracy)) == [
        ("noise", 0.0, 1.0),
        ("noise", 0.1, 0.0),
        ("noise", 0.2, 0.0),
        ("rotation", 10.0, 0.0),
        ("rotation", 0.0, 1.0),
    ]
    with pytest.raises(ValueError, match="one entry per image"):
        robustness_table({"m": untouched_only}, images, np.full(len(images) - 1, 3))


def test_robustness_by_model_gives_each_model_its_grid_and_the_mild_camera():
    from labutils.perturb import TARGET_STRENGTHS, robustness_by_model

    table = pd.DataFrame(
        [
            {"model": "a", "perturbation": "noise", "strength": 0.05, "accuracy": 0.99},
            {"model": "a", "perturbation": "mixed", "strength": 1.0, "accuracy": 0.97},
            {"model": "b", "perturbation": "noise", "strength": 0.05, "accuracy": 0.8},
        ]
    )
    documents = robustness_by_model(table)
    assert documents["a"] == {
        "robustness": {"noise": {"0.05": 0.99}, "mixed": {"1": 0.97}},
        "robustness_mixed": 0.97,
    }
    assert documents["b"]["robustness_mixed"] is None
    assert TARGET_STRENGTHS["noise"] == (0.05, 0.1) and TARGET_STRENGTHS["blur"] == (1.0,)
    assert TARGET_STRENGTHS["rotation"] == (15,) and TARGET_STRENGTHS["mixed"] == (1.0,)
