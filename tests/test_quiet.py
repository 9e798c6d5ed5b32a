"""TensorFlow's start-up chatter is kept off standard error; everything else gets through, in order."""

from __future__ import annotations

import subprocess
import sys

from labutils.runtime.quiet import is_noise

CHATTER = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796140486.248646   17517 port.cc:153] oneDNN custom operations are on. You may see ...",
    "[IPKernelApp] WARNING | Kernel is running over TCP without encryption. All communication ...",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with the "
    "appropriate compiler flags.",
]
REAL = [
    "W0000 00:00:1796140486.248646   17517 gpu_device.cc:2344] Cannot dlopen some GPU libraries.",
    "E0000 00:00:1796140486.248646   17517 cuda_dnn.cc:8310] Unable to register cuDNN factory",
    "/work/main/labutils/transfer.py:232: UserWarning: `input_shape` is undefined or non-square",
    "error: model x.keras: not a Keras model file",
    "I never said the I0000 pattern could start a real line",
]


def test_the_chatter_is_noise_and_warnings_and_errors_are_not():
    assert all(is_noise(line) for line in CHATTER)
    assert not any(is_noise(line) for line in REAL)


def test_a_child_process_writing_below_python_is_filtered_and_the_rest_kept_in_order():
    lines = CHATTER[:2] + REAL[:3]
    child = "import os, sys; [os.write(2, (line + '\\n').encode()) for line in sys.argv[1:]]"
    program = (
        "import subprocess, sys\n"
        "from labutils.runtime.quiet import quiet_native_stderr\n"
        "with quiet_native_stderr():\n"
        f"    subprocess.run([sys.executable, '-c', {child!r}, *sys.argv[1:]])\n"
        "    print('python too', file=sys.stderr)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", program, *lines], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr.splitlines() == REAL[:3] + ["python too"]
