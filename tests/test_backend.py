"""backend.scatter_add: the fast row path equals numpy.add.at bit for bit."""
import numpy as np
import pytest

from tinygrad_rnn import backend


def _bits(array):
    return array.view(np.uint32 if array.dtype == np.float32 else np.uint64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows, count, trailing", [(10, 1, (3,)), (50, 200, (4,)), (7, 30, ()), (9, 40, (2, 3))])
def test_scatter_add_rows_equals_add_at_bit_for_bit(dtype, rows, count, trailing):
    rng = np.random.default_rng(rows * count)
    indices = rng.integers(0, rows, size=count)
    indices[: count // 3] = indices[0]  # many repeats of one row, as padding or BOS give
    values = rng.standard_normal((count,) + trailing).astype(dtype) * 10.0 ** rng.integers(-6, 6, (count,) + trailing)
    values.reshape(-1)[::7] = -0.0      # signed zeros: 0 + -0 is +0 in both
    start = rng.standard_normal((rows,) + trailing).astype(dtype)
    expected = start.copy()
    np.add.at(expected, indices, values)
    got = start.copy()
    backend.scatter_add(got, indices, values)
    assert np.array_equal(_bits(got), _bits(expected))


def test_scatter_add_skip_leaves_that_row_alone_and_the_rest_equal():
    rng = np.random.default_rng(0)
    indices = rng.integers(0, 6, size=40)
    indices[::3] = 0
    values = rng.standard_normal((40, 5)).astype(np.float32)
    expected = np.zeros((6, 5), np.float32)
    np.add.at(expected, indices, values)
    got = np.zeros((6, 5), np.float32)
    backend.scatter_add(got, indices, values, skip=0)
    assert not got[0].any()
    assert np.array_equal(_bits(got[1:]), _bits(expected[1:]))
    only_skipped = np.zeros((6, 5), np.float32)
    backend.scatter_add(only_skipped, np.zeros(4, np.int64), values[:4], skip=0)
    assert not only_skipped.any()


@pytest.mark.parametrize("indices, value_shape", [
    (np.array([-1, 2, -1, 0]), (4, 3)),                               # negative indices
    ((np.array([0, 1, 1, 0]), np.array([1, 0, 0, 1])), (4,)),          # element indices
    (np.array([[0, 1], [1, 1]]), (2, 2, 3)),                          # 2-D indices
])
def test_scatter_add_other_indices_fall_back_to_add_at(indices, value_shape):
    values = np.random.default_rng(1).standard_normal(value_shape)
    expected = np.zeros((3, 3))
    np.add.at(expected, indices, values)
    got = np.zeros((3, 3))
    backend.scatter_add(got, indices, values)
    assert np.array_equal(got, expected)
