"""The camera augmentation layers: sensor noise and optical blur with a random strength per image."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from scipy import ndimage

from labutils.models import RandomGaussianBlur, RandomGaussianNoise
from labutils.perturb import CAMERA, PERTURBATIONS, perturb


@pytest.fixture
def images(rng) -> np.ndarray:
    base = np.zeros((16, 28, 28, 1), np.float32)
    base[:, 6:22, 4:12] = 0.8  # an off-centre bar: a flip would show
    return np.clip(base + rng.uniform(0, 0.1, base.shape), 0, 1).astype(np.float32)


LAYERS = [lambda seed: RandomGaussianNoise(0.15, seed=seed), lambda seed: RandomGaussianBlur(1.5, seed=seed)]


@pytest.mark.parametrize("make", LAYERS, ids=["noise", "blur"])
def test_identity_at_inference_and_a_change_in_training(images, make):
    layer = make(0)
    np.testing.assert_array_equal(np.asarray(layer(images, training=False)), images)
    changed = np.asarray(layer(images, training=True))
    assert changed.shape == images.shape and changed.dtype == np.float32
    assert 0.0 <= changed.min() and changed.max() <= 1.0
    assert np.abs(changed - images).mean() > 1e-3


@pytest.mark.parametrize("make", LAYERS, ids=["noise", "blur"])
def test_the_same_seed_gives_the_same_batch_and_another_seed_another(images, make):
    first = np.asarray(make(3)(images, training=True))
    np.testing.assert_array_equal(first, np.asarray(make(3)(images, training=True)))
    assert not np.allclose(first, np.asarray(make(4)(images, training=True)))


@pytest.mark.parametrize("make", LAYERS, ids=["noise", "blur"])
def test_no_flip_the_bar_stays_on_its_side(images, make):
    changed = np.asarray(make(0)(images, training=True))
    left, right = changed[:, :, 4:12].mean(), changed[:, :, 16:24].mean()
    assert left > right + 0.4


def test_the_noise_strength_differs_per_image_and_stays_within_its_maximum(images):
    flat = np.full((64, 28, 28, 1), 0.5, np.float32)  # no clipping at 0.5 with these strengths
    noisy = np.asarray(RandomGaussianNoise(0.1, seed=1)(flat, training=True))
    stddevs = (noisy - flat).reshape(64, -1).std(axis=1)
    assert stddevs.max() < 0.11 and stddevs.min() < 0.03 and stddevs.max() > 0.07  # spread over 0-0.1


def test_the_blur_is_a_gaussian_of_the_drawn_sigma(rng):
    image = rng.uniform(0, 1, (1, 28, 28, 1)).astype(np.float32)
    matrix = np.asarray(RandomGaussianBlur.blur_matrices(np.array([1.0]), 28))[0]
    blurred = matrix @ image[0, :, :, 0] @ matrix.T
    reference = ndimage.gaussian_filter(image[0, :, :, 0], sigma=1.0, mode="nearest", truncate=8)
    assert np.abs(blurred - reference)[4:-4, 4:-4].max() < 1e-4  # the same away from the border
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, rtol=1e-6)  # the border is not darkened
    identity = np.asarray(RandomGaussianBlur.blur_matrices(np.array([0.0]), 28))[0]
    np.testing.assert_allclose(identity, np.eye(28), atol=1e-6)


def test_the_layers_check_their_arguments():
    with pytest.raises(ValueError, match="max_stddev must lie in"):
        RandomGaussianNoise(-0.1)
    with pytest.raises(ValueError, match="max_sigma must lie in"):
        RandomGaussianBlur(11)


def test_a_model_with_both_layers_round_trips_in_safe_mode(tmp_path, images):
    inputs = keras.Input((28, 28, 1))
    augmented = RandomGaussianBlur(1.0, seed=2)(RandomGaussianNoise(0.1, seed=1)(inputs))
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(augmented))
    model = keras.Model(inputs, outputs)
    model.save(tmp_path / "camera.keras")
    loaded = keras.models.load_model(tmp_path / "camera.keras", safe_mode=True)
    assert [type(layer).__name__ for layer in loaded.layers[1:3]] == [
        "RandomGaussianNoise",
        "RandomGaussianBlur",
    ]
    assert (
        loaded.layers[1].get_config()["max_stddev"] == 0.1
        and loaded.layers[2].get_config()["max_sigma"] == 1.0
    )
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6)


def test_the_mixed_perturbation_is_every_family_in_turn_from_one_generator(images):
    flat = images[..., 0]
    expected = flat
    generator = np.random.default_rng(5)
    for kind, strength in CAMERA.items():
        expected = PERTURBATIONS[kind](expected, strength * 1.5, generator)
    np.testing.assert_allclose(perturb(flat, "mixed", 1.5, seed=5), expected, atol=1e-6)
    assert set(CAMERA) == set(PERTURBATIONS) - {"mixed"}
