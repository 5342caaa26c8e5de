"""One-step recurrent cells: ``RNNCell``, ``LSTMCell``, ``GRUCell``.

Parameters follow PyTorch exactly, so a PyTorch state dict loads unchanged:

- ``weight_ih``: ``(G*H, input_size)``, ``weight_hh``: ``(G*H, H)``,
  ``bias_ih``, ``bias_hh``: ``(G*H,)`` (``None`` when ``bias=False``);
- gate blocks stacked along the first axis, in PyTorch's order:
  LSTM ``G=4``: ``i, f, g, o``; GRU ``G=3``: ``r, z, n``; RNN ``G=1``;
- every parameter drawn from ``U(-1/sqrt(H), 1/sqrt(H))``.

Each cell has two paths that compute the same numbers:

- fused (default, ``fused=True``): ``fused.fused_step``, one autograd node per
  step whose backward is hand-written: what a decoder stepping one token at a
  time wants;
- composed (``fused=False``): ``composed.composed_step``, built only from engine
  ops so autograd derives its gradient. It is the readable reference the fused
  kernels are tested against, and the step of the sequence layers' composed path.
"""
from __future__ import annotations

import math

from ...factories import zeros
from ...tensor import Tensor
from .. import init
from ..module import Module, Parameter
from .composed import composed_step
from .fused import fused_step
from .gates import GATE_COUNT, rnn_mode


def check_positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


class _CellBase(Module):
    """Shared parameters, initialisation and input checks of the three cells."""

    mode = "lstm"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, fused: bool = True):
        super().__init__()
        self.input_size = check_positive("input_size", input_size)
        self.hidden_size = check_positive("hidden_size", hidden_size)
        self.bias = bool(bias)
        self.fused = bool(fused)
        gates = GATE_COUNT[self.mode] * hidden_size
        self.weight_ih = Parameter(zeros(gates, input_size))
        self.weight_hh = Parameter(zeros(gates, hidden_size))
        if self.bias:
            self.bias_ih = Parameter(zeros(gates))
            self.bias_hh = Parameter(zeros(gates))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every parameter from ``U(-1/sqrt(H), 1/sqrt(H))``, drawn in registration order (as PyTorch)."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for param in self.parameters():
            init.uniform_(param, -bound, bound)

    def extra_repr(self) -> str:
        extra = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            extra += ", bias=False"
        if not self.fused:
            extra += ", fused=False"
        return extra

    def _step(self, x: Tensor, h: Tensor, c: Tensor | None):
        """Check shapes, handle unbatched ``(I,)`` input, run one fused or composed step."""
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"{type(self).__name__} expects input of shape (batch, {self.input_size}) or "
                             f"({self.input_size},), got {x.shape}")
        unbatched = x.ndim == 1
        if unbatched:
            x = x.unsqueeze(0)
        batch = x.shape[0]
        states = []
        for name, state in (("h", h), ("c", c)):
            if name == "c" and self.mode != "lstm":
                states.append(None)
                continue
            if state is None:
                state = zeros(batch, self.hidden_size, dtype=x.dtype, device=x.device)
            elif unbatched:
                state = state.unsqueeze(0)
            if state.shape != (batch, self.hidden_size):
                expected = (self.hidden_size,) if unbatched else (batch, self.hidden_size)
                raise ValueError(f"{type(self).__name__}: the {name} state should have shape {expected} to "
                                 f"match the input, got {state.shape[1:] if unbatched else state.shape}")
            states.append(state)
        weights = (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        step = fused_step if self.fused else composed_step
        h_next, c_next = step(self.mode, x, *states, weights)
        if unbatched:
            h_next = h_next.squeeze(0)
            c_next = c_next.squeeze(0) if c_next is not None else None
        return h_next, c_next


class RNNCell(_CellBase):
    """Elman cell: ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (or relu).

    ``RNNCell(input_size, hidden_size, bias=True, nonlinearity="tanh", fused=True)``;
    ``forward(x (B, input_size), hx (B, hidden_size) | None = zeros) -> h' (B, hidden_size)``.
    Unbatched ``(input_size,)`` input gives ``(hidden_size,)``.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 fused: bool = True):
        self.mode = rnn_mode(nonlinearity)
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, fused)

    def extra_repr(self) -> str:
        extra = super().extra_repr()
        return extra + (f", nonlinearity={self.nonlinearity!r}" if self.nonlinearity != "tanh" else "")

    def forward(self, x: Tensor, hx: Tensor | None = None) -> Tensor:
        return self._step(x, hx, None)[0]


class LSTMCell(_CellBase):
    """LSTM cell, gates ``i, f, g, o`` (see ``composed.composed_step`` for the equations).

    ``LSTMCell(input_size, hidden_size, bias=True, fused=True)``;
    ``forward(x (B, input_size), hx=(h, c) each (B, hidden_size) | None = zeros) -> (h', c')``.
    """

    mode = "lstm"

    def forward(self, x: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        h, c = (None, None) if hx is None else hx
        return self._step(x, h, c)


class GRUCell(_CellBase):
    """GRU cell, gates ``r, z, n`` with ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``.

    ``GRUCell(input_size, hidden_size, bias=True, fused=True)``;
    ``forward(x (B, input_size), hx (B, hidden_size) | None = zeros) -> h' (B, hidden_size)``.
    """

    mode = "gru"

    def forward(self, x: Tensor, hx: Tensor | None = None) -> Tensor:
        return self._step(x, hx, None)[0]


__all__ = ["RNNCell", "LSTMCell", "GRUCell", "check_positive"]
