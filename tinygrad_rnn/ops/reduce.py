"""Reductions and matrix products.

``dim`` is an int, a tuple of ints or ``None`` (all axes), as in PyTorch.
``Max`` with a ``dim`` sends the gradient to the index ``argmax`` returns (the
first maximum); over all elements it splits the gradient evenly among ties,
both as PyTorch does.
"""
from __future__ import annotations

from ..autograd import Function
from ..backend import get_array_module
from .dims import normalize_dim, normalize_dims
from .elementwise import unbroadcast


def _expand_back(g, shape, axes, keepdim):
    """Broadcast a reduced gradient back to the input's ``shape``."""
    xp = get_array_module(g)
    if not keepdim:
        g = xp.expand_dims(g, axes) if axes else g
    return xp.broadcast_to(g, shape)


class Sum(Function):
    def forward(self, a, dim=None, keepdim=False):
        self.shape, self.axes, self.keepdim = a.shape, normalize_dims(dim, a.ndim), keepdim
        return a.sum(axis=self.axes, keepdims=keepdim)

    def backward(self, g):
        return _expand_back(g, self.shape, self.axes, self.keepdim)


class Max(Function):
    """Maximum over ``dim`` (``Min`` reuses it on ``-a``); values only, ``argmax`` gives indices."""

    def forward(self, a, dim=None, keepdim=False):
        xp = get_array_module(a)
        self.shape, self.keepdim = a.shape, keepdim
        if dim is None:
            if a.size == 0:
                raise RuntimeError("max(): Expected reduction dim to be specified for input.numel() == 0. "
                                   "Specify the reduction dim with the 'dim' argument.")
            out = a.max()
            self.mask = (a == out).astype(a.dtype)
            self.mask /= self.mask.sum()
            self.axes = tuple(range(a.ndim))
            return out.reshape((1,) * a.ndim) if keepdim else out
        axis = normalize_dim(dim, a.ndim)
        if a.ndim == 0:  # PyTorch: max(0) of a 0-d tensor is the tensor
            self.axes, self.mask = (), xp.ones((), dtype=a.dtype)
            return a.copy()
        if a.shape[axis] == 0:
            raise IndexError(f"max(): Expected reduction dim {axis} to have non-zero size.")
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
        try:
            return a @ b
        except ValueError:
            raise matmul_error(a.shape, b.shape) from None

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


def matmul_error(shape_a, shape_b) -> RuntimeError:
    """Why ``a @ b`` is impossible, naming both shapes (PyTorch's words for the 2-D case)."""
    if not shape_a or not shape_b:
        return RuntimeError(f"both arguments to matmul need to be at least 1D, but they are {len(shape_a)}D "
                            f"and {len(shape_b)}D")
    rows, inner_a = (1, shape_a[0]) if len(shape_a) == 1 else shape_a[-2:]
    inner_b, columns = (shape_b[0], 1) if len(shape_b) == 1 else shape_b[-2:]
    if inner_a != inner_b:
        second = "length of the second" if len(shape_b) == 1 else "second-to-last dimension of the second"
        return RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({rows}x{inner_a} and {inner_b}x{columns}): "
                            f"in the matmul of shapes {tuple(shape_a)} and {tuple(shape_b)} the last dimension of "
                            f"the first ({inner_a}) must equal the {second} ({inner_b})")
    return RuntimeError(f"matmul of shapes {tuple(shape_a)} and {tuple(shape_b)}: the batch dimensions "
                        f"{tuple(shape_a[:-2])} and {tuple(shape_b[:-2])} do not broadcast")
