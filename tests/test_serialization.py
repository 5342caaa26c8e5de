"""save/load: nested round trips, bit-exact models, atomic writes, and never unpickling."""
import math
import os
import pickle

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
