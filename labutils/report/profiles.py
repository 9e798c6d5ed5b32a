"""The report's two profiles: the parameters each notebook gets in a quick and in a full run."""

from __future__ import annotations

from typing import Any

from ..session import QUICK_SETTINGS

__all__ = ["CELL_TIMEOUT", "PROFILES", "notebook_parameters"]

#: Parameters per profile and notebook (by the notebook's file stem); "*" applies to all. The quick
#: profile's values are :data:`labutils.session.QUICK_SETTINGS`, the ones a notebook takes itself when
#: run with ``PROFILE = "quick"``; the full profile is each notebook's own parameters.
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "quick": {"*": {"PROFILE": "quick"}, **QUICK_SETTINGS},
    "full": {"*": {"PROFILE": "full"}},
}

#: Longest time one cell may run, per profile (seconds).
CELL_TIMEOUT = {"quick": 600, "full": 3600}


def notebook_parameters(profile: str, name: str, common: dict[str, Any]) -> dict[str, Any]:
    """Parameters for one notebook: the profile's, then the run's common ones (data dir, output)."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {profile!r}")
    return {**PROFILES[profile].get("*", {}), **PROFILES[profile].get(name, {}), **common}
