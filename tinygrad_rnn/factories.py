"""Tensor factories: ``zeros, ones, full, arange, eye, randn, rand, uniform`` and ``*_like``.

Every random draw comes from the engine's one generator (``backend.rng``), on
the host, so ``manual_seed(n)`` gives the same numbers on every device.
"""
from __future__ import annotations

from . import backend
from .tensor import Tensor, get_default_dtype


def _shape(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return tuple(size[0])
    return tuple(size)


def _make(array, dtype, device, requires_grad):
    dtype = backend.numpy.dtype(dtype) if dtype is not None else get_default_dtype()
    # host-made arrays go to the default device when none is given (as zeros/ones/full do)
    return Tensor(array.astype(dtype, copy=False), device=backend.normalize_device(device),
                  requires_grad=requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return full(_shape(size), 0.0, dtype=dtype, device=device, requires_grad=requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return full(_shape(size), 1.0, dtype=dtype, device=device, requires_grad=requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    device = backend.normalize_device(device)
    dtype = backend.numpy.dtype(dtype) if dtype is not None else get_default_dtype()
    data = backend.xp_for(device).full(tuple(size), fill_value, dtype=dtype)
    return Tensor(data, requires_grad=requires_grad)


def zeros_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Like ``torch.arange``: int64 for integer arguments, else the default float dtype."""
    if end is None:
        start, end = 0, start
    array = backend.numpy.arange(start, end, step)
    if dtype is None and array.dtype.kind == "i":
        dtype = "int64"
    return _make(array, dtype, device, requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _make(backend.numpy.eye(n, m), dtype, device, requires_grad)


def randn(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _make(backend.rng.standard_normal(_shape(size)), dtype, device, requires_grad)


def rand(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _make(backend.rng.random(_shape(size)), dtype, device, requires_grad)


def uniform(*size, low=0.0, high=1.0, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _make(backend.rng.uniform(low, high, _shape(size)), dtype, device, requires_grad)


def randint(low, high, size, device=None) -> Tensor:
    return _make(backend.rng.integers(low, high, size=tuple(size)), "int64", device, False)


__all__ = ["zeros", "ones", "full", "zeros_like", "ones_like", "arange", "eye", "randn", "rand",
           "uniform", "randint"]
