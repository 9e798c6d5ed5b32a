"""Sign-MNIST-C: the catalogue, each corruption at each severity, the held-out split, and the scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import labutils as lu
from labutils.corruptions.suite import CORRUPTIONS, FAMILIES, HELD_OUT, SEVERITIES, corrupt_images


def _hands(count: int = 24, seed: int = 0) -> np.ndarray:
    """Hand-like test images in 0-1: a bright blob with a few darker 'fingers' on a graded background."""
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:28, 0:28] / 27.0
    images = []
    for _ in range(count):
        centre = rng.uniform(0.35, 0.65, 2)
        blob = np.exp(-((rows - centre[0]) ** 2 + (columns - centre[1]) ** 2) / 0.05)
        fingers = 0.2 * (np.sin(columns * rng.uniform(12, 20)) > 0.6) * (rows < centre[0])
        images.append(np.clip(0.25 + 0.3 * rows + 0.45 * blob - fingers, 0, 1))
    return np.asarray(images, dtype=np.float32)


def test_the_catalogue_has_fifteen_or_more_types_in_families_with_one_held_out_in_each():
    assert len(CORRUPTIONS) >= 15 and SEVERITIES == (1, 2, 3, 4, 5)
    assert set(FAMILIES) == {"noise", "blur", "digital", "scene"}
    for family, kinds in FAMILIES.items():
        assert any(kind in HELD_OUT for kind in kinds), family
        assert any(kind not in HELD_OUT for kind in kinds), family  # something left to choose on
    assert set(HELD_OUT) <= set(CORRUPTIONS)
    assert all(len(values) == 5 for _, values, _ in CORRUPTIONS.values())
    assert lu.CORRUPTION_FAMILIES == {kind: entry[0] for kind, entry in CORRUPTIONS.items()}
    assert lu.HELD_OUT_CORRUPTIONS == HELD_OUT


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_each_corruption_is_seeded_keeps_the_shape_and_grows_with_severity(kind):
    images = _hands()
    changes = []
    for severity in SEVERITIES:
        corrupted = lu.corrupt(images, kind, severity, seed=3)
        assert corrupted.shape == images.shape and corrupted.dtype == np.float32
        assert 0.0 <= corrupted.min() and corrupted.max() <= 1.0
        np.testing.assert_array_equal(corrupted, lu.corrupt(images, kind, severity, seed=3))
        changes.append(float(np.abs(corrupted - images).mean()))
    assert min(changes) > 0.002, changes  # every severity changes the images
    assert changes[-1] > changes[0], changes  # severity 5 is worse than severity 1
    # with a channel axis, as the networks take them: the very same result
    with_channel = lu.corrupt(images[..., None], kind, 3, seed=3)
    assert with_channel.shape == (len(images), 28, 28, 1)
    np.testing.assert_array_equal(with_channel[..., 0], lu.corrupt(images, kind, 3, seed=3))


@pytest.mark.parametrize(
    "kind", ["gaussian_noise", "impulse_noise", "elastic", "occlusion", "fog", "vignetting"]
)
def test_another_seed_draws_another_corruption(kind):
    images = _hands()
    assert not np.array_equal(lu.corrupt(images, kind, 3, seed=0), lu.corrupt(images, kind, 3, seed=1))


def test_the_contrast_corruption_keeps_each_images_mean():
    images = _hands()
    corrupted = lu.corrupt(images, "contrast", 5)
    np.testing.assert_allclose(corrupted.mean(axis=(1, 2)), images.mean(axis=(1, 2)), atol=1e-5)
    assert corrupted.std() < 0.3 * images.std()


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (("snow", 3), "corruption must be one of"),
        (("fog", 0), "severity must be one of [1, 2, 3, 4, 5], got 0"),
        (("fog", 6), "severity must be one of [1, 2, 3, 4, 5], got 6"),
        (("fog", 2.5), "severity must be one of"),
    ],
)
def test_a_bad_kind_or_severity_is_refused_by_name(arguments, words):
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        lu.corrupt(_hands(2), *arguments)


def test_images_outside_0_1_or_of_another_size_are_refused():
    with pytest.raises(ValueError, match="scaled to 0-1"):
        lu.corrupt(_hands(2) * 255, "fog", 1)
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        corrupt_images(np.zeros((2, 32, 32), np.float32), "fog", 1, 0)


def test_the_table_and_its_summary_follow_the_rule_by_hand():
    images, labels = _hands(12), np.arange(12) % 3
    kinds = ["gaussian_noise", "fog", "jpeg"]

    def constant(images: np.ndarray) -> np.ndarray:  # always says class 0
        return np.tile([1.0, 0.0, 0.0], (len(images), 1))

    table = lu.robustness_table(
        {"constant": constant},
        images,
        labels,
        strengths={kind: SEVERITIES for kind in kinds},
        apply=lu.corrupt,
    )
    assert len(table) == 15 and set(table.perturbation) == set(kinds)
    assert np.allclose(table.accuracy, np.mean(labels == 0))
    # a table whose accuracies are known: type k at severity s scores 1 - 0.01 * s * (k + 1)
    rows = [
        {"model": model, "perturbation": kind, "strength": s, "accuracy": 1 - 0.01 * s * (k + 1) - shift}
        for model, shift in (("b", 0.1), ("a", 0.0))
        for k, kind in enumerate(kinds)
        for s in SEVERITIES
    ]
    summary = lu.corruption_summary(pd.DataFrame(rows), held_out=("fog",))
    assert list(summary.index) == ["b", "a"]  # in the table's order
    a = summary.loc["a"]
    assert a.corruption_mean_1_3 == pytest.approx(
        1 - 0.02 * 2
    )  # severities 1-3 average 2; types 1-3 average 2
    assert a.corruption_mean_1_5 == pytest.approx(1 - 0.03 * 2)
    assert a.held_out_mean_1_3 == pytest.approx(1 - 0.02 * 2)  # fog is the second type
    assert a.worst_type_1_3 == "jpeg" and a.corruption_worst_1_3 == pytest.approx(1 - 0.02 * 3)
    assert summary.loc["b", "corruption_mean_1_3"] == pytest.approx(a.corruption_mean_1_3 - 0.1)


def test_the_training_layer_draws_named_types_only_up_to_its_severity(monkeypatch):
    from labutils.corruptions import layer

    drawn = []

    def spy(images, kind, severity, seed):
        drawn.append((kind, severity, len(images)))
        return corrupt_images(images, kind, severity, seed)

    monkeypatch.setattr(layer, "corrupt_images", spy)
    images = np.repeat(_hands(24)[..., None], 20, axis=0)  # 480 images, a channel axis
    corruption = layer.RandomCorruption(rate=0.5, max_severity=2, seed=0)
    out = np.asarray(corruption(images, training=True))
    assert out.shape == images.shape and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    assert {kind for kind, _, _ in drawn} == set(layer.NAMED) and not set(layer.NAMED) & set(HELD_OUT)
    assert {severity for _, severity, _ in drawn} <= {1, 2}
    changed = np.any(np.abs(out - images) > 1e-6, axis=(1, 2, 3)).mean()
    assert sum(count for _, _, count in drawn) == pytest.approx(240, abs=40) and 0.35 < changed <= 0.6
    assert np.array_equal(np.asarray(corruption(images, training=False)), images)


def test_the_training_layer_is_seeded_and_refuses_bad_settings():
    from labutils.corruptions.layer import RandomCorruption

    images = _hands(64)[..., None]

    def draw(seed):
        return np.asarray(RandomCorruption(rate=1.0, seed=seed)(images, training=True))

    assert np.array_equal(draw(3), draw(3)) and not np.array_equal(draw(3), draw(4))
    with pytest.raises(ValueError, match="rate"):
        RandomCorruption(rate=1.5)
    with pytest.raises(ValueError, match="max_severity"):
        RandomCorruption(max_severity=6)


def test_the_augmentation_puts_the_cameras_faults_after_the_pose_when_asked():
    names = [type(step).__name__ for step in lu.Augmentation(corruption_rate=0.3).pipeline(0).layers]
    assert names[:2] == ["RandomAffine", "RandomCorruption"]
    assert "RandomCorruption" not in [type(step).__name__ for step in lu.Augmentation().pipeline(0).layers]
    for field, value in (("corruption_rate", 1.2), ("corruption_severity", 0), ("corruption_severity", 2.5)):
        with pytest.raises(ValueError, match=field):
            lu.Augmentation(**{field: value})
