"""What a measurement was made on: the machine and the package versions (the report's and the benchmark's records)."""

from __future__ import annotations

import os
import sys
from typing import Any

from ..runtime.device import cpu_model, nvidia_gpus
from ..runtime.onednn import onednn_setting

__all__ = ["describe_machine", "machine_info", "package_versions"]


def package_versions() -> dict[str, str]:
    """Python's and the main packages' versions, for the index and the benchmark."""
    from importlib import metadata

    versions = {"python": sys.version.split()[0]}
    for package in (
        "tensorflow",
        "tensorflow-cpu",
        "nvidia-cudnn-cu12",
        "keras",
        "numpy",
        "pandas",
        "scikit-learn",
        "papermill",
        "labutils",
    ):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def machine_info() -> dict[str, Any]:
    """CPU count and model, the platform, whether TensorFlow was asked for its oneDNN kernels (they
    change the speed, and the rounding), and the GPUs ``nvidia-smi`` lists (name and GiB; none here
    means none listed, not that TensorFlow used one: the device that trained is in each record)."""
    import platform

    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "onednn": onednn_setting(),
        "gpus": [{"name": name, "memory_gib": memory} for name, memory in nvidia_gpus()],
    }


def describe_machine(machine: dict[str, Any]) -> str:
    """:func:`machine_info` in words, for a report's header: the CPU, the oneDNN setting, the GPUs listed."""
    words = f"{machine['cpu_count']} CPU cores ({machine['cpu_model']}), oneDNN: {machine['onednn']}"
    gpus = machine.get("gpus") or []
    if gpus:
        words += "; " + ", ".join(f"{gpu['name']} GPU ({gpu['memory_gib']:.1f} GiB)" for gpu in gpus)
    return words
