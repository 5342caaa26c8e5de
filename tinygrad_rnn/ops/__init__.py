"""Primitive differentiable operations (``Function`` subclasses on raw arrays).

Only these have hand-written gradients; everything else in the engine is
composed from them (``mean``, ``softmax``, ``logsumexp``, ``stack``, ...).
"""
from .dims import (as_int, chunk_sizes, expanded_shape, new_tensor_shape, normalize_dim, normalize_dims,
                   normalize_permutation, split_sizes)
from .elementwise import (Abs, Add, Cast, Clip, Div, Exp, Log, Maximum, Minimum, Mul, Neg, Pow, Relu,
                          Sigmoid, Sqrt, Sub, Tanh, Where, unbroadcast)
from .reduce import MatMul, Max, Sum
from .shape import Cat, Expand, GetItem, Pad, Permute, Reshape, Split

__all__ = ["as_int", "chunk_sizes", "expanded_shape", "new_tensor_shape", "normalize_dim", "normalize_dims",
           "normalize_permutation", "split_sizes",
           "Abs", "Add", "Cast", "Cat", "Clip", "Div", "Exp", "Expand", "GetItem", "Log", "MatMul", "Max",
           "Maximum", "Minimum", "Mul", "Neg", "Pad", "Permute", "Pow", "Relu", "Reshape", "Sigmoid", "Split",
           "Sqrt", "Sub", "Sum", "Tanh", "Where", "unbroadcast"]
