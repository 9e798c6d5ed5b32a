"""EfficientNet-Lite0 with its packaged ImageNet weights, and the safe reader of PyTorch legacy files."""

from __future__ import annotations

import collections
import importlib.util
import io
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labutils.pretrained.efficientnet_lite import (
    convert_lite0_state_dict,
    efficientnet_lite0,
    lite0_weights,
    packaged_weights_file,
    preprocess_input,
)
from labutils.pretrained.torch_legacy import LEGACY_MAGIC_NUMBER, WeightsFileError, read_legacy_state_dict

CALLS: list[str] = []


def record_call(text: str) -> str:
    """What a hostile pickle would call: a test fails if this ever runs while reading."""
    CALLS.append(text)
    return text


class _Hostile:
    def __reduce__(self):
        return (record_call, ("code ran",))


@pytest.fixture(scope="module")
def packaged_state() -> dict[str, np.ndarray]:
    return read_legacy_state_dict(packaged_weights_file())


def _fake_torch(monkeypatch) -> tuple[types.FunctionType, dict[str, type]]:
    """Stand-ins named like PyTorch's, so that pickle writes the references a real legacy file holds."""
    torch_module, utils_module = types.ModuleType("torch"), types.ModuleType("torch._utils")

    def rebuild(*args):  # never called: files are only written here
        raise AssertionError

    rebuild.__module__, rebuild.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    utils_module._rebuild_tensor_v2 = rebuild
    storages = {}
    for name in ("FloatStorage", "LongStorage"):
        storages[name] = type(name, (), {"__module__": "torch"})
        setattr(torch_module, name, storages[name])
    monkeypatch.setitem(sys.modules, "torch", torch_module)
    monkeypatch.setitem(sys.modules, "torch._utils", utils_module)
    return rebuild, storages


def write_legacy_file(path: Path, state: dict[str, object], monkeypatch) -> Path:
    """Write ``state`` (name -> numpy array, or any picklable object) in PyTorch's legacy format."""
    rebuild, storages = _fake_torch(monkeypatch)
    arrays = {name: value for name, value in state.items() if isinstance(value, np.ndarray)}
    keys = {name: str(1000 + index) for index, name in enumerate(arrays)}

    class Tensor:
        def __init__(self, name: str, array: np.ndarray):
            self.name, self.array = name, array

        def __reduce__(self):
            shape = tuple(self.array.shape)
            stride = tuple(int(np.prod(shape[i + 1 :])) for i in range(len(shape)))
            return rebuild, (("storage", self.name), 0, shape, stride, False, collections.OrderedDict())

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, tuple) and len(obj) == 2 and obj[0] == "storage":
                array = arrays[obj[1]]
                kind = storages["LongStorage" if array.dtype == np.int64 else "FloatStorage"]
                return ("storage", kind, keys[obj[1]], "cpu", int(array.size), None)
            return None

    buffer = io.BytesIO()
    for value in (LEGACY_MAGIC_NUMBER, 1001, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(value, buffer, protocol=2)
    contents = collections.OrderedDict(
        (name, Tensor(name, value) if isinstance(value, np.ndarray) else value)
        for name, value in state.items()
    )
    Pickler(buffer, protocol=2).dump(contents)
    pickle.dump(list(keys.values()), buffer, protocol=2)
    for name in arrays:
        buffer.write(np.int64(arrays[name].size).tobytes())
        buffer.write(
            np.ascontiguousarray(arrays[name]).astype(arrays[name].dtype.newbyteorder("<")).tobytes()
        )
    path.write_bytes(buffer.getvalue())
    return path


def test_a_written_legacy_file_reads_back_exactly(tmp_path, monkeypatch):
    state = {
        "a.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
        "a.count": np.array(7, dtype=np.int64),
    }
    path = write_legacy_file(tmp_path / "small.pth", state, monkeypatch)
    monkeypatch.undo()
    read = read_legacy_state_dict(path)
    assert list(read) == ["a.weight", "a.count"]
    np.testing.assert_array_equal(read["a.weight"], state["a.weight"])
    assert read["a.count"].dtype == np.int64 and int(read["a.count"]) == 7


def test_the_packaged_file_holds_every_tensor_of_the_network(packaged_state):
    assert (
        sum(v.size for k, v in packaged_state.items() if not k.endswith("num_batches_tracked")) == 4_694_024
    )
    converted = convert_lite0_state_dict(packaged_state)
    model = efficientnet_lite0(include_top=True, weights=None)
    weighted = {
        layer.name: [tuple(w.shape) for w in layer.weights] for layer in model.layers if layer.weights
    }
    assert {name: [a.shape for a in arrays] for name, arrays in converted.items()} == weighted
    assert model.count_params() == 4_694_024


def _sample_photograph(name: str) -> np.ndarray:
    """One of scikit-image's sample photographs, centre-cropped and resized to 224 x 224 RGB."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-image (its sample photographs) is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / name
    image = Image.open(path).convert("RGB")
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    image = image.crop((left, top, left + side, top + side)).resize((224, 224), Image.BICUBIC)
    return np.asarray(image, dtype=np.float32)


def test_the_packaged_imagenet_weights_name_sample_photographs_as_imagenet_does(tmp_path):
    model = efficientnet_lite0(include_top=True, weights="imagenet", cache_dir=tmp_path)
    photos = np.stack([_sample_photograph(name) for name in ("chelsea.png", "coffee.png", "rocket.jpg")])
    probabilities = model.predict(preprocess_input(photos), verbose=0)
    top3 = np.argsort(probabilities, axis=1)[:, ::-1][:, :3]
    assert list(top3[0]) == [285, 282, 281]  # Egyptian cat, tiger cat, tabby cat
    assert top3[1, 0] == 967 and probabilities[1, 967] > 0.9  # espresso
    assert top3[2, 0] == 657 and 744 in top3[2]  # missile, projectile
    # randomly initialised, the same network names none of them
    random = efficientnet_lite0(include_top=True, weights=None).predict(preprocess_input(photos), verbose=0)
    assert list(random.argmax(axis=1)) != [285, 967, 657]


def test_a_pickle_that_would_call_a_function_is_refused_without_calling_it(tmp_path, monkeypatch):
    CALLS.clear()
    path = write_legacy_file(
        tmp_path / "hostile.pth", {"x": np.zeros(2, np.float32), "y": _Hostile()}, monkeypatch
    )
    monkeypatch.undo()
    with pytest.raises(
        WeightsFileError, match=r"hostile\.pth.*refused to load tests\.test_efficientnet_lite\.record_call"
    ):
        read_legacy_state_dict(path)
    assert CALLS == []
    # the same through the network's weights argument
    with pytest.raises(WeightsFileError, match="refused to load"):
        efficientnet_lite0(weights=path)
    assert CALLS == []


def test_a_plain_pickle_of_os_system_is_refused(tmp_path):
    path = tmp_path / "system.pth"
    path.write_bytes(pickle.dumps(LEGACY_MAGIC_NUMBER, protocol=2) + b"cos\nsystem\n(S'touch owned'\ntR.")
    with pytest.raises(WeightsFileError, match="refused to load os.system"):
        read_legacy_state_dict(path)
    assert not (Path.cwd() / "owned").exists()


def test_truncated_foreign_and_missing_files_get_one_clear_error(tmp_path):
    data = packaged_weights_file().read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) - 1000])
    with pytest.raises(WeightsFileError, match=r"cut\.pth: truncated: storage '\d+' needs \d+ more bytes"):
        read_legacy_state_dict(tmp_path / "cut.pth")
    (tmp_path / "cut_pickle.pth").write_bytes(data[:5000])
    with pytest.raises(WeightsFileError, match=r"cut_pickle\.pth: cannot read the state dict"):
        read_legacy_state_dict(tmp_path / "cut_pickle.pth")
    (tmp_path / "model.pth").write_bytes(b"PK\x03\x04 a zip archive")
    with pytest.raises(WeightsFileError, match=r"model\.pth: not a legacy PyTorch weights file \(a zip file"):
        read_legacy_state_dict(tmp_path / "model.pth")
    (tmp_path / "trailing.pth").write_bytes(data + b"extra")
    with pytest.raises(WeightsFileError, match="5 unexpected bytes"):
        read_legacy_state_dict(tmp_path / "trailing.pth")
    with pytest.raises(FileNotFoundError, match="absent.pth"):
        read_legacy_state_dict(tmp_path / "absent.pth")


def test_a_wrong_shaped_or_missing_tensor_is_named(tmp_path, monkeypatch, packaged_state):
    wrong = dict(packaged_state)
    wrong["_blocks.3._project_conv.weight"] = wrong["_blocks.3._project_conv.weight"][:20]
    path = write_legacy_file(tmp_path / "wrong.pth", wrong, monkeypatch)
    monkeypatch.undo()
    with pytest.raises(
        WeightsFileError,
        match=r"wrong\.pth: tensor '_blocks\.3\._project_conv\.weight' has shape "
        r"\(20, 144, 1, 1\), which does not fit layer block3a_project_conv",
    ):
        efficientnet_lite0(weights=path)
    missing = {k: v for k, v in packaged_state.items() if k != "_bn1.running_var"}
    with pytest.raises(WeightsFileError, match="'_bn1.running_var' .for layer top_bn. is missing"):
        convert_lite0_state_dict(missing)
    with pytest.raises(WeightsFileError, match="does not have: extra.weight"):
        convert_lite0_state_dict({**packaged_state, "extra.weight": np.zeros(1, np.float32)})


def test_the_converted_cache_equals_a_fresh_conversion_and_is_keyed_by_the_file(
    tmp_path, monkeypatch, packaged_state
):
    cache = tmp_path / "cache"
    fresh = convert_lite0_state_dict(packaged_state)
    first = lite0_weights(packaged_weights_file(), cache_dir=cache)
    (cached_file,) = cache.glob("efficientnet_lite0-*.npz")
    second = lite0_weights(packaged_weights_file(), cache_dir=cache)
    for layer, arrays in fresh.items():
        for fresh_array, first_array, second_array in zip(arrays, first[layer], second[layer], strict=True):
            np.testing.assert_array_equal(first_array, fresh_array)
            np.testing.assert_array_equal(second_array, fresh_array)
    # the second call read the cache: a marked cache entry comes back as marked
    with np.load(cached_file) as stored:
        marked = {key: stored[key] for key in stored.files}
    marked["top_bn/0"] = marked["top_bn/0"] + 1.0
    np.savez(cached_file, **marked)
    np.testing.assert_array_equal(
        lite0_weights(packaged_weights_file(), cache_dir=cache)["top_bn"][0], fresh["top_bn"][0] + 1.0
    )
    # another .pth file has another key, converted from its own tensors
    other = {k: (v * 2 if k == "_bn1.weight" else v) for k, v in packaged_state.items()}
    other_path = write_legacy_file(tmp_path / "other.pth", other, monkeypatch)
    monkeypatch.undo()
    converted = lite0_weights(other_path, cache_dir=cache)
    assert len(list(cache.glob("efficientnet_lite0-*.npz"))) == 2
    np.testing.assert_array_equal(converted["top_bn"][0], fresh["top_bn"][0] * 2)
    # an unreadable cache entry is converted again
    cached_file.write_bytes(b"not an npz")
    np.testing.assert_array_equal(
        lite0_weights(packaged_weights_file(), cache_dir=cache)["top_bn"][0], fresh["top_bn"][0]
    )


def test_the_network_rejects_bad_arguments():
    with pytest.raises(ValueError, match="pooling"):
        efficientnet_lite0(pooling="sum")
    with pytest.raises(ValueError, match="input_shape"):
        efficientnet_lite0(input_shape=(64, 64, 1))
