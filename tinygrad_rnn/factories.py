"""Tensor factories: ``zeros, ones, full, arange, eye, randn, rand, uniform`` and ``*_like``.

Every random draw comes from the engine's one generator (``backend.rng``), on
the host, so ``manual_seed(n)`` gives the same numbers on every device.
Sizes are checked as PyTorch checks them: ints only, none negative.
"""
from __future__ import annotations

import math

from . import backend
from .ops import as_int, new_tensor_shape
from .tensor import Tensor, get_default_dtype


def _shape(size):
    return new_tensor_shape(size)


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
    data = backend.xp_for(device).full(new_tensor_shape((size,)), fill_value, dtype=dtype)
    return Tensor._wrap(data).requires_grad_(requires_grad)  # made on the device: nothing to upload


def zeros_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Like ``torch.arange``: int64 for integer arguments, else the default float dtype."""
    if end is None:
        start, end = 0, start
    if not (math.isfinite(start) and math.isfinite(end)):
        raise RuntimeError(f"unsupported range: {start} -> {end}")
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError(f"upper bound and lower bound inconsistent with step sign (arange({start}, {end}, "
                           f"{step}))")
    array = backend.numpy.arange(start, end, step)
    if dtype is None and array.dtype.kind == "i":
        dtype = "int64"
    return _make(array, dtype, device, requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    for name, value in (("n", n), ("m", m)):
        if value is not None and as_int(value, name) < 0:
            raise RuntimeError(f"{name} must be greater or equal to 0, got {value}")
    return _make(backend.numpy.eye(n, m), dtype, device, requires_grad)


def randn(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _make(backend.rng.standard_normal(_shape(size)), dtype, device, requires_grad)


def rand(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _make(backend.rng.random(_shape(size)), dtype, device, requires_grad)


def uniform(*size, low=0.0, high=1.0, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _make(backend.rng.uniform(low, high, _shape(size)), dtype, device, requires_grad)


def randint(low, high, size, device=None) -> Tensor:
    low, high = as_int(low, "low"), as_int(high, "high")
    if low >= high:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    return _make(backend.rng.integers(low, high, size=new_tensor_shape((size,))), "int64", device, False)


__all__ = ["zeros", "ones", "full", "zeros_like", "ones_like", "arange", "eye", "randn", "rand",
           "uniform", "randint"]
