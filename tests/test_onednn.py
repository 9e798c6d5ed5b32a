"""TensorFlow loads with oneDNN asked for wherever the project starts it, and a user's own choice is kept."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from labutils.report.provenance import machine_info
from labutils.runtime.device import GPU_MEMORY_GROWTH_VARIABLE as GROWTH
from labutils.runtime.onednn import ONEDNN_VARIABLE, onednn_setting

# in a fresh interpreter: import labutils, then TensorFlow, and report what TensorFlow runs with
_PROBE = (
    "import os, labutils, tensorflow\n"
    "from tensorflow.python.util import _pywrap_util_port\n"
    f"print(os.environ.get({ONEDNN_VARIABLE!r}), _pywrap_util_port.IsMklEnabled())\n"
)


def _run_probe(value: str | None) -> str:
    env = {key: item for key, item in os.environ.items() if key != ONEDNN_VARIABLE}
    if value is not None:
        env[ONEDNN_VARIABLE] = value
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=300, check=True
    )
    return completed.stdout.split()[-2] + " " + completed.stdout.split()[-1]


@pytest.mark.parametrize(("value", "expected"), [(None, "1 True"), ("0", "0 False")])
def test_importing_labutils_asks_for_onednn_and_keeps_a_users_choice(value, expected):
    assert _run_probe(value) == expected


def test_the_notebook_kernel_asks_for_onednn_before_the_first_cell_without_loading_tensorflow():
    from jupyter_client.manager import start_new_kernel

    from labutils.report import ensure_kernel

    name = ensure_kernel()
    saved = {variable: os.environ.pop(variable, None) for variable in (ONEDNN_VARIABLE, GROWTH)}
    try:
        manager, client = start_new_kernel(kernel_name=name)
    finally:
        os.environ.update({variable: value for variable, value in saved.items() if value is not None})
    printed: list[str] = []
    try:
        client.execute_interactive(
            f"import os, sys; print(os.environ.get({ONEDNN_VARIABLE!r}), os.environ.get({GROWTH!r}), "
            "'labutils' in sys.modules, 'tensorflow' in sys.modules)",
            timeout=120,
            output_hook=lambda message: printed.append(message["content"].get("text", "")),
        )
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    assert "".join(printed).split() == ["1", "true", "False", "False"]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (None, "TensorFlow's default"),
        ("1", "on"),
        ("true", "on"),
        ("0", "off"),
        ("FALSE", "off"),
        ("yes", "'yes'"),
    ],
)
def test_the_setting_in_words(monkeypatch, value, words):
    if value is None:
        monkeypatch.delenv(ONEDNN_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(ONEDNN_VARIABLE, value)
    assert onednn_setting() == words


def test_the_machine_record_says_whether_onednn_was_asked_for(monkeypatch):
    monkeypatch.setenv(ONEDNN_VARIABLE, "0")
    assert machine_info()["onednn"] == "off"
