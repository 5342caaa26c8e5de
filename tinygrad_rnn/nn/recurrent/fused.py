"""The fused path: autograd Functions around the recurrent kernels of ``kernels``.

Two Functions, both thin: all the arithmetic lives in ``kernels`` (raw
arrays, NumPy or CuPy), so the engine adds one graph node per layer and
direction (``FusedSequence``) or per step (``FusedCellStep``), never one per
gate. :func:`fused_step` and :func:`fused_sequence` call them with the same
arguments and returns as ``composed.composed_step`` and
``composed.composed_sequence``, the engine-op reference they are tested against.

Modes and weight layouts: see ``gates``.
"""
from __future__ import annotations

from ...autograd import Function, is_grad_enabled, retaining_graph
from . import kernels

__all__ = ["FusedSequence", "FusedCellStep", "fused_step", "fused_sequence"]

def _filter(grads, needs_input_grad):
    """Keep only the gradients an input asked for (the kernels may compute more)."""
    return tuple(g if needed else None for g, needed in zip(grads, needs_input_grad))


class FusedSequence(Function):
    """One layer and direction over a whole sequence, with a hand-written BPTT backward.

    ``apply(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, mode=..., lengths=None,
    reverse=False)``

    - ``x``: ``(T, B, I)``; ``h0``: ``(B, H)``; ``c0``: ``(B, H)`` for LSTM, else ``None``;
      biases may be ``None`` (``bias=False``).
    - ``lengths``: ``None`` (every sequence is ``T`` long) or a host int array ``(B,)``,
      validated by the caller: padded steps keep the state, padded outputs are zero,
      the reverse direction starts at each sequence's own end.

    Returns ``output (T, B, H), h_n (B, H)`` and, for LSTM, ``c_n (B, H)``.
    """

    def forward(self, x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, mode="lstm", lengths=None,
                reverse=False):
        self.mode = mode
        need_grad = is_grad_enabled() and any(self.needs_input_grad)
        output, h_n, c_n, self.saved = kernels.sequence_forward(
            mode, x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, lengths=lengths, reverse=reverse,
            need_grad=need_grad)
        return (output, h_n, c_n) if mode == "lstm" else (output, h_n)

    def backward(self, grad_output, grad_h_n, grad_c_n=None):
        grads = kernels.sequence_backward(self.saved, grad_output, grad_h_n, grad_c_n,
                                              retain_saved=retaining_graph())
        return _filter(grads, self.needs_input_grad)


class FusedCellStep(Function):
    """One step of a cell, fused: ``apply(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh, mode=...)``.

    ``x``: ``(B, I)``; ``h``, ``c``: ``(B, H)`` (``c`` is ``None`` except for LSTM).
    Returns ``h' (B, H)`` and, for LSTM, ``c' (B, H)``.
    """

    def forward(self, x, h, c, weight_ih, weight_hh, bias_ih, bias_hh, mode="lstm"):
        self.mode = mode
        need_grad = is_grad_enabled() and any(self.needs_input_grad)
        h_next, c_next, self.saved = kernels.cell_forward(mode, x, h, c, weight_ih, weight_hh, bias_ih,
                                                               bias_hh, need_grad=need_grad)
        return (h_next, c_next) if mode == "lstm" else h_next

    def backward(self, grad_h, grad_c=None):
        grads = kernels.cell_backward(self.saved, grad_h, grad_c, retain_saved=retaining_graph())
        return _filter(grads, self.needs_input_grad)


def fused_step(mode: str, x, h, c, weights):
    """One step as one autograd node: ``(h' (B, H), c' (B, H) | None)``; see ``composed.composed_step``."""
    result = FusedCellStep.apply(x, h, c, *weights, mode=mode)
    return result if mode == "lstm" else (result, None)


def fused_sequence(mode: str, x, h0, c0, weights, lengths=None, reverse: bool = False):
    """One layer and direction as one autograd node: ``(output (T, B, H), h_n, c_n | None)``;
    see ``composed.composed_sequence``."""
    result = FusedSequence.apply(x, h0, c0, *weights, mode=mode, lengths=lengths, reverse=reverse)
    return result if mode == "lstm" else (*result, None)
