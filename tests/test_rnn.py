"""Sequence layers ``nn.RNN/LSTM/GRU``: fused == composed, lengths, initial states, TBPTT, errors.

The composed path (engine ops, autograd's BPTT) is the reference for the fused
kernels; both run in float64 and must agree to rounding error.
"""
import functools
import itertools

import numpy as np
import pytest

import tinygrad_rnn as tg
from helpers import DEVICES, MODES, make_recurrent, random
from tinygrad_rnn import nn
from tinygrad_rnn.nn.recurrent.fused import FusedSequence

STEPS, BATCH, INPUT, HIDDEN = 4, 3, 3, 2
MIXED_LENGTHS = [2, 4, 1]  # unsorted, one full length, one of a single step
make_layer = functools.partial(make_recurrent, input_size=INPUT, hidden_size=HIDDEN)


def split_state(mode, state):
    """``(h_n, c_n)`` for every mode (``c_n`` None except LSTM)."""
    return state if mode == "lstm" else (state, None)


def run(layer, x_np, hx_np=None, lengths=None, device="cpu", use=("output", "h", "c")):
    """Forward, then backward of a fixed random weighting of the outputs named in ``use``.

    Returns a dict of NumPy arrays: the outputs, and the gradient of the input,
    of the given initial states and of every parameter (by name).
    """
    layer.zero_grad()
    x = tg.Tensor(x_np, device=device, requires_grad=True)
    hx = None
    if hx_np is not None:
        hx = tuple(tg.Tensor(a, device=device, requires_grad=True) for a in hx_np)
    output, state = layer(x, hx if layer.mode == "lstm" or hx is None else hx[0], lengths=lengths)
    h_n, c_n = split_state(layer.mode, state)
    named = {"output": output, "h": h_n, "c": c_n}
    loss = None
    for index, name in enumerate(use):
        tensor = named[name]
        if tensor is None:
            continue
        term = (tensor * tg.Tensor(random(tensor.shape, 100 + index), device=device)).sum()
        loss = term if loss is None else loss + term
    loss.backward()
    result = {name: t.numpy() for name, t in named.items() if t is not None}
    result["grad_x"] = x.grad.numpy()
    for index, state in enumerate(hx or ()):
        result[f"grad_hx{index}"] = state.grad.numpy()
    for name, param in layer.named_parameters():
        result[f"grad_{name}"] = param.grad.numpy()
    return result


def assert_same(actual, expected, rtol=1e-10, atol=1e-12):
    assert actual.keys() == expected.keys()
    for key in expected:
        np.testing.assert_allclose(actual[key], expected[key], rtol=rtol, atol=atol, err_msg=key)


def initial_state(mode, layers, directions, seed=7):
    shape = (layers * directions, BATCH, HIDDEN)
    return (random(shape, seed), random(shape, seed + 1)) if mode == "lstm" else (random(shape, seed),)


# ------------------------------------------------------------------ fused == composed
@pytest.mark.parametrize("mode,num_layers,bidirectional,lengths,batch_first,given_state", [
    pytest.param(*case, id="-".join(map(str, case[:3])) + f"-{'mixed' if case[3] else 'full'}"
                 f"-{'bf' if case[4] else 'tf'}-{'hx' if case[5] else 'nohx'}")
    for case in itertools.product(MODES, [1, 2], [False, True], [None, MIXED_LENGTHS], [False, True],
                                  [False, True])])
def test_fused_equals_composed(mode, num_layers, bidirectional, lengths, batch_first, given_state):
    layer = make_layer(mode, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first)
    shape = (BATCH, STEPS, INPUT) if batch_first else (STEPS, BATCH, INPUT)
    x = random(shape, 1)
    hx = initial_state(mode, num_layers, 2 if bidirectional else 1) if given_state else None
    fused = run(layer, x, hx, lengths)
    layer.fused = False
    composed = run(layer, x, hx, lengths)
    assert_same(fused, composed)
    directions = 2 if bidirectional else 1
    expected_output = (BATCH, STEPS, directions * HIDDEN) if batch_first else (STEPS, BATCH, directions * HIDDEN)
    assert fused["output"].shape == expected_output
    assert fused["h"].shape == (num_layers * directions, BATCH, HIDDEN)


@pytest.mark.parametrize("mode,use", [(mode, use) for mode in MODES for use in ("output", "h", "c")
                                      if use != "c" or mode == "lstm"])
def test_fused_equals_composed_when_some_outputs_get_no_gradient(mode, use):
    """An output that takes no part in the loss hands the kernel a ``None`` gradient."""
    use = (use,)
    layer = make_layer(mode, num_layers=2, bidirectional=True)
    x = random((STEPS, BATCH, INPUT), 2)
    fused = run(layer, x, lengths=MIXED_LENGTHS, use=use)
    layer.fused = False
    assert_same(fused, run(layer, x, lengths=MIXED_LENGTHS, use=use))


@pytest.mark.parametrize("mode", MODES)
def test_fused_equals_composed_without_bias_and_under_no_grad(mode):
    layer = make_layer(mode, num_layers=2, bias=False, bidirectional=True)
    assert [name for name, _ in layer.named_parameters() if "bias" in name] == []
    x = random((STEPS, BATCH, INPUT), 3)
    fused = run(layer, x, lengths=MIXED_LENGTHS)
    layer.fused = False
    assert_same(fused, run(layer, x, lengths=MIXED_LENGTHS))
    with tg.no_grad():  # the kernels keep nothing for backward here
        output, _ = layer(tg.Tensor(x), lengths=MIXED_LENGTHS)
    assert not output.requires_grad
    np.testing.assert_allclose(output.numpy(), fused["output"], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", MODES)
def test_fused_on_device_equals_composed_on_cpu(device, mode):
    """The CuPy kernels against the NumPy composed reference (float64)."""
    layer = make_layer(mode, num_layers=2, bidirectional=True)
    x, hx = random((STEPS, BATCH, INPUT), 4), initial_state(mode, 2, 2)
    layer.to(device)
    fused = run(layer, x, hx, MIXED_LENGTHS, device=device)
    layer.to("cpu")
    layer.fused = False
    assert_same(fused, run(layer, x, hx, MIXED_LENGTHS), rtol=1e-9, atol=1e-11)


# ------------------------------------------------------------------ gradcheck of the fused Function
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, [3, 1]], ids=["full", "mixed"])
def test_fused_sequence_gradcheck(mode, reverse, lengths):
    steps, batch, inputs, hidden = 3, 2, 2, 2
    gates = {"lstm": 4, "gru": 3}.get(mode, 1) * hidden
    rng = np.random.default_rng(5)

    def tensor(*shape, scale=1.0):
        return tg.Tensor(scale * rng.standard_normal(shape), requires_grad=True)

    x, h0 = tensor(steps, batch, inputs), tensor(batch, hidden)
    c0 = tensor(batch, hidden) if mode == "lstm" else None
    weights = [tensor(gates, inputs, scale=0.6), tensor(gates, hidden, scale=0.6), tensor(gates, scale=0.3),
               tensor(gates, scale=0.3)]
    if mode == "rnn_relu":  # keep pre-activations away from relu's kink, where differences are one-sided
        weights[2] = tg.Tensor(np.full(gates, 3.0), requires_grad=True)
    host_lengths = None if lengths is None else np.array(lengths)

    def fused(x, h0, c0, *weights):
        return FusedSequence.apply(x, h0, c0, *weights, mode=mode, lengths=host_lengths, reverse=reverse)

    assert tg.gradcheck(fused, [x, h0, c0, *weights])


def test_gradcheck_catches_a_wrong_fused_backward(monkeypatch):
    """The checker itself is tested: a kernel whose weight gradient is off by 1% must fail."""
    from tinygrad_rnn.nn.recurrent import kernels as rnn_kernels

    real = rnn_kernels.sequence_backward

    def wrong(*args, **kwargs):
        grads = list(real(*args, **kwargs))
        grads[4] = grads[4] * 1.01
        return tuple(grads)

    monkeypatch.setattr(rnn_kernels, "sequence_backward", wrong)
    rng = np.random.default_rng(6)
    x = tg.Tensor(rng.standard_normal((3, 2, 2)), requires_grad=True)
    w_ih = tg.Tensor(rng.standard_normal((8, 2)), requires_grad=True)
    w_hh = tg.Tensor(rng.standard_normal((8, 2)), requires_grad=True)
    h0 = tg.Tensor(np.zeros((2, 2)))
    with pytest.raises(tg.GradcheckError, match="input 2"):  # w_hh
        tg.gradcheck(lambda x, w_ih, w_hh: FusedSequence.apply(x, h0, h0, w_ih, w_hh, None, None, mode="lstm"),
                     [x, w_ih, w_hh])


# ------------------------------------------------------------------ variable lengths
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_lengths_5_1_equal_each_sequence_alone(mode, fused):
    """Batch ``[5, 1]``: each sequence's outputs, states and input gradient equal a run on it alone."""
    layer = make_layer(mode, num_layers=2, bidirectional=True, fused=fused)
    x = random((5, 2, INPUT), 8)
    hx = [random((4, 2, HIDDEN), 9 + k) for k in range(2 if mode == "lstm" else 1)]
    batch = run(layer, x, hx, lengths=[5, 1], use=("output",))
    for b, length in enumerate([5, 1]):
        alone_hx = [state[:, b:b + 1] for state in hx]
        alone_layer = make_layer(mode, num_layers=2, bidirectional=True, fused=fused)
        x_alone = x[:length, b:b + 1]
        layer_out, state = alone_layer(tg.Tensor(x_alone),
                                       tuple(tg.Tensor(s) for s in alone_hx) if mode == "lstm"
                                       else tg.Tensor(alone_hx[0]))
        h_n, c_n = split_state(mode, state)
        np.testing.assert_allclose(batch["output"][:length, b], layer_out.numpy()[:, 0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(batch["h"][:, b], h_n.numpy()[:, 0], rtol=1e-12, atol=1e-14)
        if mode == "lstm":
            np.testing.assert_allclose(batch["c"][:, b], c_n.numpy()[:, 0], rtol=1e-12, atol=1e-14)
        assert layer_out.shape == (length, 1, 2 * HIDDEN)
        # the same holds for the input gradient of run()'s output-only loss, restricted to this sequence
        weighting = random((5, 2, 2 * HIDDEN), 100)[:length, b:b + 1]
        x_t = tg.Tensor(x_alone, requires_grad=True)
        out, _ = alone_layer(x_t, tuple(tg.Tensor(s) for s in alone_hx) if mode == "lstm"
                             else tg.Tensor(alone_hx[0]))
        (out * tg.Tensor(weighting)).sum().backward()
        np.testing.assert_allclose(batch["grad_x"][:length, b], x_t.grad.numpy()[:, 0], rtol=1e-10, atol=1e-12)
    # padding: zero output, zero input gradient
    assert (batch["output"][1:, 1] == 0).all()
    assert (batch["grad_x"][1:, 1] == 0).all()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_padding_values_never_matter(mode, fused):
    """Whatever sits in the padded steps, outputs and final states are the same; padded outputs are 0."""
    layer = make_layer(mode, num_layers=2, bidirectional=True, batch_first=True, fused=fused)
    lengths = np.array([3, 4, 1])
    x = random((BATCH, STEPS, INPUT), 10)
    garbage = x.copy()
    for b, length in enumerate(lengths):
        garbage[b, length:] = 1e3 * random((STEPS - length, INPUT), 11 + b)
    runs = [run(layer, data, lengths=tg.Tensor(lengths)) for data in (x, garbage)]
    for key in ("output", "h", "c", "grad_weight_ih_l0", "grad_weight_hh_l1_reverse"):
        if key in runs[0]:
            np.testing.assert_allclose(runs[0][key], runs[1][key], rtol=1e-12, atol=1e-14, err_msg=key)
    for b, length in enumerate(lengths):
        assert (runs[0]["output"][b, length:] == 0).all()


def test_lengths_all_full_equal_no_lengths():
    layer = make_layer("lstm", bidirectional=True)
    x = random((STEPS, BATCH, INPUT), 12)
    assert_same(run(layer, x, lengths=[STEPS] * BATCH), run(layer, x))


@pytest.mark.parametrize("lengths,message", [
    ([0, 2, 3], r"lengths\[0\] = 0 is out of range: every length must be between 1 and 4"),
    ([1, 5, 3], r"lengths\[1\] = 5 is out of range"),
    ([1, 2, -1], r"lengths\[2\] = -1"),
    ([1.5, 2, 3], r"lengths must be integers"),
    ([1, 2], r"expected 3 values for a batch of 3, got shape \(2,\)"),
    ([[1, 2, 3]], r"one length per sequence"),
])
def test_bad_lengths_say_which_value_is_wrong(lengths, message):
    layer = make_layer("gru")
    with pytest.raises(ValueError, match=message):
        layer(tg.Tensor(random((STEPS, BATCH, INPUT), 0)), lengths=lengths)


# ------------------------------------------------------------------ truncated BPTT
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_truncated_bptt_carries_state_but_not_gradient(fused):
    """Chunks of a long sequence: ``(h, c).detach()`` carries values, cuts the graph."""
    layer = make_layer("lstm", num_layers=2, fused=fused)
    x = random((6, BATCH, INPUT), 13)
    whole, (h_whole, c_whole) = layer(tg.Tensor(x))

    first = tg.Tensor(x[:3], requires_grad=True)
    second = tg.Tensor(x[3:], requires_grad=True)
    out1, (h, c) = layer(first)
    state = (h.detach(), c.detach())
    assert not state[0].requires_grad and state[0].is_leaf
    out2, (h2, c2) = layer(second, state)
    # the values are carried: chunked == whole sequence
    np.testing.assert_allclose(np.concatenate([out1.numpy(), out2.numpy()]), whole.numpy(), rtol=1e-12)
    np.testing.assert_allclose(h2.numpy(), h_whole.numpy(), rtol=1e-12)
    np.testing.assert_allclose(c2.numpy(), c_whole.numpy(), rtol=1e-12)
    # the gradient stops at the chunk boundary
    layer.zero_grad()
    out2.sum().backward()
    assert first.grad is None
    assert second.grad is not None and np.abs(second.grad.numpy()).sum() > 0
    # ... while without detach() it reaches the first chunk
    first.grad = None
    out1, state = layer(first)
    out2, _ = layer(second, state)
    out2.sum().backward()
    assert first.grad is not None and np.abs(first.grad.numpy()).sum() > 0


# ------------------------------------------------------------------ parameters, state dict, init
def test_state_dict_keys_match_pytorch_for_two_layer_bidirectional_lstm():
    layer = nn.LSTM(5, 7, num_layers=2, bidirectional=True)
    expected = []  # torch.nn.LSTM(5, 7, num_layers=2, bidirectional=True).state_dict().keys()
    for k in range(2):
        for suffix in ("", "_reverse"):
            expected += [f"weight_ih_l{k}{suffix}", f"weight_hh_l{k}{suffix}", f"bias_ih_l{k}{suffix}",
                         f"bias_hh_l{k}{suffix}"]
    state = layer.state_dict()
    assert list(state) == expected
    assert state["weight_ih_l0"].shape == (28, 5)
    assert state["weight_ih_l1_reverse"].shape == (28, 14)
    assert state["weight_hh_l1"].shape == (28, 7)
    assert state["bias_hh_l0_reverse"].shape == (28,)


@pytest.mark.parametrize("cls,gates", [(nn.LSTM, 4), (nn.GRU, 3), (nn.RNN, 1)])
def test_parameter_shapes_and_uniform_init(cls, gates):
    hidden = 16
    layer = cls(3, hidden, num_layers=2)
    bound = 1 / np.sqrt(hidden)
    assert layer.weight_ih_l1.shape == (gates * hidden, hidden)
    for name, param in layer.named_parameters():
        values = param.numpy()
        assert values.dtype == np.float32, name
        assert np.abs(values).max() <= bound and values.std() > bound / 3, name
    tg.manual_seed(3)
    first = [p.numpy().copy() for p in cls(3, hidden, num_layers=2).parameters()]
    tg.manual_seed(3)
    second = [p.numpy() for p in cls(3, hidden, num_layers=2).parameters()]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_float32_layer_runs_and_matches_float64():
    tg.manual_seed(0)
    layer = nn.GRU(INPUT, HIDDEN, num_layers=2, bidirectional=True)
    x = random((STEPS, BATCH, INPUT), 14)
    out32, h32 = layer(tg.Tensor(x.astype(np.float32)), lengths=MIXED_LENGTHS)
    assert out32.dtype == np.float32 and h32.dtype == np.float32
    out64, _ = layer.double()(tg.Tensor(x), lengths=MIXED_LENGTHS)
    np.testing.assert_allclose(out32.numpy(), out64.numpy(), rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ dropout
def test_dropout_between_layers_only_in_training_mode():
    layer = make_layer("lstm", num_layers=2, dropout=0.5)
    x = tg.Tensor(random((STEPS, BATCH, INPUT), 15))
    layer.eval()
    eval_a, _ = layer(x)
    eval_b, _ = layer(x)
    np.testing.assert_array_equal(eval_a.numpy(), eval_b.numpy())
    layer.train()
    train, _ = layer(x)
    assert not np.allclose(train.numpy(), eval_a.numpy())
    # the mask comes from the engine's generator: fused and composed draw the same one
    tg.manual_seed(4)
    fused, _ = layer(x)
    layer.fused = False
    tg.manual_seed(4)
    composed, _ = layer(x)
    np.testing.assert_allclose(fused.numpy(), composed.numpy(), rtol=1e-12)
    # a one-layer network has no layer to drop between
    single = make_layer("gru", dropout=0.5)
    np.testing.assert_array_equal(single(x)[0].numpy(), single.eval()(x)[0].numpy())


# ------------------------------------------------------------------ errors a user can make
def test_clear_errors_for_wrong_inputs():
    lstm = make_layer("lstm", num_layers=2)
    x = tg.Tensor(random((STEPS, BATCH, INPUT), 0))
    with pytest.raises(ValueError, match=r"input of shape \(time, batch, input_size\) with input_size=3"):
        lstm(tg.Tensor(random((STEPS, BATCH, 5), 0)))
    with pytest.raises(ValueError, match=r"h0 should have shape .* = \(2, 3, 2\), got \(1, 3, 2\)"):
        lstm(x, (tg.Tensor(np.zeros((1, BATCH, HIDDEN))), tg.Tensor(np.zeros((2, BATCH, HIDDEN)))))
    with pytest.raises(ValueError, match=r"LSTM expects hx=\(h0, c0\)"):
        lstm(x, tg.Tensor(np.zeros((2, BATCH, HIDDEN))))
    with pytest.raises(ValueError, match="only LSTM takes a pair"):
        make_layer("gru")(x, (tg.Tensor(np.zeros((1, BATCH, HIDDEN))),) * 2)
    with pytest.raises(TypeError, match="input dtype float32 does not match the layer's float64"):
        lstm(tg.Tensor(random((STEPS, BATCH, INPUT), 0).astype(np.float32)))
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu', got 'sigmoid'"):
        nn.RNN(2, 2, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="dropout must be a probability"):
        nn.GRU(2, 2, dropout=1.5)
    with pytest.raises(ValueError, match="hidden_size must be a positive int, got 0"):
        nn.LSTM(2, 0)


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_retain_graph_lets_backward_run_twice_through_fused_layers(mode):
    """retain_graph=True keeps the kernels' saved activations: two backwards give twice the gradient."""
    grads = {}
    for fused in (True, False):
        layer = make_layer(mode)
        layer.fused = fused
        x = tg.Tensor(random((STEPS, BATCH, INPUT), 0), requires_grad=True)
        output, _ = layer(x)
        loss = (output * output).sum()
        loss.backward(retain_graph=True)
        once = x.grad.numpy().copy()
        loss.backward()
        np.testing.assert_allclose(x.grad.numpy(), 2 * once, rtol=1e-12)
        grads[fused] = x.grad.numpy()
    np.testing.assert_allclose(grads[True], grads[False], rtol=1e-10)


def test_backward_twice_without_retain_graph_is_a_clear_error():
    layer = make_layer("lstm")
    output, _ = layer(tg.Tensor(random((STEPS, BATCH, INPUT), 0), requires_grad=True))
    loss = output.sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()


def test_repr_names_the_configuration():
    assert repr(nn.LSTM(3, 4, num_layers=2, bidirectional=True)) == "LSTM(3, 4, num_layers=2, bidirectional=True)"
    assert repr(nn.RNN(3, 4, fused=False)) == "RNN(3, 4, fused=False)"
