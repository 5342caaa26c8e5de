"""Linear, Embedding, Dropout and activation modules: shapes, PyTorch init, forward and gradients."""
import math
import re

import numpy as np
import pytest

import tinygrad_rnn as tg
from helpers import DEVICES, tensor64
from tinygrad_rnn import nn


@pytest.mark.parametrize("device", DEVICES)
def test_linear_shapes_init_and_forward(device):
    tg.manual_seed(0)
    layer = nn.Linear(50, 30, device=device)
    assert layer.weight.shape == (30, 50) and layer.bias.shape == (30,)
    bound = 1 / math.sqrt(50)
    for param in (layer.weight, layer.bias):
        values = param.numpy()
        assert values.min() >= -bound and values.max() <= bound and values.std() > bound / 3
    x = tg.randn(2, 7, 50, device=device)
    expected = x.numpy() @ layer.weight.numpy().T + layer.bias.numpy()
    out = layer(x)
    assert out.shape == (2, 7, 30) and out.device == device
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert layer(tg.randn(50, device=device)).shape == (30,)


def test_linear_without_bias_and_repr():
    layer = nn.Linear(3, 2, bias=False)
    assert layer.bias is None and [name for name, _ in layer.named_parameters()] == ["weight"]
    assert repr(layer) == "Linear(in_features=3, out_features=2, bias=False)"
    np.testing.assert_allclose(layer(tg.ones(1, 3)).numpy(), layer.weight.numpy().sum(1)[None], rtol=1e-6)


def test_linear_gradients():
    tg.manual_seed(1)
    layer = nn.Linear(4, 3).double()
    x = tensor64(np.random.default_rng(0).standard_normal((2, 5, 4)))
    tg.gradcheck(lambda x, w, b: layer(x), [x, layer.weight, layer.bias])


@pytest.mark.parametrize("device", DEVICES)
def test_embedding_forward_and_init(device):
    tg.manual_seed(0)
    table = nn.Embedding(200, 64, padding_idx=0, device=device)
    assert table.weight.shape == (200, 64)
    weights = table.weight.numpy()
    assert (weights[0] == 0).all() and abs(weights[1:].std() - 1) < 0.03
    indices = tg.Tensor(np.array([[3, 0, 199], [5, 5, 1]]), device=device)
    out = table(indices)
    assert out.shape == (2, 3, 64) and out.device == device
    np.testing.assert_array_equal(out.numpy(), weights[indices.numpy()])


@pytest.mark.parametrize("device", DEVICES)
def test_embedding_gradient_accumulates_repeats_and_skips_padding(device):
    table = nn.Embedding(6, 3, padding_idx=-1, device=device)
    assert table.padding_idx == 5
    indices = np.array([[1, 5, 1], [2, 5, 4]])
    upstream = np.arange(18, dtype=np.float32).reshape(2, 3, 3)
    table(indices).backward(upstream)
    expected = np.zeros((6, 3), dtype=np.float32)
    np.add.at(expected, indices.reshape(-1), upstream.reshape(-1, 3))
    expected[5] = 0
    np.testing.assert_array_equal(table.weight.grad.numpy(), expected)


def test_embedding_gradcheck_and_errors():
    weight = tensor64(np.random.default_rng(0).standard_normal((5, 2)))
    tg.gradcheck(lambda w: nn.functional.embedding([[0, 4], [4, 2]], w), [weight])
    table = nn.Embedding(5, 2)
    with pytest.raises(IndexError, match="5 rows"):
        table([1, 5])
    with pytest.raises(IndexError):
        table([-1])
    with pytest.raises(TypeError, match="integers"):
        table(tg.Tensor([1.0]))
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(5, 2, padding_idx=5)
    assert repr(nn.Embedding(5, 2, padding_idx=0)) == "Embedding(5, 2, padding_idx=0)"


def test_linear_width_mismatch_names_the_shapes():
    layer = nn.Linear(5, 2)
    with pytest.raises(RuntimeError, match=re.escape("mat1 and mat2 shapes cannot be multiplied (4x3 and 5x2)")) \
            as info:
        layer(tg.randn(4, 3))
    assert "Linear(in_features=5, out_features=2)" in str(info.value) and "(4, 3)" in str(info.value)
    with pytest.raises(RuntimeError, match=re.escape("(28x3 and 5x2)")) as info:
        layer(tg.randn(7, 4, 3))  # used to be a NumPy reshape error about size 84
    assert "(7, 4, 3)" in str(info.value)
    with pytest.raises(RuntimeError, match="at least 1D"):
        layer(tg.Tensor(1.0))


def test_linear_with_no_input_features_is_allowed_like_pytorch():
    with pytest.warns(UserWarning, match="zero-element"):
        layer = nn.Linear(0, 5)
    np.testing.assert_array_equal(layer.bias.numpy(), np.zeros(5))
    out = layer(tg.zeros(3, 0))
    assert out.shape == (3, 5) and not out.numpy().any()
    with pytest.raises(RuntimeError, match=re.escape("negative dimension -1: [5, -1]")):
        nn.Linear(-1, 5)


def test_embedding_index_out_of_range_names_the_index_and_the_table():
    table = nn.Embedding(5, 2)
    for indices, bad in (([1, 7, 2], 7), (np.array([[0, 4], [-1, 9]]), -1), (tg.Tensor([5]), 5)):
        with pytest.raises(IndexError, match=f"embedding index {bad} is out of range: .*num_embeddings=5"):
            table(indices)
    for padding_idx in (5, -6):
        with pytest.raises(ValueError, match=f"padding_idx {padding_idx} is outside the table of 5 rows"):
            nn.Embedding(5, 2, padding_idx=padding_idx)
    with pytest.raises(RuntimeError, match="negative dimension"):
        nn.Embedding(-1, 2)


def test_dropout_is_inverted_seeded_and_identity_in_eval():
    drop = nn.Dropout(0.25)
    x = tg.ones(400, 100, requires_grad=True)
    tg.manual_seed(3)
    out = drop(x)
    values = out.numpy()
    kept = values != 0
    assert set(np.unique(values)) == {0.0, np.float32(1 / 0.75)}
    assert abs(1 - kept.mean() - 0.25) < 0.01
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), values)  # gradient is the same scaled mask
    tg.manual_seed(3)
    np.testing.assert_array_equal(drop(x).numpy(), values)
    drop.eval()
    assert drop(x) is x
    assert nn.functional.dropout(x, 1.0).numpy().sum() == 0
    assert nn.functional.dropout(x, 0.0) is x
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        nn.Dropout(1.5)
    for p in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="dropout probability"):
            nn.functional.dropout(x, p)


def test_activation_modules():
    x = tg.Tensor([-1.0, 0.0, 2.0])
    assert nn.ReLU()(x).numpy().tolist() == [0.0, 0.0, 2.0]
    np.testing.assert_allclose(nn.Tanh()(x).numpy(), np.tanh([-1.0, 0.0, 2.0]), rtol=1e-6)
    np.testing.assert_allclose(nn.Sigmoid()(x).numpy(), 1 / (1 + np.exp([1.0, 0.0, -2.0])), rtol=1e-6)
