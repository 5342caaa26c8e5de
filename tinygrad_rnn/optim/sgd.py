"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay (PyTorch's formulas)."""
from __future__ import annotations

from .optimizer import Optimizer, check_number


class SGD(Optimizer):
    """``SGD(params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False)``.

    Per step, with ``g`` the gradient and ``b`` the momentum buffer::

        g = g + weight_decay * p
        b = g                                  (first step)
        b = momentum * b + (1 - dampening) * g (later steps)
        g = g + momentum * b if nesterov else b
        p = p - lr * g

    State per parameter: ``momentum_buffer`` (with momentum).
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _check(self, group):
        check_number(group["lr"], "Invalid learning rate: {}")
        check_number(group["momentum"], "Invalid momentum value: {}")
        check_number(group["dampening"], "Invalid dampening value: {}", low=float("-inf"))
        check_number(group["weight_decay"], "Invalid weight_decay value: {}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening "
                             f"(got momentum={group['momentum']}, dampening={group['dampening']})")

    def _math(self, target, grad, state, group):
        xp = target.xp
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * target.gather_params()
        momentum = group["momentum"]
        if momentum:
            buffer = state.get("momentum_buffer")
            if buffer is None:
                buffer = state["momentum_buffer"] = grad.copy()
            else:
                buffer *= momentum
                buffer += (1 - group["dampening"]) * grad
            grad = grad + momentum * buffer if group["nesterov"] else buffer
        xp.multiply(grad, group["lr"], out=target.update)
        target.apply_update()
