"""Weight initialisation, with ``torch.nn.init``'s names and formulas.

Every function fills ``tensor.data`` in place (the array object is kept, so
views and optimizers stay valid), records no graph, and returns the tensor.
Draws come from the engine's one generator (``backend.rng``) on the host, so
``tinygrad_rnn.manual_seed(n)`` gives the same weights on every device.

``fan_in``/``fan_out`` follow PyTorch: for a weight of shape ``(out, in, *k)``
``fan_in = in * prod(k)`` and ``fan_out = out * prod(k)``.
"""
from __future__ import annotations

import math
import warnings

from .. import backend
from ..autograd import no_grad


def _fill(tensor, host_values):
    """Copy a host array into ``tensor.data`` in place, cast to its dtype and moved to its device."""
    with no_grad():
        values = backend.to_device(host_values.astype(tensor.dtype, copy=False), tensor.device)
        tensor.data[...] = values
    return tensor


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain for ``nonlinearity``: linear/conv/sigmoid 1, tanh 5/3, relu sqrt(2),
    leaky_relu sqrt(2 / (1 + slope**2)) (slope ``param``, default 0.01), selu 3/4."""
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                        "conv_transpose3d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"negative_slope {slope!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}: use linear, sigmoid, tanh, relu, "
                     f"leaky_relu or selu")


def _calculate_fan_in_and_fan_out(tensor):
    if tensor.ndim < 2:
        raise ValueError(f"fan in and fan out need a tensor with at least 2 dimensions, got shape {tensor.shape}")
    receptive_field = 1
    for size in tensor.shape[2:]:
        receptive_field *= size
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def _fan(tensor, mode):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")


def uniform_(tensor, a: float = 0.0, b: float = 1.0):
    """Fill with draws from ``U(a, b)``."""
    return _fill(tensor, backend.rng.uniform(a, b, tensor.shape))


def normal_(tensor, mean: float = 0.0, std: float = 1.0):
    """Fill with draws from ``N(mean, std**2)``."""
    return _fill(tensor, backend.rng.normal(mean, std, tensor.shape))


def constant_(tensor, val: float):
    return _fill(tensor, backend.numpy.full(tensor.shape, val))


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor, gain: float = 1.0):
    """``U(-a, a)`` with ``a = gain * sqrt(6 / (fan_in + fan_out))`` (Glorot & Bengio, 2010)."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain: float = 1.0):
    """``N(0, std**2)`` with ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def kaiming_uniform_(tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"):
    """``U(-bound, bound)`` with ``bound = gain * sqrt(3 / fan)`` (He et al., 2015).

    ``a=sqrt(5)`` with the default leaky_relu gives ``bound = 1 / sqrt(fan_in)``,
    the init of PyTorch's ``nn.Linear`` weight. A tensor with no elements is left
    as it is (with PyTorch's warning): its fan may be 0.
    """
    if 0 in tensor.shape:
        return _zero_element(tensor)
    bound = math.sqrt(3.0) * calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"):
    """``N(0, std**2)`` with ``std = gain / sqrt(fan)``; a tensor with no elements is left as it is."""
    if 0 in tensor.shape:
        return _zero_element(tensor)
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode)))


def _zero_element(tensor):
    warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
    return tensor


def orthogonal_(tensor, gain: float = 1.0):
    """A (semi-)orthogonal matrix (Saxe et al., 2013) times ``gain``; dims after the first are flattened.

    For ``rows = shape[0]``, ``cols = numel // rows``: orthonormal rows when
    ``rows <= cols``, orthonormal columns otherwise. The QR decomposition of a
    Gaussian matrix, signs fixed by ``diag(R)`` so the result is uniformly distributed.
    """
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_ needs a tensor with at least 2 dimensions, got shape {tensor.shape}")
    np = backend.numpy
    rows = tensor.shape[0]
    cols = tensor.numel() // rows if rows else 0
    flat = backend.rng.standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _fill(tensor, (gain * q).reshape(tensor.shape))


__all__ = ["calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_", "xavier_uniform_",
           "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_"]
