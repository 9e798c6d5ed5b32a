"""A run on all rows paired with a split run of the same recipe: validation set against the final networks.

The final networks train on the grouped validation rows too, so they have no validation figures of
their own. A ``--train-rows split`` run with the same settings, data and seeds trains the same
recipe without those rows; its grouped-validation robustness is what the recipe's choice rested on,
and what the final networks' test robustness is held against (``--validation-from``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .settings import BENCH_SPLIT, BenchSettings

#: The roles whose split-trained validation figures a paired run takes over.
PAIRED_ROLES = ("task2", "task3")


def split_validation(
    folder: str | Path,
    *,
    settings: BenchSettings,
    seeds: Sequence[int],
    sha256: dict[str, str],
    roles: Sequence[str] = PAIRED_ROLES,
) -> dict[str, Any]:
    """The grouped-validation robustness of ``roles`` (of Tasks 2 and 3) from the split run in ``folder``.

    Checked before anything trains, so that no work is lost: this run trains on all rows, the
    other on the training side of the same split (``BENCH_SPLIT``) with otherwise the same settings,
    on the same data, with every one of ``seeds``. Returns
    ``{"folder", "date", "val_robustness": {role: {seed: figures}}}``.
    Raises ``ValueError`` naming the file and what does not match.
    """
    path = Path(folder) / "results.json"
    try:
        split_run = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(
            f"--validation-from: {path} does not exist (give the folder of a --train-rows split run)"
        ) from None
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"--validation-from: {path} cannot be read as results.json ({error})") from None
    if not isinstance(split_run, dict) or not isinstance(split_run.get("settings"), dict):
        raise ValueError(f"--validation-from: {path} is not a benchmark's results.json (no settings)")
    if settings.train_rows != "all":
        raise ValueError(
            "--validation-from sets a split run's validation against final networks: this run must train on "
            f"all rows, not {settings.train_rows!r}"
        )
    if split_run["settings"].get("train_rows") != "split":
        raise ValueError(
            f"--validation-from: {path} trained on {split_run['settings'].get('train_rows')!r} rows, not the split's "
            "training side (run it with --train-rows split)"
        )
    recorded = split_run.get("split")
    if recorded != BENCH_SPLIT:
        if isinstance(recorded, dict):
            changes = "; ".join(
                f"{name} {recorded.get(name, '(none)')} there, {BENCH_SPLIT.get(name, '(none)')} here"
                for name in _differing(BENCH_SPLIT, recorded)
            )
            described = f"validated on another split ({changes})"
        else:
            described = "records no split (a run from before the split was recorded)"
        shared = ", ".join(f"{name} {value}" for name, value in BENCH_SPLIT.items())
        raise ValueError(
            f"--validation-from: {path} {described}: the two runs must share the grouped split ({shared})"
        )
    ours = {name: value for name, value in asdict(settings).items() if name != "train_rows"}
    theirs = {name: value for name, value in split_run["settings"].items() if name != "train_rows"}
    differing = _differing(ours, theirs)
    if differing:
        raise ValueError(
            f"--validation-from: {path} trained other settings ({', '.join(differing)} differ): the two runs "
            "must train the same recipes"
        )
    if split_run.get("data", {}).get("sha256") != sha256:
        raise ValueError(
            f"--validation-from: {path} was measured on other data (its checksums differ from this run's)"
        )
    roles = [role for role in roles if role in PAIRED_ROLES]
    if not roles:
        raise ValueError(f"--validation-from needs {' or '.join(PAIRED_ROLES)} among the contenders")
    figures: dict[str, dict[str, Any]] = {}
    for role in roles:
        per_seed = split_run.get("contenders", {}).get(role, {}).get("val_robustness") or {}
        missing = [seed for seed in seeds if str(seed) not in per_seed]
        if missing:
            raise ValueError(
                f"--validation-from: {path} has no grouped-validation robustness of {role} with seeds "
                f"{missing} (run it with these seeds and --contenders {' '.join(roles)})"
            )
        figures[role] = {str(seed): per_seed[str(seed)] for seed in seeds}
    return {"folder": str(Path(folder)), "date": split_run.get("date"), "val_robustness": figures}


def _differing(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """The names, sorted, whose values differ between two records (a name missing from one differs)."""
    return sorted(name for name in ours.keys() | theirs.keys() if ours.get(name) != theirs.get(name))
