"""The named choices of the networks and their training: a leaf module, free of Keras.

The models, the recipes, the benchmark's settings and the command line check these names without
importing TensorFlow.
"""

from __future__ import annotations

__all__ = ["FINE_TUNE_DEPTHS", "HEADS", "POOLINGS"]

#: Our network's pooling and head choices (see ``models.compact_cnn``).
POOLINGS: tuple[str, ...] = ("blur", "max")
HEADS: tuple[str, ...] = ("average", "flatten")
#: How deep fine-tuning reaches into a transfer backbone: its top block only, about its top half, or all of it.
FINE_TUNE_DEPTHS: tuple[str, ...] = ("top", "half", "all")
