"""The package's public surface: every exported name resolves, and the export table matches __all__."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import labutils


def test_the_names_read_from_each_modules_source_are_its_all():
    for module in labutils._PUBLIC_MODULES:
        declared = labutils._declared_names(module)
        assert declared == tuple(importlib.import_module(f"labutils.{module}").__all__), module
    # no name is exported by two modules
    assert len(labutils._MODULE_OF) == sum(len(labutils._declared_names(m)) for m in labutils._PUBLIC_MODULES)


def test_every_exported_name_resolves():
    for name in labutils.__all__:
        assert getattr(labutils, name) is not None
    assert labutils.label_to_letter(0) == "A"


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = labutils.no_such_thing


def test_importing_the_package_does_not_import_plotting_or_tensorflow():
    # the CLI and the benchmark's settings (built when labutils.bench is imported) check their choices without Keras
    code = "import sys, labutils.cli, labutils.bench; print(any(m in sys.modules for m in ('seaborn', 'tensorflow', 'keras')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr
