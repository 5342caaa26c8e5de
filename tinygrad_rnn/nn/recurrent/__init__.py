"""Recurrent layers and cells: ``RNN``, ``LSTM``, ``GRU`` and ``RNNCell``, ``LSTMCell``, ``GRUCell``.

Read from the top (the user's view) down (the arithmetic):

- ``layers``: ``RNNBase`` (multi-layer, bidirectional, ``lengths`` in any order) and ``RNN``, ``LSTM``, ``GRU``;
- ``cells``: the one-step ``RNNCell``, ``LSTMCell``, ``GRUCell``;
- ``fused``: autograd Functions with a hand-written backward (``cells.composed_step``, from engine ops,
  is the readable reference they are tested against);
- ``kernels``: the fused Functions' forward and BPTT backward on raw arrays (matrix products, masks);
- ``pointwise``: one step's gate arithmetic in place, NumPy (the reference); ``pointwise_cuda``: its
  CuPy elementwise-kernel twin, tested against it;
- ``workspace``: the pool the kernels recycle their large buffers through.
"""
from .cells import GRUCell, LSTMCell, RNNCell
from .layers import GRU, LSTM, RNN, RNNBase

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]
