"""Helpers for the Sign Language MNIST lab report: data, splits, plots and the report runner.

Everything a notebook needs is reachable from here, so ``import labutils as lu`` is enough.
Submodules load on first use (PEP 562), so the command line starts fast and modules that need
TensorFlow are only imported by the notebooks that use them. Importing the package asks TensorFlow
for its oneDNN kernels (:mod:`labutils.onednn`) and to take GPU memory as it needs it
(:mod:`labutils.device`) before TensorFlow loads, and says how to install TensorFlow where it is
missing (the project installs it as an extra: its CPU build or its GPU build).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path
from typing import Any

from .device import prefer_gpu_memory_growth as _prefer_gpu_memory_growth
from .onednn import prefer_onednn as _prefer_onednn

if importlib.util.find_spec("tensorflow") is None:
    raise ImportError(
        "labutils needs TensorFlow, which the project installs as an extra: its CPU build with "
        "pip install -e '.[cpu]', its GPU build (NVIDIA, Linux x86-64) with pip install -e '.[gpu]'; "
        "make install chooses for you"
    )
_prefer_onednn()
_prefer_gpu_memory_growth()

__version__ = "0.1.0"

#: The submodules whose public names (each one's ``__all__``) are reachable from ``labutils``.
_PUBLIC_MODULES: tuple[str, ...] = (
    "data",
    "sources",
    "choices",
    "recipes",
    "display",
    "plot",
    "split",
    "synthetic",
    "models",
    "layers",
    "backbones",
    "inputs",
    "session",
    "training",
    "callbacks",
    "transfer",
    "efficientnet_lite",
    "narration",
    "torch_legacy",
    "metrics",
    "families",
    "speed",
    "results",
    "saving",
    "perturb",
    "onednn",
    "device",
)


def _declared_names(module: str) -> tuple[str, ...]:
    """A submodule's ``__all__``, read from its source without importing it (so without TensorFlow)."""
    source = (Path(__file__).parent / f"{module}.py").read_text(encoding="utf-8")
    for node in ast.parse(source).body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        if any(isinstance(target, ast.Name) and target.id == "__all__" for target in targets):
            return tuple(ast.literal_eval(node.value))
    raise ImportError(f"labutils.{module} declares no __all__")


#: Public name -> the submodule that defines it.
_MODULE_OF = {name: module for module in _PUBLIC_MODULES for name in _declared_names(module)}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'labutils' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
