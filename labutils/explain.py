"""What a network looks at: Grad-CAM and integrated-gradient maps of its answers, ``(n, 28, 28)`` in
0-1, and the deletion test of whether a map points at the pixels an answer depends on. Each image is
explained on its own, whatever its batch; a backbone nested in a network is explained too."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from .models import BlurPooling2D

__all__ = [
    "deletion_curve",
    "deletion_scores",
    "feature_map_layer",
    "grad_cam",
    "integrated_gradients",
    "map_correlation",
]


def _layers(model: keras.Model):
    """The layers of ``model`` in the order they run, those of the models nested in it included."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _layers(layer)


def feature_map_layer(model: keras.Model) -> keras.layers.Layer:
    """The last layer whose output is a feature map (more than one position), other than a pooling."""
    skipped = (keras.Model, keras.layers.InputLayer, keras.layers.MaxPooling2D, BlurPooling2D)
    maps = [
        layer
        for layer in _layers(model)
        if not isinstance(layer, skipped)
        and len(shape := layer.output.shape) == 4
        and shape[1] * shape[2] > 1
    ]
    if not maps:
        raise ValueError(f"model {model.name!r} has no layer with a feature map to explain it by")
    return maps[-1]


def _run(model: keras.Model, inputs, swaps: dict):
    """``model`` on ``inputs``, each layer whose ``id`` is a key of ``swaps`` replaced by its function
    (Keras' own graph runner: no public call reaches a layer inside a nested model)."""

    def operation(layer):
        if isinstance(layer, keras.Model) and any(id(inner) in swaps for inner in _layers(layer)):
            return lambda tensors, *args, **kwargs: _run(layer, tensors, swaps)
        return swaps.get(id(layer), layer)

    return model._run_through_graph(inputs, operation_fn=operation)


def _maps(model: keras.Model, images, classes, batch_size: int, explain) -> np.ndarray:
    """``explain(batch, classes)``'s raw maps over ``images`` in batches, for ``classes`` (default: the
    network's answers), each map's positive part divided by its maximum (0 where it has none)."""
    images = np.asarray(images, dtype="float32")
    if classes is None and len(images):
        classes = model.predict(images, batch_size=512, verbose=0).argmax(axis=1)
    classes = np.asarray([] if classes is None else classes, dtype="int64")
    if len(classes) != len(images):
        raise ValueError(f"classes has {len(classes)} entries for {len(images)} images")
    maps = [np.zeros((0, *images.shape[1:3]), "float32")]
    for start in range(0, len(images), batch_size):
        batch = tf.constant(images[start : start + batch_size])
        maps.append(np.maximum(explain(batch, classes[start : start + batch_size]), 0))
    maps = np.concatenate(maps)
    peak = maps.max(axis=(1, 2), keepdims=True, initial=0)
    return np.divide(maps, peak, out=np.zeros_like(maps), where=peak > 0)


def grad_cam(model: keras.Model, images, layer=None, *, classes=None, batch_size: int = 64) -> np.ndarray:
    """Grad-CAM (Selvaraju et al., 2017): ``layer``'s feature map (default :func:`feature_map_layer`),
    each channel weighted by the mean gradient of the class's logit (the softmax layer's input: a
    confident answer still has one), summed and resized to the image."""
    layer = layer or feature_map_layer(model)
    softmax = [
        found for found in _layers(model) if getattr(found, "activation", None) is keras.activations.softmax
    ]
    if not softmax:
        raise ValueError(f"model {model.name!r} has no softmax layer whose logits Grad-CAM could follow")
    head, captured = softmax[-1], {}
    swaps = {
        id(layer): lambda *args, **kwargs: captured.setdefault("map", layer(*args, **kwargs)),
        id(head): lambda x, *args, **kwargs: (
            keras.ops.matmul(x, head.kernel) + (head.bias if head.use_bias else 0)
        ),
    }

    def explain(batch, chosen):
        captured.clear()
        with tf.GradientTape() as tape:
            score = tf.reduce_sum(tf.gather(_run(model, batch, swaps), chosen, batch_dims=1))
        weights = tf.reduce_mean(tape.gradient(score, captured["map"]), axis=(1, 2), keepdims=True)
        cam = tf.reduce_sum(weights * captured["map"], axis=-1, keepdims=True)
        return tf.image.resize(cam, batch.shape[1:3])[..., 0].numpy()

    return _maps(model, images, classes, batch_size, explain)


def integrated_gradients(
    model: keras.Model, images, *, steps: int = 32, classes=None, batch_size: int = 64
) -> np.ndarray:
    """Integrated gradients (Sundararajan et al., 2017): the gradient of the class's probability with
    respect to the pixels, averaged over ``steps`` points of the straight path from a blank image (the
    image's mean) to the image, times the image minus the blank. It reads the input alone."""

    def explain(batch, chosen):
        blank, total = tf.reduce_mean(batch, axis=(1, 2, 3), keepdims=True), tf.zeros_like(batch)
        for alpha in (np.arange(steps) + 0.5) / steps:
            with tf.GradientTape() as tape:
                path = blank + float(alpha) * (batch - blank)
                tape.watch(path)
                score = tf.reduce_sum(tf.gather(model(path, training=False), chosen, batch_dims=1))
            total += tape.gradient(score, path)
        return (total / steps * (batch - blank)).numpy().sum(axis=-1)

    return _maps(model, images, classes, batch_size, explain)


def deletion_curve(
    model: keras.Model, images, labels, maps, fractions=(0.0, 0.05, 0.1, 0.15, 0.2, 0.3), *, seed: int = 0
) -> pd.DataFrame:
    """Accuracy after each image's most attributed pixels are set to its mean (``explained``; ties in a
    seeded order), beside as many pixels drawn at random (``random``), one row per fraction of the
    pixels. A map that points at what the answers depend on makes ``explained`` fall the faster."""
    images, labels, maps = np.asarray(images, "float32"), np.asarray(labels), np.asarray(maps)
    if maps.shape != images.shape[:3] or len(labels) != len(images):
        raise ValueError(f"maps {maps.shape} and labels ({len(labels)}) must match images {images.shape[:3]}")
    rng, (n, pixels) = np.random.default_rng(seed), (len(images), images[0].size)
    flat = images.reshape(n, pixels)
    orders = {
        "explained": np.lexsort((rng.random((n, pixels)), -maps.reshape(n, pixels)), axis=1),
        "random": rng.permuted(np.tile(np.arange(pixels), (n, 1)), axis=1),
    }
    rows, means = {}, flat.mean(axis=1, keepdims=True)
    for fraction in fractions:
        for name, order in orders.items():
            deleted = flat.copy()
            np.put_along_axis(deleted, order[:, : round(fraction * pixels)], means, axis=1)
            answers = model.predict(deleted.reshape(images.shape), batch_size=512, verbose=0).argmax(axis=1)
            rows.setdefault(fraction, {})[name] = float(np.mean(answers == labels))
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("deleted fraction")


def deletion_scores(curve: pd.DataFrame) -> dict[str, float]:
    """A :func:`deletion_curve` in four numbers: the area under each column (``deletion_auc``,
    ``random_deletion_auc``; its fractions scaled to 0-1, lower being more harmful) and the accuracy
    with 15 % of the pixels deleted (``accuracy_15_deleted``, ``accuracy_15_random``)."""
    fractions = curve.index.to_numpy(dtype=float)
    if len(curve) < 2 or fractions.max() <= fractions.min() or 0.15 not in curve.index:
        raise ValueError("a deletion curve needs at least two different fractions, 0.15 among them")
    area = curve.apply(lambda column: np.trapezoid(column.to_numpy(), fractions) / np.ptp(fractions))
    return {
        "deletion_auc": float(area["explained"]),
        "random_deletion_auc": float(area["random"]),
        "accuracy_15_deleted": float(curve.loc[0.15, "explained"]),
        "accuracy_15_random": float(curve.loc[0.15, "random"]),
    }


def map_correlation(first, second) -> float:
    """The mean over images of the Pearson correlation of two maps of each image (0 for a flat map)."""
    a, b = (np.asarray(m, "float64").reshape(len(m), -1) for m in (first, second))
    if a.shape != b.shape:
        raise ValueError(f"maps {np.shape(first)} and {np.shape(second)} must have the same shape")
    a, b = a - a.mean(axis=1, keepdims=True), b - b.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return float(np.mean(np.divide((a * b).sum(axis=1), norms, out=np.zeros(len(a)), where=norms > 0)))
