"""Which device trains: the GPU TensorFlow uses, or the CPU, found and described for the records.

Keras trains on the first GPU TensorFlow can see, and on the CPU where it sees none. A GPU is found
through TensorFlow itself (:func:`training_device`), so a record never claims a GPU that TensorFlow
could not use (a CPU build of TensorFlow, a driver too old for its CUDA); its memory comes from
``nvidia-smi``, which TensorFlow does not report (:func:`nvidia_gpus`). The install (``make``)
asks ``nvidia-smi`` alone, to choose TensorFlow's build.

Seconds measured on a GPU say nothing about a CPU's, and the other way round: every record of a
time carries its device, and :func:`timing_note` says so where a GPU trained.

Importing :mod:`labutils` also runs :func:`prefer_gpu_memory_growth` before TensorFlow loads, so that
TensorFlow takes GPU memory as it needs it instead of all of it at once: the test suite's own
process, the notebooks' kernels it starts and a JupyterLab session can then share one GPU. On a
machine without a GPU the setting changes nothing.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DEVICE_KINDS",
    "GPU_MEMORY_GROWTH_VARIABLE",
    "Device",
    "cpu_device",
    "cpu_model",
    "describe_devices",
    "device_from_record",
    "nvidia_gpus",
    "prefer_gpu_memory_growth",
    "timing_note",
    "training_device",
]

#: The kinds of device a record names.
DEVICE_KINDS = ("CPU", "GPU")
#: The environment variable TensorFlow reads to take GPU memory as it needs it ("true") instead of all at once.
GPU_MEMORY_GROWTH_VARIABLE = "TF_FORCE_GPU_ALLOW_GROWTH"

_GIB = 1024**3
_MIB = 1024**2


@dataclass(frozen=True)
class Device:
    """The device a network trained on: a GPU (its name and memory) or the CPU; the CPU's cores and
    model either way, since on a GPU machine the CPU still feeds the batches."""

    kind: str
    name: str
    memory_gib: float | None
    cpu_cores: int
    cpu_model: str

    def __post_init__(self) -> None:
        if self.kind not in DEVICE_KINDS:
            raise ValueError(f"Device.kind must be one of {', '.join(DEVICE_KINDS)}, got {self.kind!r}")
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Device.name must be a non-empty string, got {self.name!r}")
        if self.memory_gib is not None and (
            isinstance(self.memory_gib, bool)
            or not isinstance(self.memory_gib, (int, float))
            or self.memory_gib <= 0
        ):
            raise ValueError(f"Device.memory_gib must be a positive number or None, got {self.memory_gib!r}")
        if isinstance(self.cpu_cores, bool) or not isinstance(self.cpu_cores, int) or self.cpu_cores < 1:
            raise ValueError(f"Device.cpu_cores must be a whole number of at least 1, got {self.cpu_cores!r}")

    def describe(self) -> str:
        """In words: ``NVIDIA H100 80GB HBM3 GPU (79.6 GiB)`` or ``2 CPU cores (AMD EPYC 7B13)``."""
        cpu = f"{self.cpu_cores} CPU {'core' if self.cpu_cores == 1 else 'cores'} ({self.cpu_model})"
        if self.kind == "CPU":
            return cpu
        memory = "" if self.memory_gib is None else f" ({self.memory_gib:.1f} GiB)"
        return f"{self.name} GPU{memory}"

    def as_record(self) -> dict[str, Any]:
        """The JSON form of the records (``metrics.json``, ``results.json``): the fields and ``description``."""
        return {**asdict(self), "description": self.describe()}


def device_from_record(record: Any, source: str) -> Device:
    """The :class:`Device` of a record written by :meth:`Device.as_record`; a ``ValueError`` naming ``source``."""
    fields = ("kind", "name", "memory_gib", "cpu_cores", "cpu_model")
    if not isinstance(record, Mapping) or any(field not in record for field in fields):
        raise ValueError(
            f"{source}: the device must be an object with the fields {list(fields)}, got {record!r}"
        )
    try:
        device = Device(**{field: record[field] for field in fields})
    except (TypeError, ValueError) as error:
        raise ValueError(f"{source}: {error}") from None
    if record.get("description") != device.describe():
        raise ValueError(f"{source}: the device's description does not match its fields: {record!r}")
    return device


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name (from ``/proc/cpuinfo`` where there is one, else what the platform says)."""
    import platform

    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_device() -> Device:
    """The CPU this process may run on: its cores (those it is allowed) and model."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    model = cpu_model()
    return Device(kind="CPU", name=model, memory_gib=None, cpu_cores=cores, cpu_model=model)


def nvidia_gpus(run: Callable[..., Any] = subprocess.run) -> list[tuple[str, float]]:
    """(name, memory in GiB) of each GPU ``nvidia-smi`` lists; none where it is missing, fails or lists none.

    ``run`` is :func:`subprocess.run` (the tests pass a fake).
    """
    command = ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"]
    try:
        finished = run(command, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    if finished.returncode != 0:
        return []
    gpus = []
    for line in str(finished.stdout).splitlines():
        name, _, memory = line.rpartition(",")
        try:
            mebibytes = float(memory)
        except ValueError:
            continue  # a line that is no GPU (nvidia-smi's own messages)
        if name.strip() and mebibytes > 0:
            gpus.append((name.strip(), round(mebibytes * _MIB / _GIB, 1)))
    return gpus


def training_device(
    visible_gpus: Callable[[], Sequence[str]] | None = None,
    listed_gpus: Callable[[], Iterable[tuple[str, float]]] = nvidia_gpus,
) -> Device:
    """The device this process's TensorFlow trains on: the first GPU it can see, else the CPU.

    ``visible_gpus`` gives the names of the GPUs TensorFlow can use (default: TensorFlow asked);
    ``listed_gpus`` gives ``nvidia-smi``'s list, for the memory. The tests fake both.
    """
    cpu = cpu_device()
    names = list((visible_gpus or _tensorflow_gpu_names)())
    if not names:
        return cpu
    memory = {name: gibibytes for name, gibibytes in listed_gpus()}
    return Device(
        kind="GPU",
        name=names[0],
        memory_gib=memory.get(names[0]),
        cpu_cores=cpu.cpu_cores,
        cpu_model=cpu.cpu_model,
    )


def _tensorflow_gpu_names() -> list[str]:
    import tensorflow as tf

    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        names.append(str(details.get("device_name") or gpu.name))
    return names


def describe_devices(devices: Iterable[Device]) -> str:
    """The devices of several records in words, each once, in order; "not recorded" for none."""
    described = list(dict.fromkeys(device.describe() for device in devices))
    return "; ".join(described) if described else "not recorded"


def timing_note(devices: Iterable[Device]) -> str | None:
    """The sentence a record of times needs where a GPU trained (they compare with no CPU run); else None."""
    if any(device.kind == "GPU" for device in devices):
        return (
            "Trained on a GPU: these seconds are not comparable with runs on a CPU "
            "(the targets and the recorded runs in the docs are CPU times)."
        )
    return None


def prefer_gpu_memory_growth() -> None:
    """Ask TensorFlow to take GPU memory as it needs it (``TF_FORCE_GPU_ALLOW_GROWTH=true``) unless the
    variable is set already; it must run before TensorFlow starts its GPU (importing :mod:`labutils` does)."""
    os.environ.setdefault(GPU_MEMORY_GROWTH_VARIABLE, "true")
