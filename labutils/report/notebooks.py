"""The notebooks as files: found in run order, converted from jupytext, exported to HTML, with their kernel."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from ..sources import repository_root
from .files import write_atomically
from .worker import PACKAGE_FOLDER

__all__ = [
    "KERNEL_NAME",
    "KERNEL_OPTIONS",
    "KERNEL_START",
    "cell_count",
    "discover_notebooks",
    "ensure_kernel",
    "ensure_lab_settings",
    "ensure_paired_notebooks",
    "LAB_SETTINGS",
    "export_html",
    "to_ipynb",
]

KERNEL_NAME = "sign-mnist"


def discover_notebooks(folder: Path | None = None) -> list[Path]:
    """The notebook sources ``NN_name.py`` in run order."""
    folder = Path(folder) if folder else repository_root() / "notebooks"
    return sorted(path for path in folder.glob("[0-9][0-9]_*.py") if path.is_file())


#: Python the kernel runs before the notebook's first cell, from the files of four modules that import
#: only the standard library (:func:`~labutils.report.worker.standalone`), so that a kernel does not
#: load TensorFlow before its notebook asks for it: ask for oneDNN and GPU memory growth, which
#: TensorFlow reads once as it loads, even where a notebook imports ``keras`` before ``labutils``
#: (:mod:`labutils.runtime.onednn`), watch the process that launched the kernel
#: (:mod:`labutils.report.orphans`), so that it never outlives a killed run, and keep the traceback of
#: a reply the kernel cannot send once a stopped run has shut it down off the terminal
#: (:mod:`labutils.runtime.quiet`).
KERNEL_START = "; ".join(
    [
        "import runpy",
        f"runpy.run_path({str(PACKAGE_FOLDER / 'runtime' / 'onednn.py')!r})['prefer_onednn']()",
        f"runpy.run_path({str(PACKAGE_FOLDER / 'runtime' / 'device.py')!r})['prefer_gpu_memory_growth']()",
        f"runpy.run_path({str(PACKAGE_FOLDER / 'report' / 'orphans.py')!r})['end_kernel_with_its_launcher']()",
        f"runpy.run_path({str(PACKAGE_FOLDER / 'runtime' / 'quiet.py')!r})['quiet_kernel_shutdown']()",
    ]
)

#: The kernel leaves output written below Python (TensorFlow's C++ start-up lines) to the process's
#: standard error, where :mod:`labutils.runtime.quiet` filters it, instead of copying it into the notebook;
#: Python's own warnings still show in the notebook. Then it runs :data:`KERNEL_START`.
KERNEL_OPTIONS = ("--IPKernelApp.capture_fd_output=False", f"--IPKernelApp.exec_lines={KERNEL_START}")


def ensure_kernel(name: str = KERNEL_NAME) -> str:
    """Install (once) a Jupyter kernel that runs this Python, so notebooks use the project's venv."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    manager = KernelSpecManager()
    try:
        spec = manager.get_kernel_spec(name)
        if (
            spec.argv
            and Path(spec.argv[0]).resolve() == Path(sys.executable).resolve()
            and all(option in spec.argv for option in KERNEL_OPTIONS)
        ):
            return name
    except NoSuchKernel:
        pass
    from ipykernel.kernelspec import install

    folder = Path(install(kernel_name=name, display_name="Python (sign-mnist)", prefix=sys.prefix))
    spec_file = folder / "kernel.json"
    spec = json.loads(spec_file.read_text(encoding="utf-8"))
    spec["argv"] = [*spec["argv"], *KERNEL_OPTIONS]
    write_atomically(spec_file, json.dumps(spec, indent=1) + "\n")  # a kernel starting now reads a whole file
    return name


#: JupyterLab's settings for this project, written into the virtualenv by :func:`ensure_lab_settings`: a
#: double-click opens a ``.py`` notebook as a notebook (jupytext's viewer), not in the text editor.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"python": "Jupytext Notebook"}}
}


def ensure_lab_settings(prefix: Path | None = None) -> Path:
    """Write :data:`LAB_SETTINGS` into ``PREFIX/share/jupyter/lab/settings/overrides.json`` (this Python's
    prefix: the virtualenv), keeping any other setting the file holds; returns the file."""
    settings_file = Path(prefix or sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    try:
        settings = json.loads(settings_file.read_text(encoding="utf-8")) if settings_file.exists() else {}
    except json.JSONDecodeError as error:
        raise ValueError(f"{settings_file}: not valid JSON ({error}); fix or remove it") from error
    if not isinstance(settings, dict):
        raise ValueError(f"{settings_file}: expected a JSON object of JupyterLab settings")
    for plugin, values in LAB_SETTINGS.items():
        merged = settings.setdefault(plugin, {})
        merged["defaultViewers"] = {**merged.get("defaultViewers", {}), **values["defaultViewers"]}
    settings_file.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(settings_file, json.dumps(settings, indent=2) + "\n")
    return settings_file


def ensure_paired_notebooks(folder: Path | None = None) -> list[Path]:
    """Write the ``.ipynb`` each notebook source is paired with (its header's ``formats``), where it is
    missing: the source's cells without outputs, and the ``language_info`` this Python's kernel reports.

    JupyterLab writes that field into a notebook as its kernel starts, and a notebook that lacked it
    opens marked unsaved ("Save changes?" on closing it unedited). The file is dated as its source,
    so that jupytext reads the source as the newer. Returns the files written; existing ones, with a
    session's outputs, are kept as they are.
    """
    import jupytext
    from ipykernel.ipkernel import IPythonKernel
    from jupytext.paired_paths import paired_paths

    written = []
    for source in discover_notebooks(folder):
        notebook = jupytext.read(source)
        formats = notebook.metadata.get("jupytext", {}).get("formats")
        for path, format_options in paired_paths(str(source), "py:percent", formats) if formats else []:
            paired = Path(path)
            if format_options.get("extension") != ".ipynb" or paired.exists():
                continue
            notebook.metadata["language_info"] = dict(IPythonKernel.language_info)
            paired.parent.mkdir(parents=True, exist_ok=True)
            jupytext.write(notebook, paired, fmt="ipynb")
            modified = source.stat().st_mtime
            os.utime(paired, (modified, modified))
            written.append(paired)
    return written


def to_ipynb(source: Path, target: Path) -> Path:
    import jupytext

    notebook = jupytext.read(source)
    # an executed notebook stands on its own: not paired with an interactive session's outputs/
    notebook.metadata.get("jupytext", {}).pop("formats", None)
    _inject_after_profile(notebook)
    notebook.metadata["kernelspec"] = {
        "name": KERNEL_NAME,
        "display_name": "Python (sign-mnist)",
        "language": "python",
    }
    jupytext.write(notebook, target, fmt="ipynb")
    return target


def _inject_after_profile(notebook: Any) -> None:
    """Papermill adds the run's values after the first cell tagged ``parameters``; where a notebook has a
    cell tagged ``profile`` (the quick profile's settings, taken when ``PROFILE = "quick"``), the tag
    moves there, so that the run's values come after it and ``-p`` overrides the quick settings too."""
    profile = [cell for cell in notebook.cells if "profile" in cell.metadata.get("tags", [])]
    if not profile:
        return
    for cell in notebook.cells:
        tags = cell.metadata.get("tags", [])
        if "parameters" in tags:
            tags.remove("parameters")
    profile[0].metadata["tags"].append("parameters")


def export_html(notebook_file: Path, html_file: Path) -> None:
    import nbformat
    from nbconvert import HTMLExporter

    notebook = nbformat.read(notebook_file, as_version=4)
    # "offline": the lab template minus require.js and MathJax, which it would load from a CDN
    exporter = HTMLExporter(
        template_name="offline", extra_template_basedirs=[str(Path(__file__).parent / "templates")]
    )
    body, _ = exporter.from_notebook_node(notebook)
    write_atomically(html_file, body)


def cell_count(notebook_file: Path) -> int:
    import nbformat

    try:
        return sum(cell.cell_type == "code" for cell in nbformat.read(notebook_file, as_version=4).cells)
    except Exception:  # an unreadable partial notebook: the count is only for the progress line
        return 0
