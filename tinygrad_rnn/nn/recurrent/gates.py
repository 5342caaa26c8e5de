"""The recurrent modes and their gate layouts, defined once for the layers, cells and kernels.

Modes and gate layouts (PyTorch's), ``G`` gates of ``H`` units each::

    "lstm"      G = 4, gates i, f, g, o   c' = f*c + i*g, h' = o*tanh(c')
    "gru"       G = 3, gates r, z, n      n = tanh(W_in x + b_in + r*(W_hn h + b_hn)),
                                          h' = (1 - z)*n + z*h
    "rnn_tanh"  G = 1                     h' = tanh(W_ih x + b_ih + W_hh h + b_hh)
    "rnn_relu"  G = 1                     h' = relu(...)

Weights: ``weight_ih (G*H, I)``, ``weight_hh (G*H, H)``, ``bias_ih``, ``bias_hh``
``(G*H,)`` or ``None``; gate ``k`` is rows ``k*H:(k+1)*H``.
"""
from __future__ import annotations

GATE_COUNT = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}
MODES = tuple(GATE_COUNT)


def check_mode(mode: str) -> str:
    if mode not in GATE_COUNT:
        raise ValueError(f"unknown recurrent mode {mode!r}: use one of {', '.join(MODES)}")
    return mode


def rnn_mode(nonlinearity: str) -> str:
    """``"tanh"``/``"relu"`` -> the mode ``"rnn_tanh"``/``"rnn_relu"``."""
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    return "rnn_" + nonlinearity


__all__ = ["GATE_COUNT", "MODES", "check_mode", "rnn_mode"]
