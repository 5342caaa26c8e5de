"""The recurrent modes and their gate layouts, defined once for the layers, cells and kernels.

Modes and gate layouts (PyTorch's), ``G`` gates of ``H`` units each::

    "lstm"      G = 4, gates i, f, g, o   c' = f*c + i*g, h' = o*tanh(c')
    "gru"       G = 3, gates r, z, n      n = tanh(W_in x + b_in + r*(W_hn h + b_hn)),
                                          h' = (1 - z)*n + z*h
    "rnn_tanh"  G = 1                     h' = tanh(W_ih x + b_ih + W_hh h + b_hh)
    "rnn_relu"  G = 1                     h' = relu(...)

Weights: ``weight_ih (G*H, I)``, ``weight_hh (G*H, H)``, ``bias_ih``, ``bias_hh``
``(G*H,)`` or ``None``; gate ``k`` is rows ``k*H:(k+1)*H``.

The sigmoid convention of the fused kernels (NumPy reference and CUDA twin alike)::

    sigmoid(a) = 1/2 + 1/2 * tanh(a / 2)

so every gate is ``offset + scale * tanh(scale * a)`` with ``(scale, offset) = (1/2, 1/2)``
for a sigmoid gate (``SIGMOID_GATES``) and ``(1, 0)`` for a tanh gate (LSTM ``g``, GRU ``n``):
:func:`gate_scale`, :func:`gate_offset`. Why: on NumPy float32 ``tanh`` is faster than
``exp`` (measured 24 us vs 29 us for 64K values, and an exp-based sigmoid needs three more
passes), and all gates of a step then go through one ``tanh`` call. Where the inner
``scale * a`` happens is each path's choice: the NumPy sequence kernel folds it into copies
of the weights and biases (``pointwise.make_pointwise(fold_scale=True)``), the NumPy single
step multiplies the pre-activations, the CUDA kernels write it into their formula. The
composed path (engine ops) uses the engine's own ``sigmoid``; they agree to rounding.
"""
from __future__ import annotations

GATE_COUNT = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}
MODES = tuple(GATE_COUNT)
SIGMOID_GATES = {"lstm": (0, 1, 3), "gru": (0, 1), "rnn_tanh": (), "rnn_relu": ()}   # i, f, o; r, z
SIGMOID_HALF = 0.5      # the 1/2 of sigmoid(a) = 1/2 + 1/2 * tanh(a / 2)


def gate_scale(mode: str) -> tuple:
    """Per gate ``k``, the ``scale`` of ``offset + scale * tanh(scale * a)``: 1/2 (sigmoid) or 1 (tanh)."""
    return tuple(SIGMOID_HALF if k in SIGMOID_GATES[mode] else 1.0 for k in range(GATE_COUNT[mode]))


def gate_offset(mode: str) -> tuple:
    """Per gate ``k``, the ``offset`` of ``offset + scale * tanh(scale * a)``: 1/2 (sigmoid) or 0 (tanh)."""
    return tuple(SIGMOID_HALF if k in SIGMOID_GATES[mode] else 0.0 for k in range(GATE_COUNT[mode]))


def check_mode(mode: str) -> str:
    if mode not in GATE_COUNT:
        raise ValueError(f"unknown recurrent mode {mode!r}: use one of {', '.join(MODES)}")
    return mode


def rnn_mode(nonlinearity: str) -> str:
    """``"tanh"``/``"relu"`` -> the mode ``"rnn_tanh"``/``"rnn_relu"``."""
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    return "rnn_" + nonlinearity


__all__ = ["GATE_COUNT", "MODES", "SIGMOID_GATES", "SIGMOID_HALF", "gate_scale", "gate_offset", "check_mode",
           "rnn_mode"]
