"""``Tensor``: a backend array with a gradient, and the method-chaining API.

Spelling follows PyTorch: ``x.matmul(w).tanh().sum(dim=1, keepdim=True)``,
``x.to("cuda")``, ``x.backward()``. Methods that are not primitives are
composed from the ``ops`` primitives, so their gradients come for free.
"""
from __future__ import annotations

import reprlib

from . import backend, ops
from . import autograd
from .autograd import is_grad_enabled, no_grad, run_backward

_np = backend.numpy
float32, float64, float16 = _np.dtype("float32"), _np.dtype("float64"), _np.dtype("float16")
int32, int64, bool_ = _np.dtype("int32"), _np.dtype("int64"), _np.dtype("bool")
_default_dtype = float32


def set_default_dtype(dtype) -> None:
    """Dtype of tensors made from Python floats/lists and of random factories."""
    global _default_dtype
    _default_dtype = _np.dtype(dtype)


def get_default_dtype():
    return _default_dtype


_NUMERIC_KINDS = "biufc"  # bool, signed/unsigned int, float, complex: what a Tensor holds


def _as_array(data, dtype=None, device=None):
    """Turn Python scalars/lists, NumPy or CuPy arrays into a backend array on ``device``."""
    if isinstance(data, Tensor):
        data = data.data
    if backend.is_array(data) or isinstance(data, _np.generic):
        array = _np.asarray(data) if isinstance(data, _np.generic) else data
        if array.dtype.kind not in _NUMERIC_KINDS:
            raise TypeError(f"Tensor data must be numeric, got an array of dtype {array.dtype}")
    else:
        try:
            array = _np.asarray(data)
        except ValueError as error:  # a ragged nested list
            raise ValueError(f"Tensor data must be a rectangular nested list of numbers, got a ragged "
                             f"{type(data).__name__} {reprlib.repr(data)}") from None
        if array.dtype.kind not in _NUMERIC_KINDS:
            raise TypeError(f"Tensor data must be numbers (a number, a nested list of numbers or a numeric array), "
                            f"got {type(data).__name__} {reprlib.repr(data)}")
        if dtype is None and array.dtype.kind == "f":
            array = array.astype(_default_dtype)  # Python floats default to float32, as in PyTorch
    if dtype is not None and array.dtype != _np.dtype(dtype):
        array = array.astype(dtype)
    target = backend.normalize_device(device) if device is not None else (
        backend.device_of(array) if backend.is_array(data) else backend.get_default_device())
    return backend.to_device(array, target)


class Tensor:
    """An n-dimensional array that can record operations for automatic differentiation.

    ``Tensor(data, dtype=None, device=None, requires_grad=False)``; ``data`` is a
    Python scalar or list, a NumPy/CuPy array or a Tensor. ``.data`` is the raw
    backend array (NumPy on ``"cpu"``, CuPy on ``"cuda"``).
    """

    __array_priority__ = 1000  # make ``ndarray + Tensor`` call Tensor.__radd__
    _grad_slot = None  # (data view, grad view, layout) when an optimizer keeps it in flat buffers (optim/flat.py)

    def __init__(self, data, dtype=None, device=None, requires_grad=False):
        self.data = _as_array(data, dtype, device)
        self.requires_grad = False
        self.grad: Tensor | None = None
        self._ctx = None
        self._generation = 0
        self._retains_grad = False
        self.requires_grad_(bool(requires_grad))

    @classmethod
    def _wrap(cls, array, requires_grad=False):
        if isinstance(array, _np.generic):  # NumPy reductions return scalars; keep 0-d arrays
            array = _np.asarray(array)
        t = cls.__new__(cls)
        t.data, t.requires_grad, t.grad = array, requires_grad, None
        t._ctx, t._generation, t._retains_grad = None, 0, False
        return t

    # ------------------------------------------------------------ properties
    shape = property(lambda self: tuple(self.data.shape))
    dtype = property(lambda self: self.data.dtype)
    device = property(lambda self: backend.device_of(self.data))
    ndim = property(lambda self: self.data.ndim)
    is_leaf = property(lambda self: self._ctx is None)

    def size(self, dim=None):
        if dim is None:
            return self.shape
        if not self.ndim:
            raise IndexError(f"Dimension specified as {dim} but tensor has no dimensions")
        return self.shape[ops.normalize_dim(dim, self.ndim)]

    def dim(self):
        return self.data.ndim

    def numel(self):
        return int(self.data.size)

    def __len__(self):
        if not self.ndim:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self):
        extra = ", requires_grad=True" if self.requires_grad else ""
        device = "" if self.device == "cpu" else f", device='{self.device}'"
        return f"Tensor({backend.as_numpy(self.data)!r}, dtype={self.dtype}{device}{extra})"

    # ---------------------------------------------------------- conversion
    def numpy(self):
        """A NumPy array (a copy from the GPU; the same memory on the CPU)."""
        return backend.as_numpy(self.data)

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return backend.item(self.data)

    def tolist(self):
        return self.numpy().tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        return bool(self.item())

    def detach(self) -> Tensor:
        """The same data, cut from the graph (truncated BPTT relies on this)."""
        return Tensor._wrap(self.data)

    def clone(self) -> Tensor:
        return self * 1 if self.requires_grad else Tensor._wrap(self.data.copy())

    def requires_grad_(self, flag: bool = True) -> Tensor:
        if flag and self.data.dtype.kind != "f":
            raise RuntimeError(f"only floating point tensors can require gradients, got dtype {self.data.dtype}")
        self.requires_grad = flag
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` on a non-leaf tensor after backward (to inspect dLoss/dh_t)."""
        self._retains_grad = True

    def to(self, target) -> Tensor:
        """``to("cuda")``/``to("cpu")`` moves; ``to(float64)`` casts (differentiably)."""
        if isinstance(target, str):
            device = backend.normalize_device(target)
            if device == self.device:
                return self
            moved = Tensor._wrap(backend.to_device(self.data, device), requires_grad=self.requires_grad)
            return moved
        if _np.dtype(target) == self.dtype:
            return self
        return ops.Cast.apply(self, dtype=_np.dtype(target))

    def float(self):
        return self.to(float32)

    def double(self):
        return self.to(float64)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    # ------------------------------------------------------------ autograd
    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``; frees the graph unless ``retain_graph``."""
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad: "
                               "no input had requires_grad=True, or it was computed under no_grad()")
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward() without a gradient needs a one-element tensor, got shape "
                                   f"{self.shape}; pass gradient= of the same shape")
            grad = backend.get_array_module(self.data).ones(self.data.shape, dtype=self.dtype)
        else:
            grad = _as_array(gradient, dtype=self.dtype, device=self.device)
            if grad.shape != self.data.shape:
                raise RuntimeError(f"gradient shape {grad.shape} does not match tensor shape {self.shape}")
        run_backward([self], [grad], retain_graph=retain_graph)

    def zero_grad(self) -> None:
        self.grad = None

    # -------------------------------------------------------- arithmetic
    def _other(self, other):
        """Python scalars and arrays become constant tensors of this tensor's dtype and device."""
        if isinstance(other, Tensor):
            return other
        dtype = self.dtype
        if dtype.kind in "iub" and isinstance(other, float):
            dtype = _default_dtype
        return Tensor._wrap(backend.to_device(_np.asarray(other, dtype=dtype), self.device)) \
            if not backend.is_array(other) else Tensor(other, device=self.device)

    def _binary(self, function, other, reverse=False):
        other = self._other(other)
        return function.apply(other, self) if reverse else function.apply(self, other)

    def __add__(self, other): return self._binary(ops.Add, other)
    def __radd__(self, other): return self._binary(ops.Add, other, True)
    def __sub__(self, other): return self._binary(ops.Sub, other)
    def __rsub__(self, other): return self._binary(ops.Sub, other, True)
    def __mul__(self, other): return self._binary(ops.Mul, other)
    def __rmul__(self, other): return self._binary(ops.Mul, other, True)
    def __truediv__(self, other): return self._binary(ops.Div, other)
    def __rtruediv__(self, other): return self._binary(ops.Div, other, True)
    def __pow__(self, other): return self._binary(ops.Pow, other)
    def __rpow__(self, other): return self._binary(ops.Pow, other, True)
    def __matmul__(self, other): return self._binary(ops.MatMul, other)
    def __rmatmul__(self, other): return self._binary(ops.MatMul, other, True)
    def __neg__(self): return ops.Neg.apply(self)
    def __abs__(self): return ops.Abs.apply(self)

    add = __add__
    sub = __sub__
    mul = __mul__
    div = __truediv__
    pow = __pow__
    matmul = dot = __matmul__
    neg = __neg__
    abs = __abs__

    def exp(self): return ops.Exp.apply(self)
    def log(self): return ops.Log.apply(self)
    def sqrt(self): return ops.Sqrt.apply(self)
    def tanh(self): return ops.Tanh.apply(self)
    def sigmoid(self): return ops.Sigmoid.apply(self)
    def relu(self): return ops.Relu.apply(self)
    def square(self): return self * self
    def maximum(self, other): return self._binary(ops.Maximum, other)
    def minimum(self, other): return self._binary(ops.Minimum, other)

    def clip(self, min=None, max=None):  # noqa: A002 - PyTorch's names
        return ops.Clip.apply(self, low=min, high=max)

    clamp = clip

    # -------------------------------------------------------- comparisons (no gradient)
    def _compare(self, other, op):
        if isinstance(other, Tensor):
            other = other.data
        elif backend.is_array(other):     # a NumPy array against a CuPy tensor: compare on the tensor's device
            other = device_array(other, self.device)
        return Tensor._wrap(op(self.data, other))

    def __eq__(self, other): return self._compare(other, lambda a, b: a == b)  # noqa: E704
    def __ne__(self, other): return self._compare(other, lambda a, b: a != b)  # noqa: E704
    def __lt__(self, other): return self._compare(other, lambda a, b: a < b)  # noqa: E704
    def __le__(self, other): return self._compare(other, lambda a, b: a <= b)  # noqa: E704
    def __gt__(self, other): return self._compare(other, lambda a, b: a > b)  # noqa: E704
    def __ge__(self, other): return self._compare(other, lambda a, b: a >= b)  # noqa: E704
    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__
    __hash__ = object.__hash__

    def logical_not(self):
        return Tensor._wrap(~self.data.astype(bool))

    # -------------------------------------------------------- reductions
    def sum(self, dim=None, keepdim=False):
        return ops.Sum.apply(self, dim=dim, keepdim=keepdim)

    def mean(self, dim=None, keepdim=False):
        count = 1
        for axis in ops.normalize_dims(dim, self.ndim):
            count *= self.shape[axis]
        return self.sum(dim, keepdim) / count

    def max(self, dim=None, keepdim=False):
        """Maximum values (over all elements, or along ``dim``); indices come from ``argmax``."""
        return ops.Max.apply(self, dim=dim, keepdim=keepdim)

    def min(self, dim=None, keepdim=False):
        return -((-self).max(dim, keepdim))

    def logsumexp(self, dim=None, keepdim=False):
        """``log(sum(exp(x)))`` computed stably by shifting with the (constant) maximum."""
        shift = self.detach().max(dim, keepdim=True)
        shifted = (self - shift).exp().sum(dim, keepdim=True).log() + shift
        if keepdim:
            return shifted
        return shifted.squeeze(dim) if dim is not None else shifted.reshape(())

    def argmax(self, dim=None, keepdim=False):
        return self._arg(self.data.argmax, dim, keepdim)

    def argmin(self, dim=None, keepdim=False):
        return self._arg(self.data.argmin, dim, keepdim)

    def _arg(self, function, dim, keepdim):
        name = function.__name__
        if dim is None:
            if not self.data.size:
                raise IndexError(f"{name}(): Expected reduction dim to be specified for input.numel() == 0.")
            return Tensor._wrap(function().astype(int64))
        dim = ops.normalize_dim(dim, self.ndim)
        if not self.ndim:
            return Tensor._wrap(function().astype(int64))
        if not self.shape[dim]:
            raise IndexError(f"{name}(): Expected reduction dim {dim} to have non-zero size.")
        result = function(axis=dim).astype(int64)
        if keepdim:
            result = backend.get_array_module(result).expand_dims(result, dim)
        return Tensor._wrap(result)

    # -------------------------------------------------------- shape
    def reshape(self, *shape):
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return ops.Reshape.apply(self, shape=shape)

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        start, end = ops.normalize_dim(start_dim, self.ndim), ops.normalize_dim(end_dim, self.ndim)
        if start > end:
            raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
        merged = 1
        for size in self.shape[start:end + 1]:  # not -1: with a 0-size dimension -1 is ambiguous
            merged *= size
        return self.reshape(self.shape[:start] + (merged,) + self.shape[end + 1:])

    def permute(self, *dims):
        dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
        return ops.Permute.apply(self, dims=dims)

    def transpose(self, dim0=0, dim1=1):
        dim0, dim1 = ops.normalize_dim(dim0, self.ndim), ops.normalize_dim(dim1, self.ndim)
        if not self.ndim:
            return self
        dims = list(range(self.ndim))
        dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
        return self.permute(dims)

    @property
    def T(self):  # noqa: N802 - PyTorch's name
        return self.permute(tuple(reversed(range(self.ndim))))

    def expand(self, *shape):
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return ops.Expand.apply(self, shape=ops.expanded_shape(self.shape, shape))

    broadcast_to = expand

    def unsqueeze(self, dim):
        dim = ops.normalize_dim(dim, self.ndim, new=True)
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def squeeze(self, dim=None):
        if dim is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        dims = set(ops.normalize_dims(dim, self.ndim))
        return self.reshape(tuple(n for i, n in enumerate(self.shape) if not (i in dims and n == 1)))

    def contiguous(self):
        return self

    def split(self, split_size_or_sections, dim=0):
        """Pieces of ``split_size`` (the last may be smaller) or of the listed sizes, along ``dim``."""
        if not self.ndim:
            raise RuntimeError("split expects at least a 1-dimensional tensor")
        dim = ops.normalize_dim(dim, self.ndim)
        sizes = ops.split_sizes(self.shape[dim], split_size_or_sections, dim)
        result = ops.Split.apply(self, sizes=sizes, dim=dim)
        return result if isinstance(result, tuple) else (result,)

    def chunk(self, chunks, dim=0):
        if not self.ndim:
            raise RuntimeError("chunk expects at least a 1-dimensional tensor")
        dim = ops.normalize_dim(dim, self.ndim)
        return self.split(ops.chunk_sizes(self.shape[dim], chunks, dim), dim)

    def pad(self, pad, value=0.0):
        """``torch.nn.functional.pad`` order: ``(last_left, last_right, prev_left, prev_right, ...)``."""
        if len(pad) % 2 or len(pad) // 2 > self.ndim:
            raise ValueError(f"pad needs pairs for at most {self.ndim} dims, got {pad}")
        if any(ops.as_int(width, "padding") < 0 for width in pad):
            raise ValueError(f"pad widths must be non-negative (cropping by negative padding is not supported), "
                             f"got {tuple(pad)}")
        widths = [(0, 0)] * self.ndim
        for k in range(len(pad) // 2):
            widths[self.ndim - 1 - k] = (pad[2 * k], pad[2 * k + 1])
        return ops.Pad.apply(self, widths=tuple(widths), value=value)

    def __getitem__(self, index):
        return ops.GetItem.apply(self, index=_raw_index(index))

    def gather(self, dim, index):
        """``out[i][j] = self[i][index[i][j]]`` for ``dim=1`` (any ``dim``), differentiable."""
        xp = backend.get_array_module(self.data)
        index = index.data if isinstance(index, Tensor) else backend.to_device(index, self.device)
        dim = ops.normalize_dim(dim, self.ndim)
        if index.ndim != self.ndim:
            raise RuntimeError(f"Index tensor must have the same number of dimensions as input tensor (index shape "
                               f"{tuple(index.shape)}, input shape {self.shape})")
        if not self.ndim:
            return self.reshape(1)[index.reshape(1)].reshape(())
        # an open grid of each axis' positions (what NumPy's indices(sparse=True) gives; CuPy lacks it)
        grid = [xp.arange(size).reshape((1,) * axis + (size,) + (1,) * (index.ndim - axis - 1))
                for axis, size in enumerate(index.shape)]
        grid[dim] = index
        return self[tuple(grid)]

    def __setitem__(self, index, value):
        if self.requires_grad and is_grad_enabled():
            raise RuntimeError("in-place assignment to a tensor that requires grad; use torch-style "
                               "out-of-place ops, or do it under no_grad()")
        value = value.data if isinstance(value, Tensor) else value
        if backend.is_array(value):       # CuPy takes no NumPy array here: move it to this tensor's device
            value = backend.to_device(value, self.device)
        self.data[_raw_index(index)] = value

    def masked_fill(self, mask, value):
        """Entries where ``mask`` is True become ``value`` (no gradient flows to them)."""
        mask = mask.data if isinstance(mask, Tensor) else mask
        return where(Tensor._wrap(mask), Tensor._wrap(
            backend.to_device(_np.asarray(value, dtype=self.dtype), self.device)), self)

    def type_as(self, other):
        return self.to(other.dtype)


autograd._set_tensor_class(Tensor)


def device_array(value, device: str):
    """``value`` (a Tensor, a backend array or Python data) as a backend array on ``device``.

    A Tensor's data is already device data: nothing is copied or counted when it is on
    ``device``. Anything else is host data, uploaded (and counted by the profiler).
    """
    if isinstance(value, Tensor):
        return value.data if value.device == device else backend.to_device(value.data, device)
    if not backend.is_array(value):
        value = _np.asarray(value)
    return backend.to_device(value, device)


def _raw_index(index):
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


# ------------------------------------------------------------ free functions
def cat(tensors, dim=0) -> Tensor:
    """Concatenate tensors along an existing ``dim``."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat() needs at least one tensor")
    return ops.Cat.apply(*tensors, dim=dim)


def stack(tensors, dim=0) -> Tensor:
    """Join tensors of equal shape along a new ``dim``."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    for position, tensor in enumerate(tensors):
        if tensor.shape != tensors[0].shape:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(tensors[0].shape)} at "
                               f"entry 0 and {list(tensor.shape)} at entry {position}")
    return cat([t.unsqueeze(dim) for t in tensors], dim=dim)


def where(condition, a, b) -> Tensor:
    reference = a if isinstance(a, Tensor) else b
    a, b = reference._other(a), reference._other(b)
    condition = device_array(condition, reference.device)
    return ops.Where.apply(condition.astype(bool, copy=False), a, b)


def maximum(a, b) -> Tensor:
    return a.maximum(b) if isinstance(a, Tensor) else b._other(a).maximum(b)


def minimum(a, b) -> Tensor:
    return a.minimum(b) if isinstance(a, Tensor) else b._other(a).minimum(b)


__all__ = ["Tensor", "cat", "stack", "where", "maximum", "minimum", "no_grad", "float16", "float32",
           "float64", "int32", "int64", "bool_", "set_default_dtype", "get_default_dtype"]
