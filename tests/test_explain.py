"""Attribution maps: their shape on every kind of network, and the sanity checks a map must pass
(Adebayo et al., 2018): it depends on the weights, is deterministic, and does not depend on the batch."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from labutils.data import label_to_index
from labutils.explain import (
    deletion_curve,
    deletion_scores,
    feature_map_layer,
    grad_cam,
    integrated_gradients,
    map_correlation,
)
from labutils.models import compact_cnn, seed_cnn
from labutils.sources import load_dataset
from labutils.split import to_model_input
from labutils.training import training_dataset


@pytest.fixture(scope="module")
def trained(standin_dir):
    """Our network, trained for 4 epochs on the stand-in, and 64 of its test images with their classes."""
    dataset = load_dataset(standin_dir)
    keras.utils.set_random_seed(0)
    model = compact_cnn(width=8)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", jit_compile=False
    )
    x, y = to_model_input(dataset.x_train), label_to_index(dataset.y_train)
    model.fit(training_dataset(x, y, batch_size=64, seed=0), epochs=4, verbose=0)
    return model, to_model_input(dataset.x_test[:64]), label_to_index(dataset.y_test[:64])


def test_each_network_kind_gets_one_map_per_image_in_0_1():
    from labutils.transfer import build_transfer_model

    images = np.random.default_rng(0).random((5, 28, 28, 1), dtype=np.float32)
    lite = build_transfer_model("efficientnet_lite0", image_size=64, weights=None).model
    # the last feature map: ours after its third block's ReLU, the seed's after its third convolution
    # (its dropout), EfficientNet-Lite0's top inside the nested backbone (2 x 2 positions at 64 px)
    for model, kind, shape in (
        (compact_cnn(width=4), keras.layers.ReLU, (7, 7, 16)),
        (seed_cnn(), keras.layers.Dropout, (5, 5, 64)),
        (lite, keras.layers.ReLU, (2, 2, 1280)),
    ):
        layer = feature_map_layer(model)
        assert isinstance(layer, kind) and tuple(layer.output.shape[1:]) == shape, (model.name, layer.name)
        for maps in (grad_cam(model, images), integrated_gradients(model, images, steps=4)):
            assert maps.shape == (5, 28, 28) and maps.dtype == np.float32, model.name
            assert maps.min() >= 0.0 and maps.max() <= 1.0 and np.isclose(maps.max(axis=(1, 2)), 1.0).any()
    assert grad_cam(compact_cnn(width=4), images[:0]).shape == (0, 28, 28)
    with pytest.raises(ValueError, match="classes has 2 entries for 5 images"):
        grad_cam(compact_cnn(width=4), images, classes=[0, 1])


def test_maps_are_deterministic_and_the_same_for_batches_of_1_and_64(trained):
    model, images, _ = trained
    for explain in (grad_cam, lambda m, x, **kw: integrated_gradients(m, x, steps=8, **kw)):
        whole = explain(model, images, batch_size=64)
        np.testing.assert_array_equal(whole, explain(model, images, batch_size=64))
        # the same maps whatever the batch, to float32 rounding (the kernels sum in another order)
        one_by_one = explain(model, images, batch_size=1)
        np.testing.assert_allclose(whole, one_by_one, atol=1e-3)
        assert map_correlation(whole, one_by_one) > 0.99999


def test_maps_change_when_the_last_convolutions_weights_are_shuffled(trained):
    model, images, _ = trained
    shuffled = keras.models.clone_model(model)
    shuffled.set_weights(model.get_weights())
    kernel = shuffled.get_layer("conv3").kernel
    values = keras.ops.convert_to_numpy(kernel)
    kernel.assign(np.random.default_rng(0).permutation(values.reshape(-1)).reshape(values.shape))
    for explain in (grad_cam, lambda m, x: integrated_gradients(m, x, steps=8)):
        original = explain(model, images)
        assert map_correlation(original, explain(model, images)) == pytest.approx(1.0)
        assert map_correlation(original, explain(shuffled, images)) < 0.5


def test_the_deletion_curve_scores_explained_against_random_deletions(trained):
    model, images, labels = trained
    maps = grad_cam(model, images)
    fractions = (0.0, 0.15, 0.3)
    curve = deletion_curve(model, images, labels, maps, fractions=fractions, seed=0)
    assert list(curve.index) == list(fractions) and list(curve.columns) == ["explained", "random"]
    clean = float(np.mean(model.predict(images, verbose=0).argmax(axis=1) == labels))
    assert curve.loc[0.0, "explained"] == curve.loc[0.0, "random"] == clean
    assert curve.equals(deletion_curve(model, images, labels, maps, fractions=fractions, seed=0))
    # a map that points nowhere (every pixel alike) deletes in the seeded random order
    flat = deletion_curve(model, images, labels, np.zeros_like(maps), fractions=(0.0, 0.3), seed=0)
    assert 0.0 <= flat.loc[0.3, "explained"] <= clean
    scores = deletion_scores(curve)
    assert scores["accuracy_15_deleted"] == curve.loc[0.15, "explained"]
    assert scores["accuracy_15_random"] == curve.loc[0.15, "random"]
    # the trapezoids over 0-0.15-0.3, each half of the range
    for key, column in (("deletion_auc", "explained"), ("random_deletion_auc", "random")):
        c = curve[column]
        assert scores[key] == pytest.approx((c[0.0] + 2 * c[0.15] + c[0.3]) / 4)
        assert 0 <= scores[key] <= 1
    with pytest.raises(ValueError, match="must match images"):
        deletion_curve(model, images, labels[:3], maps)
    with pytest.raises(ValueError, match="0.15 among them"):
        deletion_scores(curve.iloc[:1])
    with pytest.raises(ValueError, match="0.15 among them"):
        deletion_scores(flat)


def test_map_correlation_is_the_mean_pearson_correlation_per_image():
    rng = np.random.default_rng(0)
    first = rng.random((5, 28, 28))
    assert map_correlation(first, first) == pytest.approx(1.0)
    assert map_correlation(first, 2 * first + 1) == pytest.approx(1.0)
    assert map_correlation(first, 1 - first) == pytest.approx(-1.0)
    expected = np.mean([np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(first, first[::-1])])
    assert map_correlation(first, first[::-1]) == pytest.approx(expected)
    assert map_correlation(first, np.zeros_like(first)) == 0.0  # a flat map correlates with nothing
    with pytest.raises(ValueError, match="same shape"):
        map_correlation(first, first[:3])
