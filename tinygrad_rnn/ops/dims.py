"""Dimension and size arguments, checked once and with PyTorch's messages.

Every op that takes a ``dim`` goes through ``normalize_dim`` (or
``normalize_dims`` for reductions): an out-of-range ``dim`` raises
``IndexError: Dimension out of range (expected to be in range of [-2, 1], but
got 7)`` instead of wrapping around. A 0-d tensor accepts ``dim`` 0 and -1, as
in PyTorch. ``unsqueeze`` and ``stack`` insert a dimension, so they accept one
position more (``new=True``).

The checks are Python integer comparisons on the arguments, never on array
data, so they cost nothing next to the op itself and never synchronise a GPU.
"""
from __future__ import annotations

import operator


def as_int(value, what: str = "dim") -> int:
    """``value`` as a Python int (NumPy integers included); TypeError for floats, bools, strings."""
    if type(value) is int:
        return value
    if isinstance(value, bool):
        raise TypeError(f"{what} must be an int, got bool {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an int, got {type(value).__name__} {value!r}") from None


def dim_out_of_range(dim: int, positions: int) -> IndexError:
    return IndexError(f"Dimension out of range (expected to be in range of [{-positions}, {positions - 1}], "
                      f"but got {dim})")


def normalize_dim(dim, ndim: int, new: bool = False) -> int:
    """``dim`` (negative counts from the end) as a position in ``range(ndim)``, or ``range(ndim + 1)`` if ``new``.

    For a 0-d tensor (``ndim == 0``, not ``new``) dims 0 and -1 are accepted and 0 is returned: the
    caller treats it as "no axis".
    """
    if type(dim) is not int:
        dim = as_int(dim)
    positions = (ndim + 1 if new else ndim) or 1
    if 0 <= dim < positions:
        return dim
    if -positions <= dim < 0:
        return dim + positions
    raise dim_out_of_range(dim, positions)


def normalize_dims(dim, ndim: int) -> tuple:
    """Reduction axes: ``None`` -> all of them; an int or a sequence of ints -> positions, in the given order.

    A 0-d tensor has no axes to reduce (``()``). A repeated dim is a RuntimeError, as in PyTorch.
    """
    if dim is None:
        return tuple(range(ndim))
    if type(dim) is int:
        dims = (normalize_dim(dim, ndim),)
    elif isinstance(dim, (tuple, list)):
        dims = tuple(normalize_dim(d, ndim) for d in dim)
        if len(set(dims)) != len(dims):
            repeated = next(d for d in dims if dims.count(d) > 1)
            raise RuntimeError(f"dim {repeated} appears multiple times in the list of dims")
    else:
        dims = (normalize_dim(dim, ndim),)
    return dims if ndim else ()


def normalize_permutation(dims, ndim: int) -> tuple:
    """``permute``'s ``dims``: one entry per dimension, each once."""
    if len(dims) != ndim:
        raise RuntimeError("permute(): number of dimensions in the tensor input does not match the length of the "
                           f"desired ordering of dimensions i.e. input.dim() = {ndim} is not equal to "
                           f"len(dims) = {len(dims)}")
    dims = [d if type(d) is int and 0 <= d < ndim else normalize_dim(d, ndim) for d in dims]
    if len(set(dims)) != ndim:
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    return tuple(dims)


def split_sizes(length: int, split_size_or_sections, dim: int) -> list:
    """The piece sizes of ``split(split_size_or_sections, dim)`` along a dimension of ``length``."""
    if isinstance(split_size_or_sections, (tuple, list)):
        sizes = [as_int(size, "split size") for size in split_size_or_sections]
        if any(size < 0 for size in sizes):
            raise RuntimeError(f"split_with_sizes expects split_sizes have only non-negative entries, but got "
                               f"split_sizes={sizes}")
        if sum(sizes) != length:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {length} (input tensor's "
                               f"size at dimension {dim}), but got split_sizes={sizes}")
        return sizes
    step = as_int(split_size_or_sections, "split_size")
    if step < 0:
        raise RuntimeError(f"split expects split_size be non-negative, but got split_size={step}")
    if length == 0:
        return [0]
    if step == 0:
        raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got dimension size of {length}")
    return [min(step, length - start) for start in range(0, length, step)]


def chunk_sizes(length: int, chunks, dim: int) -> list:
    """The piece sizes of ``chunk(chunks, dim)``: pieces of ``ceil(length / chunks)``, the last smaller."""
    chunks = as_int(chunks, "chunks")
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    if length == 0:
        return [0] * chunks
    return split_sizes(length, -(-length // chunks), dim)


def expanded_shape(shape: tuple, sizes) -> tuple:
    """``expand(*sizes)`` of a tensor of ``shape``: -1 keeps a size, new dimensions go in front."""
    sizes = tuple(as_int(size, "size") for size in sizes)
    lead = len(sizes) - len(shape)
    if lead < 0:
        raise RuntimeError(f"expand: the number of sizes provided ({len(sizes)}) must be greater or equal to the "
                           f"number of dimensions in the tensor ({len(shape)})")
    result = []
    for i, size in enumerate(sizes):
        if i < lead:
            if size < 0:
                raise RuntimeError(f"The expanded size of the tensor ({size}) isn't allowed in a leading, "
                                   f"non-existing dimension {i}")
        else:
            existing = shape[i - lead]
            if size == -1:
                size = existing
            elif size < 0 or (size != existing and existing != 1):
                raise RuntimeError(f"The expanded size of the tensor ({size}) must match the existing size "
                                   f"({existing}) at non-singleton dimension {i}.  Target sizes: {list(sizes)}.  "
                                   f"Tensor sizes: {list(shape)}")
        result.append(size)
    return tuple(result)


def reshape_error(shape, numel: int) -> RuntimeError:
    """Why ``reshape(shape)`` of ``numel`` elements is impossible, in PyTorch's words."""
    shape = list(shape)
    for i, size in enumerate(shape):
        if size < -1:
            return RuntimeError(f"invalid shape dimension {size} at index {i} of shape {shape}")
    if shape.count(-1) > 1:
        return RuntimeError("only one dimension can be inferred")
    if -1 in shape and numel == 0:
        return RuntimeError(f"cannot reshape tensor of 0 elements into shape {shape} because the unspecified "
                            "dimension size -1 can be any value and is ambiguous")
    return RuntimeError(f"shape '{shape}' is invalid for input of size {numel}")


def new_tensor_shape(size, what: str = "size") -> tuple:
    """A factory's ``size`` (ints, or one tuple/list of ints) as a shape; negative sizes are refused."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = size[0]
    try:
        shape = tuple(as_int(n, what) for n in size)
    except TypeError:
        raise TypeError(f"{what} must be a tuple of ints, got {tuple(size)!r}") from None
    for n in shape:
        if n < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {n}: {list(shape)}")
    return shape
