"""Model files from outside, checked before Keras reads them.

Loading itself is :func:`labutils.models.load_model`'s job, in Keras' safe mode.
"""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

__all__ = ["MAX_CONFIG_BYTES", "MAX_MEMBER_BYTES", "check_model_file"]

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

#: The most a ``.keras`` file's ``config.json`` or ``metadata.json`` may hold once inflated: the largest
#: of this project's is 0.17 MB (EfficientNet-Lite0's config), so a file past this is no real model's,
#: and Keras would read it whole into memory.
MAX_CONFIG_BYTES = 16 * 2**20
#: The most any other member may hold once inflated (the weights: VGG16 with its ImageNet head is 0.5 GB).
MAX_MEMBER_BYTES = 2 * 2**30


def check_model_file(path: str | Path) -> Path:
    """The path of a model file that looks like one, or a :class:`ValueError` / :class:`FileNotFoundError` that says why not.

    Checked without TensorFlow: that the file exists and is a file, that a ``.keras`` file is a
    zip archive whose members stay inside it and inflate to sizes a model has (the sizes its zip
    directory declares, which bound what can be read), and that an ``.h5`` / ``.hdf5`` file is HDF5.
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
        _check_members(path)
    elif suffix in {".h5", ".hdf5"}:
        with open(path, "rb") as handle:
            if handle.read(len(_HDF5_SIGNATURE)) != _HDF5_SIGNATURE:
                raise ValueError(f"model {path}: not an HDF5 file, as a {suffix} model must be")
    else:
        raise ValueError(
            f"model {path}: a model file ends in .keras (or the legacy .h5), not {suffix or 'nothing'}"
        )
    return path


def _check_members(path: Path) -> None:
    """A ValueError naming the member of a ``.keras`` archive that points outside it or inflates past the limits."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as error:
        raise ValueError(f"model {path}: the zip archive cannot be read ({error})") from error
    for member in members:
        parts = PurePosixPath(member.filename.replace("\\", "/")).parts
        if member.filename.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
            raise ValueError(f"model {path}: its member {member.filename!r} points outside the archive")
        limit = MAX_CONFIG_BYTES if member.filename in {"config.json", "metadata.json"} else MAX_MEMBER_BYTES
        if member.file_size > limit:
            raise ValueError(
                f"model {path}: its {member.filename} inflates to {member.file_size:,} bytes, more than the "
                f"{limit:,} a model's has"
            )
