"""Batch-norm statistics recomputed on clean training images, for the weights a network keeps.

A batch-norm layer's moving statistics follow the last batches it trained on: augmented images and
the raw weights of the last steps. Task 3 keeps averaged weights and is used on clean images, and
Task 4's from-scratch control changes its weights faster than its statistics follow; both are scored
and kept with statistics recomputed here, by a function or by a callback after every epoch.
"""

from __future__ import annotations

import time

import keras
import numpy as np
from keras import layers

from .transfer import TransferModel

__all__ = [
    "RecomputeBackboneStatistics",
    "RecomputeBatchNormStatistics",
    "recompute_backbone_statistics",
    "recompute_batch_norm_statistics",
    "statistics_sample",
]


def recompute_batch_norm_statistics(
    model: keras.Model, images: np.ndarray, *, batch_size: int = 1024
) -> keras.Model:
    """Set each batch-norm layer's moving mean and variance to those of its input over ``images``.

    Layer by layer, in inference mode, so that each layer's statistics are computed with the
    statistics of the layers before it already in place: the network is then normalised exactly
    as it will be used. This is what averaged weights need (as in SWA): the moving statistics a
    layer gathers during training belong to the raw weights of the last steps, and, with
    augmentation, to augmented batches. Returns ``model``, changed in place.
    """
    if len(images) == 0:
        raise ValueError("recompute_batch_norm_statistics needs at least one image")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for layer in _batch_norm_layers(model):
        if layer.axis not in (-1, len(layer.input.shape) - 1):
            raise ValueError(f"{layer.name}: only channels-last batch norm is supported, axis {layer.axis}")
        inputs = keras.Model(model.input, layer.input)
        count, total, total_squares = 0, 0.0, 0.0
        for start in range(0, len(images), batch_size):
            features = inputs(images[start : start + batch_size], training=False)
            axes = tuple(range(len(features.shape) - 1))
            total = total + keras.ops.convert_to_numpy(keras.ops.sum(features, axis=axes)).astype(np.float64)
            total_squares = total_squares + keras.ops.convert_to_numpy(
                keras.ops.sum(keras.ops.square(features), axis=axes)
            ).astype(np.float64)
            count += int(np.prod(features.shape[:-1]))
        mean = total / count
        layer.moving_mean.assign(mean.astype(np.float32))
        layer.moving_variance.assign(np.maximum(total_squares / count - mean**2, 0.0).astype(np.float32))
    return model


def statistics_sample(images: np.ndarray, sample: int | None, seed: int, *, owner: str) -> np.ndarray:
    """``sample`` of ``images`` (all of them for ``None`` or a larger number), drawn with ``seed``, in their order.

    The images whose batch-norm statistics a recomputing callback uses; ``owner`` names it in errors.
    """
    if len(images) == 0:
        raise ValueError(f"{owner} needs at least one image")
    if sample is not None and sample < 1:
        raise ValueError(f"sample must be a positive number of images or None, got {sample}")
    if sample is not None and sample < len(images):
        images = images[np.sort(np.random.default_rng(seed).choice(len(images), sample, replace=False))]
    return images


def _batch_norm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """The model's batch-norm layers, in computing order; batch norm inside a nested model is refused."""
    for layer in model.layers:
        if isinstance(layer, keras.Model) and _holds_batch_norm(layer):
            raise ValueError(f"{layer.name}: batch norm inside a nested model is not supported")
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def _holds_batch_norm(model: keras.Model) -> bool:
    return any(
        isinstance(layer, keras.layers.BatchNormalization)
        or (isinstance(layer, keras.Model) and _holds_batch_norm(layer))
        for layer in model.layers
    )


class RecomputeBatchNormStatistics(keras.callbacks.Callback):
    """Scores and keeps each epoch's network with batch-norm statistics of clean training images.

    During training a batch-norm layer's moving statistics follow the batches it sees — with
    augmentation, augmented ones — and the raw weights of the last few steps. For the validation
    and at the end of each epoch this callback sets them to the statistics of ``images`` under
    the weights the network holds then (:func:`recompute_batch_norm_statistics`), and puts the
    training statistics back before the next epoch trains on. After ``fit`` the network keeps the
    recomputed statistics. ``sample``: how many of ``images`` to use (drawn once with ``seed``;
    ``None``: all). Put it after :class:`SwapAverageWeights` and before callbacks that read the
    model at the end of an epoch (``FinalOrBest``, a test curve).
    """

    def __init__(
        self, images: np.ndarray, *, sample: int | None = 2048, seed: int = 0, batch_size: int = 1024
    ) -> None:
        super().__init__()
        self.images = statistics_sample(images, sample, seed, owner=type(self).__name__)
        self.batch_size = batch_size
        self.seconds = 0.0  # spent recomputing, over all epochs
        self._training_statistics: list[np.ndarray] | None = None
        # (epoch, statistics) for this epoch's weights
        self._recomputed: tuple[int, list[np.ndarray]] | None = None
        self._epoch = -1

    def _statistics(self) -> list[keras.Variable]:
        return [
            variable
            for layer in _batch_norm_layers(self.model)
            for variable in (layer.moving_mean, layer.moving_variance)
        ]

    def _recompute(self) -> None:
        """Save the training statistics (if not saved), then put this epoch's recomputed ones in place."""
        variables = self._statistics()
        if self._training_statistics is None:
            self._training_statistics = [keras.ops.convert_to_numpy(variable) for variable in variables]
        if self._recomputed is not None and self._recomputed[0] == self._epoch:
            for variable, value in zip(variables, self._recomputed[1]):
                variable.assign(value)
            return
        start = time.perf_counter()
        recompute_batch_norm_statistics(self.model, self.images, batch_size=self.batch_size)
        self.seconds += time.perf_counter() - start
        self._recomputed = (self._epoch, [keras.ops.convert_to_numpy(variable) for variable in variables])

    def _restore(self) -> None:
        if self._training_statistics is not None:
            for variable, value in zip(self._statistics(), self._training_statistics):
                variable.assign(value)
            self._training_statistics = None

    def on_train_begin(self, logs=None):
        if not self._statistics():
            raise ValueError(
                f"{self.model.name} has no batch-norm layer whose statistics could be recomputed"
            )
        self._training_statistics, self._recomputed, self._epoch, self.seconds = None, None, -1, 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._restore()
        self._epoch = epoch

    def on_test_begin(self, logs=None):  # the validation inside fit(), after the epoch's last step
        self._recompute()

    def on_test_end(self, logs=None):
        self._restore()

    def on_epoch_end(self, epoch, logs=None):
        self._recompute()

    def on_train_end(self, logs=None):
        self._training_statistics = None  # the network keeps the recomputed statistics


def recompute_backbone_statistics(transfer: TransferModel, images: np.ndarray) -> None:
    """Set the backbone's batch-norm statistics to those of ``images`` under its current weights.

    For a model trained from scratch (``train_batch_norm``): the moving statistics gathered in
    training trail the fast-changing weights and see augmented batches, and a network scored
    with them can read almost nothing right. Here all of ``images`` pass through the backbone as
    **one** batch in training mode with every batch-norm momentum set to 0, so each layer's
    moving statistics become the statistics of its input over ``images``, computed with the
    layers before it normalised by theirs — exactly what
    :func:`recompute_batch_norm_statistics` gives layer by layer, in one pass.
    """
    if not transfer.train_batch_norm:
        raise ValueError("only a from-scratch model (train_batch_norm=True) trains its batch-norm statistics")
    if len(images) == 0:
        raise ValueError("recompute_backbone_statistics needs at least one image")
    batch_norms = [layer for layer in transfer.base.layers if isinstance(layer, layers.BatchNormalization)]
    if not all(layer.trainable for layer in batch_norms):
        raise ValueError("unfreeze the backbone's batch norm first (unfreeze(transfer, 'all'))")
    prepared = transfer.model.get_layer("to_backbone_input")(images)
    momenta = [layer.momentum for layer in batch_norms]
    try:
        for layer in batch_norms:
            layer.momentum = 0.0
        transfer.base(prepared, training=True)
    finally:
        for layer, momentum in zip(batch_norms, momenta, strict=True):
            layer.momentum = momentum


class RecomputeBackboneStatistics(keras.callbacks.Callback):
    """Scores and keeps a from-scratch model with batch-norm statistics of clean training images.

    After each epoch's last step — before the validation inside ``fit``, or at the epoch's end
    without one, so that callbacks after this one see them — and when training ends, the
    backbone's statistics are recomputed on ``sample`` of ``images`` (drawn once with ``seed``)
    by :func:`recompute_backbone_statistics`, once per set of weights. The next epoch trains on
    from them (batch norm then normalises with each batch's own statistics and moves its
    averages on).
    """

    def __init__(
        self, transfer: TransferModel, images: np.ndarray, *, sample: int | None = 1024, seed: int = 0
    ) -> None:
        super().__init__()
        self.transfer = transfer
        self.images = statistics_sample(images, sample, seed, owner=type(self).__name__)
        self.seconds = 0.0  # spent recomputing, over the whole fit
        self._current = False  # the statistics belong to the weights the model holds now

    def _recompute(self) -> None:
        if self._current:
            return
        start = time.perf_counter()
        recompute_backbone_statistics(self.transfer, self.images)
        self.seconds += time.perf_counter() - start
        self._current = True

    def on_train_begin(self, logs=None):
        self.seconds, self._current = 0.0, False

    def on_train_batch_end(self, batch, logs=None):
        self._current = False  # the weights moved

    def on_test_begin(self, logs=None):
        self._recompute()

    def on_epoch_end(self, epoch, logs=None):
        self._recompute()

    def on_train_end(self, logs=None):
        self._recompute()
