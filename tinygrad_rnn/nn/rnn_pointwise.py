"""Per-step gate arithmetic of the fused recurrent kernels, NumPy path (the reference).

``rnn_kernels`` runs the matrix products (the input projection of all steps,
one recurrent product per step, the weight gradients after the loop); the
objects here do the pointwise rest of one step, forward and backward, in place
in preallocated buffers. ``rnn_cuda`` has the same classes as CuPy elementwise
kernels.

Gate layouts (PyTorch's), ``B`` = batch, ``H`` = hidden size, each block of a
``(B, G*H)`` gate row is one gate:

- LSTM, ``G = 4``, order ``i, f, g, o``::

      i, f, o = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o);  g = tanh(a_g)
      c' = f * c + i * g;  h' = o * tanh(c')

- GRU, ``G = 3``, order ``r, z, n`` (``a`` = input part, ``b`` = recurrent part)::

      r = sigmoid(a_r + b_r);  z = sigmoid(a_z + b_z)
      n = tanh(a_n + r * b_n)      with b_n = W_hn h + b_hn
      h' = (1 - z) * n + z * h

- RNN, ``G = 1``: ``h' = tanh(a + b)`` or ``relu(a + b)``.

Why tanh everywhere: ``sigmoid(a) = 0.5 + 0.5 * tanh(a / 2)``, and on this NumPy
build float32 ``tanh`` is faster than ``exp`` (one ufunc instead of the four an
exp-based sigmoid needs). The halving is folded into the weights by the caller
(``gate_scale``), so a whole gate row goes through one ``tanh`` call. With
``prescaled=False`` (the single-step cell, where a scaled weight copy would cost
more than it saves) the step multiplies by ``gate_scale`` itself.

Column slices of a ``(B, G*H)`` row are strided and about 2-3x slower per element
than contiguous arrays in NumPy ufuncs, so the math is arranged to run on whole
gate rows (with per-column row vectors) where it can.

Backward: ``gates`` holding the activations is overwritten with the gradient of
the pre-activations (``dA``); every step object documents what it writes.
"""
from __future__ import annotations

from .. import backend

GATE_COUNT = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}


def _row(xp, dtype, blocks, hidden_size):
    """A ``(len(blocks) * hidden_size,)`` row with ``blocks[k]`` repeated over gate ``k``."""
    return xp.repeat(xp.asarray(blocks, dtype=dtype), hidden_size)


class LSTMPointwise:
    """LSTM gate math for one step, in place. Gates ``i, f, g, o`` along the last axis."""

    gate_count = 4
    has_direct_hidden_grad = False

    def __init__(self, xp, batch, hidden_size, dtype, prescaled):
        H = hidden_size
        self.xp, self.H, self.prescaled = xp, H, prescaled
        # sigmoid(a) = 0.5 + 0.5 * tanh(a / 2) on i, f, o; tanh(a) on g
        self.gate_scale = _row(xp, dtype, [0.5, 0.5, 1.0, 0.5], H)
        self.offset_row = _row(xp, dtype, [0.5, 0.5, 0.0, 0.5], H)
        # d act / d a = (1 - y) * (y + shift): y(1 - y) for sigmoids, (1 - g)(1 + g) for tanh
        self.deriv_shift = _row(xp, dtype, [0.0, 0.0, 1.0, 0.0], H)
        self.work = xp.empty((batch, H), dtype)
        self.d_act = xp.empty((batch, 4 * H), dtype)
        self.deriv = xp.empty((batch, 4 * H), dtype)

    def forward_step(self, gates, rec, h_prev, c_prev, h_out, c_out, hn_out):
        """gates ``(B, 4H)``: input part on entry, activations ``i, f, g, o`` on exit.

        rec ``(B, 4H)``: recurrent product. Writes ``c_out = c'`` and ``h_out = h'``.
        """
        xp, H = self.xp, self.H
        xp.add(gates, rec, out=gates)
        if not self.prescaled:
            xp.multiply(gates, self.gate_scale, out=gates)
        xp.tanh(gates, out=gates)
        xp.multiply(gates, self.gate_scale, out=gates)
        xp.add(gates, self.offset_row, out=gates)
        i, f, g, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
        xp.multiply(f, c_prev, out=c_out)
        xp.multiply(i, g, out=self.work)
        xp.add(c_out, self.work, out=c_out)
        xp.tanh(c_out, out=self.work)
        xp.multiply(o, self.work, out=h_out)

    def backward_step(self, gates, h_prev, c_prev, c_t, hn, dh, dc, d_gates, direct_out):
        """Overwrite ``d_gates`` (may be ``gates``) with ``dL/da``; ``dc`` in: dL/dc' from later steps, out: dL/dc.

        gates ``(B, 4H)`` activations; ``dh`` ``(B, H)`` total dL/dh'; ``c_prev``, ``c_t`` cell states.
        """
        xp, H = self.xp, self.H
        i, f, g, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
        d_act, tanh_c = self.d_act, self.work
        xp.tanh(c_t, out=tanh_c)
        xp.multiply(dh, tanh_c, out=d_act[:, 3 * H:])                 # dL/do
        xp.multiply(tanh_c, tanh_c, out=tanh_c)
        xp.subtract(1, tanh_c, out=tanh_c)
        xp.multiply(tanh_c, dh, out=tanh_c)
        xp.multiply(tanh_c, o, out=tanh_c)
        xp.add(dc, tanh_c, out=dc)                                     # dL/dc' in total
        xp.multiply(dc, g, out=d_act[:, :H])                           # dL/di
        xp.multiply(dc, c_prev, out=d_act[:, H:2 * H])                 # dL/df
        xp.multiply(dc, i, out=d_act[:, 2 * H:3 * H])                  # dL/dg
        xp.multiply(dc, f, out=dc)                                     # dL/dc
        deriv = self.deriv
        xp.subtract(1, gates, out=deriv)
        xp.add(gates, self.deriv_shift, out=d_gates)
        xp.multiply(d_gates, deriv, out=d_gates)
        xp.multiply(d_gates, d_act, out=d_gates)


class GRUPointwise:
    """GRU gate math for one step, in place. Gates ``r, z, n`` along the last axis."""

    gate_count = 3
    has_direct_hidden_grad = True

    def __init__(self, xp, batch, hidden_size, dtype, prescaled, bias_hn=None):
        H = hidden_size
        self.xp, self.H, self.prescaled, self.bias_hn = xp, H, prescaled, bias_hn
        self.gate_scale = _row(xp, dtype, [0.5, 0.5, 1.0], H)
        self.work = xp.empty((batch, H), dtype)
        self.work2 = xp.empty((batch, H), dtype)
        self.deriv = xp.empty((batch, 2 * H), dtype)

    def forward_step(self, gates, rec, h_prev, c_prev, h_out, c_out, hn_out):
        """gates ``(B, 3H)``: input part (biases folded, ``b_hn`` excluded) on entry, ``r, z, n`` on exit.

        rec ``(B, 3H)``: recurrent product without bias. Writes ``hn_out = W_hn h + b_hn`` and ``h_out = h'``.
        """
        xp, H = self.xp, self.H
        rz, n = gates[:, :2 * H], gates[:, 2 * H:]
        xp.add(rz, rec[:, :2 * H], out=rz)
        if not self.prescaled:
            xp.multiply(rz, 0.5, out=rz)
        xp.tanh(rz, out=rz)
        xp.multiply(rz, 0.5, out=rz)
        xp.add(rz, 0.5, out=rz)
        r, z = gates[:, :H], gates[:, H:2 * H]
        if self.bias_hn is None:
            xp.copyto(hn_out, rec[:, 2 * H:])
        else:
            xp.add(rec[:, 2 * H:], self.bias_hn, out=hn_out)
        xp.multiply(r, hn_out, out=self.work)
        xp.add(n, self.work, out=n)
        xp.tanh(n, out=n)
        xp.subtract(h_prev, n, out=h_out)
        xp.multiply(h_out, z, out=h_out)
        xp.add(h_out, n, out=h_out)

    def backward_step(self, gates, h_prev, c_prev, c_t, hn, dh, dc, d_gates, direct_out):
        """``d_gates`` (is ``gates``) <- recurrent-side ``dL/d(a_r, a_z, b_n)``; ``hn`` <- ``dL/da_n``.

        ``direct_out`` <- ``dh * z``, the part of dL/dh that skips the recurrent product.
        """
        xp, H = self.xp, self.H
        r, z, n = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:]
        work, dn = self.work, self.work2
        xp.subtract(h_prev, n, out=work)
        xp.multiply(work, dh, out=work)                                # dL/dz
        xp.multiply(dh, z, out=direct_out)
        xp.subtract(dh, direct_out, out=dn)                            # dL/dn = dh (1 - z)
        xp.multiply(n, n, out=n)
        xp.subtract(1, n, out=n)
        xp.multiply(dn, n, out=dn)                                     # dL/da_n
        xp.multiply(dn, hn, out=n)                                     # dL/dr, parked in n's slot
        xp.copyto(hn, dn)
        # sigmoid derivative on r, z; then dL/db_n = dL/da_n * r once r is read
        rz, deriv = gates[:, :2 * H], self.deriv
        xp.subtract(1, rz, out=deriv)
        xp.multiply(deriv, rz, out=deriv)
        xp.multiply(deriv[:, :H], n, out=deriv[:, :H])                 # dL/da_r
        xp.multiply(deriv[:, H:], work, out=d_gates[:, H:2 * H])       # dL/da_z
        xp.multiply(dn, r, out=d_gates[:, 2 * H:])                     # dL/db_n
        xp.copyto(d_gates[:, :H], deriv[:, :H])


class RNNPointwise:
    """Elman RNN for one step: ``h' = tanh(a + b)`` or ``relu(a + b)``; the gate buffer is ``h'`` itself."""

    gate_count = 1
    has_direct_hidden_grad = False

    def __init__(self, xp, batch, hidden_size, dtype, prescaled, nonlinearity="tanh"):
        self.xp, self.relu = xp, nonlinearity == "relu"
        self.gate_scale = None
        self.work = xp.empty((batch, hidden_size), dtype)
        self.positive = xp.empty((batch, hidden_size), bool) if self.relu else None

    def forward_step(self, gates, rec, h_prev, c_prev, h_out, c_out, hn_out):
        """gates ``(B, H)``: input part on entry, ``h'`` on exit (``h_out`` is ``gates``)."""
        xp = self.xp
        xp.add(gates, rec, out=gates)
        if self.relu:
            xp.maximum(gates, 0, out=gates)
        else:
            xp.tanh(gates, out=gates)

    def backward_step(self, gates, h_prev, c_prev, c_t, hn, dh, dc, d_gates, direct_out):
        """``d_gates`` ``(B, H)`` <- ``dL/da`` from ``gates`` = ``h'`` and ``dh`` = dL/dh'."""
        xp = self.xp
        if self.relu:
            xp.greater(gates, 0, out=self.positive)
            xp.multiply(dh, self.positive, out=d_gates)
        else:
            xp.multiply(gates, gates, out=self.work)
            xp.subtract(1, self.work, out=self.work)
            xp.multiply(self.work, dh, out=d_gates)


def make_pointwise(mode, xp, batch, hidden_size, dtype, prescaled, bias_hn=None):
    """The step object for ``mode`` on ``xp`` (CuPy gets the elementwise-kernel twin)."""
    if xp is not backend.numpy:
        from . import rnn_cuda  # noqa: PLC0415 - only on GPU

        return rnn_cuda.make_pointwise(mode, xp, batch, hidden_size, dtype, bias_hn=bias_hn)
    if mode == "lstm":
        return LSTMPointwise(xp, batch, hidden_size, dtype, prescaled)
    if mode == "gru":
        return GRUPointwise(xp, batch, hidden_size, dtype, prescaled, bias_hn=bias_hn)
    return RNNPointwise(xp, batch, hidden_size, dtype, prescaled, nonlinearity=mode[len("rnn_"):])
