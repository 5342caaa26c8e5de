"""One-step cells ``nn.RNNCell/LSTMCell/GRUCell``: equations, fused == composed, gradcheck, PyTorch layout."""
import functools

import numpy as np
import pytest

import tinygrad_rnn as tg
from helpers import DEVICES, MODES, make_recurrent, random
from tinygrad_rnn import nn
from tinygrad_rnn.nn.recurrent.fused import FusedCellStep

BATCH, INPUT, HIDDEN = 3, 4, 5
make_cell = functools.partial(make_recurrent, input_size=INPUT, hidden_size=HIDDEN, cell=True)


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def numpy_step(mode, x, h, c, w_ih, w_hh, b_ih, b_hh):
    """PyTorch's documented equations, written out gate by gate (independent of the engine)."""
    H = h.shape[1]
    gx, gh = x @ w_ih.T + b_ih, h @ w_hh.T + b_hh
    block = lambda g, k: g[:, k * H:(k + 1) * H]  # noqa: E731
    if mode == "lstm":  # i, f, g, o
        i, f = sigmoid(block(gx, 0) + block(gh, 0)), sigmoid(block(gx, 1) + block(gh, 1))
        g, o = np.tanh(block(gx, 2) + block(gh, 2)), sigmoid(block(gx, 3) + block(gh, 3))
        c_next = f * c + i * g
        return o * np.tanh(c_next), c_next
    if mode == "gru":  # r, z, n
        r, z = sigmoid(block(gx, 0) + block(gh, 0)), sigmoid(block(gx, 1) + block(gh, 1))
        n = np.tanh(block(gx, 2) + r * block(gh, 2))
        return (1 - z) * n + z * h, None
    a = gx + gh
    return (np.tanh(a) if mode == "rnn_tanh" else np.maximum(a, 0)), None


def step(cell, x_np, h_np, c_np, device="cpu"):
    """Forward and backward of a random weighting of ``h'`` (and ``c'``); NumPy outputs and gradients."""
    cell.zero_grad()
    x = tg.Tensor(x_np, device=device, requires_grad=True)
    states = [None if a is None else tg.Tensor(a, device=device, requires_grad=True) for a in (h_np, c_np)]
    if cell.mode == "lstm":
        h_next, c_next = cell(x, None if states[0] is None else tuple(states))
    else:
        h_next, c_next = cell(x, states[0]), None
    loss = (h_next * tg.Tensor(random(h_next.shape, 50), device=device)).sum()
    if c_next is not None:
        loss = loss + (c_next * tg.Tensor(random(c_next.shape, 51), device=device)).sum()
    loss.backward()
    result = {"h": h_next.numpy(), "grad_x": x.grad.numpy()}
    if c_next is not None:
        result["c"] = c_next.numpy()
    for name, state in zip(("grad_h", "grad_c"), states):
        if state is not None:
            result[name] = state.grad.numpy()
    for name, param in cell.named_parameters():
        result[f"grad_{name}"] = param.grad.numpy()
    return result


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_cell_follows_pytorch_equations(mode, fused):
    cell = make_cell(mode, fused=fused)
    x, h = random((BATCH, INPUT), 1), random((BATCH, HIDDEN), 2)
    c = random((BATCH, HIDDEN), 3) if mode == "lstm" else None
    result = step(cell, x, h, c)
    weights = [p.numpy() for p in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)]
    h_next, c_next = numpy_step(mode, x, h, c, *weights)
    np.testing.assert_allclose(result["h"], h_next, rtol=1e-12, atol=1e-14)
    if mode == "lstm":
        np.testing.assert_allclose(result["c"], c_next, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("given_state", [True, False], ids=["hx", "no-hx"])
def test_fused_cell_equals_composed_cell(device, mode, bias, given_state):
    cell = make_cell(mode, bias=bias)
    x = random((BATCH, INPUT), 4)
    h = random((BATCH, HIDDEN), 5) if given_state else None
    c = random((BATCH, HIDDEN), 6) if given_state and mode == "lstm" else None
    fused = step(cell.to(device), x, h, c, device=device)
    cell.to("cpu").fused = False
    composed = step(cell, x, h, c)
    assert fused.keys() == composed.keys()
    for key in composed:
        np.testing.assert_allclose(fused[key], composed[key], rtol=1e-10, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("mode", MODES)
def test_fused_cell_step_gradcheck(mode):
    rng = np.random.default_rng(7)
    gates = {"lstm": 4, "gru": 3}.get(mode, 1) * 2

    def tensor(*shape):
        return tg.Tensor(0.7 * rng.standard_normal(shape), requires_grad=True)

    inputs = [tensor(2, 3), tensor(2, 2), tensor(2, 2) if mode == "lstm" else None, tensor(gates, 3),
              tensor(gates, 2), tensor(gates), tensor(gates)]
    if mode == "rnn_relu":  # keep pre-activations off relu's kink
        inputs[5] = tg.Tensor(np.full(gates, 3.0), requires_grad=True)
    assert tg.gradcheck(lambda *args: FusedCellStep.apply(*args, mode=mode), inputs)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_stepping_a_cell_equals_the_sequence_layer(mode, fused):
    """A decoder stepping one token at a time computes what the one-layer sequence layer does."""
    cell = make_cell(mode, fused=fused)
    kwargs = {"nonlinearity": mode[4:]} if mode.startswith("rnn") else {}
    layer = {"lstm": nn.LSTM, "gru": nn.GRU}.get(mode, nn.RNN)(INPUT, HIDDEN, **kwargs).double()
    layer.load_state_dict({f"{name}_l0": value for name, value in cell.state_dict().items()})
    x = random((4, BATCH, INPUT), 8)
    output, _ = layer(tg.Tensor(x))
    state = None
    for t in range(4):
        state = cell(tg.Tensor(x[t]), state)
        h = state[0] if mode == "lstm" else state
        np.testing.assert_allclose(h.numpy(), output.numpy()[t], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("mode", MODES)
def test_unbatched_input(mode):
    """``(input_size,)`` in, ``(hidden_size,)`` out: the batched result's single row."""
    cell = make_cell(mode)
    x, h = random(INPUT, 9), random(HIDDEN, 10)
    lstm = mode == "lstm"
    single = cell(tg.Tensor(x), (tg.Tensor(h), tg.Tensor(h)) if lstm else tg.Tensor(h))
    batched = cell(tg.Tensor(x[None]), (tg.Tensor(h[None]), tg.Tensor(h[None])) if lstm else tg.Tensor(h[None]))
    for one, row in zip(single, batched) if lstm else [(single, batched)]:
        assert one.shape == (HIDDEN,)
        np.testing.assert_allclose(one.numpy(), row.numpy()[0], rtol=1e-12)


@pytest.mark.parametrize("cls,gates", [(nn.LSTMCell, 4), (nn.GRUCell, 3), (nn.RNNCell, 1)])
def test_parameters_have_pytorch_names_shapes_and_init(cls, gates):
    cell = cls(3, 16)
    assert [(name, p.shape) for name, p in cell.named_parameters()] == [
        ("weight_ih", (gates * 16, 3)), ("weight_hh", (gates * 16, 16)), ("bias_ih", (gates * 16,)),
        ("bias_hh", (gates * 16,))]
    for param in cell.parameters():
        assert np.abs(param.numpy()).max() <= 0.25 and param.numpy().std() > 0.25 / 3
    assert list(cls(3, 16, bias=False).state_dict()) == ["weight_ih", "weight_hh"]


def test_cell_errors_speak_to_the_user():
    cell = make_cell("lstm")
    with pytest.raises(ValueError, match=r"LSTMCell expects input of shape \(batch, 4\) or \(4,\), got \(3, 2\)"):
        cell(tg.Tensor(np.zeros((3, 2))))
    with pytest.raises(ValueError, match=r"the c state should have shape \(3, 5\) to match the input, got \(2, 5\)"):
        cell(tg.Tensor(np.zeros((3, INPUT))), (tg.Tensor(np.zeros((3, HIDDEN))), tg.Tensor(np.zeros((2, HIDDEN)))))
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu'"):
        nn.RNNCell(2, 2, nonlinearity="gelu")
    assert repr(nn.RNNCell(2, 3, nonlinearity="relu", bias=False)) == "RNNCell(2, 3, bias=False, nonlinearity='relu')"
