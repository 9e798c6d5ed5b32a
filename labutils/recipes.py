"""The training recipes as data: one definition each, shared by the notebooks and the benchmark.

A recipe is a small frozen dataclass of plain values (epochs, batch size, learning rate, ...),
checked when it is made, with factories for the Keras objects it implies (the optimizer and its
schedule, the augmentation pipeline, the callbacks that belong to the recipe). The notebooks
build one from their parameters cell and still call ``compile()`` and ``fit()`` themselves; the
benchmark's jobs build from the very same objects. A field's name is its notebook parameter's
name in lower case (``EMA_MOMENTUM`` → ``Task3Recipe.ema_momentum``); the benchmark's command line
sets one as ``--set task3.ema_momentum=0.995``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import keras

from .backbones import FINE_TUNE_DEPTHS
from .batch_norm import RecomputeBackboneStatistics, RecomputeBatchNormStatistics
from .models import HEADS, POOLINGS, compact_cnn, seed_cnn
from .training import (
    StepBudget,
    SwapAverageWeights,
    augmentation_pipeline,
    cosine_schedule,
)

__all__ = [
    "Augmentation",
    "ReferenceRecipe",
    "Task2Recipe",
    "Task3Recipe",
    "TransferRecipe",
    "steps_per_epoch",
]


def steps_per_epoch(training_rows: int, batch_size: int) -> int:
    """Batches in one pass over ``training_rows`` images (the last one may be short)."""
    if training_rows < 1:
        raise ValueError(f"training_rows must be at least 1, got {training_rows}")
    return math.ceil(training_rows / batch_size)


def _adamw_cosine(
    peak: float,
    epochs: int,
    training_rows: int,
    batch_size: int,
    weight_decay: float,
    ema_momentum: float = 0.0,
):
    """AdamW whose learning rate warms up to ``peak`` and decays along a cosine over ``epochs`` passes over
    ``training_rows`` images, keeping a moving average of the weights when ``ema_momentum`` > 0."""
    schedule = cosine_schedule(peak, epochs, steps_per_epoch(training_rows, batch_size))
    return keras.optimizers.AdamW(
        schedule, weight_decay=weight_decay, use_ema=ema_momentum > 0, ema_momentum=ema_momentum
    )


def _fail(owner: object, name: str, rule: str, value: object) -> None:
    raise ValueError(f"{type(owner).__name__}.{name} must be {rule}, got {value!r}")


def _count(owner: object, name: str, minimum: int = 1, maximum: int | None = None) -> None:
    value = getattr(owner, name)
    upper = "inf)" if maximum is None else f"{maximum}]"
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        _fail(owner, name, f"a whole number in [{minimum}, {upper}", value)


def _number(
    owner: object, name: str, low: float, high: float, *, low_open: bool = False, high_open: bool = False
) -> None:
    value = getattr(owner, name)
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(owner, name, f"a number in {interval}", value)
    if value < low or value > high or (low_open and value == low) or (high_open and value == high):
        _fail(owner, name, f"a number in {interval}", value)
    object.__setattr__(owner, name, float(value))  # an integer given for a rate is the same rate


def _choice(owner: object, name: str, choices: tuple[str, ...]) -> None:
    value = getattr(owner, name)
    if value not in choices:
        _fail(owner, name, f"one of {', '.join(choices)}", value)


@dataclass(frozen=True)
class Augmentation:
    """Task 3's random changes, in the order a picture meets them (see ``training.augmentation_pipeline``).

    The hand's pose (rotation up to ``rotation_degrees``, shift, zoom and shear as fractions of the
    image), the camera's faults (a share ``corruption_rate`` of the images under a named Sign-MNIST-C
    type at severity 1 to ``corruption_severity``), the lens (blur up to ``blur`` pixels of sigma),
    the exposure (contrast, brightness) and the sensor (Gaussian noise up to ``noise`` of the 0-1
    range). 0 leaves a change out.
    """

    rotation_degrees: float = 12.0
    shift: float = 0.1
    zoom: float = 0.12
    shear: float = 0.1
    contrast: float = 0.3
    brightness: float = 0.2
    blur: float = 0.0
    noise: float = 0.0
    corruption_rate: float = 0.0
    corruption_severity: int = 3

    def __post_init__(self) -> None:
        _number(self, "rotation_degrees", 0.0, 180.0)
        for name in ("shift", "zoom", "shear", "contrast"):
            _number(self, name, 0.0, 1.0, high_open=True)
        _number(self, "brightness", 0.0, 1.0)
        _number(self, "blur", 0.0, 10.0)
        _number(self, "noise", 0.0, 1.0)
        _number(self, "corruption_rate", 0.0, 1.0)
        _count(self, "corruption_severity", 1, 5)

    def pipeline(self, seed: int):
        """The Keras augmentation model (``keras.Sequential``), active only when called with ``training=True``."""
        return augmentation_pipeline(**dataclasses.asdict(self), seed=seed)


#: Task 3's augmentation: the hand's pose and exposure, and the camera (blur, noise and its faults chosen on
#: grouped validation).
CAMERA_AUGMENTATION = Augmentation(blur=0.75, noise=0.08, corruption_rate=0.5, corruption_severity=3)


@dataclass(frozen=True)
class ReferenceRecipe:
    """The seed lab report's recipe: its network, Nadam at Keras' defaults, batch 128, no schedule.

    ``epochs`` without augmentation, then ``augmented_epochs`` with the seed's own geometric
    augmentation (:meth:`augmentation`).
    """

    epochs: int = 50
    augmented_epochs: int = 50
    batch_size: int = 128

    def __post_init__(self) -> None:
        _count(self, "epochs", 1, 1000)
        _count(self, "augmented_epochs", 0, 1000)
        _count(self, "batch_size", 1, 65536)

    def network(self, name: str = "seed_cnn"):
        """The seed report's network, untrained."""
        return seed_cnn(name=name)

    def optimizer(self):
        """Nadam at Keras' default learning rate, as the seed report compiled with ``optimizer="nadam"``."""
        return keras.optimizers.Nadam()

    def augmentation(self, seed: int):
        """The seed report's augmentation: rotation 10°, shift 0.05, shear 0.1, zoom 0.075, nothing photometric."""
        geometry = dict(rotation_degrees=10, shift=0.05, zoom=0.075, shear=0.1, contrast=0, brightness=0)
        return augmentation_pipeline(**geometry, seed=seed, name="reference_augmentation")


@dataclass(frozen=True)
class Task2Recipe:
    """Our network and how Task 2 trains it: AdamW, a warm-up + cosine schedule, no augmentation.

    ``width`` filters in the first block (then twice and four times as many), ``pooling`` and
    ``head`` as in ``models.compact_cnn``.
    """

    epochs: int = 8
    batch_size: int = 128
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    width: int = 32
    pooling: str = "blur"
    head: str = "average"

    def __post_init__(self) -> None:
        _count(self, "epochs", 1, 1000)
        _count(self, "batch_size", 1, 65536)
        _number(self, "learning_rate", 0.0, 1.0, low_open=True)
        _number(self, "weight_decay", 0.0, 1.0, high_open=True)
        _count(self, "width", 1, 512)
        _choice(self, "pooling", POOLINGS)
        _choice(self, "head", HEADS)

    def network(self, name: str = "compact_cnn"):
        """Our network, untrained."""
        return compact_cnn(width=self.width, pooling=self.pooling, head=self.head, name=name)

    def optimizer(self, training_rows: int, schedule_epochs: int | None = None):
        """AdamW whose learning rate warms up to ``learning_rate`` and decays along a cosine over
        ``schedule_epochs`` (default: ``epochs``) passes over ``training_rows`` images."""
        return _adamw_cosine(
            self.learning_rate,
            schedule_epochs or self.epochs,
            training_rows,
            self.batch_size,
            self.weight_decay,
        )


@dataclass(frozen=True)
class Task3Recipe:
    """How Task 3 trains a Task 2 network further: augmented batches, AdamW with a fresh warm-up +
    cosine schedule, a moving average of the weights and batch-norm statistics of clean images.

    ``ema_momentum``: the average covers about the last 1/(1 − momentum) steps; 0 keeps the last
    weights. ``statistics_images``: clean training images whose batch-norm statistics the network is
    scored and kept with after each epoch; 0 keeps the statistics gathered in training.
    """

    epochs: int = 16
    batch_size: int = 128
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    ema_momentum: float = 0.998
    statistics_images: int = 2048
    augmentation: Augmentation = CAMERA_AUGMENTATION

    def __post_init__(self) -> None:
        _count(self, "epochs", 1, 1000)
        _count(self, "batch_size", 1, 65536)
        _number(self, "learning_rate", 0.0, 1.0, low_open=True)
        _number(self, "weight_decay", 0.0, 1.0, high_open=True)
        _number(self, "ema_momentum", 0.0, 1.0, high_open=True)
        _count(self, "statistics_images", 0)
        if not isinstance(self.augmentation, Augmentation):
            _fail(self, "augmentation", "an Augmentation", self.augmentation)

    def optimizer(self, training_rows: int):
        """AdamW with a warm-up + cosine schedule over ``epochs`` passes over ``training_rows`` images,
        keeping a moving average of the weights when ``ema_momentum`` > 0."""
        return _adamw_cosine(
            self.learning_rate,
            self.epochs,
            training_rows,
            self.batch_size,
            self.weight_decay,
            self.ema_momentum,
        )

    def callbacks(self, images, seed: int) -> list:
        """The recipe's own callbacks for a fit on ``images``, in the order they must run: the averaged
        weights swapped in first (what every later callback sees), then their clean statistics."""
        averaging = [SwapAverageWeights()] if self.ema_momentum > 0 else []
        if not self.statistics_images:
            return averaging
        return [*averaging, RecomputeBatchNormStatistics(images, sample=self.statistics_images, seed=seed)]


@dataclass(frozen=True)
class TransferRecipe:
    """Task 4: a new head on a backbone's features, fine-tuning, and the from-scratch control.

    ``backbone`` at ``image_size`` pixels with ``weights`` is the benchmark's contender (notebook 04
    runs each of its ``BACKBONES`` at its ``IMAGE_SIZES``). The head trains with Adam at
    ``head_learning_rate``; fine-tuning trains from ``fine_tune_depth`` upwards with AdamW and a
    warm-up + cosine schedule peaking at ``fine_tune_learning_rate``; the control (random weights,
    batch norm training) gets the fine-tuning's steps divided by ``control_step_cost`` (the seconds
    of one of its steps per fine-tuning step, calibrated once: ``docs/decisions.md``), a warm-up +
    cosine schedule over them, and the batch-norm statistics of ``statistics_images`` clean images.
    """

    backbone: str = "efficientnet_lite0"
    image_size: int = 64
    weights: str | None = "imagenet"
    head_epochs: int = 25
    head_learning_rate: float = 1e-3
    fine_tune_depth: str = "all"
    fine_tune_epochs: int = 3
    fine_tune_learning_rate: float = 1e-3
    control_learning_rate: float = 3e-3
    control_step_cost: float = 1.4
    statistics_images: int = 1024
    batch_size: int = 128
    weight_decay: float = 1e-4

    def __post_init__(self) -> None:
        if not isinstance(self.backbone, str) or not self.backbone:
            _fail(self, "backbone", "a backbone's name", self.backbone)
        _count(self, "image_size", 32, 1024)
        if self.weights is not None and not isinstance(self.weights, str):
            _fail(self, "weights", '"imagenet", a weights file or None', self.weights)
        _count(self, "head_epochs", 1, 1000)
        _number(self, "head_learning_rate", 0.0, 1.0, low_open=True)
        _choice(self, "fine_tune_depth", FINE_TUNE_DEPTHS)
        _count(self, "fine_tune_epochs", 1, 1000)
        _number(self, "fine_tune_learning_rate", 0.0, 1.0, low_open=True)
        _number(self, "control_learning_rate", 0.0, 1.0, low_open=True)
        _number(self, "control_step_cost", 0.0, 100.0, low_open=True)
        _count(self, "statistics_images", 1)
        _count(self, "batch_size", 1, 65536)
        _number(self, "weight_decay", 0.0, 1.0, high_open=True)

    def head_optimizer(self):
        """Adam at ``head_learning_rate``, for the new head on cached features."""
        return keras.optimizers.Adam(self.head_learning_rate)

    def fine_tune_optimizer(self, training_rows: int):
        """AdamW with a warm-up + cosine schedule over ``fine_tune_epochs`` passes over ``training_rows`` images."""
        return _adamw_cosine(
            self.fine_tune_learning_rate,
            self.fine_tune_epochs,
            training_rows,
            self.batch_size,
            self.weight_decay,
        )

    def fine_tune_steps(self, training_rows: int) -> int:
        """The fine-tuning's training steps: ``fine_tune_epochs`` passes over ``training_rows`` images."""
        return self.fine_tune_epochs * steps_per_epoch(training_rows, self.batch_size)

    def control_steps(self, training_rows: int) -> int:
        """The control's training steps: the fine-tuning's, divided by ``control_step_cost`` so that both
        train for about the same seconds."""
        return max(1, round(self.fine_tune_steps(training_rows) / self.control_step_cost))

    def control_optimizer(self, steps: int):
        """AdamW with a warm-up + cosine schedule peaking at ``control_learning_rate`` over ``steps`` steps."""
        return keras.optimizers.AdamW(
            cosine_schedule(self.control_learning_rate, 1, steps), weight_decay=self.weight_decay
        )

    def control_callbacks(self, steps: int, control, images, seed: int) -> list:
        """The control's callbacks: its batch-norm statistics recomputed on clean training ``images``
        after each epoch, and the end after ``steps`` training steps (:class:`StepBudget`)."""
        return [
            RecomputeBackboneStatistics(control, images, sample=self.statistics_images, seed=seed),
            StepBudget(steps),
        ]
