"""The constraints a notebook's parameters cell declares, and ``-p`` values checked against them."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from labutils.report.parameters import parameter_specs, validate_overrides
from labutils.sources import repository_root

CELL = """# %% tags=["parameters"]
OUTPUT_DIR = "."
COUNT = 3  # [1, 10]: how many
FRACTION = 0.5  # (0.0, 1.0): a share, both ends excluded
RATE = 1e-3  # (0.0, 1.0]: a rate
LIMIT = None  # [1, inf): this many at most; None: all of them
KIND = "b"  # {"b", "a", "c"}: one of three
CACHE = "x"  # a folder; None: no cache
FREE = None  # anything
NAME = "plain"  # text without constraint

# %%
print("body")
"""


@pytest.fixture
def notebook(tmp_path: Path) -> Path:
    path = tmp_path / "01_demo.py"
    path.write_text(CELL)
    return path


def _check(notebook: Path, name: str, value):
    return validate_overrides({name: value}, [notebook], [notebook])["01_demo"][name]


@pytest.mark.parametrize(
    ("name", "value"),
    [("COUNT", 1), ("COUNT", 10), ("FRACTION", 0.01), ("RATE", 1.0), ("RATE", 1), ("LIMIT", None), ("LIMIT", 10**9),
     ("KIND", "c"), ("CACHE", None), ("FREE", [1, "x"]), ("NAME", "anything")],
)  # fmt: skip
def test_values_inside_the_declaration_pass(notebook, name, value):
    assert _check(notebook, name, value) == value


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("COUNT", 0, "0 is out of range; it takes an integer in [1, 10]"),
        ("COUNT", 11, "out of range"),
        ("COUNT", 2.0, "2.0 is a float; it takes an integer"),
        ("COUNT", True, "True is a bool"),
        ("COUNT", None, "None is not allowed"),
        ("FRACTION", 0.0, "0.0 is out of range; it takes a number in (0, 1)"),
        ("FRACTION", 1.0, "out of range"),
        ("FRACTION", math.nan, "nan is not a finite number"),
        ("RATE", math.inf, "inf is not a finite number"),
        ("LIMIT", 0, "0 is out of range; it takes an integer in [1, inf)"),
        ("LIMIT", 2.5, "2.5 is not an integer"),
        ("KIND", "d", "'d' is not a choice; it takes one of 'b', 'a', 'c'"),
        ("KIND", None, "None is not allowed"),
        ("NAME", None, "None is not allowed; it takes text"),
        ("NAME", 3, "3 is an int"),
    ],
)
def test_values_outside_the_declaration_are_named_with_what_is_allowed(notebook, name, value, words):
    with pytest.raises(ValueError, match=rf"^parameter {name} of 01_demo: ") as caught:
        _check(notebook, name, value)
    assert words in str(caught.value)


def test_the_constraints_are_read_from_the_comments(notebook):
    specs = parameter_specs(notebook)
    assert (specs["COUNT"].low, specs["COUNT"].high, specs["COUNT"].integer) == (1, 10, True)
    assert specs["FRACTION"].low_open and specs["FRACTION"].high_open and not specs["RATE"].high_open
    assert specs["LIMIT"].integer and specs["LIMIT"].high == math.inf and specs["LIMIT"].allows_none
    assert specs["KIND"].choices == ("b", "a", "c")  # in the order written
    assert specs["CACHE"].allows_none and not specs["NAME"].allows_none
    assert specs["FREE"].allowed() == "any value"


@pytest.mark.parametrize(
    "source", sorted((repository_root() / "notebooks").glob("0*.py")), ids=lambda p: p.stem
)
def test_every_notebook_default_fits_its_own_declaration(source):
    for spec in parameter_specs(source).values():
        spec.check(spec.default, source.stem)


def test_every_documented_form_of_a_parameter_is_accepted_and_another_type_refused():
    """A comment that declares types (``str | dict | None``) is what the check follows (issue 47, item 19)."""
    from labutils.report import discover_notebooks
    from labutils.report.parameters import parameter_specs

    specs = {spec.name: spec for source in discover_notebooks() for spec in parameter_specs(source).values()}
    weights = specs["WEIGHTS"]
    assert weights.types == ("str", "dict", "None")
    for value in ("imagenet", "weights/{backbone}.weights.h5", {"vgg16": "vgg16.weights.h5"}, None):
        weights.check(value, "04_transfer")
    with pytest.raises(
        ValueError, match=r"WEIGHTS of 04_transfer: 3 is an int; it takes text or a dict or None"
    ):
        weights.check(3, "04_transfer")
    for spec in specs.values():
        spec.check(spec.default, "a notebook")  # every default passes its own check
        if spec.default is not None and spec.types is None and spec.choices is None:
            with pytest.raises(ValueError, match=f"parameter {spec.name} of a notebook"):
                spec.check(object(), "a notebook")
