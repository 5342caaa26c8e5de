"""Tests for tinygrad_rnn.ops.dims: every op that takes a dim or sizes checks them as PyTorch does.

The expected messages are PyTorch 2's (checked against torch by hand); no torch import here.
"""
import re

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn.nn import functional as F

A = tg.Tensor(np.arange(6.0).reshape(2, 3))
SCALAR = tg.Tensor(np.float32(1.5))


def out_of_range(low, high, got):
    return re.escape(f"Dimension out of range (expected to be in range of [{low}, {high}], but got {got})")


# (name, call with the dim): one entry per op that takes a dim; in-range dims are compared with
# NumPy in test_engine_fuzz.py
DIM_OPS = [
    ("sum", lambda d: A.sum(dim=d)),
    ("sum tuple", lambda d: A.sum(dim=(0, d))),
    ("mean", lambda d: A.mean(dim=d)),
    ("mean tuple", lambda d: A.mean(dim=(0, d))),
    ("max", lambda d: A.max(d)),
    ("min", lambda d: A.min(d)),
    ("logsumexp", lambda d: A.logsumexp(d)),
    ("argmax", lambda d: A.argmax(d)),
    ("argmin", lambda d: A.argmin(d)),
    ("softmax", lambda d: F.softmax(A, d)),
    ("log_softmax", lambda d: F.log_softmax(A, d)),
    ("squeeze", lambda d: A.squeeze(d)),
    ("squeeze tuple", lambda d: A.squeeze((0, d))),
    ("transpose first", lambda d: A.transpose(d, 0)),
    ("transpose second", lambda d: A.transpose(0, d)),
    ("permute", lambda d: A.permute(0, d)),
    ("flatten start", lambda d: A.flatten(d)),
    ("flatten end", lambda d: A.flatten(0, d)),
    ("cat", lambda d: tg.cat([A, A], dim=d)),
    ("split", lambda d: A.split(1, dim=d)),
    ("chunk", lambda d: A.chunk(2, dim=d)),
    ("gather", lambda d: A.gather(d, np.zeros((2, 3), dtype=np.int64))),
    ("size", lambda d: A.size(d)),
]


@pytest.mark.parametrize("name, call", DIM_OPS, ids=[name for name, _ in DIM_OPS])
@pytest.mark.parametrize("dim", [2, 7, -3, -9])
def test_an_out_of_range_dim_raises_index_error(name, call, dim):
    with pytest.raises(IndexError, match=out_of_range(-2, 1, dim)):
        call(dim)


@pytest.mark.parametrize("call", [lambda d: A.unsqueeze(d), lambda d: tg.stack([A, A], dim=d)],
                         ids=["unsqueeze", "stack"])
def test_new_dimension_ops_allow_one_position_more(call):
    for dim in range(-3, 3):
        assert call(dim).ndim == 3
    for dim in (3, 9, -4):
        with pytest.raises(IndexError, match=out_of_range(-3, 2, dim)):
            call(dim)


def test_unsqueeze_and_stack_positions_match_numpy():
    for dim in range(-3, 3):
        assert A.unsqueeze(dim).shape == np.expand_dims(A.numpy(), dim).shape
        np.testing.assert_array_equal(tg.stack([A, A + 1], dim=dim).numpy(),
                                      np.stack([A.numpy(), A.numpy() + 1], axis=dim))


def test_a_0d_tensor_accepts_dim_0_and_minus_1_like_pytorch():
    for dim in (0, -1):
        assert SCALAR.sum(dim).item() == 1.5
        assert SCALAR.mean(dim).item() == 1.5
        assert SCALAR.max(dim).item() == 1.5
        assert SCALAR.logsumexp(dim).item() == pytest.approx(1.5)
        assert SCALAR.argmax(dim).item() == 0
        assert F.softmax(SCALAR, dim).item() == 1.0
        assert SCALAR.squeeze(dim).shape == ()
        assert SCALAR.transpose(dim, 0).shape == ()
        assert SCALAR.unsqueeze(dim).shape == (1,)
        assert SCALAR.flatten(dim).shape == (1,)
    for call in (lambda: SCALAR.sum(1), lambda: SCALAR.max(1), lambda: SCALAR.unsqueeze(1),
                 lambda: F.softmax(SCALAR, 1), lambda: SCALAR.transpose(0, 1), lambda: SCALAR.argmax(-2)):
        with pytest.raises(IndexError, match=r"expected to be in range of \[-1, 0\]"):
            call()


def test_0d_tensor_gradients_through_dim_ops():
    x = tg.Tensor(np.float64(0.7), requires_grad=True)
    tg.gradcheck(lambda t: t.max(0) * t.sum(-1) + t.logsumexp(0), [x])


def test_dims_must_be_ints():
    assert A.sum(np.int64(1)).shape == (2,)
    for bad in (1.0, "1", True):
        with pytest.raises(TypeError, match="dim must be an int"):
            A.unsqueeze(bad)
    with pytest.raises(TypeError, match="dim must be an int"):
        A.sum(dim=1.0)


def test_a_repeated_reduction_dim_is_refused():
    with pytest.raises(RuntimeError, match="dim 0 appears multiple times in the list of dims"):
        A.sum(dim=(0, -2))
    with pytest.raises(RuntimeError, match="dim 1 appears multiple times"):
        A.mean(dim=[1, 1])


def test_permute_needs_each_dim_once():
    with pytest.raises(RuntimeError, match=re.escape("input.dim() = 2 is not equal to len(dims) = 1")):
        A.permute(0)
    with pytest.raises(RuntimeError, match=re.escape("input.dim() = 2 is not equal to len(dims) = 3")):
        A.permute(0, 1, 2)
    with pytest.raises(RuntimeError, match=re.escape("permute(): duplicate dims are not allowed.")):
        A.permute(1, -1)
    assert A.permute(-1, 0).shape == (3, 2)


def test_split_and_chunk_sizes_follow_pytorch():
    with pytest.raises(RuntimeError, match="split_size can only be 0 if dimension size is 0, but got dimension "
                                           "size of 2"):
        A.split(0)
    with pytest.raises(RuntimeError, match="split expects split_size be non-negative, but got split_size=-1"):
        A.split(-1)
    with pytest.raises(RuntimeError, match=re.escape("split_with_sizes expects split_sizes have only non-negative "
                                                     "entries, but got split_sizes=[4, -1]")):
        A.split([4, -1], dim=1)
    for chunks in (0, -1):
        with pytest.raises(RuntimeError, match=f"chunk expects `chunks` to be greater than 0, got: {chunks}"):
            A.chunk(chunks)
    with pytest.raises(RuntimeError, match="split expects at least a 1-dimensional tensor"):
        SCALAR.split(1)
    with pytest.raises(RuntimeError, match="chunk expects at least a 1-dimensional tensor"):
        SCALAR.chunk(1)
    empty = tg.zeros(0, 2)
    assert [piece.shape for piece in empty.split(0)] == [(0, 2)]
    assert [piece.shape for piece in empty.split(2)] == [(0, 2)]
    assert [piece.shape for piece in empty.chunk(3)] == [(0, 2)] * 3
    assert [piece.shape for piece in tg.zeros(5).chunk(4)] == [(2,), (2,), (1,)]
    assert [piece.shape for piece in A.split(10, dim=1)] == [(2, 3)]


def test_flatten_start_must_not_come_after_end():
    with pytest.raises(RuntimeError, match="start_dim cannot come after end_dim"):
        A.flatten(1, 0)
    assert A.flatten(-2, -1).shape == (6,) and A.flatten(1, 1).shape == (2, 3)


def test_expand_checks_sizes_like_pytorch():
    with pytest.raises(RuntimeError, match=re.escape("The expanded size of the tensor (3) must match the existing "
                                                     "size (2) at non-singleton dimension 0.  Target sizes: [3, 3].  "
                                                     "Tensor sizes: [2, 3]")):
        A.expand(3, 3)
    with pytest.raises(RuntimeError, match=re.escape("the number of sizes provided (1) must be greater or equal to "
                                                     "the number of dimensions in the tensor (2)")):
        A.expand(3)
    with pytest.raises(RuntimeError, match=re.escape("The expanded size of the tensor (-1) isn't allowed in a "
                                                     "leading, non-existing dimension 0")):
        A.expand(-1, 2, 3)  # used to take the size of the last dimension
    with pytest.raises(RuntimeError, match=re.escape("The expanded size of the tensor (-2) must match")):
        A.expand(2, -2)
    assert A.expand(4, -1, -1).shape == (4, 2, 3) and SCALAR.expand(3).shape == (3,)


def test_reshape_to_a_wrong_size_names_the_shape():
    with pytest.raises(RuntimeError, match=re.escape("shape '[4, 2]' is invalid for input of size 6")):
        A.reshape(4, 2)
    with pytest.raises(RuntimeError, match=re.escape("shape '[7]' is invalid for input of size 6")):
        A.view(7)
    with pytest.raises(RuntimeError, match="only one dimension can be inferred"):
        A.reshape(-1, -1)
    with pytest.raises(RuntimeError, match=re.escape("invalid shape dimension -2 at index 0 of shape [-2, 3]")):
        A.reshape(-2, 3)  # NumPy would take -2 as "infer"
    assert A.reshape(-1, 2).shape == (3, 2)


def test_cat_and_stack_name_the_mismatch():
    with pytest.raises(RuntimeError, match=re.escape("Sizes of tensors must match except in dimension 0. Expected "
                                                     "size 3 but got size 4 for tensor number 1 in the list.")):
        tg.cat([A, tg.zeros(2, 4)])
    with pytest.raises(RuntimeError, match="Tensors must have same number of dimensions: got 2 and 3"):
        tg.cat([A, tg.zeros(2, 3, 1)])
    with pytest.raises(RuntimeError, match=re.escape("zero-dimensional tensor (at position 0) cannot be "
                                                     "concatenated")):
        tg.cat([SCALAR, SCALAR])
    with pytest.raises(RuntimeError, match=re.escape("stack expects each tensor to be equal size, but got [2, 3] "
                                                     "at entry 0 and [2, 4] at entry 1")):
        tg.stack([A, tg.zeros(2, 4)])
    with pytest.raises(RuntimeError, match="stack expects a non-empty TensorList"):
        tg.stack([])


def test_gather_index_needs_the_inputs_number_of_dims():
    with pytest.raises(RuntimeError, match="Index tensor must have the same number of dimensions as input tensor"):
        A.gather(1, np.zeros(2, dtype=np.int64))
    assert SCALAR.gather(0, np.int64(0)).item() == 1.5


def test_max_of_an_empty_dimension_is_refused():
    with pytest.raises(IndexError, match="max\\(\\): Expected reduction dim 0 to have non-zero size"):
        tg.zeros(0, 3).max(0)
    with pytest.raises(RuntimeError, match="Specify the reduction dim"):
        tg.zeros(0, 3).max()
    assert tg.zeros(0, 3).max(1).shape == (0,)


def test_len_and_size_of_a_0d_tensor():
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d tensor"):
        len(SCALAR)
    with pytest.raises(IndexError, match="Dimension specified as 0 but tensor has no dimensions"):
        SCALAR.size(0)
    assert A.size(-1) == 3 and A.size() == (2, 3)


def test_argmax_of_an_empty_dimension_and_flatten_of_an_empty_tensor():
    with pytest.raises(IndexError, match=re.escape("argmax(): Expected reduction dim 0 to have non-zero size.")):
        tg.zeros(0, 3).argmax(0)
    with pytest.raises(IndexError, match=re.escape("argmin(): Expected reduction dim to be specified")):
        tg.zeros(0, 3).argmin()
    assert tg.zeros(0, 3).argmax(1).shape == (0,)
    assert tg.zeros(0, 2, 0).flatten(1).shape == (0, 0) and tg.zeros(0, 0).flatten().shape == (0,)
