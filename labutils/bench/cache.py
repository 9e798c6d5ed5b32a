"""Finished jobs saved as they end, and reused by ``--resume`` only when settings, data and code match."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_JOB_CODE = (
    "bench/jobs.py",
    "bench/settings.py",
    "bench/measures.py",
    "models.py",
    "batch_norm.py",
    "training.py",
    "recipes.py",
    "backbones.py",
    "sources.py",
    "session.py",
    "transfer.py",
    "pretrained/efficientnet_lite.py",
    "pretrained/torch_legacy.py",
    "metrics.py",
    "data.py",
    "split.py",
    "perturb.py",
    "corruptions/suite.py",
    "corruptions/layer.py",
)


def _code_fingerprint() -> str:
    digest = hashlib.sha256()
    for name in _JOB_CODE:
        digest.update(name.encode() + b"\0" + (Path(__file__).parent.parent / name).read_bytes())
    return digest.hexdigest()[:16]


def _job_identity(job: dict[str, Any], sha256: dict[str, str], code: str) -> dict[str, Any]:
    """What must match for a saved job to stand for a new one (not the data folder's path)."""
    return {
        "kind": job["kind"],
        "seed": job["seed"],
        "budget": job["budget"],
        "settings": job["settings"],
        "data_sha256": sha256,
        "code": code,
    }


def _saved_job(path: Path, identity: dict[str, Any], log: Callable[[str], None]) -> dict[str, Any] | None:
    """The saved figures of a finished job, if ``path`` holds one with this identity."""
    if not path.exists():
        return None
    try:
        saved = json.loads(path.read_text())
        figures, same = saved["figures"], saved["identity"] == json.loads(json.dumps(identity))
    except (ValueError, KeyError, TypeError) as error:
        log(f"[bench] {path} is not a readable saved job ({error}): running the job again")
        return None
    if not same:
        log(f"[bench] {path} was measured with other settings, budget, data or code: running the job again")
        return None
    return {"figures": figures, "finished": saved.get("finished")}


def _save_job(path: Path, identity: dict[str, Any], figures: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(
        json.dumps(
            {
                "identity": identity,
                "finished": datetime.now(UTC).isoformat(timespec="seconds"),
                "figures": figures,
            },
            indent=1,
        )
    )
    partial.replace(path)  # a job file is either whole or absent
