"""Attention layers: NumPy reference, exact zero weight on padding, gradcheck, key precompute."""
import numpy as np
import pytest

import tinygrad_rnn as tg
from helpers import DEVICES
from tinygrad_rnn import nn

BATCH, SOURCE, QUERY, KEY, VALUE, ATTENTION = 3, 4, 3, 3, 2, 5
MASK = np.array([[True, True, True, True], [True, True, False, False], [True, False, False, False]])


def random(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def make(kind):
    tg.manual_seed(0)
    if kind == "additive":
        return nn.AdditiveAttention(QUERY, KEY, ATTENTION).double()
    if kind == "general":
        return nn.GeneralAttention(QUERY, KEY).double()
    return nn.DotAttention()


def numpy_attention(kind, layer, query, keys, values, mask):
    """The textbook formulas, on NumPy arrays."""
    if kind == "additive":
        w_q, w_k = layer.query_layer.weight.numpy(), layer.key_layer.weight.numpy()
        v = layer.energy_layer.weight.numpy()[0]
        scores = np.tanh((query @ w_q.T)[:, None, :] + keys @ w_k.T) @ v
    elif kind == "general":  # q^T W k with W = query_layer.weight^T
        scores = np.einsum("bq,qk,bsk->bs", query, layer.query_layer.weight.numpy().T, keys)
    else:
        scores = np.einsum("bh,bsh->bs", query, keys)
    exps = np.where(mask, np.exp(scores - scores.max(axis=1, keepdims=True)), 0.0)
    weights = exps / exps.sum(axis=1, keepdims=True)
    return np.einsum("bs,bsv->bv", weights, values), weights


KINDS = ["additive", "dot", "general"]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", KINDS)
def test_attention_matches_numpy_and_gives_padding_exactly_zero_weight(device, kind):
    layer = make(kind).to(device)
    query, keys, values = random((BATCH, QUERY), 1), random((BATCH, SOURCE, KEY), 2), random((BATCH, SOURCE, VALUE), 3)
    context, weights = layer(tg.Tensor(query, device=device), tg.Tensor(keys, device=device),
                             tg.Tensor(values, device=device), tg.Tensor(MASK, device=device))
    assert context.shape == (BATCH, VALUE) and weights.shape == (BATCH, SOURCE)
    expected_context, expected_weights = numpy_attention(kind, layer.to("cpu"), query, keys, values, MASK)
    np.testing.assert_allclose(weights.numpy(), expected_weights, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(context.numpy(), expected_context, rtol=1e-12, atol=1e-15)
    assert (weights.numpy()[~MASK] == 0.0).all()  # exactly, not approximately
    np.testing.assert_allclose(weights.numpy().sum(axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_attention_gradcheck(kind):
    layer = make(kind)
    tensors = [tg.Tensor(random(shape, seed), requires_grad=True)
               for seed, shape in enumerate([(BATCH, QUERY), (BATCH, SOURCE, KEY), (BATCH, SOURCE, VALUE)])]
    parameters = list(layer.parameters())
    assert tg.gradcheck(lambda query, keys, values, *params: layer(query, keys, values, MASK),
                        tensors + parameters)
    # without values the keys are the values, and their gradient has both contributions
    assert tg.gradcheck(lambda query, keys, *params: layer(query, keys, mask=MASK), tensors[:2] + parameters)


@pytest.mark.parametrize("kind", KINDS)
def test_padded_keys_and_values_do_not_matter(kind):
    layer = make(kind)
    query, keys, values = random((BATCH, QUERY), 1), random((BATCH, SOURCE, KEY), 2), random((BATCH, SOURCE, VALUE), 3)
    garbage_keys, garbage_values = keys.copy(), values.copy()
    garbage_keys[~MASK], garbage_values[~MASK] = 1e6, -1e6
    reference = layer(tg.Tensor(query), tg.Tensor(keys), tg.Tensor(values), MASK)
    perturbed = layer(tg.Tensor(query), tg.Tensor(garbage_keys), tg.Tensor(garbage_values), MASK)
    for a, b in zip(reference, perturbed):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)
    # and the gradient reaching padded keys is zero
    keys_t = tg.Tensor(keys, requires_grad=True)
    context, _ = layer(tg.Tensor(query), keys_t, tg.Tensor(values), MASK)
    context.sum().backward()
    assert (keys_t.grad.numpy()[~MASK] == 0).all()


def test_additive_attention_reuses_projected_keys():
    layer = make("additive")
    query, keys = tg.Tensor(random((BATCH, QUERY), 1)), tg.Tensor(random((BATCH, SOURCE, KEY), 2))
    projected = layer.project_keys(keys)
    assert projected.shape == (BATCH, SOURCE, ATTENTION)
    direct = layer(query, keys, mask=MASK)
    reused = layer(query, keys, mask=MASK, projected_keys=projected)
    for a, b in zip(direct, reused):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("kind", KINDS)
def test_no_mask_means_every_position_is_real(kind):
    layer = make(kind)
    query, keys = random((BATCH, QUERY), 1), random((BATCH, SOURCE, KEY), 2)
    context, weights = layer(tg.Tensor(query), tg.Tensor(keys))
    expected = numpy_attention(kind, layer, query, keys, keys, np.ones((BATCH, SOURCE), bool))
    np.testing.assert_allclose(context.numpy(), expected[0], rtol=1e-12)
    np.testing.assert_allclose(weights.numpy(), expected[1], rtol=1e-12)


def test_a_row_without_real_positions_gives_zeros_not_nan():
    mask = MASK.copy()
    mask[2] = False
    context, weights = make("dot")(tg.Tensor(random((BATCH, QUERY), 1)), tg.Tensor(random((BATCH, SOURCE, KEY), 2)),
                                   mask=mask)
    assert (weights.numpy()[2] == 0).all() and (context.numpy()[2] == 0).all()
    assert np.isfinite(weights.numpy()).all()


def test_float32_attention_keeps_padding_at_zero():
    layer = nn.AdditiveAttention(QUERY, KEY, ATTENTION)
    context, weights = layer(tg.Tensor(random((BATCH, QUERY), 1).astype(np.float32)),
                             tg.Tensor(100 * random((BATCH, SOURCE, KEY), 2).astype(np.float32)), mask=MASK)
    assert weights.dtype == np.float32 and (weights.numpy()[~MASK] == 0).all()
    assert np.isfinite(context.numpy()).all()


def test_attention_errors_speak_to_the_user():
    layer = make("general")
    query, keys = tg.Tensor(random((BATCH, QUERY), 1)), tg.Tensor(random((BATCH, SOURCE, KEY), 2))
    with pytest.raises(ValueError, match=r"mask should have shape \(batch, source_length\) = \(3, 4\), got \(3, 3\)"):
        layer(query, keys, mask=MASK[:, :3])
    with pytest.raises(TypeError, match="mask must be boolean"):
        layer(query, keys, mask=MASK.astype(int))
    with pytest.raises(ValueError, match="keys have size 2, expected key_size=3"):
        layer(query, tg.Tensor(random((BATCH, SOURCE, 2), 2)))
    with pytest.raises(ValueError, match="with the same batch"):
        layer(query, tg.Tensor(random((2, SOURCE, KEY), 2)))
