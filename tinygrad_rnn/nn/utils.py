"""Gradient utilities: ``clip_grad_norm_``."""
from __future__ import annotations

import math

from .. import backend
from ..tensor import Tensor


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> Tensor:
    """Scale the gradients of ``parameters`` so their joint norm is at most ``max_norm``.

    ``parameters``: a Tensor or an iterable of Tensors; those without ``.grad``
    are skipped. The norm is taken over all gradients together as if
    concatenated (``norm_type`` any p >= 1, or ``inf``). As in PyTorch every
    gradient is multiplied by ``min(1, max_norm / (total_norm + 1e-6))``.
    Returns the total norm before clipping as a 0-d Tensor (``float()`` it to log).
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = [p.grad.data for p in parameters if p.grad is not None]
    if not grads:
        return Tensor(0.0)
    xp = backend.get_array_module(grads[0])
    norm_type = float(norm_type)
    if math.isinf(norm_type):
        norms = [xp.abs(g).max() for g in grads]
        total = max(backend.item(n) for n in norms)
    else:
        # Per-gradient norms stay on the device; one transfer for the total.
        power = (lambda g: g * g) if norm_type == 2.0 else (lambda g: xp.abs(g) ** norm_type)
        norms = xp.stack([xp.asarray(power(g).sum()) for g in grads])
        total = backend.item(norms.sum()) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"the total norm of order {norm_type} of the gradients is {total}, so they cannot be "
                           "clipped; pass error_if_nonfinite=False to clip anyway")
    scale = max_norm / (total + 1e-6)
    if scale < 1.0:
        for g in grads:
            g *= g.dtype.type(scale)  # in place is safe: autograd copied each leaf gradient when it stored it
    return Tensor(backend.numpy.asarray(total, dtype=grads[0].dtype), device=backend.device_of(grads[0]))


__all__ = ["clip_grad_norm_"]
