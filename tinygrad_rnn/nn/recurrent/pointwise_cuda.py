"""CuPy twins of ``pointwise``: each step's gate math as one elementwise kernel.

Same classes, same methods, same in-place contract as the NumPy path (which is
the reference and documents the equations and the slot-major ``(G, B, H)`` gate
layout). Each gate block ``gates[k]`` is a contiguous ``(B, H)`` array, so the
kernels take one argument per gate and need no index arithmetic. Gates that are
updated in place are output parameters (CuPy lets a kernel read its outputs).
Sigmoids follow the convention of ``gates`` (:func:`_sigmoid_gates`), with the inner
``1/2`` in the formula rather than folded into the weights (an elementwise kernel
multiplies for free, so ``folded_scale`` is ``None``). Kernels are compiled on
first use, once per dtype.

Not run in CI (no GPU there); ``tests/test_rnn_kernels.py`` runs them against the
NumPy reference where CuPy and a GPU exist.
"""
from __future__ import annotations

from ... import backend

_KERNELS: dict = {}

# CuPy reserves ``i`` and ``n`` (its loop index and size) and names starting with ``_``;
# a parameter called ``i`` would redeclare the loop index and fail to compile.
RESERVED_NAMES = ("i", "n")


def _sigmoid_gates(*names: str) -> str:
    """C declarations ``T v{k} = sigmoid(gate_{k} + rec_{k});`` for the gates ``names``, with the
    convention of ``gates``: ``sigmoid(a) = 1/2 + 1/2 * tanh(a / 2)``."""
    return "\n        ".join(f"T v{k} = (T(1) + tanh((gate_{k} + rec_{k}) / T(2))) / T(2);" for k in names)


# name: (in_params, out_params, operation)
_SOURCES = {
    "lstm_forward": (
        "T rec_i, T rec_f, T rec_g, T rec_o, T c_prev",
        "T gate_i, T gate_f, T gate_g, T gate_o, T c, T h",
        f"""
        {_sigmoid_gates("i", "f", "o")}
        T vg = tanh(gate_g + rec_g);
        T vc = vf * c_prev + vi * vg;
        gate_i = vi; gate_f = vf; gate_g = vg; gate_o = vo;
        c = vc;
        h = vo * tanh(vc);
        """),
    "lstm_backward": (
        "T c_prev, T c, T dh",
        "T gate_i, T gate_f, T gate_g, T gate_o, T dc",
        """
        T vi = gate_i, vf = gate_f, vg = gate_g, vo = gate_o;
        T tc = tanh(c);
        T dc_total = dc + dh * vo * (T(1) - tc * tc);
        gate_i = dc_total * vg * vi * (T(1) - vi);
        gate_f = dc_total * c_prev * vf * (T(1) - vf);
        gate_g = dc_total * vi * (T(1) - vg * vg);
        gate_o = dh * tc * vo * (T(1) - vo);
        dc = dc_total * vf;
        """),
    "gru_forward": (
        "T rec_r, T rec_z, T rec_n, T h_prev, T bias_hn",
        "T gate_r, T gate_z, T gate_n, T hn, T h",
        f"""
        {_sigmoid_gates("r", "z")}
        T vhn = rec_n + bias_hn;
        T vn = tanh(gate_n + vr * vhn);
        gate_r = vr; gate_z = vz; gate_n = vn; hn = vhn;
        h = vn + vz * (h_prev - vn);
        """),
    "gru_backward": (
        "T h_prev, T dh",
        "T gate_r, T gate_z, T gate_n, T hn, T direct",
        """
        T vr = gate_r, vz = gate_z, vn = gate_n, vhn = hn;
        T d_direct = dh * vz;
        T dn = (dh - d_direct) * (T(1) - vn * vn);
        gate_r = dn * vhn * vr * (T(1) - vr);
        gate_z = dh * (h_prev - vn) * vz * (T(1) - vz);
        gate_n = dn * vr;
        hn = dn;
        direct = d_direct;
        """),
    "rnn_tanh_forward": ("T rec", "T a", "a = tanh(a + rec);"),
    "rnn_tanh_backward": ("T h, T dh", "T da", "da = dh * (T(1) - h * h);"),
    "rnn_relu_forward": ("T rec", "T a", "T v = a + rec; a = v > T(0) ? v : T(0);"),
    "rnn_relu_backward": ("T h, T dh", "T da", "da = h > T(0) ? dh : T(0);"),
}


def _kernel(name):
    """The ElementwiseKernel ``name``, built on first use and cached."""
    if name not in _KERNELS:
        in_params, out_params, operation = _SOURCES[name]
        _KERNELS[name] = backend.elementwise_kernel(in_params, out_params, operation, "tinygrad_rnn_" + name)
    return _KERNELS[name]


class LSTMCuda:
    """``pointwise.LSTMPointwise`` as two kernels; the buffers hold the same after each step."""

    gate_count = 4
    has_direct_hidden_grad = False
    folded_scale = None

    def forward_step(self, step):
        gates, rec = step.gates, step.recurrent
        _kernel("lstm_forward")(rec[0], rec[1], rec[2], rec[3], step.c_prev, gates[0], gates[1], gates[2],
                                gates[3], step.c, step.h)

    def backward_step(self, step):
        gates = step.gates
        _kernel("lstm_backward")(step.c_prev, step.c, step.dh, gates[0], gates[1], gates[2], gates[3], step.dc)


class GRUCuda:
    """``pointwise.GRUPointwise`` as two kernels; the buffers hold the same after each step.

    ``bias_hn (H,)``: the GRU's ``b_hn`` (zeros when the layer has no bias).
    """

    gate_count = 3
    has_direct_hidden_grad = True
    folded_scale = None

    def __init__(self, bias_hn):
        self.bias_hn = bias_hn

    def forward_step(self, step):
        gates, rec = step.gates, step.recurrent
        _kernel("gru_forward")(rec[0], rec[1], rec[2], step.h_prev, self.bias_hn, gates[0], gates[1], gates[2],
                               step.hidden_n, step.h)

    def backward_step(self, step):
        gates = step.gates
        _kernel("gru_backward")(step.h_prev, step.dh, gates[0], gates[1], gates[2], step.hidden_n, step.direct)


class RNNCuda:
    """``pointwise.RNNPointwise`` as one kernel each way (``nonlinearity``: ``"tanh"`` or ``"relu"``)."""

    gate_count = 1
    has_direct_hidden_grad = False
    folded_scale = None

    def __init__(self, nonlinearity):
        self.name = "rnn_" + nonlinearity

    def forward_step(self, step):
        _kernel(self.name + "_forward")(step.recurrent[0], step.gates[0])

    def backward_step(self, step):
        _kernel(self.name + "_backward")(step.gates[0], step.dh, step.d_gates[0])


def make_pointwise(mode, xp, hidden_size, dtype, bias_hn=None):
    """The CuPy step object for ``mode``; ``bias_hn (H,)`` or ``None`` (GRU only)."""
    if mode == "lstm":
        return LSTMCuda()
    if mode == "gru":
        return GRUCuda(xp.zeros(hidden_size, dtype) if bias_hn is None else bias_hn)
    return RNNCuda(mode[len("rnn_"):])
