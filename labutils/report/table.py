"""A report run in words and as a table: its time, its devices and every model's figures (the README's table)."""

from __future__ import annotations

import platform
from collections.abc import Mapping
from typing import Any

from ..results.schema import run_devices, trained_device
from ..runtime.device import Device, describe_devices, timing_note

__all__ = [
    "checksums_verified",
    "entry_device",
    "figure",
    "results_markdown",
    "run_time_summary",
    "trained_on",
]


def checksums_verified(data: dict) -> bool:
    """Whether a run's data were the Kaggle files, every checksum verified."""
    checksums = data.get("checksums", {})
    return bool(checksums) and all(status == "verified" for status in checksums.values())


def figure(value: float | None, digits: int = 4) -> str:
    """A figure with ``digits`` decimals, or "—" where there is none."""
    return "—" if value is None else f"{value:.{digits}f}"


def entry_device(entry: Mapping[str, Any]) -> str:
    """The device a notebook trained on, in words ("—" where it trained nothing)."""
    device = trained_device(entry)
    return "—" if device is None else device.describe()


def trained_on(devices: list[Device]) -> str:
    """Which devices a run's notebooks trained on (:func:`~labutils.results.schema.run_devices`), in words:
    ``trained on 2 CPU cores (AMD EPYC)``."""
    return f"trained on {describe_devices(devices)}" if devices else "no notebook trained yet"


def _trained_where(devices: list[Device], machine: str) -> str:
    """``trained on DEVICES, on MACHINE``, the machine's words left out where they repeat the devices' (a run
    that trained on this machine's CPU): ``trained on 2 CPU cores (Intel Xeon), oneDNN: on``."""
    described = describe_devices(devices) if devices else ""
    if described and machine.startswith(described):
        return trained_on(devices) + machine[len(described) :]
    return f"{trained_on(devices)}, on {machine}"


def run_time_summary(run: Mapping[str, Any]) -> str:
    """How long the notebooks took, saying which were reused from an earlier invocation."""
    entries = [entry for entry in run.get("notebooks", []) if entry.get("status") in {"completed", "cached"}]
    total = sum(float(entry.get("seconds") or 0) for entry in entries)
    cached = [entry["name"] for entry in entries if entry.get("status") == "cached"]
    text = f"{total / 60:.1f} min of notebook execution"
    if cached:
        text += (
            f" ({', '.join(cached)} reused unchanged from an earlier invocation; "
            f"this invocation took {float(run.get('seconds') or 0) / 60:.1f} min)"
        )
    return text


def results_markdown(run: Mapping[str, Any]) -> str:
    """A Markdown table of every model of a run (from its notebooks' metrics), with what was run where."""
    data = run.get("data", {})
    versions = run.get("versions", {})
    devices = run_devices(run)
    note = timing_note(devices)
    lines = [
        f"Report run of {run.get('started', '?')}, profile `{run.get('profile', '?')}`, "
        f"{data.get('data_source', '?')} data "
        f"({'SHA-256 verified' if checksums_verified(data) else 'not the verified Kaggle files'}), "
        f"{run_time_summary(run)}, {_trained_where(devices, str(run.get('machine', platform.machine())))}; "
        + ", ".join(f"{name} {version}" for name, version in sorted(versions.items()))
        + ".",
        *(["", note] if note else []),
        "",
        "| notebook | model | test accuracy | errors | log-loss | grouped val. accuracy | train s | pretrained |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for entry in run.get("notebooks", []):
        if entry.get("status") not in {"completed", "cached"}:
            lines.append(f"| {entry['name']} | — {entry.get('status')} — | | | | | | |")
            continue
        for name, record in entry["metrics"].get("models", {}).items():
            pretrained = record.get("pretrained")
            lines.append(
                f"| {entry['name']} | {name} | {record['test_accuracy']:.4f} | {record['test_errors']} | "
                f"{record['test_log_loss']:.3f} | {figure(record.get('val_accuracy_grouped'))} | {record['train_seconds']:.0f} | "
                f"{'' if pretrained is None else ('yes' if pretrained else '**no**')} |"
            )
    seconds = ", ".join(
        f"{entry['name']} {entry.get('seconds', 0):.0f} s" for entry in run.get("notebooks", [])
    )
    lines += ["", f"Notebook times: {seconds}."]
    return "\n".join(lines) + "\n"
