"""Shared test helpers: backends to parametrize over, float64 tensor makers."""
import numpy as np
import pytest

import tinygrad_rnn as tg

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(
        not tg.cuda_available(), reason="CuPy or a CUDA GPU is not available on this machine")]),
]


def tensor64(array, device="cpu", requires_grad=True):
    return tg.Tensor(np.asarray(array, dtype=np.float64), device=device, requires_grad=requires_grad)
