"""Per-step gate arithmetic of the fused recurrent kernels, NumPy path (the reference).

``kernels`` runs the matrix products (the input projection of all steps,
one recurrent product per step, the weight gradients after the loop); the
objects here do the pointwise rest of one step, forward and backward, in place
in preallocated buffers that :class:`StepBuffers` names. ``pointwise_cuda`` has
the same arithmetic as CUDA kernels (in the time-major layout of ``sequence_cuda``).

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

Sigmoids are computed as ``1/2 + 1/2 * tanh(a / 2)``, the convention ``gates``
documents. With ``fold_scale=True`` (a sequence) the caller folds the inner ``1/2``
into copies of the weights (``folded_scale``), so all gates of a step go through one
``tanh`` call on the pre-activations as they come; with ``fold_scale=False`` (the
single-step cell, where weight copies would cost more than they save) the step
multiplies by the scale itself.
"""
from __future__ import annotations

from .gates import SIGMOID_HALF, gate_offset, gate_scale


class StepBuffers:
    """The arrays of one time step that the step objects read and write, by name.

    ``(B, H)`` each unless noted. The kernels keep one per call and point its fields at
    step ``t``'s slices before each ``forward_step``/``backward_step``; each step class
    says which fields hold what after its methods.

    - ``gates (G, B, H)``: forward: the input part ``x W_ih^T`` with biases in, the
      activations out; backward: the activations in (``dL/da`` out for LSTM and GRU).
    - ``recurrent (G, B, H)``: forward only, ``h_prev W_hh^T`` (no bias).
    - ``d_gates (G, B, H)``: backward: where ``dL/da`` goes; the same array as ``gates``
      except for the RNN, whose activation is the saved ``h`` itself.
    - ``h_prev``, ``c_prev``: the state before the step (``c_prev`` only for LSTM).
    - ``h``, ``c``: forward: written with the state after the step; backward: ``c`` is
      read (LSTM), ``h`` unused.
    - ``hidden_n``: GRU only, ``W_hn h_prev + b_hn`` (written by forward, read by backward).
    - ``dh``: backward, ``dL/dh'`` in total (later steps and this step's output).
    - ``dc``: backward, LSTM: ``dL/dc'`` from later steps in, ``dL/dc_prev`` out.
    - ``direct``: backward, GRU: written with ``dh * z``, the part of ``dL/dh_prev`` that
      does not go through ``W_hh``.
    """

    __slots__ = ("gates", "recurrent", "d_gates", "h_prev", "c_prev", "h", "c", "hidden_n", "dh", "dc", "direct")

    def __init__(self):
        for name in self.__slots__:
            setattr(self, name, None)


def _per_gate(xp, dtype, values):
    """A ``(G, 1, 1)`` array broadcasting ``values[k]`` over gate ``k`` of a ``(G, B, H)`` block."""
    return xp.asarray(values, dtype=dtype).reshape(-1, 1, 1)


class LSTMPointwise:
    """LSTM gate math for one step, in place on ``(4, B, H)`` gates ``i, f, g, o``.

    After ``forward_step``: ``gates`` = ``i, f, g, o``; ``c`` = ``c'``; ``h`` = ``h'``.
    After ``backward_step``: ``gates`` = ``dL/da_i, dL/da_f, dL/da_g, dL/da_o``;
    ``dc`` = ``dL/dc_prev``.
    """

    gate_count = 4
    has_direct_hidden_grad = False

    def __init__(self, xp, batch, hidden_size, dtype, fold_scale, empty):
        self.xp, self.fold_scale = xp, fold_scale
        self.gate_scale = _per_gate(xp, dtype, gate_scale("lstm"))
        self.gate_offset = _per_gate(xp, dtype, gate_offset("lstm"))
        self.folded_scale = self.gate_scale if fold_scale else None
        # d act / d a = (1 - y) * (y + shift): y (1 - y) for sigmoids, (1 - g)(1 + g) for tanh
        self.deriv_shift = _per_gate(xp, dtype, [1.0 - 2 * offset for offset in gate_offset("lstm")])
        self.work = empty((batch, hidden_size), dtype)
        self.d_act = empty((4, batch, hidden_size), dtype)
        self.deriv = empty((4, batch, hidden_size), dtype)

    def forward_step(self, step):
        xp, work, gates = self.xp, self.work, step.gates
        xp.add(gates, step.recurrent, out=gates)
        if not self.fold_scale:
            xp.multiply(gates, self.gate_scale, out=gates)
        xp.tanh(gates, out=gates)
        xp.multiply(gates, self.gate_scale, out=gates)
        xp.add(gates, self.gate_offset, out=gates)
        i, f, g, o = gates
        c_out = step.c
        xp.multiply(f, step.c_prev, out=c_out)
        xp.multiply(i, g, out=work)
        xp.add(c_out, work, out=c_out)
        xp.tanh(c_out, out=work)
        xp.multiply(o, work, out=step.h)

    def backward_step(self, step):
        xp, d_act, tanh_c = self.xp, self.d_act, self.work
        gates, dh, dc = step.gates, step.dh, step.dc
        i, f, g, o = gates
        xp.tanh(step.c, out=tanh_c)
        xp.multiply(dh, tanh_c, out=d_act[3])                          # dL/do
        xp.multiply(tanh_c, tanh_c, out=tanh_c)
        xp.subtract(1, tanh_c, out=tanh_c)
        xp.multiply(tanh_c, dh, out=tanh_c)
        xp.multiply(tanh_c, o, out=tanh_c)
        xp.add(dc, tanh_c, out=dc)                                      # dL/dc' in total
        xp.multiply(dc, g, out=d_act[0])                                # dL/di
        xp.multiply(dc, step.c_prev, out=d_act[1])                      # dL/df
        xp.multiply(dc, i, out=d_act[2])                                # dL/dg
        xp.multiply(dc, f, out=dc)                                      # dL/dc_prev
        xp.subtract(1, gates, out=self.deriv)
        xp.add(gates, self.deriv_shift, out=gates)
        xp.multiply(gates, self.deriv, out=gates)
        xp.multiply(gates, d_act, out=gates)                            # dL/da


class GRUPointwise:
    """GRU gate math for one step, in place on ``(3, B, H)`` gates ``r, z, n``.

    After ``forward_step``: ``gates`` = ``r, z, n``; ``hidden_n`` = ``b_n = W_hn h_prev + b_hn``;
    ``h`` = ``h'``.
    After ``backward_step``: ``gates`` = ``dL/da_r, dL/da_z, dL/db_n``, the gradients of the
    recurrent side (what ``W_hh`` and ``h_prev`` need); ``hidden_n`` = ``dL/da_n``, the input
    side of ``n`` (what ``W_ih`` and ``x`` need; ``b_n`` is not needed any more, so its buffer
    takes it); ``direct`` = ``dh * z``.
    """

    gate_count = 3
    has_direct_hidden_grad = True

    def __init__(self, xp, batch, hidden_size, dtype, fold_scale, empty, bias_hn=None):
        self.xp, self.fold_scale, self.bias_hn = xp, fold_scale, bias_hn
        self.folded_scale = _per_gate(xp, dtype, gate_scale("gru")) if fold_scale else None
        self.work = empty((batch, hidden_size), dtype)
        self.work2 = empty((batch, hidden_size), dtype)
        self.work3 = empty((batch, hidden_size), dtype)
        self.deriv = empty((2, batch, hidden_size), dtype)

    def forward_step(self, step):
        xp, gates, hidden_n = self.xp, step.gates, step.hidden_n
        rz = gates[:2]                                                  # the two sigmoid gates
        xp.add(rz, step.recurrent[:2], out=rz)
        if not self.fold_scale:
            xp.multiply(rz, SIGMOID_HALF, out=rz)
        xp.tanh(rz, out=rz)
        xp.multiply(rz, SIGMOID_HALF, out=rz)
        xp.add(rz, SIGMOID_HALF, out=rz)
        r, z, n = gates
        if self.bias_hn is None:
            xp.copyto(hidden_n, step.recurrent[2])
        else:
            xp.add(step.recurrent[2], self.bias_hn, out=hidden_n)
        xp.multiply(r, hidden_n, out=self.work)
        xp.add(n, self.work, out=n)
        xp.tanh(n, out=n)
        h_out = step.h
        xp.subtract(step.h_prev, n, out=h_out)
        xp.multiply(h_out, z, out=h_out)
        xp.add(h_out, n, out=h_out)

    def backward_step(self, step):
        xp, dz, dn, dr = self.xp, self.work, self.work2, self.work3
        gates, dh, hidden_n, direct = step.gates, step.dh, step.hidden_n, step.direct
        r, z, n = gates
        xp.subtract(step.h_prev, n, out=dz)
        xp.multiply(dz, dh, out=dz)                                     # dL/dz
        xp.multiply(dh, z, out=direct)
        xp.subtract(dh, direct, out=dn)                                 # dL/dn = dh (1 - z)
        xp.multiply(n, n, out=n)
        xp.subtract(1, n, out=n)
        xp.multiply(dn, n, out=dn)                                      # dL/da_n
        xp.multiply(dn, hidden_n, out=dr)                               # dL/dr
        xp.copyto(hidden_n, dn)                                         # hidden_n <- dL/da_n
        rz, deriv = gates[:2], self.deriv
        xp.subtract(1, rz, out=deriv)
        xp.multiply(deriv, rz, out=deriv)                               # sigmoid' of r and z
        xp.multiply(dn, r, out=n)                                       # dL/db_n (r still intact)
        xp.multiply(deriv[0], dr, out=r)                                # dL/da_r
        xp.multiply(deriv[1], dz, out=z)                                # dL/da_z


class RNNPointwise:
    """Elman RNN for one step: ``h' = tanh(a + b)`` or ``relu(a + b)``.

    After ``forward_step``: ``gates[0]`` = ``h'`` (the kernels make ``h`` that same block).
    After ``backward_step``: ``d_gates[0]`` = ``dL/da`` (``gates``, the saved ``h'``, is kept).
    """

    gate_count = 1
    has_direct_hidden_grad = False
    folded_scale = None                  # no sigmoid gate: nothing to fold

    def __init__(self, xp, batch, hidden_size, dtype, empty, nonlinearity="tanh"):
        self.xp, self.relu = xp, nonlinearity == "relu"
        self.work = empty((batch, hidden_size), dtype)
        self.positive = empty((batch, hidden_size), bool) if self.relu else None

    def forward_step(self, step):
        xp, gates = self.xp, step.gates
        xp.add(gates, step.recurrent, out=gates)
        if self.relu:
            xp.maximum(gates, 0, out=gates)
        else:
            xp.tanh(gates, out=gates)

    def backward_step(self, step):
        xp, h, d_a, dh = self.xp, step.gates[0], step.d_gates[0], step.dh
        if self.relu:
            xp.greater(h, 0, out=self.positive)
            xp.multiply(dh, self.positive, out=d_a)
        else:
            xp.multiply(h, h, out=self.work)
            xp.subtract(1, self.work, out=self.work)
            xp.multiply(self.work, dh, out=d_a)


def make_pointwise(mode, xp, batch, hidden_size, dtype, fold_scale=False, bias_hn=None, empty=None):
    """The NumPy step object for ``mode`` (the CUDA path runs ``pointwise_cuda``'s kernels from ``sequence_cuda``).

    ``fold_scale``: the caller folds ``folded_scale`` into the weights (see the module
    docstring); ``bias_hn`` ``(H,)``: the GRU's ``b_hn`` or ``None``; ``empty(shape, dtype)``
    allocates the scratch buffers (default ``xp.empty``).
    """
    empty = empty or xp.empty
    if mode == "lstm":
        return LSTMPointwise(xp, batch, hidden_size, dtype, fold_scale, empty)
    if mode == "gru":
        return GRUPointwise(xp, batch, hidden_size, dtype, fold_scale, empty, bias_hn=bias_hn)
    return RNNPointwise(xp, batch, hidden_size, dtype, empty, nonlinearity=mode[len("rnn_"):])
