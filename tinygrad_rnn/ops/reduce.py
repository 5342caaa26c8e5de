"""Reductions and matrix products.

``dim`` is an int, a tuple of ints or ``None`` (all axes), as in PyTorch.
``Max`` with a ``dim`` sends the gradient to the index ``argmax`` returns (the
first maximum); over all elements it splits the gradient evenly among ties,
both as PyTorch does.
"""
from __future__ import annotations

from ..autograd import Function
from ..backend import get_array_module
from .elementwise import unbroadcast


def _axes(dim, ndim):
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    return tuple(d % ndim if ndim else 0 for d in dims)


def _expand_back(g, shape, axes, keepdim):
    """Broadcast a reduced gradient back to the input's ``shape``."""
    xp = get_array_module(g)
    if not keepdim:
        g = xp.expand_dims(g, axes) if axes else g
    return xp.broadcast_to(g, shape)


class Sum(Function):
    def forward(self, a, dim=None, keepdim=False):
        self.shape, self.axes, self.keepdim = a.shape, _axes(dim, a.ndim), keepdim
        return a.sum(axis=self.axes, keepdims=keepdim)

    def backward(self, g):
        return _expand_back(g, self.shape, self.axes, self.keepdim)


class Max(Function):
    """Maximum over ``dim`` (``Min`` reuses it on ``-a``); values only, ``argmax`` gives indices."""

    def forward(self, a, dim=None, keepdim=False):
        xp = get_array_module(a)
        self.shape, self.keepdim = a.shape, keepdim
        if dim is None:
            out = a.max()
            self.mask = (a == out).astype(a.dtype)
            self.mask /= self.mask.sum()
            self.axes = tuple(range(a.ndim))
            return out.reshape((1,) * a.ndim) if keepdim else out
        axis = dim % a.ndim
        self.axes = (axis,)
        index = xp.expand_dims(a.argmax(axis=axis), axis)
        self.mask = xp.zeros(a.shape, dtype=a.dtype)
        xp.put_along_axis(self.mask, index, 1, axis=axis)
        out = xp.take_along_axis(a, index, axis=axis)
        return out if keepdim else out.squeeze(axis)

    def backward(self, g):
        return _expand_back(g, self.shape, self.axes, self.keepdim) * self.mask


class MatMul(Function):
    """``a @ b`` for 2-D and batched (broadcast) operands; 1-D operands as NumPy treats them."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, g):
        xp = get_array_module(g)
        a, b = self.a, self.b
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g
        if a.ndim == 1:
            g2 = xp.expand_dims(g2, -2)
        if b.ndim == 1:
            g2 = xp.expand_dims(g2, -1)
        ga = gb = None
        # A contraction over a dimension of size 1 is an outer product: a broadcast
        # multiply is several times faster than a batched matmul with K = 1.
        if self.needs_input_grad[0]:
            b_t = xp.swapaxes(b2, -1, -2)
            ga = g2 * b_t if g2.shape[-1] == 1 else g2 @ b_t
            ga = unbroadcast(ga, a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            a_t = xp.swapaxes(a2, -1, -2)
            gb = a_t * g2 if g2.shape[-2] == 1 else a_t @ g2
            gb = unbroadcast(gb, b2.shape).reshape(b.shape)
        return ga, gb
