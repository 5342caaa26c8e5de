"""Elementwise primitives, each forward beside its local derivative.

Binary ops broadcast like NumPy; ``unbroadcast`` sums a gradient back to the
shape of the input it belongs to. Gradients at kinks follow PyTorch: relu'(0)
= 0, abs'(0) = 0, ties of maximum/minimum split the gradient in half, clip
passes the gradient where ``min <= x <= max``.
"""
from __future__ import annotations

from ..autograd import Function
from ..backend import get_array_module


def unbroadcast(grad, shape):
    """Sum ``grad`` over the axes that broadcasting added or stretched, giving ``shape``."""
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


class Add(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, g):
        sa, sb = self.shapes
        return (unbroadcast(g, sa) if self.needs_input_grad[0] else None,
                unbroadcast(g, sb) if self.needs_input_grad[1] else None)


class Sub(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, g):
        sa, sb = self.shapes
        return (unbroadcast(g, sa) if self.needs_input_grad[0] else None,
                unbroadcast(-g, sb) if self.needs_input_grad[1] else None)


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        a, b = self.a, self.b
        return (unbroadcast(g * b, a.shape) if self.needs_input_grad[0] else None,
                unbroadcast(g * a, b.shape) if self.needs_input_grad[1] else None)


class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, g):
        a, b = self.a, self.b
        ga = unbroadcast(g / b, a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(-g * a / (b * b), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, g):
        return -g


class Pow(Function):
    """``a ** b``; ``b`` may be a tensor (then it gets ``a**b * log(a)``)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        self.out = a ** b
        return self.out

    def backward(self, g):
        a, b = self.a, self.b
        xp = get_array_module(a)
        ga = unbroadcast(g * b * a ** (b - 1), a.shape) if self.needs_input_grad[0] else None
        gb = None
        if self.needs_input_grad[1]:
            # log only ever sees positive values (NumPy warns otherwise; CuPy has no errstate)
            log_a = xp.where(a > 0, xp.log(xp.where(a > 0, a, 1)), 0)
            gb = unbroadcast(g * self.out * log_a, b.shape)
        return ga, gb


class Exp(Function):
    def forward(self, a):
        self.out = get_array_module(a).exp(a)
        return self.out

    def backward(self, g):
        return g * self.out


class Log(Function):
    def forward(self, a):
        self.a = a
        return get_array_module(a).log(a)

    def backward(self, g):
        return g / self.a


class Sqrt(Function):
    def forward(self, a):
        self.out = get_array_module(a).sqrt(a)
        return self.out

    def backward(self, g):
        return g / (2 * self.out)


class Tanh(Function):
    def forward(self, a):
        self.out = get_array_module(a).tanh(a)
        return self.out

    def backward(self, g):
        return g * (1 - self.out * self.out)


class Sigmoid(Function):
    def forward(self, a):
        xp = get_array_module(a)
        # 1 / (1 + exp(-a)) overflows for very negative a; this form does not.
        e = xp.exp(-xp.abs(a))
        self.out = xp.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)
        return self.out

    def backward(self, g):
        return g * self.out * (1 - self.out)


class Relu(Function):
    def forward(self, a):
        self.mask = a > 0
        return a * self.mask

    def backward(self, g):
        return g * self.mask


class Abs(Function):
    def forward(self, a):
        self.a = a
        return abs(a)

    def backward(self, g):
        return g * get_array_module(self.a).sign(self.a)


class _TieSplit(Function):
    """maximum/minimum: the winner gets the gradient; a tie splits it in half (as PyTorch)."""

    pick = None

    def forward(self, a, b):
        xp = get_array_module(a)
        self.shapes = a.shape, b.shape
        self.a_wins = self.pick(a, b).astype(a.dtype)
        self.tie = (a == b).astype(a.dtype)
        return xp.maximum(a, b) if self.pick is _greater else xp.minimum(a, b)

    def backward(self, g):
        share_a = self.a_wins + 0.5 * self.tie
        ga = unbroadcast(g * share_a, self.shapes[0]) if self.needs_input_grad[0] else None
        gb = unbroadcast(g * (1 - share_a), self.shapes[1]) if self.needs_input_grad[1] else None
        return ga, gb


def _greater(a, b):
    return a > b


def _less(a, b):
    return a < b


class Maximum(_TieSplit):
    pick = staticmethod(_greater)


class Minimum(_TieSplit):
    pick = staticmethod(_less)


class Where(Function):
    """``where(condition, a, b)``; ``condition`` is a boolean array and gets no gradient."""

    def forward(self, condition, a, b):
        xp = get_array_module(a)
        self.condition, self.shapes = condition, (a.shape, b.shape)
        return xp.where(condition, a, b)

    def backward(self, g):
        xp = get_array_module(g)
        zero = xp.zeros((), dtype=g.dtype)
        ga = unbroadcast(xp.where(self.condition, g, zero), self.shapes[0]) if self.needs_input_grad[1] else None
        gb = unbroadcast(xp.where(self.condition, zero, g), self.shapes[1]) if self.needs_input_grad[2] else None
        return None, ga, gb


class Clip(Function):
    def forward(self, a, low=None, high=None):
        xp = get_array_module(a)
        self.inside = xp.ones(a.shape, dtype=bool)
        if low is not None:
            self.inside &= a >= low
        if high is not None:
            self.inside &= a <= high
        return xp.clip(a, low, high)

    def backward(self, g):
        return g * self.inside


class Cast(Function):
    def forward(self, a, dtype=None):
        self.dtype = a.dtype
        return a.astype(dtype)

    def backward(self, g):
        return g.astype(self.dtype)
