"""What a notebook shows: the data and weights banners, narration as Markdown, the steps of a pipeline
as a table, and the two wording helpers its sentences use (a count with its noun, a gap in points)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import keras
import pandas as pd
from IPython.display import HTML, Markdown, display

from .results.banners import source_banner_html, weights_banner_html
from .runtime.device import Device, timing_note
from .sources import DataFiles, SignMNIST

__all__ = [
    "data_banner",
    "describe_gap",
    "device_banner",
    "plural",
    "show_markdown",
    "steps_table",
    "weights_banner",
]


def data_banner(dataset: SignMNIST | DataFiles) -> None:
    """Display the banner that says which data a notebook uses (anywhere in a cell)."""
    files = dataset.files if isinstance(dataset, SignMNIST) else dataset
    display(HTML(source_banner_html(files.source, files.checksum_status(), files.origin)))


def device_banner(device: Device) -> None:
    """Display which device a notebook trains on and, on a GPU, that its seconds compare with no CPU run."""
    note = timing_note([device])
    show_markdown(f"Training on **{device.describe()}**." + (f" {note}" if note else ""))


def show_markdown(text: str) -> None:
    """Display narration computed by the run, rendered as Markdown (anywhere in a cell: it never vanishes
    for not being the cell's last expression)."""
    display(Markdown(text))


def weights_banner(backbone: str, pretrained: bool, status: str) -> None:
    """Display the banner saying which weights a transfer network started from (anywhere in a cell); loud
    when none were pretrained."""
    display(HTML(weights_banner_html(backbone, pretrained, status)))


#: Settings every layer's config holds, which say nothing about what the layer does.
_GENERIC_SETTINGS = {"name", "trainable", "dtype", "seed", "autocast", "data_format", "value_range"}


def _settings(step: Any) -> str:
    if isinstance(step, keras.layers.Layer):
        values = step.get_config()
    else:  # a callback: its public plain values
        values = {key: value for key, value in vars(step).items() if not key.startswith("_")}
    plain = (bool, int, float, str, tuple)
    return ", ".join(
        f"{key}={value:g}" if isinstance(value, float) else f"{key}={value!r}"
        for key, value in values.items()
        if key not in _GENERIC_SETTINGS and isinstance(value, plain)
    )


def steps_table(steps: keras.Model | Iterable[Any]) -> pd.DataFrame:
    """The steps of a pipeline in the order they run, as Keras' ``summary()`` shows a model's layers: a
    model's layers, or a list of callbacks. One row each: its class, its settings (a layer's config, a
    callback's public values, less what every one of them holds) and the first line of its docstring."""
    steps = steps.layers if isinstance(steps, keras.Model) else list(steps)
    rows = [
        {
            "step": type(step).__name__,
            "settings": _settings(step),
            "what it does": (type(step).__doc__ or "").strip().split("\n")[0],
        }
        for step in steps
    ]
    return pd.DataFrame(
        rows, index=pd.RangeIndex(1, len(rows) + 1), columns=["step", "settings", "what it does"]
    )


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    """``1 error``, ``2 errors``, with the count written with thousands separators."""
    word = noun if count == 1 else (plural_noun or noun + "s")
    return f"{count:,} {word}"


def describe_gap(validation_accuracy: float, test_accuracy: float, *, decimals: int = 2) -> str:
    """How a validation accuracy stands to the test accuracy, in percentage points, for narration:
    "1.54 points below the test accuracy", "0.04 points above …", or "equal to …" when the
    difference rounds to zero at ``decimals``."""
    for name, value in (("validation_accuracy", validation_accuracy), ("test_accuracy", test_accuracy)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be an accuracy between 0 and 1, got {value}")
    points = round(100 * (validation_accuracy - test_accuracy), decimals)
    if points == 0:
        return "equal to the test accuracy"
    return f"{abs(points):.{decimals}f} points {'above' if points > 0 else 'below'} the test accuracy"
