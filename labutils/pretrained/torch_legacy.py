"""Read a PyTorch state dict saved in the *legacy* format, with numpy and the standard library only.

The legacy format (``torch.save(..., _use_new_zipfile_serialization=False)``) is a stream of
pickles: a magic number, the protocol version and a small dict of system information, then the
state dict itself (its tensors point at storages through pickle persistent ids), then the list
of storage keys, and then each storage in that order as a little-endian int64 element count
followed by the raw little-endian values.

A pickle can call any importable function, so this reader never uses :func:`pickle.load` on
the file: :class:`_RestrictedUnpickler` resolves only an allow-list of names (the ordered dict,
PyTorch's tensor-rebuild function, the storage types) to harmless stand-ins and refuses every
other name before anything is called. A file that is truncated, that is not a legacy PyTorch
file, or whose tensors point outside their storages gets one :class:`WeightsFileError` that
names the file.
"""

from __future__ import annotations

import collections
import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["WeightsFileError", "read_legacy_state_dict"]

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001

#: PyTorch storage type -> numpy dtype of its elements (little-endian, as the file stores them).
_STORAGE_DTYPES: dict[str, np.dtype] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class WeightsFileError(ValueError):
    """A weights file that cannot be read safely, with the file named in the message."""


@dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def dtype(self) -> np.dtype:
        return _STORAGE_DTYPES[self.name]


@dataclass(frozen=True)
class _StorageReference:
    key: str
    storage_type: _StorageType
    elements: int


@dataclass(frozen=True)
class _TensorReference:
    storage: _StorageReference
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, *_):
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: records where the tensor's values lie."""
    if not isinstance(storage, _StorageReference):
        raise pickle.UnpicklingError("a tensor refers to something that is not a storage")
    values = (storage_offset, *size, *stride)
    if not all(isinstance(value, int) and value >= 0 for value in values) or len(size) != len(stride):
        raise pickle.UnpicklingError("a tensor has a malformed offset, size or stride")
    return _TensorReference(storage, int(storage_offset), tuple(size), tuple(stride))


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the names a legacy state dict needs; any other name is refused, uncalled."""

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(
            f"refused to load {module}.{name}: not a tensor, storage or ordered dict"
        )

    def persistent_load(self, persistent_id):
        if (
            not isinstance(persistent_id, tuple)
            or len(persistent_id) < 5
            or persistent_id[0] != "storage"
            or not isinstance(persistent_id[1], _StorageType)
            or not isinstance(persistent_id[2], str)
            or not isinstance(persistent_id[4], int)
        ):
            raise pickle.UnpicklingError(f"unexpected persistent id {str(persistent_id)[:80]!r}")
        if len(persistent_id) > 5 and persistent_id[5] is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        return _StorageReference(persistent_id[2], persistent_id[1], persistent_id[4])


def _load_pickle(stream: io.BufferedIOBase, what: str):
    try:
        return _RestrictedUnpickler(stream).load()
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        MemoryError,
        RecursionError,
    ) as error:
        raise WeightsFileError(f"{what}: {error or type(error).__name__}") from None


def read_legacy_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of a legacy-format PyTorch state dict, as numpy arrays in their PyTorch layout.

    Raises :class:`FileNotFoundError` for a missing file and :class:`WeightsFileError` (naming the
    file) for anything that is not a complete legacy state dict of tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} not found")
    data = path.read_bytes()
    stream = io.BytesIO(data)

    def fail(reason: str) -> WeightsFileError:
        return WeightsFileError(f"{path}: {reason}")

    try:
        magic = _RestrictedUnpickler(stream).load()
    except Exception:  # noqa: BLE001 - any failure here means "not this format"
        magic = None
    if magic != LEGACY_MAGIC_NUMBER:
        hint = " (a zip file: save it with _use_new_zipfile_serialization=False)" if data[:2] == b"PK" else ""
        raise fail(f"not a legacy PyTorch weights file{hint}")
    try:
        version = _load_pickle(stream, "protocol version")
        system = _load_pickle(stream, "system information")
        state = _load_pickle(stream, "state dict")
        keys = _load_pickle(stream, "storage keys")
    except WeightsFileError as error:
        raise fail(f"cannot read the {error}") from None
    if version != LEGACY_PROTOCOL_VERSION:
        raise fail(f"unsupported protocol version {version!r}")
    if not isinstance(system, dict) or not system.get("little_endian", False):
        raise fail("only little-endian files are supported")
    if not isinstance(state, collections.OrderedDict | dict) or not isinstance(keys, list):
        raise fail("the pickle is not a state dict")

    storage_types: dict[str, _StorageReference] = {}
    for tensor in state.values():
        if not isinstance(tensor, _TensorReference):
            raise fail("the state dict holds something that is not a tensor")
        storage_types.setdefault(tensor.storage.key, tensor.storage)
    storages: dict[str, np.ndarray] = {}
    position = stream.tell()
    for key in keys:
        reference = storage_types.get(key)
        if reference is None:
            raise fail(f"storage {key!r} is listed but no tensor uses it")
        if position + 8 > len(data):
            raise fail(f"truncated: storage {key!r} is missing")
        elements = int(np.frombuffer(data, dtype="<i8", count=1, offset=position)[0])
        dtype = reference.storage_type.dtype
        end = position + 8 + elements * dtype.itemsize
        if elements != reference.elements or elements < 0:
            raise fail(
                f"storage {key!r} holds {elements} values where the state dict expects {reference.elements}"
            )
        if end > len(data):
            raise fail(f"truncated: storage {key!r} needs {end - len(data)} more bytes")
        storages[key] = np.frombuffer(data, dtype=dtype, count=elements, offset=position + 8)
        position = end
    if position != len(data):
        raise fail(f"{len(data) - position} unexpected bytes after the last storage")

    arrays: dict[str, np.ndarray] = {}
    for name, tensor in state.items():
        storage = storages.get(tensor.storage.key)
        if storage is None:
            raise fail(
                f"tensor {name!r} refers to storage {tensor.storage.key!r}, which the file does not hold"
            )
        last = tensor.offset + sum(
            (size - 1) * stride for size, stride in zip(tensor.shape, tensor.stride, strict=True)
        )
        if 0 in tensor.shape:
            arrays[name] = np.zeros(tensor.shape, dtype=storage.dtype)
            continue
        if last >= len(storage):
            raise fail(f"tensor {name!r} reaches past the end of its storage")
        view = np.lib.stride_tricks.as_strided(
            storage[tensor.offset :],
            shape=tensor.shape,
            strides=tuple(stride * storage.itemsize for stride in tensor.stride),
            writeable=False,
        )
        arrays[str(name)] = np.array(view, dtype=storage.dtype.newbyteorder("="))
    return arrays
