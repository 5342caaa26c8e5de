"""Fused whole-sequence and single-step recurrent kernels on raw arrays (NumPy or CuPy).

No autograd here: plain functions on arrays that ``fused`` wraps into
engine Functions. One layer, one direction per call. CuPy arrays go to
``sequence_cuda`` (same arguments and returns, a layout and a step made for the GPU);
what follows describes the NumPy path, the reference.

Modes, gate layouts and weight shapes: see ``gates``. The dtype follows the inputs
(float32 or float64).

How the work is laid out (the speed comes from this, see ``bench/rnn_kernels.py``):

- gates live slot-major in one ``(G, T, B, H)`` buffer, so each gate of each step is
  a contiguous ``(B, H)`` block (fast NumPy ufuncs);
  the matrix products are batched over the ``G`` gates (``matmul`` on stacks).
- forward: the input projection of all ``T`` steps is one product
  ``(T*B, I) @ (I, H)`` per gate, both biases folded in; each step adds one recurrent
  product ``h @ W_hh^T`` written into a preallocated buffer, then the gate math runs
  in place (``pointwise``); activations overwrite the projection buffer, which
  is what backward keeps.
- backward: each step overwrites its saved activations with the gradient of the
  pre-activations and makes one product ``dA @ W_hh`` for the previous state; after
  the loop ``grad_weight_ih = dA^T X``, ``grad_weight_hh = dA^T H_prev`` and
  ``grad_x = dA W_ih`` are large products over all steps at once.

Variable lengths: ``lengths (B,)`` ints with ``1 <= length <= T``. Padded steps
(``t >= length[b]``) never change the state and output exactly 0 there; ``h_n``
and ``c_n`` are each sequence's state after its own last real step; with
``reverse=True`` steps run ``T-1 .. 0`` so each sequence starts at its own end.
Steps where every sequence is real skip the mask work entirely.

Buffers that never reach the caller (weight copies, scratch, and the saved gates
and cell states once backward has used them) are recycled through
``workspace`` instead of being fresh, page-faulting memory on every call.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ... import backend
from . import sequence_cuda, workspace
from .gates import check_mode
from .lengths import check_lengths
from .pointwise import StepBuffers, make_pointwise


@dataclass
class SavedSequence:
    """What ``sequence_backward`` needs, and nothing more.

    - ``x (T, B, I)``, ``h0``/``c0 (B, H)``, ``weight_ih``, ``weight_hh``: references to the inputs.
    - ``gates (G, T, B, H)``: gate activations per step, slot-major (LSTM ``i, f, g, o``,
      GRU ``r, z, n``); ``None`` for the RNN, whose activation is ``h_states`` itself.
    - ``h_states (T, B, H)``: hidden state after each step. Without padding it *is* the
      returned output (so the output must not be modified in place); with padding
      it keeps the carried state where the output has zeros.
    - ``c_states (T, B, H)``: LSTM cell state after each step, else ``None``.
    - ``hidden_n (T, B, H)``: GRU ``W_hn h + b_hn`` per step, else ``None``.
    - ``padded``: per step a ``(B, 1)`` bool mask of padded sequences, or ``None`` for a
      step with none; the whole field is ``None`` without padding.

    Backward overwrites ``gates`` and ``hidden_n`` in place (they become the gradients)
    unless asked to retain them, so by default it may run once; it then hands them (and
    ``c_states``, and ``h_states`` when it is not the output) to ``workspace`` for
    the next forward and clears these fields.
    """

    mode: str
    reverse: bool
    x: Any
    h0: Any
    c0: Any
    weight_ih: Any
    weight_hh: Any
    has_bias_ih: bool
    has_bias_hh: bool
    gates: Any
    h_states: Any
    c_states: Any
    hidden_n: Any
    padded: list | None
    consumed: bool = False


def uses_device_kernels(xp) -> bool:
    """Whether arrays of ``xp`` go to ``sequence_cuda`` (CuPy) rather than the NumPy path below."""
    return xp is not backend.numpy


def _padding(xp, lengths, steps, batch):
    """``(valid (T, B, 1) bool, padded per step)`` or ``(None, None)`` when nothing is padded."""
    lengths = check_lengths(lengths, steps, batch)
    if lengths is None:
        return None, None
    valid = backend.numpy.arange(steps)[:, None] < lengths[None, :]
    padded = [None if row.all() else xp.asarray(~row)[:, None] for row in valid]
    return xp.asarray(valid[:, :, None]), padded


def _forward_weights(xp, scratch, pointwise, mode, weight_ih, weight_hh, bias_ih, bias_hh, hidden_size, copy):
    """Per-gate stacks ``(G, I, H)``, ``(G, H, H)`` of the transposed weights, and the folded bias ``(G, 1, H)``.

    With ``copy`` (a sequence) ``W_hh^T`` is made contiguous: a transposed view slows
    every step's product by ~25%, which over a sequence costs more than the copy; the
    weights and the bias are then also scaled by ``pointwise.folded_scale`` (the sigmoid
    convention's inner 1/2, see ``gates``) when the step object asks for it.
    """
    gates = pointwise.gate_count
    w_ih = weight_ih.reshape(gates, hidden_size, -1)
    w_hh = weight_hh.reshape(gates, hidden_size, hidden_size)
    scale = pointwise.folded_scale
    if scale is not None:
        w_ih = xp.multiply(w_ih, scale, out=scratch.empty(w_ih.shape, w_ih.dtype))
    if copy:
        w_hh_t = scratch.empty(w_hh.shape, w_hh.dtype)
        if scale is None:
            xp.copyto(w_hh_t, w_hh.transpose(0, 2, 1))
        else:
            xp.multiply(w_hh.transpose(0, 2, 1), scale, out=w_hh_t)
    else:
        w_hh_t = w_hh.transpose(0, 2, 1)
    bias = None
    if bias_ih is not None:
        bias = bias_ih.astype(weight_ih.dtype).reshape(gates, 1, hidden_size)   # a copy: folded in place
    if bias_hh is not None:
        recurrent = bias_hh.reshape(gates, 1, hidden_size)
        if mode == "gru":                 # b_hn stays inside r * (W_hn h + b_hn)
            recurrent = recurrent[:2]
        if bias is None:
            bias = xp.zeros((gates, 1, hidden_size), weight_ih.dtype)
        bias[:recurrent.shape[0]] += recurrent
    if bias is not None and scale is not None:
        bias *= scale
    return w_ih.transpose(0, 2, 1), w_hh_t, bias


def sequence_forward(mode, x, h0, c0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, lengths=None,
                     reverse=False, need_grad=True):
    """Run one layer and direction over a whole sequence.

    x: ``(T, B, I)``; h0, c0: ``(B, H)`` (``c0`` only for LSTM; ``None`` means zeros);
    lengths: ``None`` or ints ``(B,)``, ``1 <= length <= T``, any order.

    Returns ``output (T, B, H)``, ``h_n (B, H)``, ``c_n (B, H)`` or ``None``, and a
    :class:`SavedSequence` (``None`` when ``need_grad`` is false: no per-step gates
    or cell states are kept then).
    """
    check_mode(mode)
    xp = backend.get_array_module(x)
    if uses_device_kernels(xp):
        return sequence_cuda.sequence_forward(mode, x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, lengths,
                                              reverse, need_grad)
    dtype = xp.result_type(x, weight_ih, weight_hh)
    x, weight_ih, weight_hh = (a.astype(dtype, copy=False) for a in (x, weight_ih, weight_hh))
    steps, batch, _ = x.shape
    hidden_size = weight_hh.shape[1]
    lstm, gru = mode == "lstm", mode == "gru"
    h0 = xp.zeros((batch, hidden_size), dtype) if h0 is None else h0.astype(dtype, copy=False)
    if lstm:
        c0 = xp.zeros((batch, hidden_size), dtype) if c0 is None else c0.astype(dtype, copy=False)
    else:
        c0 = None
    valid, padded = _padding(xp, lengths, steps, batch)
    weight_copies = steps > 1                     # they pay off over a sequence, not for one step
    bias_hn = bias_hh[2 * hidden_size:].astype(dtype, copy=False) if gru and bias_hh is not None else None
    scratch = workspace.Scratch(xp)
    pointwise = make_pointwise(mode, xp, batch, hidden_size, dtype, fold_scale=weight_copies, bias_hn=bias_hn,
                               empty=scratch.empty)
    w_ih_t, w_hh_t, bias = _forward_weights(xp, scratch, pointwise, mode, weight_ih, weight_hh, bias_ih, bias_hh,
                                            hidden_size, weight_copies)

    gate_count = pointwise.gate_count
    state_shape = (steps, batch, hidden_size)
    gates = workspace.take(xp, (gate_count,) + state_shape, dtype)
    xp.matmul(x.reshape(steps * batch, -1), w_ih_t, out=gates.reshape(gate_count, steps * batch, hidden_size))
    if bias is not None:
        gates.reshape(gate_count, steps * batch, hidden_size)[...] += bias
    h_states = gates[0] if gate_count == 1 else workspace.take(xp, state_shape, dtype)
    c_states = workspace.take(xp, state_shape, dtype) if lstm and need_grad else None
    c_pingpong = scratch.empty((2, batch, hidden_size), dtype) if lstm and not need_grad else None
    hidden_n = workspace.take(xp, state_shape, dtype) if gru and need_grad else None
    hn_step = scratch.empty((batch, hidden_size), dtype) if gru and not need_grad else None
    step = StepBuffers()
    step.recurrent = scratch.empty((gate_count, batch, hidden_size), dtype)

    h_prev, c_prev, c_out = h0, c0, None
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    for k, t in enumerate(order):
        xp.matmul(h_prev, w_hh_t, out=step.recurrent)
        h_out = h_states[t]
        if lstm:
            c_out = c_states[t] if need_grad else c_pingpong[k & 1]
        if gru:
            step.hidden_n = hidden_n[t] if need_grad else hn_step
        step.gates, step.h_prev, step.c_prev, step.h, step.c = gates[:, t], h_prev, c_prev, h_out, c_out
        pointwise.forward_step(step)
        if padded is not None and padded[t] is not None:
            xp.copyto(h_out, h_prev, where=padded[t])
            if lstm:
                xp.copyto(c_out, c_prev, where=padded[t])
        h_prev, c_prev = h_out, c_out

    output = h_states if valid is None else xp.where(valid, h_states, 0)
    h_n = h_prev.copy()
    c_n = c_prev.copy() if lstm else None
    scratch.release()
    saved = None
    if not need_grad:
        workspace.give(xp, None if gate_count == 1 else gates, None if valid is None else h_states)
    else:
        saved = SavedSequence(mode=mode, reverse=reverse, x=x, h0=h0, c0=c0, weight_ih=weight_ih,
                              weight_hh=weight_hh, has_bias_ih=bias_ih is not None,
                              has_bias_hh=bias_hh is not None, gates=None if gate_count == 1 else gates,
                              h_states=h_states, c_states=c_states, hidden_n=hidden_n, padded=padded)
    return output, h_n, c_n, saved


def sequence_backward(saved, grad_output=None, grad_h_n=None, grad_c_n=None, retain_saved=False):
    """BPTT through one :func:`sequence_forward` call. Any gradient may be ``None`` (zero).

    grad_output: ``(T, B, H)`` (ignored at padded positions, whose output is constant 0);
    grad_h_n, grad_c_n: ``(B, H)``.

    Returns ``grad_x (T, B, I), grad_h0 (B, H), grad_c0 (B, H) or None, grad_weight_ih,
    grad_weight_hh, grad_bias_ih, grad_bias_hh`` (bias gradients ``None`` where the bias
    was ``None``). Overwrites ``saved``'s gate buffers unless ``retain_saved``.
    """
    if isinstance(saved, sequence_cuda.DeviceSaved):
        return sequence_cuda.sequence_backward(saved, grad_output, grad_h_n, grad_c_n, retain_saved)
    if saved.consumed:
        raise RuntimeError("this forward's saved buffers were already used by a backward pass; "
                           "pass retain_saved=True to the first backward to run it twice")
    mode, x, h_states = saved.mode, saved.x, saved.h_states
    xp = backend.get_array_module(x)
    dtype = h_states.dtype
    steps, batch, _ = x.shape
    hidden_size = saved.weight_hh.shape[1]
    lstm, gru = mode == "lstm", mode == "gru"
    scratch = workspace.Scratch(xp)
    pointwise = make_pointwise(mode, xp, batch, hidden_size, dtype, empty=scratch.empty)
    gate_count = pointwise.gate_count
    if saved.gates is None:                       # RNN: the activations are the states
        d_gates = scratch.empty((1, steps, batch, hidden_size), dtype)
        hidden_n = None
    elif retain_saved:
        d_gates = scratch.empty(saved.gates.shape, dtype)
        xp.copyto(d_gates, saved.gates)
        hidden_n = None
        if gru:
            hidden_n = scratch.empty(saved.hidden_n.shape, dtype)
            xp.copyto(hidden_n, saved.hidden_n)
    else:
        d_gates, hidden_n = saved.gates, saved.hidden_n
    activations = h_states[None] if saved.gates is None else d_gates
    padded, c_states = saved.padded, saved.c_states

    def zeros_or_copy(grad):
        return xp.zeros((batch, hidden_size), dtype) if grad is None else grad.astype(dtype, copy=True)

    step = StepBuffers()
    carry_h, spare = zeros_or_copy(grad_h_n), xp.empty((batch, hidden_size), dtype)
    dh_buffer = scratch.empty((batch, hidden_size), dtype) if grad_output is not None else None
    dc = step.dc = zeros_or_copy(grad_c_n) if lstm else None       # updated in place, step by step
    dc_keep = scratch.empty((batch, hidden_size), dtype) if lstm and padded is not None else None
    direct = step.direct = scratch.empty((batch, hidden_size), dtype) if gru else None
    # dL/dh_prev = dA_t (B, G*H) @ W_hh: one product on a row-major copy of the step's gate
    # gradients measured faster (2 threads) than G products on the gate blocks plus a sum
    weight_hh = saved.weight_hh
    flat = scratch.empty((batch, gate_count, hidden_size), dtype) if gate_count > 1 else None

    order = range(steps) if saved.reverse else range(steps - 1, -1, -1)
    step_before = 1 if saved.reverse else -1
    for t in order:
        first = not 0 <= t + step_before < steps
        step.h_prev = saved.h0 if first else h_states[t + step_before]
        if lstm:
            step.c_prev = saved.c0 if first else c_states[t + step_before]
            step.c = c_states[t]
        if gru:
            step.hidden_n = hidden_n[t]
        pad = None if padded is None else padded[t]
        step.dh = carry_h
        if grad_output is not None:
            xp.add(carry_h, grad_output[t], out=dh_buffer)
            step.dh = dh_buffer
        if pad is not None and lstm:
            xp.copyto(dc_keep, dc)
        d_step = step.d_gates = d_gates[:, t]
        step.gates = activations[:, t]
        pointwise.backward_step(step)
        if pad is not None:
            xp.copyto(d_step, 0, where=pad)
            if gru:
                xp.copyto(hidden_n[t], 0, where=pad)
        if flat is None:
            xp.matmul(d_step[0], weight_hh, out=spare)
        else:
            xp.copyto(flat.transpose(1, 0, 2), d_step)
            xp.matmul(flat.reshape(batch, -1), weight_hh, out=spare)
        if gru:
            xp.add(spare, direct, out=spare)
        if pad is not None:
            xp.copyto(spare, carry_h, where=pad)
            if lstm:
                xp.copyto(dc, dc_keep, where=pad)
        carry_h, spare = spare, carry_h

    grad_weight_hh, grad_bias_hh = _weight_and_bias_grads(xp, scratch, d_gates, h_states, saved.h0,
                                                          saved.reverse, saved.has_bias_hh)
    if gru:
        # for the input side (grad_weight_ih, grad_bias_ih, grad_x) n's gradient is dL/da_n, which
        # backward_step left in hidden_n; d_gates[2] held the recurrent side dL/db_n until now
        xp.copyto(d_gates[2], hidden_n)
    d_stack = d_gates.reshape(gate_count, steps * batch, hidden_size)
    x_flat = x.reshape(steps * batch, -1)
    grad_weight_ih = xp.matmul(d_stack.transpose(0, 2, 1), x_flat).reshape(gate_count * hidden_size, -1)
    grad_bias_ih = _gate_sums(xp, d_stack) if saved.has_bias_ih else None
    grad_x = _input_grad(xp, scratch, d_stack, saved.weight_ih.reshape(gate_count, hidden_size, -1))
    scratch.release()
    if not retain_saved:
        # nothing returned is a view of these: they go back to the pool (the states only when
        # they are not the output the caller holds)
        workspace.give(xp, saved.gates, saved.hidden_n, saved.c_states, None if padded is None else h_states)
        saved.consumed = True
        saved.gates = saved.hidden_n = saved.c_states = saved.h_states = None
    return grad_x.reshape(x.shape), carry_h, dc, grad_weight_ih, grad_weight_hh, grad_bias_ih, grad_bias_hh


def _gate_sums(xp, d_stack):
    """``(G, N, H) -> (G*H,)`` sums over ``N``; a product with ones beats ``sum(axis=1)`` in NumPy."""
    return xp.matmul(xp.ones(d_stack.shape[1], d_stack.dtype), d_stack).reshape(-1)


def _input_grad(xp, scratch, d_stack, w_ih):
    """``sum_k dA_k (N, H) @ W_ih_k (H, I)``: one product per gate into one buffer, summed in place."""
    grad = xp.matmul(d_stack[0], w_ih[0])
    if d_stack.shape[0] > 1:
        term = scratch.empty(grad.shape, grad.dtype)
        for gate in range(1, d_stack.shape[0]):
            xp.matmul(d_stack[gate], w_ih[gate], out=term)
            grad += term
    return grad


def _weight_and_bias_grads(xp, scratch, d_gates, h_states, h0, reverse, has_bias):
    """``grad_weight_hh = sum_t dA_t^T h_prev_t`` (per gate, two products) and the recurrent bias gradient."""
    gate_count, steps, batch, hidden_size = d_gates.shape
    first = steps - 1 if reverse else 0
    grad = xp.matmul(d_gates[:, first].transpose(0, 2, 1), h0)
    if steps > 1:
        later, prev = (d_gates[:, :-1], h_states[1:]) if reverse else (d_gates[:, 1:], h_states[:-1])
        later = later.reshape(gate_count, (steps - 1) * batch, hidden_size)
        term = scratch.empty(grad.shape, grad.dtype)
        grad += xp.matmul(later.transpose(0, 2, 1), prev.reshape((steps - 1) * batch, -1), out=term)
    bias = _gate_sums(xp, d_gates.reshape(gate_count, steps * batch, hidden_size)) if has_bias else None
    return grad.reshape(gate_count * hidden_size, -1), bias


def cell_forward(mode, x, h, c, weight_ih, weight_hh, bias_ih=None, bias_hh=None, need_grad=True):
    """One step: x ``(B, I)``, h/c ``(B, H)`` -> ``h' (B, H)``, ``c' (B, H)`` or ``None``, saved.

    :func:`sequence_forward` with ``T = 1`` (which makes no weight copies: they only pay
    off over many steps).
    """
    _, h_next, c_next, saved = sequence_forward(mode, x[None], h, c, weight_ih, weight_hh, bias_ih, bias_hh,
                                                need_grad=need_grad)
    return h_next, c_next, saved


def cell_backward(saved, grad_h=None, grad_c=None, retain_saved=False):
    """Backward of :func:`cell_forward`: ``grad_x (B, I), grad_h, grad_c, grad_weight_ih,
    grad_weight_hh, grad_bias_ih, grad_bias_hh``."""
    grad_x, *rest = sequence_backward(saved, None, grad_h, grad_c, retain_saved=retain_saved)
    return (grad_x[0], *rest)
