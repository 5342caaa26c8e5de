"""Shared test helpers: backends to parametrize over, float64 tensor makers, recurrent layers and cells."""
import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import nn

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(
        not tg.cuda_available(), reason="CuPy or a CUDA GPU is not available on this machine")]),
]

# the recurrent modes, written out here (not read from the engine) so that a mode the engine drops fails
MODES = ["lstm", "gru", "rnn_tanh", "rnn_relu"]


def tensor64(array, device="cpu", requires_grad=True):
    return tg.Tensor(np.asarray(array, dtype=np.float64), device=device, requires_grad=requires_grad)


def random(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def make_recurrent(mode, input_size, hidden_size, cell=False, **kwargs):
    """A seeded float64 ``nn.LSTM``/``GRU``/``RNN`` (with ``cell``: ``nn.LSTMCell``/``GRUCell``/``RNNCell``)
    of ``mode``, the ``nonlinearity`` picked for the RNN modes."""
    tg.manual_seed(0)
    lstm, gru, rnn = (nn.LSTMCell, nn.GRUCell, nn.RNNCell) if cell else (nn.LSTM, nn.GRU, nn.RNN)
    if mode == "lstm":
        module = lstm(input_size, hidden_size, **kwargs)
    elif mode == "gru":
        module = gru(input_size, hidden_size, **kwargs)
    else:
        module = rnn(input_size, hidden_size, nonlinearity=mode[len("rnn_"):], **kwargs)
    return module.double()
