"""The notebooks' parameters cells: names, defaults, constraints, and ``-p`` values checked against them.

Each notebook declares its parameters in one cell tagged ``parameters``, a constant per line,
with a comment that says what it is. The comment may start with the values allowed, in the
notation a reader knows:

- ``[1, 1000]``, ``(0, 1)``, ``[0.0, 1.0)``, ``[1, inf)``: a closed / open interval of numbers
  (an integer default takes integers only);
- ``{"grouped", "random"}``: one of these values;
- ``str | dict | None``: a value of one of these types (where the default's type is not the only one).

``None`` is allowed where the default is ``None`` or where the comment says what it means
(``None: all``). The report runner checks every ``-p NAME VALUE`` against these before a
notebook starts, and the error names the notebook, the parameter, the value and what is allowed.
"""

from __future__ import annotations

import ast
import math
import re
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "MAX_PARAMETER_TEXT",
    "RUNNER_PARAMETERS",
    "ParameterSpec",
    "declared_parameters",
    "edited_parameters",
    "parameter_specs",
    "parse_parameter_value",
    "validate_overrides",
]

#: Parameters the runner sets itself; ``-p`` may not override them (use --data-dir / --out).
RUNNER_PARAMETERS = frozenset(
    {"DATA_DIR", "OUTPUT_DIR", "TASK2_DIR", "TASK3_DIR", "FEATURE_CACHE_DIR", "WEIGHTS_CACHE_DIR", "PROFILE"}
)

#: The longest ``-p`` value accepted, in characters (a parameter is a constant, not a data file).
MAX_PARAMETER_TEXT = 10_000

_NUMBER = r"[-+]?(?:inf|\d+(?:\.\d*)?(?:e[-+]?\d+)?)"
_INTERVAL = re.compile(
    rf"^\s*(?P<low_bracket>[\[(])\s*(?P<low>{_NUMBER})\s*,\s*(?P<high>{_NUMBER})\s*(?P<high_bracket>[\])])"
)
_CHOICES = re.compile(r"^\s*(?P<choices>\{[^{}]*\})")
_NONE_MEANS = re.compile(r"\bNone:")
_TYPE_NAMES = {
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "list": list,
    "dict": dict,
    "tuple": tuple,
}
_TYPES = re.compile(r"^\s*(?P<types>\w+(?:\s*\|\s*\w+)+)\s*:")


@dataclass(frozen=True)
class ParameterSpec:
    """One declared parameter: its default (a literal), and what values it allows."""

    name: str
    default: Any
    default_text: str
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] | None = None
    integer: bool = False  # an interval of integers (an integer default, or bounds written as integers)

    types: tuple[str, ...] | None = None  # declared: "str | dict | None"

    @property
    def allows_none(self) -> bool:
        return self.default is None or bool(_NONE_MEANS.search(self.help)) or "None" in (self.types or ())

    def allowed(self) -> str:
        """What this parameter takes, in words (for error messages)."""
        if self.choices is not None:
            what = "one of " + ", ".join(repr(choice) for choice in self.choices)
        elif self.low is not None:
            kind = "an integer" if self.integer else "a number"
            opening, closing = "(" if self.low_open else "[", ")" if self.high_open else "]"
            what = f"{kind} in {opening}{_number(self.low)}, {_number(self.high)}{closing}"
        elif self.types is not None:
            return " or ".join(
                _type_words(_TYPE_NAMES[name]()) if name != "None" else "None" for name in self.types
            )
        elif self.default is None:
            what = "any value"
        else:
            what = _type_words(self.default)
        return what + (" or None" if self.allows_none and self.default is not None else "")

    def check(self, value: Any, notebook: str) -> None:
        """Raise a :class:`ValueError` naming notebook, parameter, value and what is allowed, unless ``value`` fits."""
        problem = self._problem(value)
        if problem:
            raise ValueError(
                f"parameter {self.name} of {notebook}: {value!r} {problem}; it takes {self.allowed()} "
                f"(default {self.default_text})"
            )

    def _problem(self, value: Any) -> str | None:
        if value is None:
            return None if self.allows_none else "is not allowed"
        if isinstance(value, float) and not math.isfinite(value):
            return "is not a finite number"
        if self.types is not None:
            if not any(_type_ok(value, _TYPE_NAMES[name]()) for name in self.types if name != "None"):
                return f"is {_a(type(value).__name__)}"
        elif self.default is not None and not _type_ok(value, self.default):
            return f"is {_a(type(value).__name__)}"
        if self.choices is not None and value not in self.choices:
            return "is not a choice"
        if self.low is not None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                return f"is {_a(type(value).__name__)}"
            if self.integer and not _is_int(value):
                return "is not an integer"
            below = value <= self.low if self.low_open else value < self.low
            above = value >= self.high if self.high_open else value > self.high
            if below or above:
                return "is out of range"
        return None


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"


def _number(value: float) -> str:
    return "inf" if value == math.inf else ("-inf" if value == -math.inf else f"{value:g}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _type_words(default: Any) -> str:
    if isinstance(default, bool):
        return "True or False"
    return {
        int: "an integer",
        float: "a number",
        str: "text",
        list: "a list",
        dict: "a dict",
        tuple: "a tuple",
    }.get(type(default), f"a {type(default).__name__}")


def _type_ok(value: Any, default: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return _is_int(value)
    if isinstance(default, float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, type(default))


def parse_parameter_value(text: str, name: str = "VALUE", *, option: str = "-p") -> Any:
    """A ``-p NAME VALUE`` value: a Python literal (``3``, ``1e-3``, ``None``, ``["vgg16"]``), else the text itself.

    Only literals are parsed (``ast.literal_eval``): nothing is ever evaluated. A value too long
    or too deeply nested to parse raises a :class:`ValueError` naming ``option`` and the parameter.
    """
    if len(text) > MAX_PARAMETER_TEXT:
        raise ValueError(
            f"{option} {name}: the value is {len(text):,} characters long; at most {MAX_PARAMETER_TEXT:,}"
        )
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    except (MemoryError, RecursionError) as error:
        raise ValueError(
            f"{option} {name}: the value is nested too deeply to parse ({type(error).__name__})"
        ) from None


def _inspect(source: Path, text: str | None = None) -> dict[str, dict[str, Any]]:
    """Papermill's reading of a notebook's parameters cell: the file's, or ``text`` given as its content."""
    import jupytext
    import papermill

    with tempfile.TemporaryDirectory() as folder:
        staged = Path(folder) / f"{source.stem}.ipynb"
        notebook = jupytext.read(source) if text is None else jupytext.reads(text, fmt="py:percent")
        # papermill picks its parser by the kernel's language
        notebook.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        jupytext.write(notebook, staged, fmt="ipynb")
        return papermill.inspect_notebook(str(staged))


def edited_parameters(source: Path) -> dict[str, dict[str, str]] | None:
    """The parameters whose default in ``source`` differs from the committed file's (git's ``HEAD``):
    ``{name: {"committed": text, "now": text}}`` as written ("absent" for a parameter one side lacks),
    empty when none is; ``None`` where that cannot be told (no git, not a checkout, a file not committed)."""
    source = Path(source).resolve()
    try:
        committed = subprocess.run(
            ["git", "-C", str(source.parent), "show", f"HEAD:./{source.name}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if committed.returncode != 0:
        return None
    before = {name: info["default"] for name, info in _inspect(source, committed.stdout).items()}
    now = declared_parameters(source)
    return {
        name: {"committed": before.get(name, "absent"), "now": now.get(name, "absent")}
        for name in sorted(before.keys() | now.keys())
        if before.get(name) != now.get(name)
    }


def declared_parameters(source: Path) -> dict[str, Any]:
    """The parameters a notebook source declares in its ``parameters`` cell, with their defaults (as text)."""
    return {name: info["default"] for name, info in _inspect(source).items()}


def parameter_specs(source: Path) -> dict[str, ParameterSpec]:
    """Each declared parameter of a notebook source with its default and constraints."""
    specs = {}
    for name, info in _inspect(source).items():
        text, help_text = info["default"], info.get("help") or ""
        default = parse_parameter_value(text, name)
        options: dict[str, Any] = {}
        interval, choices, types = (pattern.match(help_text) for pattern in (_INTERVAL, _CHOICES, _TYPES))
        if types:
            names = tuple(kind.strip() for kind in types["types"].split("|"))
            unknown = [kind for kind in names if kind not in _TYPE_NAMES and kind != "None"]
            if unknown:
                raise ValueError(
                    f"{source.name}: {name} declares unknown types {unknown} (of {sorted(_TYPE_NAMES)})"
                )
            options = {"types": names}
        elif interval:
            bounds = [interval["low"], interval["high"]]
            written_as_integers = all(re.fullmatch(r"[-+]?(inf|\d+)", bound) for bound in bounds)
            options = {
                "low": float(interval["low"]),
                "high": float(interval["high"]),
                "low_open": interval["low_bracket"] == "(",
                "high_open": interval["high_bracket"] == ")",
                "integer": _is_int(default) or (default is None and written_as_integers),
            }
        elif choices:
            try:
                # read as a tuple, so that the choices keep the order they are written in
                options = {"choices": tuple(ast.literal_eval("(" + choices["choices"][1:-1] + ",)"))}
            except (ValueError, SyntaxError) as error:
                raise ValueError(
                    f"{source.name}: the choices of {name} are not literals: {choices['choices']}"
                ) from error
        specs[name] = ParameterSpec(name, default, text, help_text, **options)
    return specs


def validate_overrides(
    overrides: dict[str, Any], sources: Sequence[Path], all_sources: Sequence[Path] | None = None
) -> dict[str, dict[str, Any]]:
    """Check ``-p`` overrides against the notebooks' parameters cells before anything runs.

    Returns {notebook stem: {name: value}} for the notebooks of ``sources`` that declare each
    name. Unknown names, names the runner sets, names only notebooks outside ``sources`` declare
    (of ``all_sources``), and values that do not fit the declaration are a ``ValueError``.
    """
    specs = {source.stem: parameter_specs(source) for source in sources}
    others = {
        source.stem: declared_parameters(source) for source in (all_sources or []) if source.stem not in specs
    }
    valid: dict[str, dict[str, ParameterSpec]] = {}
    for stem, declared in specs.items():
        for name, spec in declared.items():
            if name not in RUNNER_PARAMETERS:
                valid.setdefault(name, {})[stem] = spec
    listing = "; ".join(f"{name} (in {', '.join(sorted(where))})" for name, where in sorted(valid.items()))
    per_notebook: dict[str, dict[str, Any]] = {stem: {} for stem in specs}
    for name, value in overrides.items():
        if name in RUNNER_PARAMETERS:
            raise ValueError(
                f"parameter {name} is set by the runner (use --data-dir, --out or --profile); valid parameters: {listing}"
            )
        if name not in valid:
            elsewhere = sorted(stem for stem, declared in others.items() if name in declared)
            if elsewhere:
                raise ValueError(
                    f"parameter {name} belongs to {', '.join(elsewhere)}, which --only leaves out; "
                    f"the notebooks of this run take: {listing}"
                )
            raise ValueError(f"unknown parameter {name!r}; valid parameters: {listing}")
        for stem, spec in valid[name].items():
            spec.check(value, stem)
            per_notebook[stem][name] = value
    return per_notebook
