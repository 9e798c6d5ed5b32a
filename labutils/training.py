"""What ``fit()`` is given: the augmentation pipeline, the seeded tf.data pipeline, the schedules,
and the Keras callbacks the notebooks and the benchmark train with (the epoch clock, a budget in
steps, which epoch to keep, weight averages); and the history as a table.

``compile()`` and ``fit()`` stay in the notebooks; this module provides what they are given.
"""

from __future__ import annotations

import time
import warnings

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from .corruptions.layer import RandomCorruption
from .models import RandomAffine, RandomGaussianBlur, RandomGaussianNoise

# Keras warns on every fit() with a tf.data.Dataset that its default shuffle=True is ignored;
# training_dataset() shuffles (seeded) itself, so the warning says nothing here.
warnings.filterwarnings("ignore", message="`shuffle=True` was passed", category=UserWarning)

__all__ = [
    "EpochClock",
    "FinalOrBest",
    "StepBudget",
    "SwapAverageWeights",
    "augmentation_pipeline",
    "cosine_schedule",
    "history_frame",
    "training_dataset",
]


def augmentation_pipeline(
    *,
    rotation_degrees: float = 12.0,
    shift: float = 0.1,
    zoom: float = 0.12,
    shear: float = 0.1,
    contrast: float = 0.3,
    brightness: float = 0.2,
    blur: float = 0.0,
    noise: float = 0.0,
    corruption_rate: float = 0.0,
    corruption_severity: int = 3,
    seed: int = 0,
    name: str = "augmentation",
) -> keras.Sequential:
    """Random geometric, optical and photometric changes for 0-1 images; never a flip (a mirrored hand is another sign).

    In the order a picture meets them: the hand's pose (one :class:`RandomAffine` resampling, as
    Keras 2's ``ImageDataGenerator`` did), the camera's faults (``RandomCorruption``: a share
    ``corruption_rate`` of the images under a named Sign-MNIST-C type, severity up to
    ``corruption_severity``), the lens (:class:`RandomGaussianBlur`, a sigma up to ``blur`` pixels),
    the exposure (contrast, brightness) and the sensor (:class:`RandomGaussianNoise`, a standard
    deviation up to ``noise``). Each factor of 0 leaves that change out.
    """
    for parameter, value in (
        ("rotation_degrees", rotation_degrees),
        ("shift", shift),
        ("zoom", zoom),
        ("shear", shear),
        ("contrast", contrast),
        ("brightness", brightness),
        ("blur", blur),
        ("noise", noise),
        ("corruption_rate", corruption_rate),
    ):
        if value < 0:
            raise ValueError(f"{parameter} must be >= 0, got {value}")
    steps: list[keras.layers.Layer] = []
    if rotation_degrees or shift or zoom or shear:
        steps.append(RandomAffine(rotation_degrees, shift, zoom, shear, seed=seed, name="affine"))
    if corruption_rate:
        steps.append(RandomCorruption(corruption_rate, corruption_severity, seed=seed + 8, name="corruption"))
    if blur:
        steps.append(RandomGaussianBlur(blur, seed=seed + 6, name="blur"))
    if contrast:
        steps.append(keras.layers.RandomContrast(contrast, value_range=(0, 1), seed=seed + 4))
    if brightness:
        steps.append(keras.layers.RandomBrightness(brightness, value_range=(0, 1), seed=seed + 5))
    if noise:
        steps.append(RandomGaussianNoise(noise, seed=seed + 7, name="noise"))
    return keras.Sequential(steps, name=name)


def training_dataset(
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int = 128,
    seed: int = 0,
    augmentation: keras.Sequential | None = None,
):
    """A shuffled, batched ``tf.data.Dataset`` of (image, class index), augmented on the fly if asked."""
    if len(x) != len(y):
        raise ValueError(f"x ({len(x)}) and y ({len(y)}) differ in length")
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(
        len(x), seed=seed, reshuffle_each_iteration=True
    )
    dataset = dataset.batch(batch_size)
    if augmentation is not None:
        # Sequential map: the augmentation layers draw from one seeded generator, so parallel calls
        # would make the draws depend on thread timing and the run irreproducible.
        dataset = dataset.map(lambda images, labels: (augmentation(images, training=True), labels))
    return dataset.prefetch(tf.data.AUTOTUNE)


def cosine_schedule(peak: float, epochs: int, steps_per_epoch: int, warmup_fraction: float = 0.1):
    """Linear warm-up to ``peak`` then cosine decay to 0 over ``epochs``."""
    if peak <= 0 or epochs < 1 or steps_per_epoch < 1:
        raise ValueError("peak must be > 0, epochs and steps_per_epoch >= 1")
    total = epochs * steps_per_epoch
    warmup = int(total * warmup_fraction)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=peak / 10,
        decay_steps=max(1, total - warmup),
        warmup_target=peak,
        warmup_steps=warmup,
    )


class EpochClock(keras.callbacks.Callback):
    """Adds ``seconds`` (cumulative training time, validation included) to each epoch's logs."""

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["seconds"] = time.perf_counter() - self._start


class StepBudget(keras.callbacks.Callback):
    """Stops training after ``steps`` training steps (batches), part-way through an epoch if need be.

    A budget in steps ends at the same point on every run, whatever else the machine is doing; one in
    seconds does not. ``fit`` still validates and logs the epoch it cut short. Give ``fit`` enough
    epochs (``math.ceil(steps / steps_per_epoch)``). After training, ``steps_done`` /
    ``steps_per_epoch`` say how far the last epoch got (``cut_short``: fewer steps than a whole epoch).
    """

    def __init__(self, steps: int):
        super().__init__()
        if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 1:
            raise ValueError(f"steps must be a whole number >= 1, got {steps!r}")
        self.steps = int(steps)
        self.steps_done: int | None = None
        self.steps_per_epoch: int | None = None

    def on_train_begin(self, logs=None):
        self._taken, self.steps_done = 0, None
        self.steps_per_epoch = (self.params or {}).get("steps")

    def on_train_batch_end(self, batch, logs=None):
        self._taken, self.steps_done = self._taken + 1, batch + 1
        if self._taken >= self.steps:
            self.model.stop_training = True

    @property
    def cut_short(self) -> bool:
        """Whether the budget stopped training part-way through an epoch."""
        return bool(
            self.steps_per_epoch and self.steps_done is not None and self.steps_done < self.steps_per_epoch
        )


class FinalOrBest(keras.callbacks.Callback):
    """Keep the final epoch's weights unless a monitored validation figure fell clearly below its best.

    A warm-up + cosine schedule ends at a learning rate near zero, so its last epoch is normally
    the model to keep. A validation set made of a few hundred families of near-identical images
    is noisy, though: one family more or less right moves its accuracy by tenths of a point, and
    choosing the epoch with the very best validation figure then picks noise as often as quality.
    This callback keeps the last epoch, and restores the best epoch's weights only if the last
    epoch's ``monitor`` is more than ``tolerance`` worse than the best one (``mode`` "max" for
    accuracies, "min" for losses).

    Give either ``tolerance`` or ``families`` (for an accuracy): with ``families``, the tolerance
    is ``standard_errors`` standard errors of an accuracy measured on that many independent units,
    ``sqrt(best * (1 - best) / families)`` — each validation family counts once, as its images
    are near-copies of each other. After training, ``kept_epoch`` (1-based), ``best_epoch``,
    ``tolerance_used`` and ``restored`` say what happened.
    """

    def __init__(
        self,
        monitor: str = "val_accuracy",
        *,
        tolerance: float | None = None,
        families: int | None = None,
        standard_errors: float = 2.0,
        mode: str = "max",
    ):
        super().__init__()
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        if (tolerance is None) == (families is None):
            raise ValueError("give exactly one of tolerance and families")
        if tolerance is not None and tolerance < 0:
            raise ValueError(f"tolerance must be >= 0, got {tolerance}")
        if families is not None:
            if families < 1:
                raise ValueError(f"families must be a positive count, got {families}")
            if mode != "max":
                raise ValueError("families applies to an accuracy (mode 'max')")
        if standard_errors <= 0:
            raise ValueError(f"standard_errors must be > 0, got {standard_errors}")
        self.monitor, self.mode = monitor, mode
        self.tolerance = None if tolerance is None else float(tolerance)
        self.families, self.standard_errors = families, float(standard_errors)
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self.kept_epoch: int | None = None
        self.tolerance_used: float | None = None
        self.restored = False
        self._best_weights = None
        self._last: tuple[int, float] | None = None

    def describe(self) -> str:
        """One sentence (Markdown) on which epoch was kept and why, for after training."""
        if self.kept_epoch is None:
            return "No epoch was kept: training did not complete an epoch."
        if self.restored:
            text = (
                f"Kept: epoch {self.kept_epoch} (the best, {self.best_value:.4f}): the last epoch's {self.monitor} was more "
                f"than {self.tolerance_used:.4f} behind it."
            )
        else:
            text = (
                f"Kept: the last epoch, {self.kept_epoch} (the best {self.monitor}, {self.best_value:.4f} at epoch "
                f"{self.best_epoch}, is within the tolerance of {self.tolerance_used:.4f})."
            )
        if self.families is not None:
            text += (
                f" The tolerance is {self.standard_errors:g} standard errors of an accuracy measured on "
                f"{self.families} validation families, each counted once."
            )
        return text

    def _better(self, value: float, than: float) -> bool:
        return value > than if self.mode == "max" else value < than

    def on_train_begin(self, logs=None):
        self.best_value = self.best_epoch = self.kept_epoch = self.tolerance_used = None
        self._best_weights, self._last, self.restored = None, None, False

    def on_epoch_end(self, epoch, logs=None):
        if not logs or self.monitor not in logs:
            raise ValueError(
                f"FinalOrBest monitors {self.monitor!r}, which fit() did not log "
                f"(logged: {sorted(logs or {})}); pass validation_data"
            )
        value = float(logs[self.monitor])
        self._last = (epoch + 1, value)
        if self.best_value is None or self._better(value, self.best_value):
            self.best_value, self.best_epoch = value, epoch + 1
            self._best_weights = self.model.get_weights()

    def on_train_end(self, logs=None):
        if self._last is None:
            return
        last_epoch, last_value = self._last
        if self.tolerance is not None:
            self.tolerance_used = self.tolerance
        else:
            best = min(max(self.best_value, 0.0), 1.0)
            self.tolerance_used = self.standard_errors * (best * (1.0 - best) / self.families) ** 0.5
        shortfall = self.best_value - last_value if self.mode == "max" else last_value - self.best_value
        if shortfall > self.tolerance_used:
            self.model.set_weights(self._best_weights)
            self.kept_epoch, self.restored = self.best_epoch, True
        else:
            self.kept_epoch = last_epoch


class SwapAverageWeights(keras.callbacks.SwapEMAWeights):
    """Between epochs, the model holds its optimizer's moving average of the weights — the weights it keeps.

    For an optimizer compiled with ``use_ema=True``: Keras' ``SwapEMAWeights(swap_on_epoch=True)``
    (the validation, the callbacks after this one and ``fit``'s result all see the averaged
    weights), made right when a callback stops training before the last epoch: Keras would then
    end ``fit`` with the last step's raw weights, while the validation scored the average; this
    callback keeps the average. Put it first in the callback list.
    """

    def __init__(self) -> None:
        super().__init__(swap_on_epoch=True)
        self._average: list[np.ndarray] | None = None

    def on_train_begin(self, logs=None):
        if not getattr(self.model.optimizer, "use_ema", False):
            raise ValueError("SwapAverageWeights needs an optimizer compiled with use_ema=True")
        self._average, self._ema_weights_in_model = None, False  # the callback may serve several fits

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        self._average = [keras.ops.convert_to_numpy(variable) for variable in self.model.trainable_weights]

    def on_train_end(self, logs=None):
        # after a full run this is what fit() already left; after a stop, it is not
        if self._average is not None:
            for variable, value in zip(self.model.trainable_weights, self._average):
                variable.assign(value)


def history_frame(history: keras.callbacks.History) -> pd.DataFrame:
    """The per-epoch logs as a table, epochs numbered from 1."""
    frame = pd.DataFrame(history.history)
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="epoch")
    return frame
