"""Fused recurrent kernels (``tinygrad_rnn.nn.recurrent.kernels``) against a slow plain-NumPy reference.

The reference below runs each sequence on its own, step by step, straight from the
equations, so it shares no masking or buffer logic with the kernels. Gradients are
checked against central finite differences (float64) of both the kernels' forward
and the reference's forward.
"""
import numpy as np
import pytest

from helpers import DEVICES, MODES
from tinygrad_rnn import backend
from tinygrad_rnn.nn.recurrent import kernels as rnn_kernels

GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}


# ----------------------------------------------------------------------------- reference
def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def reference_cell(mode, x, h, c, w_ih, w_hh, b_ih, b_hh):
    """One step from the equations, gate order i,f,g,o (LSTM) and r,z,n (GRU)."""
    hidden = h.shape[-1]
    gi = x @ w_ih.T + (0 if b_ih is None else b_ih)
    gh = h @ w_hh.T + (0 if b_hh is None else b_hh)
    if mode == "lstm":
        a = gi + gh
        i, f, g, o = (a[..., k * hidden:(k + 1) * hidden] for k in range(4))
        c_next = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        return sigmoid(o) * np.tanh(c_next), c_next
    if mode == "gru":
        r = sigmoid(gi[..., :hidden] + gh[..., :hidden])
        z = sigmoid(gi[..., hidden:2 * hidden] + gh[..., hidden:2 * hidden])
        n = np.tanh(gi[..., 2 * hidden:] + r * gh[..., 2 * hidden:])
        return (1 - z) * n + z * h, None
    a = gi + gh
    return (np.tanh(a) if mode == "rnn_tanh" else np.maximum(a, 0)), None


def reference_sequence(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths=None, reverse=False):
    """Each sequence alone over its own real steps; zeros at padded output positions."""
    steps, batch, _ = x.shape
    hidden = w_hh.shape[1]
    lengths = [steps] * batch if lengths is None else list(lengths)
    output = np.zeros((steps, batch, hidden))
    h_n, c_n = np.zeros((batch, hidden)), np.zeros((batch, hidden))
    for b in range(batch):
        h = h0[b]
        c = c0[b] if mode == "lstm" else None
        times = range(lengths[b] - 1, -1, -1) if reverse else range(lengths[b])
        for t in times:
            h, c = reference_cell(mode, x[t, b], h, c, w_ih, w_hh, b_ih, b_hh)
            output[t, b] = h
        h_n[b] = h
        if mode == "lstm":
            c_n[b] = c
    return output, h_n, (c_n if mode == "lstm" else None)


# ----------------------------------------------------------------------------- problem setup
NAMES = ["x", "h0", "c0", "weight_ih", "weight_hh", "bias_ih", "bias_hh"]


def make_problem(mode, steps=4, batch=3, input_size=3, hidden=2, seed=0, bias=True, dtype=np.float64):
    rng = np.random.default_rng(seed)
    gates = GATES[mode] * hidden
    p = {
        "x": rng.standard_normal((steps, batch, input_size)),
        "h0": rng.standard_normal((batch, hidden)) * 0.5,
        "c0": rng.standard_normal((batch, hidden)) * 0.5 if mode == "lstm" else None,
        "weight_ih": rng.standard_normal((gates, input_size)) * 0.6,
        "weight_hh": rng.standard_normal((gates, hidden)) * 0.6,
        "bias_ih": rng.standard_normal(gates) * 0.3 if bias else None,
        "bias_hh": rng.standard_normal(gates) * 0.3 if bias else None,
    }
    if mode == "rnn_relu":        # keep pre-activations away from the kink for finite differences
        p["bias_ih"] = None if not bias else p["bias_ih"] + 0.05
    return {k: (None if v is None else v.astype(dtype)) for k, v in p.items()}


def loss_weights(mode, steps, batch, hidden, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((steps, batch, hidden)), rng.standard_normal((batch, hidden)),
            rng.standard_normal((batch, hidden)) if mode == "lstm" else None)


def scalar_loss(forward_fn, p, weights):
    output, h_n, c_n = forward_fn(p)
    w_out, w_h, w_c = weights
    total = np.sum(w_out * output) + np.sum(w_h * h_n)
    return total + (np.sum(w_c * c_n) if c_n is not None else 0.0)


def kernel_forward(mode, lengths=None, reverse=False):
    def run(p):
        out, h_n, c_n, _ = rnn_kernels.sequence_forward(mode, *(p[k] for k in NAMES), lengths=lengths,
                                                        reverse=reverse, need_grad=False)
        return out, h_n, c_n
    return run


def ref_forward(mode, lengths=None, reverse=False):
    return lambda p: reference_sequence(mode, *(p[k] for k in NAMES), lengths=lengths, reverse=reverse)


def kernel_grads(mode, p, weights, lengths=None, reverse=False):
    _, _, _, saved = rnn_kernels.sequence_forward(mode, *(p[k] for k in NAMES), lengths=lengths, reverse=reverse)
    grads = rnn_kernels.sequence_backward(saved, *weights)
    return dict(zip(NAMES, grads))


def numeric_grads(forward_fn, p, weights, eps=1e-6):
    """Central finite differences of ``scalar_loss`` for every element of every input."""
    result = {}
    for name in NAMES:
        if p[name] is None:
            result[name] = None
            continue
        grad = np.zeros_like(p[name])
        for index in np.ndindex(p[name].shape):
            saved_value = p[name][index]
            p[name][index] = saved_value + eps
            plus = scalar_loss(forward_fn, p, weights)
            p[name][index] = saved_value - eps
            minus = scalar_loss(forward_fn, p, weights)
            p[name][index] = saved_value
            grad[index] = (plus - minus) / (2 * eps)
        result[name] = grad
    return result


def assert_grads_close(analytic, numeric, atol=1e-7, rtol=1e-6):
    for name in NAMES:
        if numeric[name] is None:
            assert analytic[name] is None, f"{name}: expected no gradient"
            continue
        np.testing.assert_allclose(analytic[name], numeric[name], atol=atol, rtol=rtol, err_msg=name)


CASES = [(None, False), (None, True), ([4, 2, 1], False), ([1, 4, 3], True)]


# ----------------------------------------------------------------------------- forward
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("lengths,reverse", CASES)
def test_forward_matches_reference(device, mode, lengths, reverse):
    p = make_problem(mode, steps=4, batch=3, input_size=5, hidden=3)
    expected = reference_sequence(mode, *(p[k] for k in NAMES), lengths=lengths, reverse=reverse)
    args = [None if p[k] is None else backend.to_device(p[k], device) for k in NAMES]
    out, h_n, c_n, saved = rnn_kernels.sequence_forward(mode, *args, lengths=lengths, reverse=reverse)
    np.testing.assert_allclose(backend.as_numpy(out), expected[0], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(backend.as_numpy(h_n), expected[1], rtol=1e-12, atol=1e-13)
    if mode == "lstm":
        np.testing.assert_allclose(backend.as_numpy(c_n), expected[2], rtol=1e-12, atol=1e-13)
    else:
        assert c_n is None
    assert saved is not None


@pytest.mark.parametrize("mode", MODES)
def test_float32_follows_inputs(mode):
    p = make_problem(mode, steps=6, batch=4, input_size=5, hidden=7, dtype=np.float32)
    out, h_n, c_n, saved = rnn_kernels.sequence_forward(mode, *(p[k] for k in NAMES), lengths=[6, 2, 5, 1])
    assert out.dtype == h_n.dtype == np.float32
    p64 = {k: None if v is None else v.astype(np.float64) for k, v in p.items()}
    expected = reference_sequence(mode, *(p64[k] for k in NAMES), lengths=[6, 2, 5, 1])
    np.testing.assert_allclose(out, expected[0], rtol=1e-4, atol=1e-5)
    grads = rnn_kernels.sequence_backward(saved, np.ones_like(out), None, None)
    assert all(g is None or g.dtype == np.float32 for g in grads)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("lengths,reverse", CASES)
def test_need_grad_false_same_numbers(mode, lengths, reverse):
    p = make_problem(mode, steps=4, batch=3, input_size=3, hidden=4)
    args = [p[k] for k in NAMES]
    with_grad = rnn_kernels.sequence_forward(mode, *args, lengths=lengths, reverse=reverse)
    without = rnn_kernels.sequence_forward(mode, *args, lengths=lengths, reverse=reverse, need_grad=False)
    assert without[3] is None
    for a, b in zip(with_grad[:3], without[:3]):
        if a is None:
            assert b is None
        else:
            np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- backward
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("lengths,reverse", CASES)
def test_backward_matches_finite_differences(mode, lengths, reverse):
    p = make_problem(mode)
    weights = loss_weights(mode, 4, 3, 2)
    analytic = kernel_grads(mode, p, weights, lengths, reverse)
    assert_grads_close(analytic, numeric_grads(kernel_forward(mode, lengths, reverse), p, weights))
    assert_grads_close(analytic, numeric_grads(ref_forward(mode, lengths, reverse), p, weights))


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_backward_without_bias_and_without_some_grads(mode):
    p = make_problem(mode, bias=False)
    weights = loss_weights(mode, 4, 3, 2)
    weights = (weights[0], None, None)          # only the output is used
    analytic = kernel_grads(mode, p, weights, [4, 1, 3], True)
    numeric = numeric_grads(ref_forward(mode, [4, 1, 3], True), p,
                            (weights[0], np.zeros((3, 2)), np.zeros((3, 2)) if mode == "lstm" else None))
    assert_grads_close(analytic, numeric)


def test_gradient_checker_rejects_a_wrong_backward():
    """The checker itself must fail when one gradient element is off."""
    p = make_problem("lstm")
    weights = loss_weights("lstm", 4, 3, 2)
    analytic = kernel_grads("lstm", p, weights)
    analytic["weight_hh"][3, 1] += 1e-4
    with pytest.raises(AssertionError):
        assert_grads_close(analytic, numeric_grads(kernel_forward("lstm"), p, weights))


@pytest.mark.parametrize("mode", MODES)
def test_retain_saved_runs_backward_twice_else_refuses(mode):
    p = make_problem(mode)
    weights = loss_weights(mode, 4, 3, 2)
    _, _, _, saved = rnn_kernels.sequence_forward(mode, *(p[k] for k in NAMES), lengths=[4, 2, 3])
    first = rnn_kernels.sequence_backward(saved, *weights, retain_saved=True)
    second = rnn_kernels.sequence_backward(saved, *weights)
    for a, b in zip(first, second):
        assert (a is None and b is None) or np.array_equal(a, b)
    with pytest.raises(RuntimeError, match="retain_saved"):
        rnn_kernels.sequence_backward(saved, *weights)


# ----------------------------------------------------------------------------- variable lengths
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reverse", [False, True])
def test_lengths_5_1_equal_each_sequence_alone(mode, reverse):
    p = make_problem(mode, steps=5, batch=2, input_size=3, hidden=4, seed=3)
    weights = loss_weights(mode, 5, 2, 4, seed=4)
    lengths = [5, 1]
    out, h_n, c_n, saved = rnn_kernels.sequence_forward(mode, *(p[k] for k in NAMES), lengths=lengths,
                                                        reverse=reverse)
    batch_grads = dict(zip(NAMES, rnn_kernels.sequence_backward(saved, *weights)))
    summed = {k: 0 for k in NAMES[3:]}
    for b, length in enumerate(lengths):
        alone = {k: (v if k in NAMES[3:] or v is None else (v[:length, b:b + 1] if k == "x" else v[b:b + 1]))
                 for k, v in p.items()}
        out_b, h_b, c_b, saved_b = rnn_kernels.sequence_forward(mode, *(alone[k] for k in NAMES), reverse=reverse)
        np.testing.assert_allclose(out[:length, b:b + 1], out_b, rtol=1e-13, atol=1e-14)
        assert np.all(out[length:, b] == 0), "padded outputs must be exactly zero"
        np.testing.assert_allclose(h_n[b:b + 1], h_b, rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(h_n[b], out[length - 1 if not reverse else 0, b], rtol=0, atol=0)
        if mode == "lstm":
            np.testing.assert_allclose(c_n[b:b + 1], c_b, rtol=1e-13, atol=1e-14)
        w_b = (weights[0][:length, b:b + 1], weights[1][b:b + 1],
               None if weights[2] is None else weights[2][b:b + 1])
        grads_b = dict(zip(NAMES, rnn_kernels.sequence_backward(saved_b, *w_b)))
        np.testing.assert_allclose(batch_grads["x"][:length, b:b + 1], grads_b["x"], rtol=1e-12, atol=1e-13)
        assert np.all(batch_grads["x"][length:, b] == 0)
        np.testing.assert_allclose(batch_grads["h0"][b:b + 1], grads_b["h0"], rtol=1e-12, atol=1e-13)
        if mode == "lstm":
            np.testing.assert_allclose(batch_grads["c0"][b:b + 1], grads_b["c0"], rtol=1e-12, atol=1e-13)
        for k in summed:
            summed[k] = summed[k] + grads_b[k]
    for k in summed:
        np.testing.assert_allclose(batch_grads[k], summed[k], rtol=1e-12, atol=1e-13, err_msg=k)


def test_all_lengths_full_is_the_unpadded_path():
    p = make_problem("lstm")
    a = rnn_kernels.sequence_forward("lstm", *(p[k] for k in NAMES), lengths=np.array([4, 4, 4]))
    b = rnn_kernels.sequence_forward("lstm", *(p[k] for k in NAMES))
    assert a[3].padded is None
    np.testing.assert_array_equal(a[0], b[0])


@pytest.mark.parametrize("lengths,message", [
    ([4, 0, 2], "between 1 and T=4"), ([4, 5, 2], "between 1 and T=4"), ([4, 2], "3 integers"),
    ([4.5, 2, 1], "integers"),
])
def test_bad_lengths_are_refused(lengths, message):
    p = make_problem("gru")
    with pytest.raises(ValueError, match=message):
        rnn_kernels.sequence_forward("gru", *(p[k] for k in NAMES), lengths=lengths)


def test_unknown_mode_is_refused():
    p = make_problem("lstm")
    with pytest.raises(ValueError, match="unknown recurrent mode 'lstmm'"):
        rnn_kernels.sequence_forward("lstmm", *(p[k] for k in NAMES))


# ----------------------------------------------------------------------------- single step
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", MODES)
def test_cell_equals_sequence_of_one_step(device, mode):
    p = make_problem(mode, steps=1, batch=3, input_size=5, hidden=4, seed=7)
    weights = loss_weights(mode, 1, 3, 4, seed=8)
    args = {k: None if v is None else backend.to_device(v, device) for k, v in p.items()}
    w = [None if v is None else backend.to_device(v, device) for v in weights]
    out, h_n, c_n, saved = rnn_kernels.sequence_forward(mode, *(args[k] for k in NAMES))
    h_cell, c_cell, saved_cell = rnn_kernels.cell_forward(mode, args["x"][0], *(args[k] for k in NAMES[1:]))
    np.testing.assert_allclose(backend.as_numpy(h_cell), backend.as_numpy(h_n), rtol=1e-13, atol=1e-14)
    if mode == "lstm":
        np.testing.assert_allclose(backend.as_numpy(c_cell), backend.as_numpy(c_n), rtol=1e-13, atol=1e-14)
    # the cell's grad_h is the sequence's grad through output[0] plus h_n
    seq_grads = rnn_kernels.sequence_backward(saved, w[0], w[1], w[2])
    cell_grads = rnn_kernels.cell_backward(saved_cell, w[0][0] + w[1], w[2])
    np.testing.assert_allclose(backend.as_numpy(cell_grads[0]), backend.as_numpy(seq_grads[0][0]), rtol=1e-12,
                               atol=1e-13)
    for a, b in zip(cell_grads[1:], seq_grads[1:]):
        if b is None:
            assert a is None
        else:
            np.testing.assert_allclose(backend.as_numpy(a), backend.as_numpy(b), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("mode", MODES)
def test_cell_backward_matches_finite_differences(mode):
    p = make_problem(mode, steps=1, batch=2, input_size=3, hidden=3, seed=11)
    weights = loss_weights(mode, 1, 2, 3, seed=12)

    def cell(q):
        h, c, _ = rnn_kernels.cell_forward(mode, q["x"][0], *(q[k] for k in NAMES[1:]), need_grad=False)
        return h[None], h, c

    _, _, saved = rnn_kernels.cell_forward(mode, p["x"][0], *(p[k] for k in NAMES[1:]))
    grads = rnn_kernels.cell_backward(saved, weights[0][0] + weights[1], weights[2])
    analytic = dict(zip(NAMES, (grads[0][None],) + tuple(grads[1:])))
    assert_grads_close(analytic, numeric_grads(cell, p, weights))


# ----------------------------------------------------------------------------- recycled buffers
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("lengths", [None, [7, 3, 5, 1]])
def test_recycled_buffers_never_touch_returned_arrays(monkeypatch, mode, lengths):
    """Buffers go back to the pool after use; nothing handed out may change in later calls."""
    from tinygrad_rnn.nn.recurrent import workspace as rnn_workspace

    rnn_workspace.clear()
    monkeypatch.setattr(rnn_workspace, "MIN_BYTES", 0)      # recycle every buffer, however small
    first = make_problem(mode, steps=7, batch=4, input_size=5, hidden=6, seed=41)
    second = make_problem(mode, steps=7, batch=4, input_size=5, hidden=6, seed=42)
    weights = loss_weights(mode, 7, 4, 6, seed=43)
    kept = {}
    for need_grad in (False, True):
        out, h_n, c_n, saved = rnn_kernels.sequence_forward(mode, *(first[k] for k in NAMES), lengths=lengths,
                                                            need_grad=need_grad)
        kept[need_grad] = [a.copy() for a in (out, h_n, c_n) if a is not None], [out, h_n, c_n]
    grads = rnn_kernels.sequence_backward(saved, *weights)
    grads_copy = [None if g is None else g.copy() for g in grads]
    assert rnn_workspace.held_bytes() > 0, "backward should have recycled its buffers"
    for _ in range(2):                  # reuse every pooled buffer with other numbers
        for need_grad in (False, True):
            _, _, _, other = rnn_kernels.sequence_forward(mode, *(second[k] for k in NAMES), lengths=lengths,
                                                          need_grad=need_grad)
        rnn_kernels.sequence_backward(other, *weights)
    for copies, arrays in kept.values():
        for copy, array in zip(copies, [a for a in arrays if a is not None]):
            np.testing.assert_array_equal(array, copy)
    for copy, grad in zip(grads_copy, grads):
        if grad is not None:
            np.testing.assert_array_equal(grad, copy)
