"""Recurrent layers and cells: ``RNN``, ``LSTM``, ``GRU`` and ``RNNCell``, ``LSTMCell``, ``GRUCell``.

Read from the top (the user's view) down (the arithmetic):

- ``layers``: ``RNNBase`` (multi-layer, bidirectional, ``lengths`` in any order) and ``RNN``, ``LSTM``, ``GRU``;
- ``cells``: the one-step ``RNNCell``, ``LSTMCell``, ``GRUCell``;
- ``gates``: the modes and their gate layouts; ``lengths``: the one ``lengths`` check;
- ``composed`` and ``fused``: the two ways to run a step (``composed_step``/``fused_step``) or a
  sequence (``composed_sequence``/``fused_sequence``), same arguments, same numbers: ``composed`` from
  engine ops (the readable reference, autograd derives BPTT), ``fused`` as autograd Functions with a
  hand-written backward;
- ``kernels``: the fused Functions' forward and BPTT backward on raw arrays (matrix products, masks),
  NumPy, the reference; CuPy arrays go on to ``sequence_cuda``, the same on CUDA in two launches per step;
- ``pointwise``: one step's gate arithmetic in place, NumPy (the reference); ``pointwise_cuda``: the
  same arithmetic as the CUDA kernels ``sequence_cuda`` launches, tested against it;
- ``workspace``: the pool the kernels recycle their large buffers through.
"""
from .cells import GRUCell, LSTMCell, RNNCell
from .layers import GRU, LSTM, RNN, RNNBase

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]
