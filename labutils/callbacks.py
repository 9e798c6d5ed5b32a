"""Keras callbacks the notebooks and the benchmark train with: clocks, budgets, schedules in seconds,
which epoch to keep, weight averages and batch-norm statistics; and the history as a table.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import keras
import numpy as np
import pandas as pd

from .training import warmup_cosine

__all__ = [
    "EpochClock",
    "FinalOrBest",
    "SecondsCosineSchedule",
    "SwapAverageWeights",
    "TimeBudget",
    "history_frame",
]


class SecondsCosineSchedule(keras.callbacks.Callback):
    """A warm-up + cosine learning rate spread over a budget of ``seconds`` of training, not of steps.

    Training for a fixed number of seconds (beside :class:`TimeBudget`) with a schedule written in
    steps leaves the learning rate high when the time runs out if a step is slower than assumed;
    this callback sets the optimizer's learning rate before each batch from the seconds elapsed
    since training began (validation and the other callbacks included, as :class:`TimeBudget`
    counts them), so the decay ends when the budget does, whatever a step costs on the machine.
    The model must be compiled with a plain float learning rate. ``clock`` returns seconds (tests
    pass a fake one).
    """

    def __init__(
        self,
        peak: float,
        seconds: float,
        *,
        warmup_fraction: float = 0.1,
        clock: Callable[[], float] = time.perf_counter,
    ):
        super().__init__()
        if seconds <= 0:
            raise ValueError(f"seconds must be > 0, got {seconds}")
        warmup_cosine(peak, 0.0, warmup_fraction)  # checks peak and warmup_fraction
        self.peak, self.seconds, self.warmup_fraction, self.clock = (
            float(peak),
            float(seconds),
            float(warmup_fraction),
            clock,
        )

    def on_train_begin(self, logs=None):
        if isinstance(self.model.optimizer._learning_rate, keras.optimizers.schedules.LearningRateSchedule):
            raise ValueError(
                "SecondsCosineSchedule needs a model compiled with a float learning rate, not a schedule"
            )
        self._start = self.clock()

    def on_train_batch_begin(self, batch, logs=None):
        progress = (self.clock() - self._start) / self.seconds
        self.model.optimizer.learning_rate = warmup_cosine(self.peak, progress, self.warmup_fraction)


class EpochClock(keras.callbacks.Callback):
    """Adds ``seconds`` (cumulative training time, validation included) to each epoch's logs."""

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["seconds"] = time.perf_counter() - self._start


class TimeBudget(keras.callbacks.Callback):
    """Stops training once ``seconds`` have run out (None: no limit).

    By default the check runs after each epoch, so the epoch in progress completes. With
    ``per_batch=True`` it runs after each batch and cuts a long epoch short, and the budget is meant
    to hold for the whole fit: each check keeps back the time the previous epoch spent after its
    last training step (validation and the other callbacks), so the cut epoch is still validated
    and logged within ``seconds``, and no epoch starts that could not get a step in. After
    training, ``exhausted`` says whether the budget stopped it, ``stopped_epoch`` (1-based) in which
    epoch, and ``steps_done`` / ``steps_per_epoch`` how far that epoch got
    (``cut_short``: fewer steps than a whole epoch). ``clock`` returns seconds (tests pass a fake one).
    """

    def __init__(
        self,
        seconds: float | None,
        *,
        per_batch: bool = False,
        clock: Callable[[], float] = time.perf_counter,
    ):
        super().__init__()
        if seconds is not None and seconds < 0:
            raise ValueError(f"seconds must be >= 0 or None, got {seconds}")
        self.seconds = seconds
        self.per_batch = per_batch
        self.exhausted = False
        self.stopped_epoch: int | None = None
        self.steps_done: int | None = None
        self.steps_per_epoch: int | None = None
        self.reserve = 0.0  # seconds the last epoch spent after its last training step (per batch only)
        self.clock = clock

    def on_train_begin(self, logs=None):
        self._start = self.clock()
        self.exhausted, self.stopped_epoch, self.steps_done, self.reserve = False, None, None, 0.0
        self.steps_per_epoch = (self.params or {}).get("steps")

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._steps, self._last_step_end = epoch, 0, None

    def _stop_if_spent(self, now: float) -> None:
        if (
            self.seconds is not None
            and now - self._start + self.reserve >= self.seconds
            and not self.exhausted
        ):
            self.exhausted, self.stopped_epoch, self.steps_done = True, self._epoch + 1, self._steps
            self.model.stop_training = True

    def on_train_batch_end(self, batch, logs=None):
        self._steps, self._last_step_end = batch + 1, self.clock()
        if self.per_batch:
            self._stop_if_spent(self._last_step_end)

    def on_epoch_end(self, epoch, logs=None):
        now = self.clock()
        if self.per_batch and self._last_step_end is not None:
            self.reserve = now - self._last_step_end
        self._stop_if_spent(now)

    @property
    def cut_short(self) -> bool:
        """Whether the budget stopped training part-way through an epoch."""
        return bool(
            self.exhausted
            and self.steps_per_epoch
            and self.steps_done is not None
            and self.steps_done < self.steps_per_epoch
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
        self.best_value = self.best_epoch = self.kept_epoch = self.tolerance_used = self._best_weights = (
            self._last
        ) = None
        self.restored = False

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
        if (
            self._average is not None
        ):  # after a full run this is what fit() already left; after a stop, it is not
            for variable, value in zip(self.model.trainable_weights, self._average):
                variable.assign(value)


def history_frame(history: keras.callbacks.History) -> pd.DataFrame:
    """The per-epoch logs as a table, epochs numbered from 1."""
    frame = pd.DataFrame(history.history)
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="epoch")
    return frame
