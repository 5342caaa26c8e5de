"""Tests for tinygrad_rnn.tensor: what a Tensor may be made of (numbers only, as in PyTorch)."""
import numpy as np
import pytest

import tinygrad_rnn as tg


@pytest.mark.parametrize("data", ["hello", {"a": 1}, None, {1, 2}, b"ab", ["a", "b"], [object()], [1, "2"],
                                  np.array(["x"]), np.array([{}], dtype=object), np.str_("s")],
                         ids=["str", "dict", "None", "set", "bytes", "list of str", "list of object", "mixed list",
                              "str array", "object array", "NumPy str"])
def test_non_numeric_data_is_refused(data):
    with pytest.raises(TypeError, match="Tensor data must be (numbers|numeric)"):
        tg.Tensor(data)


def test_a_ragged_list_is_refused_with_a_short_message():
    with pytest.raises(ValueError, match=r"rectangular nested list of numbers, got a ragged list \[\[1, 2\], \[3\]\]"):
        tg.Tensor([[1, 2], [3]])


@pytest.mark.parametrize("data, dtype", [(1.5, "float32"), ([[1, 2]], "int64"), (True, "bool"), (1 + 2j, "complex128"),
                                         (np.arange(3, dtype=np.int8), "int8"), (np.float64(2.0), "float64"),
                                         ([], "float32")])
def test_numeric_data_is_still_accepted(data, dtype):
    tensor = tg.Tensor(data)
    assert tensor.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(tensor.numpy(), np.asarray(data))
