"""What a measurement was made on: the machine and the package versions (the report's and the benchmark's records)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ..onednn import onednn_setting

__all__ = ["machine_info", "package_versions"]


def package_versions() -> dict[str, str]:
    """Python's and the main packages' versions, for the index and the benchmark."""
    from importlib import metadata

    versions = {"python": sys.version.split()[0]}
    for package in (
        "tensorflow",
        "tensorflow-cpu",
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
    """CPU count and model (from /proc/cpuinfo where there is one), the platform, and whether
    TensorFlow was asked for its oneDNN kernels (they change the speed, and the rounding)."""
    import platform

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "platform": platform.platform(),
        "onednn": onednn_setting(),
    }
