"""save/load: nested round trips, bit-exact models, atomic writes, and never unpickling."""
import io
import json
import math
import os
import pickle
import re
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest

import tinygrad_rnn as tg
from helpers import DEVICES
from tinygrad_rnn import nn


def test_nested_structure_round_trips_with_types(tmp_path):
    tg.manual_seed(0)
    obj = {
        "weights": tg.randn(3, 2),
        "grad_leaf": tg.ones(2, dtype="float64", requires_grad=True),
        "ids": tg.Tensor(np.array([1, 2, 3])),
        "array": np.arange(6, dtype=np.int32).reshape(2, 3),
        "scalar_array": np.array(2.5),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "mask": np.array([True, False]),
        "state": {0: {"step": 3}, 1: {"step": 4}},  # int keys, as optimizer state dicts have
        "betas": (0.9, 0.999),
        "mixed": [None, True, False, -7, 2 ** 127 + 1, 1.5, math.inf, "näme", ["nested", {"k": (1, [2])}]],
        (1, "tuple key"): "value",
        None: "none key",
        "numpy_scalar": np.float32(0.5),
    }
    tg.save(obj, tmp_path / "obj.npz")
    loaded = tg.load(tmp_path / "obj.npz")
    assert list(loaded) == list(obj)
    assert isinstance(loaded["weights"], tg.Tensor) and loaded["weights"].dtype == tg.float32
    np.testing.assert_array_equal(loaded["weights"].numpy(), obj["weights"].numpy())
    assert loaded["grad_leaf"].requires_grad and loaded["grad_leaf"].dtype == tg.float64
    assert loaded["ids"].dtype == tg.int64 and not loaded["ids"].requires_grad
    assert isinstance(loaded["array"], np.ndarray) and loaded["array"].dtype == np.int32
    np.testing.assert_array_equal(loaded["array"], obj["array"])
    assert loaded["scalar_array"].shape == () and loaded["empty"].shape == (0, 4)
    assert loaded["mask"].dtype == bool
    assert loaded["state"] == {0: {"step": 3}, 1: {"step": 4}}
    assert loaded["betas"] == (0.9, 0.999) and isinstance(loaded["betas"], tuple)
    assert loaded["mixed"] == obj["mixed"]
    assert loaded[(1, "tuple key")] == "value" and loaded[None] == "none key"
    assert loaded["numpy_scalar"] == 0.5


def test_nan_and_rng_state_round_trip(tmp_path):
    tg.manual_seed(5)
    tg.randn(3)
    tg.save({"rng": tg.get_rng_state(), "nan": math.nan}, tmp_path / "rng.npz")
    expected = tg.randn(4).numpy()
    loaded = tg.load(tmp_path / "rng.npz")
    assert math.isnan(loaded["nan"])
    tg.set_rng_state(loaded["rng"])
    np.testing.assert_array_equal(tg.randn(4).numpy(), expected)


@pytest.mark.parametrize("device", DEVICES)
def test_model_state_dict_reproduces_outputs_bit_for_bit(device, tmp_path):
    tg.manual_seed(0)
    model = nn.Sequential(nn.Embedding(10, 4, padding_idx=0), nn.Linear(4, 3)).to(device)
    tg.save(model.state_dict(), tmp_path / "model.npz")
    fresh = nn.Sequential(nn.Embedding(10, 4, padding_idx=0), nn.Linear(4, 3)).to(device)
    state = tg.load(tmp_path / "model.npz")
    assert all(value.device == device for value in state.values())
    fresh.load_state_dict(state)
    indices = np.array([[1, 0, 9]])
    np.testing.assert_array_equal(fresh(indices).numpy(), model(indices).numpy())
    assert all(value.device == "cpu" for value in tg.load(tmp_path / "model.npz", device="cpu").values())


def test_unsupported_values_are_named_and_nothing_is_written(tmp_path):
    path = tmp_path / "bad.npz"
    with pytest.raises(TypeError, match=r"obj\['model'\]\['f'\] of type builtin_function"):
        tg.save({"model": {"ok": 1, "f": len}}, path)
    with pytest.raises(TypeError, match="object"):
        tg.save(np.array([{}], dtype=object), path)
    assert os.listdir(tmp_path) == []


def test_a_failure_mid_write_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.npz"
    tg.save({"epoch": 1, "w": tg.ones(3)}, path)
    before = path.read_bytes()

    def crash_mid_write(file, **arrays):
        file.write(b"PK\x03\x04 half an archive")
        raise OSError("No space left on device")

    monkeypatch.setattr(np, "savez", crash_mid_write)
    with pytest.raises(OSError, match="No space left"):
        tg.save({"epoch": 2, "w": tg.zeros(3)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["checkpoint.npz"]
    assert tg.load(path)["epoch"] == 1


def test_save_replaces_an_existing_file(tmp_path):
    path = tmp_path / "checkpoint.npz"
    tg.save({"epoch": 1}, path)
    tg.save({"epoch": 2}, str(path))
    assert tg.load(str(path)) == {"epoch": 2} and os.listdir(tmp_path) == ["checkpoint.npz"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # an ordinary file, not mkstemp's private 0600


UNPICKLED = []


class Tripwire:
    """Records being unpickled: loading must never get that far."""

    def __reduce__(self):
        return (UNPICKLED.append, ("unpickled!",))


def test_load_never_unpickles(tmp_path):
    # A checkpoint whose array entry was swapped for a pickled object array.
    tg.save({"w": np.zeros(2)}, tmp_path / "good.npz")
    with np.load(tmp_path / "good.npz") as archive:
        structure = archive["__structure__"]
    crafted = tmp_path / "crafted.npz"
    np.savez(crafted, __structure__=structure, a0=np.array([Tripwire()], dtype=object))
    with pytest.raises(ValueError, match="pickled"):
        tg.load(crafted)
    # A plain pickle file.
    with open(tmp_path / "plain.pkl", "wb") as file:
        pickle.dump({"w": Tripwire()}, file)
    with pytest.raises(ValueError, match="never unpickled"):
        tg.load(tmp_path / "plain.pkl")
    assert UNPICKLED == []


def test_load_rejects_files_that_are_not_checkpoints(tmp_path):
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(ValueError, match="not a tinygrad_rnn checkpoint"):
        tg.load(tmp_path / "other.npz")
    np.save(tmp_path / "single.npy", np.zeros(2))
    with pytest.raises(ValueError, match="single .npy"):
        tg.load(tmp_path / "single.npy")


# ---------------------------------------------------------------- damaged and hostile files
def npy_bytes(array=None, header=None) -> bytes:
    """A .npy stream: ``array``'s own, or ``header`` (a dict NumPy would write) over ``array``'s bytes."""
    buffer = io.BytesIO()
    if header is None:
        np.lib.format.write_array(buffer, array, allow_pickle=False)
    else:
        np.lib.format.write_array_header_1_0(buffer, header)
        buffer.write(array.tobytes())
    return buffer.getvalue()


def checkpoint_with(path, entries, structure=None, compression=zipfile.ZIP_STORED, root_json=None):
    """An .npz holding raw ``entries`` (name -> .npy bytes) and a structure (JSON-able, or its JSON text)."""
    if structure is not None or root_json is not None:
        root_json = json.dumps(structure) if root_json is None else root_json
        text = '{"format": "tinygrad_rnn.checkpoint", "version": 1, "root": ' + root_json + "}"
        entries = {**entries, "__structure__": npy_bytes(np.frombuffer(text.encode(), dtype=np.uint8))}
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in entries.items():
            archive.writestr(f"{name}.npy", data)
    return path


@pytest.mark.parametrize("shape", [(100_000, 1_000_000), (2 ** 29,)], ids=["400 GB", "2 GiB"])
def test_an_entry_claiming_more_than_the_file_holds_is_refused_before_allocating(tmp_path, shape):
    small = np.zeros(4, dtype=np.float32)
    lying = npy_bytes(small, {"descr": "<f4", "fortran_order": False, "shape": shape})
    path = checkpoint_with(tmp_path / "lying.npz", {"a0": lying}, {"tensor": "a0", "device": "cpu"})
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=re.escape(f"entry 'a0' claims shape {shape} of float32")):
            tg.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2 ** 20  # NumPy's own reader allocates the claimed size first


def test_an_entry_claiming_an_impossible_inflation_is_refused(tmp_path):
    path = checkpoint_with(tmp_path / "bomb.npz", {"a0": npy_bytes(np.zeros(1000))}, {"array": "a0"},
                           compression=zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    # declare a gigabyte as the entry's inflated size, in its local header and its central directory record
    local, central = data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, 10 ** 9)
    struct.pack_into("<I", data, central + 24, 10 ** 9)
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="more than deflate can"):
        tg.load(path)


def test_a_file_that_is_not_an_npz_archive_is_named_without_numpys_advice(tmp_path):
    for name, content in (("text.npz", b"hello, this is not a checkpoint\n"), ("empty.npz", b""),
                          ("pickle.npz", pickle.dumps({"w": [1, 2]}))):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match="not a tinygrad_rnn checkpoint \\(not a .npz archive\\)") as info:
            tg.load(tmp_path / name)
        assert "allow_pickle" not in str(info.value) and str(tmp_path / name) in str(info.value)
    with pytest.raises(FileNotFoundError):
        tg.load(tmp_path / "missing.npz")


def test_a_deeply_nested_structure_is_refused_clearly(tmp_path):
    path = checkpoint_with(tmp_path / "deep.npz", {}, root_json="[" * 5000 + "7" + "]" * 5000)
    with pytest.raises(ValueError, match="nested deeper than 100 levels"):
        tg.load(path)  # used to raise RecursionError
    medium = [7]
    for _ in range(150):
        medium = [medium]
    path = checkpoint_with(tmp_path / "medium.npz", {}, medium)
    with pytest.raises(ValueError, match="nested deeper than 100 levels"):
        tg.load(path)
    with pytest.raises(ValueError, match="nested deeper than 100 levels"):
        tg.save(medium, tmp_path / "never.npz")  # save never writes what load refuses
    assert not (tmp_path / "never.npz").exists()
    nested = [7]
    for _ in range(50):
        nested = [nested]
    tg.save(nested, tmp_path / "fine.npz")
    assert tg.load(tmp_path / "fine.npz") == nested


@pytest.mark.parametrize("structure, message", [
    ([{"array": "a0"}, {"array": "a0"}], "refers to array 'a0' twice"),
    ({"array": "a9"}, "refers to a missing array 'a9'"),
    ({"array": 3}, "malformed array node"),
    ({"array": "a0", "device": "tpu"}, "malformed array node"),
    ({"tensor": "a1", "requires_grad": True}, "requires_grad=True on an array of dtype int64"),
    ({"tensor": "a0", "requires_grad": "yes"}, "requires_grad='yes'"),
    ({"dict": [[{"dict": []}, 1]]}, "dict key of type dict"),
    ({"dict": [[1]]}, "malformed dict item"),
    ({"set": [1, 2]}, "unknown node"),
])
def test_a_damaged_structure_is_a_value_error_naming_the_problem(tmp_path, structure, message):
    entries = {"a0": npy_bytes(np.zeros(3)), "a1": npy_bytes(np.arange(3))}
    path = checkpoint_with(tmp_path / "damaged.npz", entries, structure)
    with pytest.raises(ValueError, match=re.escape(message)):
        tg.load(path)


def test_a_wrong_format_version_or_entry_dtype_is_refused(tmp_path):
    path = tmp_path / "v.npz"
    text = json.dumps({"format": "tinygrad_rnn.checkpoint", "version": "1", "root": None}).encode()
    checkpoint_with(path, {"__structure__": npy_bytes(np.frombuffer(text, dtype=np.uint8))})
    with pytest.raises(ValueError, match="format version '1' is not a number"):
        tg.load(path)
    checkpoint_with(path, {"a0": npy_bytes(np.array(["text"]))}, {"array": "a0"})
    with pytest.raises(ValueError, match="entry 'a0' has dtype <U4"):
        tg.load(path)


def test_atomic_open_writes_text_and_binary_and_leaves_nothing_on_failure(tmp_path):
    from tinygrad_rnn.serialization import atomic_open

    path = tmp_path / "notes.txt"
    with atomic_open(path, "w") as handle:
        handle.write("año\n")
    assert path.read_text(encoding="utf-8") == "año\n"
    with pytest.raises(RuntimeError, match="half way"):
        with atomic_open(path, "wb") as handle:
            handle.write(b"partial")
            assert handle.name != str(path) and os.path.dirname(handle.name) == str(tmp_path)
            raise RuntimeError("half way")
    assert path.read_text(encoding="utf-8") == "año\n" and os.listdir(tmp_path) == ["notes.txt"]
    with pytest.raises(ValueError, match="mode"):
        with atomic_open(path, "a"):
            pass
