"""Sequence layers ``RNN``, ``LSTM``, ``GRU``: one multi-layer, bidirectional driver (``RNNBase``).

Shapes (``T`` steps, ``B`` batch, ``D = 2 if bidirectional else 1``, ``L = num_layers``):

- ``x``: ``(T, B, input_size)``, or ``(B, T, input_size)`` with ``batch_first``;
- ``hx``: ``h0 (L*D, B, H)`` (LSTM: ``(h0, c0)``, both that shape) or ``None`` for zeros;
- returns ``output (T, B, D*H)`` (``(B, T, D*H)`` with ``batch_first``) and
  ``h_n (L*D, B, H)`` (LSTM: ``(h_n, c_n)``). Row ``k*D + d`` of ``h_n`` is layer
  ``k``, direction ``d`` (0 forward, 1 reverse), as in PyTorch.

``lengths`` (``B`` ints in any order, each ``1 <= length <= T``) marks the real
steps of each padded sequence: padded steps leave the state unchanged, their
outputs are zero, ``h_n``/``c_n`` hold each sequence's state at its own last real
step, and the reverse direction starts at each sequence's own end. So each
sequence gets exactly the numbers it would get alone.

Parameters (``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``,
``bias_hh_l{k}``, and ``..._reverse``) are PyTorch's names, shapes, gate order
(LSTM ``i, f, g, o``; GRU ``r, z, n``), registration order and initialisation,
so ``state_dict()`` reads like PyTorch's and a converted PyTorch state dict loads.

Two paths give the same numbers (tested to float64 precision):

- fused (default): ``fused.fused_sequence``, per layer and direction one
  autograd node whose forward and hand-written BPTT backward run in
  ``kernels`` on raw arrays, so the engine adds nothing per step;
- composed (``fused=False`` or ``layer.fused = False``):
  ``composed.composed_sequence``, the engine-op step unrolled over time,
  autograd doing BPTT.
"""
from __future__ import annotations

import math

from ...factories import zeros
from ...tensor import Tensor, cat, stack
from .. import functional as F
from .. import init
from ..module import Module, Parameter
from .cells import check_positive
from .composed import composed_sequence
from .fused import fused_sequence
from .gates import GATE_COUNT, check_mode, rnn_mode
from .lengths import check_lengths


class RNNBase(Module):
    """The driver shared by ``RNN``, ``LSTM`` and ``GRU``; ``mode`` is ``"lstm"``, ``"gru"``,
    ``"rnn_tanh"`` or ``"rnn_relu"``. See the module docstring for shapes and semantics.

    ``dropout`` is applied to the output of every layer but the last, in training mode only.
    """

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 fused: bool = True):
        super().__init__()
        check_mode(mode)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout must be a probability in [0, 1], got {dropout!r}")
        self.mode = mode
        self.input_size = check_positive("input_size", input_size)
        self.hidden_size = check_positive("hidden_size", hidden_size)
        self.num_layers = check_positive("num_layers", num_layers)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.fused = bool(fused)
        self.num_directions = 2 if bidirectional else 1
        gates = GATE_COUNT[mode] * hidden_size
        # Registration order is PyTorch's (layer, then direction, then w_ih, w_hh, b_ih, b_hh),
        # so state_dict() keys come in the same order.
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * self.num_directions
            for direction in range(self.num_directions):
                suffix = self._suffix(layer, direction)
                setattr(self, f"weight_ih{suffix}", Parameter(zeros(gates, layer_input)))
                setattr(self, f"weight_hh{suffix}", Parameter(zeros(gates, hidden_size)))
                if self.bias:
                    setattr(self, f"bias_ih{suffix}", Parameter(zeros(gates)))
                    setattr(self, f"bias_hh{suffix}", Parameter(zeros(gates)))
        self.reset_parameters()

    @staticmethod
    def _suffix(layer: int, direction: int) -> str:
        return f"_l{layer}" + ("_reverse" if direction else "")

    def reset_parameters(self) -> None:
        """Every parameter from ``U(-1/sqrt(H), 1/sqrt(H))``, drawn in registration order (as PyTorch)."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for param in self.parameters():
            init.uniform_(param, -bound, bound)

    def _weights(self, layer: int, direction: int):
        """``(weight_ih, weight_hh, bias_ih, bias_hh)`` of one layer and direction (biases may be None)."""
        suffix = self._suffix(layer, direction)
        if not self.bias:
            return getattr(self, f"weight_ih{suffix}"), getattr(self, f"weight_hh{suffix}"), None, None
        return tuple(getattr(self, f"{name}{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    def extra_repr(self) -> str:
        extra = f"{self.input_size}, {self.hidden_size}"
        defaults = (("num_layers", 1), ("bias", True), ("batch_first", False), ("dropout", 0.0),
                    ("bidirectional", False), ("fused", True))
        for name, default in defaults:
            value = getattr(self, name)
            if value != default:
                extra += f", {name}={value}"
        return extra

    # ------------------------------------------------------------ forward
    def forward(self, x: Tensor, hx=None, lengths=None):
        """``x (T, B, I)`` -> ``(output, h_n)`` or, for LSTM, ``(output, (h_n, c_n))``; see the module docstring."""
        if x.ndim != 3 or x.shape[2] != self.input_size:
            layout = "(batch, time, input_size)" if self.batch_first else "(time, batch, input_size)"
            raise ValueError(f"{type(self).__name__} expects input of shape {layout} with input_size="
                             f"{self.input_size}, got {x.shape}")
        if x.dtype != self.weight_ih_l0.dtype:
            raise TypeError(f"input dtype {x.dtype} does not match the layer's {self.weight_ih_l0.dtype} "
                            f"parameters: cast one of them (x.to(...) or layer.to(...))")
        if self.batch_first:
            x = x.transpose(0, 1)
        steps, batch = x.shape[0], x.shape[1]
        lengths = check_lengths(lengths.data if isinstance(lengths, Tensor) else lengths, steps, batch)
        h0, c0 = self._initial_states(hx, x)

        final_h, final_c = [], []
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                index = layer * self.num_directions + direction
                run = fused_sequence if self.fused else composed_sequence
                output, h_n, c_n = run(self.mode, layer_input, h0[index], c0[index], self._weights(layer, direction),
                                       lengths, reverse=direction == 1)
                outputs.append(output)
                final_h.append(h_n)
                final_c.append(c_n)
            layer_input = outputs[0] if len(outputs) == 1 else cat(outputs, dim=2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)

        output = layer_input.transpose(0, 1) if self.batch_first else layer_input
        h_n = stack(final_h, dim=0)
        if self.mode == "lstm":
            return output, (h_n, stack(final_c, dim=0))
        return output, h_n

    def _initial_states(self, hx, x: Tensor):
        """Per (layer, direction): ``h0`` rows ``(B, H)`` (and ``c0`` for LSTM; ``None`` otherwise)."""
        count = self.num_layers * self.num_directions
        batch = x.shape[1]
        expected = (count, batch, self.hidden_size)
        if self.mode == "lstm":
            if hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
                raise ValueError("LSTM expects hx=(h0, c0), a pair of tensors, or None")
            states = (None, None) if hx is None else tuple(hx)
        else:
            if isinstance(hx, (tuple, list)):
                raise ValueError(f"{type(self).__name__} expects hx to be one tensor h0 (only LSTM takes a pair)")
            states = (hx, None)
        rows = []
        for name, state in zip(("h0", "c0"), states):
            if name == "c0" and self.mode != "lstm":
                rows.append([None] * count)
                continue
            if state is None:
                zero = zeros(batch, self.hidden_size, dtype=x.dtype, device=x.device)
                rows.append([zero] * count)
                continue
            if state.shape != expected:
                raise ValueError(f"{name} should have shape (num_layers * num_directions, batch, hidden_size) = "
                                 f"{expected}, got {state.shape}")
            rows.append([row.reshape(batch, self.hidden_size) for row in state.split(1, dim=0)])
        return rows


class RNN(RNNBase):
    """Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (or relu), per layer and direction.

    ``RNN(input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
    dropout=0.0, bidirectional=False, fused=True)``; ``forward(x, hx=None, lengths=None) ->
    (output, h_n)``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 fused: bool = True):
        self.nonlinearity = nonlinearity
        super().__init__(rnn_mode(nonlinearity), input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, fused)


class _GatedRNN(RNNBase):
    """``LSTM`` and ``GRU``: an ``RNNBase`` of the class's ``mode``, with PyTorch's constructor arguments."""

    mode = "lstm"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, fused: bool = True):
        super().__init__(type(self).mode, input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, fused)


class LSTM(_GatedRNN):
    """LSTM, gates ``i, f, g, o``: ``forward(x, hx=(h0, c0) | None, lengths=None) -> (output, (h_n, c_n))``.

    ``LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, fused=True)``.
    """

    mode = "lstm"


class GRU(_GatedRNN):
    """GRU, gates ``r, z, n``: ``forward(x, hx=h0 | None, lengths=None) -> (output, h_n)``.

    ``GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, fused=True)``.
    """

    mode = "gru"


__all__ = ["RNNBase", "RNN", "LSTM", "GRU"]
