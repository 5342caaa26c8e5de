"""Neural-network building blocks, with PyTorch's names: ``nn.Module``, ``nn.Linear``, ``nn.functional``, ...

``nn.init`` holds initialisers, ``nn.utils`` gradient utilities,
``nn.functional`` (import it as ``F``) the stateless layer functions and ``nn.parallel``
the data-parallel wrapper ``DistributedDataParallel`` (over :mod:`tinygrad_rnn.distributed`).
"""
from . import functional, init, parallel, utils
from .containers import ModuleList, Sequential
from .layers import Dropout, Embedding, Linear, ReLU, Sigmoid, Tanh
from .module import Module, Parameter

# Recurrent layers (the nn/recurrent/ subpackage) and attention (nn/attention.py) are imported here:
from .attention import AdditiveAttention, DotAttention, GeneralAttention
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell

__all__ = ["Module", "Parameter", "Sequential", "ModuleList", "Linear", "Embedding", "Dropout", "ReLU",
           "Tanh", "Sigmoid", "functional", "init", "parallel", "utils"]

__all__ += ["RNNCell", "LSTMCell", "GRUCell", "RNNBase", "RNN", "LSTM", "GRU", "AdditiveAttention",
            "DotAttention", "GeneralAttention"]
