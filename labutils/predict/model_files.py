"""Model files from outside, checked before Keras reads them.

Loading itself is :func:`labutils.models.load_model`'s job, in Keras' safe mode.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

__all__ = ["check_model_file"]

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def check_model_file(path: str | Path) -> Path:
    """The path of a model file that looks like one, or a :class:`ValueError` / :class:`FileNotFoundError` that says why not.

    Checked without TensorFlow: that the file exists and is a file, that a ``.keras`` file is a
    zip archive and an ``.h5`` / ``.hdf5`` file is HDF5.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"model {path}: is a folder; pass the model's .keras file")
    if not path.exists():
        raise FileNotFoundError(f"model file {path} not found")
    suffix = path.suffix.lower()
    if suffix == ".keras":
        if not zipfile.is_zipfile(path):
            raise ValueError(
                f"model {path}: not a Keras model file (a .keras file is a zip archive; this one is not)"
            )
    elif suffix in {".h5", ".hdf5"}:
        with open(path, "rb") as handle:
            if handle.read(len(_HDF5_SIGNATURE)) != _HDF5_SIGNATURE:
                raise ValueError(f"model {path}: not an HDF5 file, as a {suffix} model must be")
    else:
        raise ValueError(
            f"model {path}: a model file ends in .keras (or the legacy .h5), not {suffix or 'nothing'}"
        )
    return path
