"""TensorFlow's set-up before it loads (oneDNN, GPU memory), the device it trains on, and its start-up chatter kept quiet."""

from __future__ import annotations

import importlib.util

from .device import prefer_gpu_memory_growth
from .onednn import prefer_onednn
from .quiet import quiet_native_stderr

__all__ = ["load_tensorflow"]


def load_tensorflow() -> None:
    """Ask for oneDNN's kernels and for GPU memory as needed, then load TensorFlow and Keras without
    their start-up chatter (:func:`~labutils.runtime.quiet.quiet_native_stderr`: real warnings pass).

    Both settings act only before TensorFlow loads: ``import labutils`` calls this first. Where
    TensorFlow is missing, the :class:`ImportError` says how to install it.
    """
    if importlib.util.find_spec("tensorflow") is None:
        raise ImportError(
            "labutils needs TensorFlow, which the project installs as an extra: its CPU build with "
            "pip install -e '.[cpu]', its GPU build (NVIDIA, Linux x86-64) with pip install -e '.[gpu]'; "
            "make install chooses for you"
        )
    prefer_onednn()
    prefer_gpu_memory_growth()
    with quiet_native_stderr():
        import keras  # noqa: F401  (loads TensorFlow, its backend)
