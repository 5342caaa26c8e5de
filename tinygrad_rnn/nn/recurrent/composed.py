"""The composed path: a recurrent step and a whole sequence from ordinary engine ops.

This is the readable reference: autograd derives its gradient (BPTT over the unrolled
steps), and the fused path (``fused``) is tested against it to float64 precision. The
two modules offer the same two calls with the same arguments and returns:

- ``composed_step(mode, x, h, c, weights)`` / ``fused_step(...)``: one step;
- ``composed_sequence(mode, x, h0, c0, weights, lengths, reverse)`` / ``fused_sequence(...)``:
  one layer and direction over a sequence.

``weights`` is ``(weight_ih, weight_hh, bias_ih, bias_hh)`` (biases may be ``None``),
laid out as ``gates`` describes.
"""
from __future__ import annotations

from ... import backend
from ...tensor import Tensor, stack, where


def composed_step(mode: str, x: Tensor, h: Tensor, c: Tensor | None, weights):
    """One recurrent step from engine ops: returns ``(h', c')`` (``c'`` is ``None`` unless LSTM).

    ``x``: ``(B, I)``; ``h``, ``c``: ``(B, H)``. With ``gx = x W_ih^T + b_ih`` and
    ``gh = h W_hh^T + b_hh`` split into gate blocks:

    - ``lstm`` (``i, f, g, o``): ``c' = sigmoid(f) * c + sigmoid(i) * tanh(g)``,
      ``h' = sigmoid(o) * tanh(c')`` (each gate the sum of its ``gx`` and ``gh`` blocks);
    - ``gru`` (``r, z, n``): ``r = sigmoid(gx_r + gh_r)``, ``z = sigmoid(gx_z + gh_z)``,
      ``n = tanh(gx_n + r * gh_n)``, ``h' = (1 - z) * n + z * h``;
    - ``rnn_tanh``/``rnn_relu``: ``h' = tanh(gx + gh)`` / ``relu(gx + gh)``.
    """
    weight_ih, weight_hh, bias_ih, bias_hh = weights
    gates_x = x @ weight_ih.T
    gates_h = h @ weight_hh.T
    if bias_ih is not None:
        gates_x = gates_x + bias_ih
    if bias_hh is not None:
        gates_h = gates_h + bias_hh
    if mode == "lstm":
        in_gate, forget_gate, cell_gate, out_gate = (gates_x + gates_h).chunk(4, dim=1)
        c_next = forget_gate.sigmoid() * c + in_gate.sigmoid() * cell_gate.tanh()
        return out_gate.sigmoid() * c_next.tanh(), c_next
    if mode == "gru":
        x_reset, x_update, x_new = gates_x.chunk(3, dim=1)
        h_reset, h_update, h_new = gates_h.chunk(3, dim=1)
        reset = (x_reset + h_reset).sigmoid()
        update = (x_update + h_update).sigmoid()
        candidate = (x_new + reset * h_new).tanh()
        return (1 - update) * candidate + update * h, None
    preactivation = gates_x + gates_h
    return (preactivation.tanh() if mode == "rnn_tanh" else preactivation.relu()), None


def composed_sequence(mode: str, x: Tensor, h0: Tensor, c0: Tensor | None, weights, lengths=None,
                      reverse: bool = False):
    """:func:`composed_step` unrolled over ``x (T, B, I)``: ``(output (T, B, H), h_n (B, H), c_n | None)``.

    ``lengths``: ``None`` or a host int array ``(B,)`` already checked by
    ``lengths.check_lengths``; padded steps keep the state and output zeros.
    """
    steps = x.shape[0]
    inputs = [step.reshape(step.shape[1:]) for step in x.split(1, dim=0)]
    real = None
    if lengths is not None:
        xp = backend.get_array_module(x.data)
        real = xp.asarray(lengths)[:, None]  # (B, 1), compared with t at each step
    h, c = h0, c0
    outputs = [None] * steps
    for t in (reversed(range(steps)) if reverse else range(steps)):
        h_next, c_next = composed_step(mode, inputs[t], h, c, weights)
        if real is None:
            h, c = h_next, c_next
            outputs[t] = h
            continue
        is_real = real > t  # padded steps keep the state and output zeros
        h = where(is_real, h_next, h)
        c = where(is_real, c_next, c) if c is not None else None
        outputs[t] = where(is_real, h_next, 0.0)
    return stack(outputs, dim=0), h, c


__all__ = ["composed_step", "composed_sequence"]
