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


class CountingArray(np.ndarray):
    """A NumPy array that counts the array operations done on it (ufunc calls, in-place operators,
    reductions and NumPy functions such as ``stack`` or ``zeros_like``) in ``CountingArray.operations``.

    On CUDA each such operation is at least one kernel launch, which CuPy offers no hook to count:
    this is how tests pin the launches of array-level code (the optimizers) on the CPU.
    """

    operations = 0

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        CountingArray.operations += 1
        inputs = [x.view(np.ndarray) if isinstance(x, CountingArray) else x for x in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(x.view(np.ndarray) if isinstance(x, CountingArray) else x for x in kwargs["out"])
        result = getattr(ufunc, method)(*inputs, **kwargs)
        return _as_counting(result)

    def __array_function__(self, func, types, args, kwargs):
        CountingArray.operations += 1
        result = super().__array_function__(func, tuple(np.ndarray if t is CountingArray else t for t in types),
                                            args, kwargs)
        return _as_counting(result)


def _as_counting(result):
    if isinstance(result, tuple):
        return tuple(_as_counting(r) for r in result)
    if isinstance(result, np.generic):  # a full reduction: a 0-d array, as CuPy returns
        result = np.asarray(result)
    if isinstance(result, np.ndarray) and not isinstance(result, CountingArray):
        return result.view(CountingArray)
    return result


def count_array_operations(function):
    """Run ``function()`` and return how many CountingArray operations it did."""
    before = CountingArray.operations
    function()
    return CountingArray.operations - before
