"""Adam and AdamW (PyTorch's formulas, bias-corrected), updating raw arrays in place."""
from __future__ import annotations

import math

from .. import backend
from .optimizer import Optimizer


class Adam(Optimizer):
    """``Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False)``.

    Per step ``t`` (1-based), with ``g`` the gradient::

        g = g + weight_decay * p                       (Adam: L2 penalty in the gradient)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_hat = max(v_hat, v) if amsgrad else v
        p = p - lr / (1 - beta1**t) * m / (sqrt(v_hat) / sqrt(1 - beta2**t) + eps)

    State per parameter: ``step`` (int), ``exp_avg`` (m), ``exp_avg_sq`` (v) and
    ``max_exp_avg_sq`` with amsgrad.
    """

    decoupled_weight_decay = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False):
        if lr < 0.0:
            raise ValueError(f"invalid learning rate {lr}: it must be >= 0")
        if eps < 0.0:
            raise ValueError(f"invalid eps {eps}: it must be >= 0")
        for index, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"invalid beta at index {index}: {beta} (each beta must be in [0, 1))")
        if weight_decay < 0.0:
            raise ValueError(f"invalid weight_decay {weight_decay}: it must be >= 0")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad))

    def _update(self, param, state, group):
        xp = backend.get_array_module(param.data)
        grad = param.grad.data
        lr, (beta1, beta2), eps, weight_decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(param.data)
            state["exp_avg_sq"] = xp.zeros_like(param.data)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(param.data)
        state["step"] += 1
        step = state["step"]
        if weight_decay:
            if self.decoupled_weight_decay:
                param.data *= 1 - lr * weight_decay
            else:
                grad = grad + weight_decay * param.data
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        scratch = xp.multiply(grad, 1 - beta1)
        exp_avg *= beta1
        exp_avg += scratch
        xp.multiply(grad, grad, out=scratch)
        scratch *= 1 - beta2
        exp_avg_sq *= beta2
        exp_avg_sq += scratch
        second_moment = exp_avg_sq
        if group["amsgrad"]:
            second_moment = xp.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
        step_size = lr / (1 - beta1 ** step)
        denom = xp.sqrt(second_moment, out=scratch)
        denom /= math.sqrt(1 - beta2 ** step)
        denom += eps
        update = xp.divide(exp_avg, denom, out=scratch)
        update *= step_size
        param.data -= update


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): ``p = p * (1 - lr * weight_decay)``
    before the Adam step, instead of an L2 term in the gradient. Default ``weight_decay=1e-2``."""

    decoupled_weight_decay = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
