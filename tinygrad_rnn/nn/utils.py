"""Gradient utilities: ``clip_grad_norm_``."""
from __future__ import annotations

import math

from .. import backend
from ..optim.flat import gradient_arrays
from ..tensor import Tensor


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> Tensor:
    """Scale the gradients of ``parameters`` so their joint norm is at most ``max_norm``.

    ``parameters``: a Tensor or an iterable of Tensors; those without ``.grad``
    are skipped. The norm is taken over all gradients together as if
    concatenated (``norm_type`` any p >= 1, or ``inf``). As in PyTorch every
    gradient is multiplied by ``min(1, max_norm / (total_norm + 1e-6))``.
    Returns the total norm before clipping as a 0-d Tensor (``float()`` it to log).

    Nothing is read back to the host (PyTorch's ``foreach`` path): the norm and the
    clip factor stay on the device, and gradients an optimizer keeps in one flat
    buffer are handled as one array. ``error_if_nonfinite=True`` needs one read.
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = gradient_arrays(parameters)
    if not grads:
        return Tensor(0.0)
    xp = backend.get_array_module(grads[0])
    dtype = grads[0].dtype
    norm_type = float(norm_type)
    if math.isinf(norm_type):
        partial = [xp.abs(g).max() for g in grads]
        total = partial[0] if len(partial) == 1 else xp.stack(partial).max()
    else:
        if norm_type == 2.0:
            partial = [xp.dot(g.reshape(-1), g.reshape(-1)) for g in grads]
        else:
            partial = [(xp.abs(g) ** norm_type).sum() for g in grads]
        total = partial[0] if len(partial) == 1 else xp.stack(partial).sum()
        total = xp.sqrt(total) if norm_type == 2.0 else total ** (1.0 / norm_type)
    total = total.astype(dtype, copy=False)  # a 0-d array on CUDA, a NumPy scalar on the CPU
    if error_if_nonfinite and not backend.item(xp.isfinite(total)):
        raise RuntimeError(f"the total norm of order {norm_type} of the gradients is {backend.item(total)}, so "
                           "they cannot be clipped; pass error_if_nonfinite=False to clip anyway")
    coefficient = xp.minimum(dtype.type(max_norm) / (total + dtype.type(1e-6)), dtype.type(1.0))
    if xp is backend.numpy and coefficient == 1:
        return Tensor._wrap(total)  # on the host already: skip a pass that multiplies by 1 (no clipping)
    for g in grads:
        g *= coefficient  # in place is safe: each leaf gradient is its own array (a copy, or its flat-buffer view)
    return Tensor._wrap(total)


__all__ = ["clip_grad_norm_"]
