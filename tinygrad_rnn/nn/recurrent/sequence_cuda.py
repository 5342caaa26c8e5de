"""The fused whole-sequence kernels on CUDA: two launches per time step.

Same arguments, returns and numbers as ``kernels.sequence_forward``/``sequence_backward``
(the NumPy path, the reference, which ``kernels`` hands CuPy arrays over to here), with
the time-major layout of ``pointwise_cuda`` (``gates (T, B, G*H)``) instead of the NumPy
path's slot-major one. Per step, and nothing else:

- forward:  ``rec = h_prev W_hh^T`` (one cuBLAS gemm into a preallocated ``(B, G*H)``
  buffer, ``W_hh`` used as it is stored), then one kernel: gate math with both biases,
  state update, padding mask, the output written (zeros where padded);
- backward: one kernel: the step's incoming gradient (the later steps' product, the part
  that bypasses ``W_hh``, and the output's gradient), the gate gradients in place of the
  saved activations, ``dL/dc`` and the mask; then ``carry = dA_t W_hh``, one gemm.

Per call: the input projection of all steps is one gemm, the weight gradients are one
(two for ``W_hh``: the first step's ``h0`` is not in ``h_states``) products over all
``T*B`` rows after the loop (``dW_hh = sum_t dA_t^T h_{t-1}``), the bias gradients one
product with a vector of ones, ``grad_x`` one product. Buffers are allocated once per
call from CuPy's memory pool, ``lengths`` go to the device once per call (a full-length
batch fills them on the device: no host synchronisation in the layer), and the loops
index the buffers by step inside the kernels and through pointer offsets in the gemm,
so a step creates no arrays. ``backend.gemm`` and ``pointwise_cuda.StepKernel`` are the
only launches in the loops, which ``tests/test_rnn_cuda.py`` counts.

Why there is no CUDA graph here: CuPy 14 refuses cuBLAS calls during stream capture
(measured on an H200), and every step has one, so a captured graph could hold only the
kernels, and a replay cannot interleave them with eager products. Capturing the whole
sequence needs a matrix product of our own: a tiled gemm kernel per step, or one
persistent kernel per sequence that keeps ``W_hh`` on chip and synchronises the grid
between steps. Neither can be checked on a machine without a GPU (the NumPy interpreter
of the tests runs per-element code; a grid-wide barrier, its deadlocks and its missed
synchronisations show only on a GPU), so that is left to a session with one; two
launches per step is the floor without it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ... import backend
from . import pointwise_cuda
from .gates import GATE_COUNT
from .lengths import check_lengths


@dataclass
class DeviceSaved:
    """What :func:`sequence_backward` needs (the CUDA layout of ``kernels.SavedSequence``).

    ``x (T, B, I)`` (C-contiguous), ``h0``/``c0 (B, H)``, ``weight_ih``, ``weight_hh``;
    ``lengths (B,)`` int32 on the device (``T`` each when nothing is padded);
    ``gates (T, B, G*H)``: the activations (``None`` for the RNN, whose activation is the
    state); ``h_states (T, B, H)``: the state after each step, padded steps carrying it
    (the output itself when nothing is padded); ``c_states (T, B, H)`` (LSTM);
    ``hidden_n (T, B, H)``: GRU ``W_hn h + b_hn``. Backward overwrites ``gates`` and
    ``hidden_n`` with gradients unless asked to retain them.
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
    lengths: Any
    gates: Any
    h_states: Any
    c_states: Any
    hidden_n: Any
    consumed: bool = False


def _schedule(steps: int, reverse: bool):
    """Forward order of ``(t, kernel scalars (t, t_prev, first))``; backward runs it reversed."""
    order = list(range(steps - 1, -1, -1)) if reverse else list(range(steps))
    return [(t, pointwise_cuda.scalars(t, order[k - 1] if k else t, k == 0)) for k, t in enumerate(order)]


def _contiguous(xp, array, dtype):
    return xp.ascontiguousarray(array.astype(dtype, copy=False))


def _kernel_name(mode: str, direction: str) -> str:
    return ("rnn" if mode.startswith("rnn_") else mode) + "_" + direction


def sequence_forward(mode, x, h0, c0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, lengths=None,
                     reverse=False, need_grad=True):
    """``kernels.sequence_forward`` on CUDA: ``output (T, B, H)``, ``h_n``, ``c_n`` or ``None``, saved."""
    xp = backend.get_array_module(x)
    dtype = xp.result_type(x, weight_ih, weight_hh)
    x, weight_ih, weight_hh = (_contiguous(xp, a, dtype) for a in (x, weight_ih, weight_hh))
    steps, batch, input_size = x.shape
    hidden = weight_hh.shape[1]
    width = GATE_COUNT[mode] * hidden
    lstm, gru, rnn = mode == "lstm", mode == "gru", mode.startswith("rnn_")
    h0 = xp.zeros((batch, hidden), dtype) if h0 is None else _contiguous(xp, h0, dtype)
    c0 = (xp.zeros((batch, hidden), dtype) if c0 is None else _contiguous(xp, c0, dtype)) if lstm else None
    host_lengths = check_lengths(lengths, steps, batch)
    int32 = backend.numpy.int32
    device_lengths = (xp.full((batch,), steps, int32) if host_lengths is None      # no upload when not padded
                      else backend.to_device(host_lengths.astype(int32), backend.device_of(x)))
    zero_bias = xp.zeros(width, dtype) if bias_ih is None or bias_hh is None else None
    b_ih = zero_bias if bias_ih is None else _contiguous(xp, bias_ih, dtype)
    b_hh = zero_bias if bias_hh is None else _contiguous(xp, bias_hh, dtype)

    state_shape = (steps, batch, hidden)
    gates = xp.empty((steps, batch, width), dtype)
    backend.gemm(steps * batch, width, input_size, x, weight_ih, gates, transpose_b=True)
    h_states = gates if rnn else xp.empty(state_shape, dtype)      # the RNN's activation is its state
    c_states = xp.empty(state_shape, dtype) if lstm else None
    hidden_n = xp.empty(state_shape, dtype) if gru else None
    output = h_states if host_lengths is None else xp.empty(state_shape, dtype)
    rec = xp.empty((batch, width), dtype)
    units = batch * hidden
    if lstm:
        arrays = (device_lengths, gates, rec, b_ih, b_hh, h0, c0, h_states, c_states, output)
    elif gru:
        arrays = (device_lengths, gates, rec, b_ih, b_hh, h0, h_states, hidden_n, output)
    else:
        arrays = (device_lengths, rec, b_ih, b_hh, h0, h_states, output, int32(mode == "rnn_relu"))
    kernel = pointwise_cuda.StepKernel(_kernel_name(mode, "forward"), dtype, units)
    sizes = pointwise_cuda.scalars(units, hidden, batch)
    schedule = _schedule(steps, reverse)

    h_prev, h_prev_offset = h0, 0
    for t, step in schedule:
        backend.gemm(batch, width, hidden, h_prev, weight_hh, rec, transpose_b=True, offsets=(h_prev_offset, 0, 0))
        kernel(*sizes, *step, *arrays)
        h_prev, h_prev_offset = h_states, t * units

    last = schedule[-1][0]
    h_n = h_states[last].copy()
    c_n = c_states[last].copy() if lstm else None
    saved = None
    if need_grad:
        saved = DeviceSaved(mode=mode, reverse=reverse, x=x, h0=h0, c0=c0, weight_ih=weight_ih, weight_hh=weight_hh,
                            has_bias_ih=bias_ih is not None, has_bias_hh=bias_hh is not None,
                            lengths=device_lengths, gates=None if rnn else gates, h_states=h_states,
                            c_states=c_states, hidden_n=hidden_n)
    return output, h_n, c_n, saved


def sequence_backward(saved, grad_output=None, grad_h_n=None, grad_c_n=None, retain_saved=False):
    """``kernels.sequence_backward`` on CUDA: ``grad_x, grad_h0, grad_c0 | None, grad_weight_ih,
    grad_weight_hh, grad_bias_ih | None, grad_bias_hh | None``."""
    if saved.consumed:
        raise RuntimeError("this forward's saved buffers were already used by a backward pass; "
                           "pass retain_saved=True to the first backward to run it twice")
    mode, x, h_states = saved.mode, saved.x, saved.h_states
    xp = backend.get_array_module(x)
    dtype = h_states.dtype
    steps, batch, input_size = x.shape
    hidden = saved.weight_hh.shape[1]
    width = GATE_COUNT[mode] * hidden
    lstm, gru, rnn = mode == "lstm", mode == "gru", mode.startswith("rnn_")
    units, rows = batch * hidden, steps * batch

    gates, hidden_n = saved.gates, saved.hidden_n
    if retain_saved and not rnn:                  # the kernels overwrite them with gradients
        gates = gates.copy()
        hidden_n = hidden_n.copy() if gru else None
    d_gates = xp.empty((steps, batch, width), dtype) if rnn else gates

    def zeros_or_copy(grad):
        return xp.zeros((batch, hidden), dtype) if grad is None else _contiguous(xp, grad, dtype).copy()

    carry = zeros_or_copy(grad_h_n)               # the later steps' dL/dh through W_hh; grad_h0 at the end
    skip = xp.zeros((batch, hidden), dtype)       # the part of dL/dh_prev that bypasses W_hh
    dc = zeros_or_copy(grad_c_n) if lstm else None
    if grad_output is None:
        grad_output, out_stride = xp.zeros((batch, hidden), dtype), 0
    else:
        grad_output, out_stride = _contiguous(xp, grad_output, dtype), units
    if lstm:
        arrays = (saved.lengths, carry, skip, grad_output, gates, saved.c0, saved.c_states, dc)
    elif gru:
        arrays = (saved.lengths, carry, skip, grad_output, gates, saved.h0, h_states, hidden_n)
    else:
        arrays = (saved.lengths, carry, skip, grad_output, h_states, d_gates, backend.numpy.int32(mode == "rnn_relu"))
    kernel = pointwise_cuda.StepKernel(_kernel_name(mode, "backward"), dtype, units)
    sizes = pointwise_cuda.scalars(units, hidden, batch)
    stride = pointwise_cuda.scalars(out_stride)
    weight_hh = saved.weight_hh
    schedule = _schedule(steps, saved.reverse)

    for t, step in reversed(schedule):
        kernel(*sizes, *step, *stride, *arrays)
        backend.gemm(batch, hidden, width, d_gates, weight_hh, carry, offsets=(t * batch * width, 0, 0))
    grad_h0 = xp.add(carry, skip, out=carry)

    # dW_hh = sum_t dA_t^T h_prev_t: the first step's h_prev is h0, the others' are rows of h_states
    grad_weight_hh = xp.empty((width, hidden), dtype)
    first = schedule[0][0]
    backend.gemm(width, hidden, batch, d_gates, saved.h0, grad_weight_hh, transpose_a=True,
                 offsets=(first * batch * width, 0, 0))
    if steps > 1:
        later, previous = (0, batch) if saved.reverse else (batch, 0)
        backend.gemm(width, hidden, rows - batch, d_gates, h_states, grad_weight_hh, transpose_a=True, beta=1.0,
                     offsets=(later * width, previous * hidden, 0))
    ones = xp.ones(rows, dtype) if saved.has_bias_ih or saved.has_bias_hh else None

    def bias_grad():
        return backend.gemm(1, width, rows, ones, d_gates, xp.empty(width, dtype))

    grad_bias_hh = bias_grad() if saved.has_bias_hh else None
    if gru:
        # the input side (W_ih, b_ih, x) takes n's dL/da_n, which the kernels left in hidden_n;
        # d_gates' n block held the recurrent side dL/db_n until now
        xp.copyto(d_gates.reshape(rows, 3, hidden)[:, 2], hidden_n.reshape(rows, hidden))
    grad_weight_ih = backend.gemm(width, input_size, rows, d_gates, x, xp.empty((width, input_size), dtype),
                                  transpose_a=True)
    grad_bias_ih = bias_grad() if saved.has_bias_ih else None
    grad_x = backend.gemm(rows, input_size, width, d_gates, saved.weight_ih, xp.empty(x.shape, dtype))
    if not retain_saved:
        saved.consumed = True
        saved.gates = saved.hidden_n = saved.c_states = saved.h_states = None
    return grad_x, grad_h0, dc, grad_weight_ih, grad_weight_hh, grad_bias_ih, grad_bias_hh


__all__ = ["DeviceSaved", "sequence_forward", "sequence_backward"]
