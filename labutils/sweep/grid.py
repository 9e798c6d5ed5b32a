"""The points of a sweep: every combination of the swept values, times the seeds, each checked against
the notebook's parameters cell (as ``report -p`` checks a value) before anything runs."""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..report.parameters import validate_overrides

__all__ = ["Point", "make_points"]

#: The longest folder name a point gets before the rest is replaced by a digest.
MAX_NAME = 100


@dataclass(frozen=True)
class Point:
    """One run of the notebook: the swept parameters' values (``SEED`` among them when seeds are swept)."""

    parameters: dict[str, Any]

    @property
    def label(self) -> str:
        """``WIDTH=16 POOLING='max' SEED=0``: the values as they would be written in the parameters cell."""
        return " ".join(f"{name}={value!r}" for name, value in self.parameters.items())

    @property
    def name(self) -> str:
        """The point's folder name: its label with only letters, digits and ``=,.+-_``, else shortened."""
        text = ",".join(f"{name}={value}" for name, value in self.parameters.items())
        name = re.sub(r"[^A-Za-z0-9=,.+_-]+", "_", text)
        if len(name) <= MAX_NAME:
            return name
        return f"{name[:80]}-{hashlib.sha256(self.label.encode()).hexdigest()[:12]}"


def make_points(
    source: Path,
    values: Mapping[str, Sequence[Any]],
    seeds: Sequence[int] | None = None,
    all_sources: Sequence[Path] = (),
) -> list[Point]:
    """The grid: the product of ``values`` ({NAME: [value, ...]}), then of ``seeds`` (as ``SEED``), in the
    order given. Each point is checked against ``source``'s parameters before anything runs; a name
    given twice, a value given twice, or ``SEED`` both swept and given as seeds is a ``ValueError``."""
    grid = {name: list(options) for name, options in values.items()}
    if seeds:
        if "SEED" in grid:
            raise ValueError("give the seeds with --seeds or with -p SEED, not both")
        grid["SEED"] = list(seeds)
    if not grid:
        raise ValueError("nothing to sweep: give -p NAME VALUE [VALUE ...] or --seeds S [S ...]")
    for name, options in grid.items():
        if not options:
            raise ValueError(f"-p {name}: give at least one value")
        repeated = [value for index, value in enumerate(options) if value in options[:index]]
        if repeated:
            raise ValueError(f"-p {name}: the value {repeated[0]!r} is given twice")
    points = [Point(dict(zip(grid, combination))) for combination in itertools.product(*grid.values())]
    for point in points:
        validate_overrides(point.parameters, [source], all_sources)
    names = [point.name for point in points]
    if len(set(names)) != len(names):  # values alike once written as a folder name ('a b' and 'a_b')
        raise ValueError("two points would share a folder name; give values that differ in letters or digits")
    return points
