"""The report: every notebook executed with papermill, exported to HTML, and an index page over them.

``python -m labutils report`` runs :func:`run_report`. Each notebook ``notebooks/NN_name.py``
(jupytext percent format, the source of truth) is converted to ``.ipynb``, executed with its
profile's parameters into ``reports/NN_name/`` and exported to HTML beside it;
``reports/index.html`` answers the lab's questions from the notebooks' ``metrics.json`` and links
them all. A failing notebook keeps its partial output, is marked failed, and does not stop the
others. The modules, one job each:

* ``runner`` — the run: which notebooks, in order, with what, and the index written after each;
* ``profiles`` — the quick and full profiles' parameters;
* ``parameters`` — a notebook's parameters cell read, and ``-p NAME VALUE`` checked against it;
* ``notebooks`` — finding, converting and exporting the notebook files, and their kernel;
* ``execution`` — one notebook executed in a process of its own, stopped cleanly by a signal;
* ``worker`` — that process (``python -P .../report/worker.py JOB``, run from its file so that it never
  loads TensorFlow), and ``errors`` the one line either says about an error;
* ``orphans`` — the worker and the kernel ending with the process that started them;
* ``progress`` — the running notebook's cell progress on the terminal;
* ``cache`` — a notebook's last result reused while nothing it depends on has changed;
* ``state`` and ``files`` — the records of a run, and the runner's own files;
* ``provenance`` — the machine and package versions a run records;
* ``index`` — the index page and the results table;
* ``browser`` — the rendered report checked in a real browser (``python -m labutils check``).
"""

from __future__ import annotations

from .cache import notebook_fingerprint
from .notebooks import KERNEL_NAME, discover_notebooks, ensure_kernel
from .parameters import RUNNER_PARAMETERS, declared_parameters, parse_parameter_value, validate_overrides
from .profiles import CELL_TIMEOUT, PROFILES, notebook_parameters
from .runner import run_report, write_index
from .state import NotebookResult, ReportResult

__all__ = [
    "CELL_TIMEOUT",
    "KERNEL_NAME",
    "PROFILES",
    "RUNNER_PARAMETERS",
    "NotebookResult",
    "ReportResult",
    "declared_parameters",
    "discover_notebooks",
    "ensure_kernel",
    "notebook_fingerprint",
    "notebook_parameters",
    "parse_parameter_value",
    "run_report",
    "validate_overrides",
    "write_index",
]
