"""Per-step gate arithmetic of the fused recurrent kernels, NumPy path (the reference).

``kernels`` runs the matrix products (the input projection of all steps,
one recurrent product per step, the weight gradients after the loop); the
objects here do the pointwise rest of one step, forward and backward, in place
in preallocated buffers. ``pointwise_cuda`` has the same classes as CuPy elementwise
kernels.

Gates are stored *slot-major*: one step's gates are a ``(G, B, H)`` view, gate
``k`` being the contiguous ``(B, H)`` block ``gates[k]`` (PyTorch's row block
``k*H:(k+1)*H`` of the weights). NumPy runs a ufunc on a contiguous block 2-3x
faster than on a column slice of a ``(B, G*H)`` row, and the whole step is such
ufuncs. Gate order (PyTorch's):

- LSTM, ``G = 4``, gates ``i, f, g, o``::

      i, f, o = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o);  g = tanh(a_g)
      c' = f * c + i * g;  h' = o * tanh(c')

- GRU, ``G = 3``, gates ``r, z, n`` (``a`` = input part, ``b`` = recurrent part)::

      r = sigmoid(a_r + b_r);  z = sigmoid(a_z + b_z)
      n = tanh(a_n + r * b_n)      with b_n = W_hn h + b_hn
      h' = (1 - z) * n + z * h

- RNN, ``G = 1``: ``h' = tanh(a + b)`` or ``relu(a + b)``.

Why tanh everywhere: ``sigmoid(a) = 0.5 + 0.5 * tanh(a / 2)``, and on this NumPy
build float32 ``tanh`` is faster than ``exp`` (measured: 24 us vs 29 us for 64K
values, and an exp-based sigmoid needs three more passes). The halving is folded
into the weights by the caller (``gate_scale``), so all gates of a step go through
one ``tanh`` call. With ``prescaled=False`` (the single-step cell, where scaled
weight copies would cost more than they save) the step multiplies by
``gate_scale`` itself.

Backward: the activations in ``gates`` are overwritten with the gradient of the
pre-activations ``dL/da``; each method says what it writes.
"""
from __future__ import annotations

from ... import backend


def _per_gate(xp, dtype, values):
    """A ``(G, 1, 1)`` array broadcasting ``values[k]`` over gate ``k`` of a ``(G, B, H)`` block."""
    return xp.asarray(values, dtype=dtype).reshape(-1, 1, 1)


class LSTMPointwise:
    """LSTM gate math for one step, in place on ``(4, B, H)`` gates ``i, f, g, o``."""

    gate_count = 4
    has_direct_hidden_grad = False

    def __init__(self, xp, batch, hidden_size, dtype, prescaled, empty):
        self.xp, self.prescaled = xp, prescaled
        # sigmoid(a) = 0.5 + 0.5 * tanh(a / 2) on i, f, o; tanh(a) on g
        self.gate_scale = _per_gate(xp, dtype, [0.5, 0.5, 1.0, 0.5])
        self.gate_offset = _per_gate(xp, dtype, [0.5, 0.5, 0.0, 0.5])
        # d act / d a = (1 - y) * (y + shift): y (1 - y) for sigmoids, (1 - g)(1 + g) for tanh
        self.deriv_shift = _per_gate(xp, dtype, [0.0, 0.0, 1.0, 0.0])
        self.work = empty((batch, hidden_size), dtype)
        self.d_act = empty((4, batch, hidden_size), dtype)
        self.deriv = empty((4, batch, hidden_size), dtype)

    def forward_step(self, gates, rec, h_prev, c_prev, h_out, c_out, hn_out):
        """gates: input part on entry, activations ``i, f, g, o`` on exit; rec: recurrent product.

        Writes ``c_out = c'`` and ``h_out = h'`` ``(B, H)``.
        """
        xp, work = self.xp, self.work
        xp.add(gates, rec, out=gates)
        if not self.prescaled:
            xp.multiply(gates, self.gate_scale, out=gates)
        xp.tanh(gates, out=gates)
        xp.multiply(gates, self.gate_scale, out=gates)
        xp.add(gates, self.gate_offset, out=gates)
        i, f, g, o = gates
        xp.multiply(f, c_prev, out=c_out)
        xp.multiply(i, g, out=work)
        xp.add(c_out, work, out=c_out)
        xp.tanh(c_out, out=work)
        xp.multiply(o, work, out=h_out)

    def backward_step(self, gates, h_prev, c_prev, c_t, hn, dh, dc, d_gates, direct_out):
        """``gates`` (activations) <- ``dL/da``; ``dc``: dL/dc' from later steps in, dL/dc out.

        dh: total dL/dh' ``(B, H)``; c_prev, c_t: the cell state before and after the step.
        """
        xp, d_act, tanh_c = self.xp, self.d_act, self.work
        i, f, g, o = gates
        xp.tanh(c_t, out=tanh_c)
        xp.multiply(dh, tanh_c, out=d_act[3])                          # dL/do
        xp.multiply(tanh_c, tanh_c, out=tanh_c)
        xp.subtract(1, tanh_c, out=tanh_c)
        xp.multiply(tanh_c, dh, out=tanh_c)
        xp.multiply(tanh_c, o, out=tanh_c)
        xp.add(dc, tanh_c, out=dc)                                      # dL/dc' in total
        xp.multiply(dc, g, out=d_act[0])                                # dL/di
        xp.multiply(dc, c_prev, out=d_act[1])                           # dL/df
        xp.multiply(dc, i, out=d_act[2])                                # dL/dg
        xp.multiply(dc, f, out=dc)                                      # dL/dc
        xp.subtract(1, gates, out=self.deriv)
        xp.add(gates, self.deriv_shift, out=gates)
        xp.multiply(gates, self.deriv, out=gates)
        xp.multiply(gates, d_act, out=gates)


class GRUPointwise:
    """GRU gate math for one step, in place on ``(3, B, H)`` gates ``r, z, n``."""

    gate_count = 3
    has_direct_hidden_grad = True

    def __init__(self, xp, batch, hidden_size, dtype, prescaled, empty, bias_hn=None):
        self.xp, self.prescaled, self.bias_hn = xp, prescaled, bias_hn
        self.gate_scale = _per_gate(xp, dtype, [0.5, 0.5, 1.0])
        self.work = empty((batch, hidden_size), dtype)
        self.work2 = empty((batch, hidden_size), dtype)
        self.deriv = empty((2, batch, hidden_size), dtype)

    def forward_step(self, gates, rec, h_prev, c_prev, h_out, c_out, hn_out):
        """gates: input part (biases folded in, except ``b_hn``) on entry, ``r, z, n`` on exit.

        rec: recurrent product without bias. Writes ``hn_out = W_hn h + b_hn`` and ``h_out = h'``.
        """
        xp = self.xp
        rz = gates[:2]
        xp.add(rz, rec[:2], out=rz)
        if not self.prescaled:
            xp.multiply(rz, 0.5, out=rz)
        xp.tanh(rz, out=rz)
        xp.multiply(rz, 0.5, out=rz)
        xp.add(rz, 0.5, out=rz)
        r, z, n = gates
        if self.bias_hn is None:
            xp.copyto(hn_out, rec[2])
        else:
            xp.add(rec[2], self.bias_hn, out=hn_out)
        xp.multiply(r, hn_out, out=self.work)
        xp.add(n, self.work, out=n)
        xp.tanh(n, out=n)
        xp.subtract(h_prev, n, out=h_out)
        xp.multiply(h_out, z, out=h_out)
        xp.add(h_out, n, out=h_out)

    def backward_step(self, gates, h_prev, c_prev, c_t, hn, dh, dc, d_gates, direct_out):
        """``gates`` <- recurrent-side ``dL/d(a_r, a_z, b_n)``; ``hn`` <- ``dL/da_n`` (input side).

        ``direct_out`` <- ``dh * z``, the part of dL/dh that skips the recurrent product.
        """
        xp, dz, dn = self.xp, self.work, self.work2
        r, z, n = gates
        xp.subtract(h_prev, n, out=dz)
        xp.multiply(dz, dh, out=dz)                                     # dL/dz
        xp.multiply(dh, z, out=direct_out)
        xp.subtract(dh, direct_out, out=dn)                             # dL/dn = dh (1 - z)
        xp.multiply(n, n, out=n)
        xp.subtract(1, n, out=n)
        xp.multiply(dn, n, out=dn)                                      # dL/da_n
        xp.multiply(dn, hn, out=n)                                      # dL/dr, parked in n's block
        xp.copyto(hn, dn)
        rz, deriv = gates[:2], self.deriv
        xp.subtract(1, rz, out=deriv)
        xp.multiply(deriv, rz, out=deriv)                               # sigmoid' of r and z
        xp.multiply(deriv[0], n, out=deriv[0])                          # dL/da_r
        xp.multiply(deriv[1], dz, out=z)                                # dL/da_z
        xp.multiply(dn, r, out=n)                                       # dL/db_n (r still intact)
        xp.copyto(r, deriv[0])


class RNNPointwise:
    """Elman RNN for one step: ``h' = tanh(a + b)`` or ``relu(a + b)``; ``gates[0]`` is ``h'`` itself."""

    gate_count = 1
    has_direct_hidden_grad = False

    def __init__(self, xp, batch, hidden_size, dtype, prescaled, empty, nonlinearity="tanh"):
        self.xp, self.relu = xp, nonlinearity == "relu"
        self.gate_scale = None
        self.work = empty((batch, hidden_size), dtype)
        self.positive = empty((batch, hidden_size), bool) if self.relu else None

    def forward_step(self, gates, rec, h_prev, c_prev, h_out, c_out, hn_out):
        """gates ``(1, B, H)``: input part on entry, ``h'`` on exit (``h_out`` is ``gates[0]``)."""
        xp = self.xp
        xp.add(gates, rec, out=gates)
        if self.relu:
            xp.maximum(gates, 0, out=gates)
        else:
            xp.tanh(gates, out=gates)

    def backward_step(self, gates, h_prev, c_prev, c_t, hn, dh, dc, d_gates, direct_out):
        """``d_gates (1, B, H)`` <- ``dL/da`` from ``gates`` = ``h'`` and ``dh`` = dL/dh'."""
        xp, h, d_a = self.xp, gates[0], d_gates[0]
        if self.relu:
            xp.greater(h, 0, out=self.positive)
            xp.multiply(dh, self.positive, out=d_a)
        else:
            xp.multiply(h, h, out=self.work)
            xp.subtract(1, self.work, out=self.work)
            xp.multiply(self.work, dh, out=d_a)


def make_pointwise(mode, xp, batch, hidden_size, dtype, prescaled, bias_hn=None, empty=None):
    """The step object for ``mode`` on ``xp`` (CuPy gets the elementwise-kernel twin from ``pointwise_cuda``).

    ``empty(shape, dtype)`` allocates its scratch buffers (default ``xp.empty``).
    """
    if xp is not backend.numpy:
        from . import pointwise_cuda  # noqa: PLC0415 - only on GPU

        return pointwise_cuda.make_pointwise(mode, xp, batch, hidden_size, dtype, bias_hn=bias_hn)
    empty = empty or xp.empty
    if mode == "lstm":
        return LSTMPointwise(xp, batch, hidden_size, dtype, prescaled, empty)
    if mode == "gru":
        return GRUPointwise(xp, batch, hidden_size, dtype, prescaled, empty, bias_hn=bias_hn)
    return RNNPointwise(xp, batch, hidden_size, dtype, prescaled, empty, nonlinearity=mode[len("rnn_"):])
