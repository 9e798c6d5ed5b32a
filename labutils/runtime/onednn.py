"""TensorFlow's oneDNN kernels, asked for before TensorFlow loads.

TensorFlow's x86 wheels carry oneDNN (Intel's deep-learning kernels for CPUs) but switch it on by
default only on CPUs with AVX-512 neural-network instructions; elsewhere (an AMD EPYC with AVX2,
for one) it runs its own Eigen kernels. For this project's networks oneDNN is much faster on such
a CPU: on 2 AMD EPYC cores, one training step of the Task 2 network (batch 128) took 97 ms
against 199 ms, mostly in the gradient of :class:`labutils.BlurPooling2D`'s stride-1 max pooling
(`docs/speed.md`). Its results are as repeatable: two runs with one seed give the same weights,
bit for bit; against Eigen they differ by rounding only.

TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` once, when it loads, so :func:`prefer_onednn` must run
before the first ``import tensorflow`` or ``import keras``: importing :mod:`labutils` runs it, and
the project's notebook kernel runs it before the notebook's first cell
(:data:`labutils.report.notebooks.KERNEL_START`). A value the user set (``TF_ENABLE_ONEDNN_OPTS=0``
for TensorFlow's own kernels) is kept.
"""

from __future__ import annotations

import os

__all__ = ["ONEDNN_VARIABLE", "onednn_setting", "prefer_onednn"]

#: The environment variable TensorFlow reads to switch its oneDNN kernels on ("1") or off ("0").
ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"


def prefer_onednn() -> None:
    """Ask for oneDNN (``TF_ENABLE_ONEDNN_OPTS=1``) unless the variable is set already."""
    os.environ.setdefault(ONEDNN_VARIABLE, "1")


def onednn_setting() -> str:
    """What this process asked TensorFlow for, in words, for the records: ``on``, ``off`` or the default."""
    value = os.environ.get(ONEDNN_VARIABLE)
    if value is None:
        return "TensorFlow's default"
    return {"1": "on", "true": "on", "0": "off", "false": "off"}.get(value.strip().lower(), repr(value))
