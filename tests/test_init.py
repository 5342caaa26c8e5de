"""nn.init: PyTorch's formulas, in-place fills, seeded draws."""
import math

import numpy as np
import pytest

import tinygrad_rnn as tg
from helpers import DEVICES
from tinygrad_rnn import nn
from tinygrad_rnn.nn import init


def big(*shape, device="cpu"):
    return nn.Parameter(tg.zeros(*shape, device=device))


@pytest.mark.parametrize("device", DEVICES)
def test_fills_in_place_without_graph_and_returns_the_tensor(device):
    param = big(30, 20, device=device)
    array = param.data
    for fill in [init.uniform_, init.normal_, init.xavier_uniform_, init.xavier_normal_, init.kaiming_uniform_,
                 init.kaiming_normal_, init.orthogonal_, init.zeros_, init.ones_]:
        assert fill(param) is param
        assert param.data is array and param.is_leaf and param.grad is None
        assert param.device == device and param.dtype == tg.float32


def test_constant_zeros_ones():
    t = big(2, 3)
    assert init.constant_(t, 2.5).numpy().tolist() == [[2.5] * 3] * 2
    assert init.zeros_(t).numpy().sum() == 0 and init.ones_(t).numpy().sum() == 6


def test_seeded_draws_are_reproducible():
    tg.manual_seed(7)
    first = init.normal_(big(5, 5)).numpy().copy()
    tg.manual_seed(7)
    np.testing.assert_array_equal(init.normal_(big(5, 5)).numpy(), first)


@pytest.mark.parametrize("fill, bound", [
    (lambda t: init.uniform_(t, -0.3, 0.2), (-0.3, 0.2)),
    (lambda t: init.xavier_uniform_(t, gain=2.0), 2.0 * math.sqrt(6 / (200 + 100))),
    (lambda t: init.kaiming_uniform_(t, a=math.sqrt(5)), 1 / math.sqrt(200)),
    (lambda t: init.kaiming_uniform_(t, mode="fan_out", nonlinearity="relu"), math.sqrt(2) * math.sqrt(3 / 100)),
])
def test_uniform_families_fill_their_interval(fill, bound):
    tg.manual_seed(0)
    values = fill(big(100, 200)).numpy()
    low, high = bound if isinstance(bound, tuple) else (-bound, bound)
    assert values.min() >= low and values.max() <= high
    assert values.min() < low + 0.01 * (high - low) and values.max() > high - 0.01 * (high - low)
    assert abs(values.mean() - (low + high) / 2) < 0.02 * (high - low)


@pytest.mark.parametrize("fill, mean, std", [
    (lambda t: init.normal_(t, 1.0, 0.5), 1.0, 0.5),
    (lambda t: init.xavier_normal_(t), 0.0, math.sqrt(2 / 300)),
    (lambda t: init.kaiming_normal_(t, nonlinearity="tanh"), 0.0, (5 / 3) / math.sqrt(200)),
])
def test_normal_families_have_their_moments(fill, mean, std):
    tg.manual_seed(0)
    values = fill(big(100, 200)).numpy()
    assert abs(values.mean() - mean) < 0.02 * std + 1e-3
    assert abs(values.std() - std) < 0.02 * std


def test_fans_count_the_receptive_field():
    tg.manual_seed(0)
    values = init.kaiming_normal_(big(16, 8, 5, 5), nonlinearity="linear").numpy()
    assert abs(values.std() - 1 / math.sqrt(8 * 25)) < 0.02 / math.sqrt(200)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.xavier_uniform_(big(5))
    with pytest.raises(ValueError, match="fan_in"):
        init.kaiming_uniform_(big(2, 2), mode="fan_middle")


@pytest.mark.parametrize("shape", [(6, 6), (4, 9), (9, 4), (3, 2, 5)])
def test_orthogonal_rows_or_columns_are_orthonormal(shape):
    tg.manual_seed(0)
    matrix = init.orthogonal_(big(*shape, device="cpu"), gain=2.0).numpy().astype(np.float64)
    matrix = matrix.reshape(shape[0], -1) / 2.0
    rows, cols = matrix.shape
    gram = matrix @ matrix.T if rows <= cols else matrix.T @ matrix
    np.testing.assert_allclose(gram, np.eye(min(rows, cols)), atol=1e-5)


def test_calculate_gain():
    assert init.calculate_gain("linear") == 1 and init.calculate_gain("sigmoid") == 1
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01 ** 2)))
    assert init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        init.calculate_gain("swish")


def test_float64_tensors_keep_their_dtype():
    param = nn.Parameter(tg.zeros(3, 4, dtype="float64"))
    init.xavier_uniform_(param)
    assert param.dtype == tg.float64
