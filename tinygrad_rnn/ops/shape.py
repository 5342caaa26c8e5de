"""Movement primitives: reshape, permute, expand, concatenate, split, pad, index.

Indexing covers basic slices and integer arrays (a gather); its backward is a
scatter-add (``backend.scatter_add``) so repeated indices accumulate.
"""
from __future__ import annotations

from ..autograd import Function
from ..backend import get_array_module, scatter_add
from .dims import normalize_dim, normalize_permutation, reshape_error
from .elementwise import unbroadcast


class Reshape(Function):
    def forward(self, a, shape=None):
        self.shape = a.shape
        if shape and min(shape) < -1:  # NumPy takes any negative size as "infer"; PyTorch only -1
            raise reshape_error(shape, a.size)
        try:
            return a.reshape(shape)
        except ValueError:
            raise reshape_error(shape, a.size) from None

    def backward(self, g):
        return g.reshape(self.shape)


class Permute(Function):
    def forward(self, a, dims=None):
        dims = normalize_permutation(dims, a.ndim)
        self.inverse = tuple(sorted(range(len(dims)), key=lambda i: dims[i]))
        return a.transpose(dims)

    def backward(self, g):
        return g.transpose(self.inverse)


class Expand(Function):
    def forward(self, a, shape=None):
        self.shape = a.shape
        return get_array_module(a).broadcast_to(a, shape)

    def backward(self, g):
        return unbroadcast(g, self.shape)


class Cat(Function):
    """Concatenate any number of arrays along ``dim``."""

    def forward(self, *arrays, dim=0):
        self.dim = normalize_dim(dim, arrays[0].ndim)
        try:
            self.sizes = [a.shape[self.dim] for a in arrays]
            return get_array_module(arrays[0]).concatenate(arrays, axis=self.dim)
        except (ValueError, IndexError):
            raise _cat_error(arrays, self.dim) from None

    def backward(self, g):
        grads, start = [], 0
        for size, needed in zip(self.sizes, self.needs_input_grad):
            index = [slice(None)] * g.ndim
            index[self.dim] = slice(start, start + size)
            grads.append(g[tuple(index)] if needed else None)
            start += size
        return tuple(grads)


def _cat_error(arrays, dim) -> RuntimeError:
    """Why ``cat`` failed, in PyTorch's words."""
    first = arrays[0].shape
    for position, array in enumerate(arrays):
        if array.ndim == 0:
            return RuntimeError(f"zero-dimensional tensor (at position {position}) cannot be concatenated")
        if array.ndim != len(first):
            return RuntimeError(f"Tensors must have same number of dimensions: got {len(first)} and {array.ndim}")
        for axis, (expected, got) in enumerate(zip(first, array.shape)):
            if axis != dim and expected != got:
                return RuntimeError(f"Sizes of tensors must match except in dimension {dim}. Expected size "
                                    f"{expected} but got size {got} for tensor number {position} in the list.")
    return RuntimeError(f"cannot concatenate tensors of shapes {[tuple(a.shape) for a in arrays]} along dim {dim}")


class Split(Function):
    """Split along ``dim`` into pieces of the given ``sizes`` (several outputs)."""

    def forward(self, a, sizes=None, dim=0):
        if a.ndim == 0:
            raise RuntimeError("split expects at least a 1-dimensional tensor")
        self.dim, self.shape, self.dtype = normalize_dim(dim, a.ndim), a.shape, a.dtype
        outputs, start = [], 0
        for size in sizes:
            index = [slice(None)] * a.ndim
            index[self.dim] = slice(start, start + size)
            outputs.append(a[tuple(index)])
            start += size
        self.sizes = sizes
        return tuple(outputs)

    def backward(self, *grads):
        xp = get_array_module(next(g for g in grads if g is not None))
        pieces = []
        for size, g in zip(self.sizes, grads):
            if g is None:
                shape = list(self.shape)
                shape[self.dim] = size
                g = xp.zeros(shape, dtype=self.dtype)
            pieces.append(g)
        return xp.concatenate(pieces, axis=self.dim)


class Pad(Function):
    """Constant padding; ``widths`` is one ``(before, after)`` pair per axis."""

    def forward(self, a, widths=None, value=0.0):
        self.slices = tuple(slice(before, a.shape[i] + before) for i, (before, _) in enumerate(widths))
        return get_array_module(a).pad(a, widths, constant_values=value)

    def backward(self, g):
        return g[self.slices]


def _has_array(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(hasattr(i, "shape") or isinstance(i, list) for i in items)


class GetItem(Function):
    def forward(self, a, index=None):
        self.shape, self.dtype, self.index = a.shape, a.dtype, index
        return a[index]

    def backward(self, g):
        xp = get_array_module(g)
        grad = xp.zeros(self.shape, dtype=self.dtype)
        if _has_array(self.index):
            scatter_add(grad, self.index, g)
        else:
            grad[self.index] = g
        return grad
