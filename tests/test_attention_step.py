"""The fused attention step (scores, masked softmax, context, combine layer) against its composed twin."""
import numpy as np
import pytest

import tinygrad_rnn as tg
from helpers import DEVICES
from tinygrad_rnn import nn
from tinygrad_rnn.nn.attention_step import attentional_step

BATCH, SOURCE, QUERY, KEY, ATTENTION, OUT = 3, 4, 3, 5, 4, 2
MASK = np.array([[True, True, True, True], [True, True, False, False], [True, False, False, False]])
KINDS = ["additive", "dot", "general"]


def random(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def make(kind):
    """A float64 attention layer, and the sizes of its query and keys."""
    tg.manual_seed(0)
    if kind == "additive":
        return nn.AdditiveAttention(QUERY, KEY, ATTENTION).double(), QUERY, KEY
    if kind == "general":
        return nn.GeneralAttention(QUERY, KEY).double(), QUERY, KEY
    return nn.DotAttention(), KEY, KEY


def inputs(query_size, key_size, device="cpu"):
    """query (B, Q), values (B, S, K), combine weight (OUT, Q + K): float64 leaves."""
    return [tg.Tensor(random(shape, seed), device=device, requires_grad=True)
            for seed, shape in enumerate([(BATCH, query_size), (BATCH, SOURCE, key_size),
                                          (OUT, query_size + key_size)])]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("precomputed_keys", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_fused_equals_composed_outputs_and_every_gradient(kind, precomputed_keys, device):
    layer, query_size, key_size = make(kind)
    layer.to(device)
    results = {}
    for fused in (True, False):
        layer.zero_grad()
        query, values, combine = inputs(query_size, key_size, device)
        keys = layer.project_keys(values) if precomputed_keys and kind == "additive" else None
        attentional, weights = layer.attentional(query, values, combine, tg.Tensor(MASK, device=device),
                                                 projected_keys=keys, fused=fused)
        # an upstream gradient into both outputs (search never needs one into the weights; a caller may)
        tg.autograd.backward([attentional, weights], [random(attentional.shape, 7), random(weights.shape, 8)])
        gradients = [t.grad.numpy() for t in (query, values, combine)]
        gradients += [p.grad.numpy() for p in layer.parameters()]
        results[fused] = (attentional.numpy(), weights.numpy(), gradients)
    (fused_a, fused_w, fused_g), (composed_a, composed_w, composed_g) = results[True], results[False]
    np.testing.assert_allclose(fused_a, composed_a, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(fused_w, composed_w, rtol=1e-12, atol=1e-14)
    assert (fused_w[~MASK] == 0.0).all()
    assert len(fused_g) == len(composed_g) == 3 + len(list(layer.parameters()))
    for fused_grad, composed_grad in zip(fused_g, composed_g):
        np.testing.assert_allclose(fused_grad, composed_grad, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("kind", KINDS)
def test_fused_step_gradcheck(kind):
    layer, query_size, key_size = make(kind)
    parameters = list(layer.parameters())

    def step(query, values, combine, *params):
        return layer.attentional(query, values, combine, MASK)

    assert tg.gradcheck(step, inputs(query_size, key_size) + parameters)


def test_gradcheck_with_precomputed_keys_and_only_the_attentional_used():
    layer, query_size, key_size = make("additive")
    query, values, combine = inputs(query_size, key_size)
    keys = tg.Tensor(random((BATCH, SOURCE, ATTENTION), 9), requires_grad=True)
    assert tg.gradcheck(lambda q, v, c, k, *params: layer.attentional(q, v, c, MASK, projected_keys=k)[0],
                        [query, values, combine, keys, *layer.parameters()])


def test_a_retained_graph_backpropagates_twice():
    """The backward reuses the energy buffer in place, except when the graph is kept for another backward."""
    layer, query_size, key_size = make("additive")
    query, values, combine = inputs(query_size, key_size)
    loss = layer.attentional(query, values, combine, MASK)[0].sum()
    loss.backward(retain_graph=True)
    first = [t.grad.numpy().copy() for t in (query, values, *layer.parameters())]
    loss.backward()
    for grad, tensor in zip(first, (query, values, *layer.parameters())):
        np.testing.assert_allclose(tensor.grad.numpy(), 2 * grad, rtol=1e-12)


def test_fused_step_is_one_node_and_matches_numpy():
    layer, query_size, key_size = make("additive")
    query, values, combine = inputs(query_size, key_size)
    attentional, weights = layer.attentional(query, values, combine, MASK)
    assert type(attentional._ctx).__name__ == "AttentionalStep" and attentional._ctx is weights._ctx
    w_q, w_k = layer.query_layer.weight.numpy(), layer.key_layer.weight.numpy()
    v = layer.energy_layer.weight.numpy()[0]
    scores = np.tanh((query.numpy() @ w_q.T)[:, None, :] + values.numpy() @ w_k.T) @ v
    exps = np.where(MASK, np.exp(scores - scores.max(axis=1, keepdims=True)), 0.0)
    expected_weights = exps / exps.sum(axis=1, keepdims=True)
    context = np.einsum("bs,bsk->bk", expected_weights, values.numpy())
    expected = np.tanh(np.concatenate([query.numpy(), context], axis=1) @ combine.numpy().T)
    np.testing.assert_allclose(weights.numpy(), expected_weights, rtol=1e-12)
    np.testing.assert_allclose(attentional.numpy(), expected, rtol=1e-12)


def test_a_row_without_real_positions_is_inert_not_nan():
    layer, query_size, key_size = make("dot")
    query, values, combine = inputs(query_size, key_size)
    mask = MASK.copy()
    mask[2] = False
    attentional, weights = layer.attentional(query, values, combine, mask)
    attentional.sum().backward()
    assert (weights.numpy()[2] == 0).all() and np.isfinite(attentional.numpy()).all()
    assert (values.grad.numpy()[2] == 0).all()


def test_errors_name_the_shapes():
    layer, query_size, key_size = make("general")
    query, values, combine = inputs(query_size, key_size)
    with pytest.raises(ValueError, match=r"mask should be a bool array of shape \(batch, source_length\)"):
        layer.attentional(query, values, combine, MASK[:, :2])
    with pytest.raises(ValueError, match="combine_weight should have shape"):
        layer.attentional(query, values, combine[:, :3], MASK)
    with pytest.raises(ValueError, match="score must be one of"):
        attentional_step(query, values, combine, MASK, score="cosine")
    with pytest.raises(ValueError, match="query has size"):
        layer.attentional(values[:, 0, :2], values, combine, MASK)
