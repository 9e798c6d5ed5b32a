"""The device that trains: found (with TensorFlow's and nvidia-smi's answers faked), described, recorded."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from labutils.runtime.device import (
    GPU_MEMORY_GROWTH_VARIABLE,
    Device,
    cpu_device,
    cpu_model,
    describe_devices,
    device_from_record,
    nvidia_gpus,
    prefer_gpu_memory_growth,
    timing_note,
    training_device,
)
from tests.test_index import CPU, GPU

H100 = "NVIDIA H100 80GB HBM3"


def fake_smi(stdout: str = "", returncode: int = 0, error: Exception | None = None):
    calls = []

    def run(command, **options):
        calls.append(command)
        if error is not None:
            raise error
        return SimpleNamespace(returncode=returncode, stdout=stdout)

    run.calls = calls
    return run


def test_nvidia_smi_gives_each_gpus_name_and_memory_in_gib():
    run = fake_smi(f"{H100}, 81559\nNVIDIA L4, 23034\n")
    assert nvidia_gpus(run) == [(H100, 79.6), ("NVIDIA L4", 22.5)]
    assert run.calls[0][:2] == ["nvidia-smi", "--query-gpu=name,memory.total"]


@pytest.mark.parametrize(
    "run",
    [
        fake_smi(error=FileNotFoundError("nvidia-smi")),
        fake_smi(error=subprocess.TimeoutExpired("nvidia-smi", 20)),
        fake_smi(
            "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.", returncode=9
        ),
        fake_smi("No devices were found\n"),
        fake_smi("a name, [N/A]\n, 1024\n"),
    ],
)
def test_no_gpu_is_listed_where_nvidia_smi_is_missing_fails_or_lists_none(run):
    assert nvidia_gpus(run) == []


def test_the_training_device_is_the_first_gpu_tensorflow_sees_with_nvidia_smis_memory():
    device = training_device(lambda: [H100, H100], lambda: [(H100, 79.6), (H100, 79.6)])
    assert (device.kind, device.name, device.memory_gib) == ("GPU", H100, 79.6)
    assert device.describe() == "NVIDIA H100 80GB HBM3 GPU (79.6 GiB)"
    assert device.cpu_cores == cpu_device().cpu_cores  # the CPU that feeds it is recorded too
    unlisted = training_device(lambda: ["NVIDIA A10"], lambda: [])
    assert unlisted.memory_gib is None and unlisted.describe() == "NVIDIA A10 GPU"


def test_a_gpu_that_nvidia_smi_lists_but_tensorflow_cannot_use_is_not_the_training_device():
    device = training_device(lambda: [], lambda: [(H100, 79.6)])
    assert device.kind == "CPU" and device == cpu_device()
    assert device.describe().endswith(f"({cpu_model()})") and "GPU" not in device.describe()


def test_tensorflow_is_asked_when_nothing_is_faked():
    import tensorflow as tf

    device = training_device()
    assert device.kind == ("GPU" if tf.config.list_physical_devices("GPU") else "CPU")


def test_the_cpu_model_comes_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: avx2\n")
    assert cpu_model(cpuinfo) == "AMD EPYC 7B13"
    assert cpu_model(tmp_path / "absent")  # the platform's word where there is no cpuinfo


def test_a_device_record_round_trips_and_a_bad_one_names_its_source():
    for device in (CPU, GPU):
        assert device_from_record(device.as_record(), "x") == device
    assert CPU.describe() == "2 CPU cores (AMD EPYC 7B13)"
    with pytest.raises(ValueError, match=r"^m.json: the device must be an object"):
        device_from_record(None, "m.json")
    with pytest.raises(ValueError, match=r"^m.json: Device.memory_gib must be a positive number"):
        device_from_record({**GPU.as_record(), "memory_gib": -1}, "m.json")
    with pytest.raises(ValueError, match="description does not match"):
        device_from_record({**GPU.as_record(), "description": "a faster GPU"}, "m.json")
    with pytest.raises(ValueError, match="Device.name must be a non-empty string"):
        Device(kind="GPU", name="", memory_gib=None, cpu_cores=2, cpu_model="x")


def test_only_a_gpu_run_says_its_seconds_compare_with_no_cpu_run():
    assert timing_note([CPU, CPU]) is None and timing_note([]) is None
    assert timing_note([CPU, GPU]).startswith("Trained on a GPU: these seconds are not comparable")
    assert describe_devices([CPU, CPU, GPU]) == f"{CPU.describe()}; {GPU.describe()}"
    assert describe_devices([]) == "not recorded"


def test_gpu_memory_growth_is_asked_for_unless_the_user_chose(monkeypatch):
    monkeypatch.delenv(GPU_MEMORY_GROWTH_VARIABLE, raising=False)
    prefer_gpu_memory_growth()
    assert os.environ[GPU_MEMORY_GROWTH_VARIABLE] == "true"
    monkeypatch.setenv(GPU_MEMORY_GROWTH_VARIABLE, "false")
    prefer_gpu_memory_growth()
    assert os.environ[GPU_MEMORY_GROWTH_VARIABLE] == "false"


def test_importing_labutils_without_tensorflow_says_which_extra_to_install():
    script = (
        "import importlib.util as util\n"
        "real = util.find_spec\n"
        "util.find_spec = lambda name, *rest: None if name == 'tensorflow' else real(name, *rest)\n"
        "import labutils\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "ImportError: labutils needs TensorFlow" in done.stderr
    assert "pip install -e '.[cpu]'" in done.stderr and "pip install -e '.[gpu]'" in done.stderr
