"""Basic layers: ``Linear``, ``Embedding``, ``Dropout`` and the activation modules.

Parameter names, shapes and initialisation are PyTorch's, so a state dict
reads the same and a model trained here starts from the same distribution.
"""
from __future__ import annotations

import math

from . import functional as F
from . import init
from ..factories import zeros
from ..tensor import Tensor
from .module import Module, Parameter


class Linear(Module):
    """``y = x @ weight.T + bias``.

    ``weight``: ``(out_features, in_features)``, ``bias``: ``(out_features,)``,
    both drawn from ``U(-1/sqrt(in_features), 1/sqrt(in_features))`` as in
    PyTorch (``kaiming_uniform_(a=sqrt(5))``). ``x``: ``(*, in_features)`` ->
    ``(*, out_features)``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=None, device=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(zeros(out_features, in_features, dtype=dtype, device=device))
        if bias:
            self.bias = Parameter(zeros(out_features, dtype=dtype, device=device))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        if not x.ndim or x.shape[-1] != self.in_features:
            raise self._width_error(x.shape)
        # One 2-D matmul for any leading shape: a batched matmul would make the
        # weight gradient one (in, out) matrix per batch entry before summing.
        flat = x if x.ndim == 2 else x.reshape(-1, self.in_features)
        y = flat.matmul(self.weight.T)
        if self.bias is not None:
            y = y + self.bias
        return y if x.ndim == 2 else y.reshape(x.shape[:-1] + (self.out_features,))

    def _width_error(self, shape) -> RuntimeError:
        if not shape:
            return RuntimeError(f"both arguments to linear need to be at least 1D, but they are 0D and 2D: "
                                f"Linear(in_features={self.in_features}) needs an input of shape "
                                f"(*, {self.in_features})")
        rows = 1
        for size in shape[:-1]:
            rows *= size
        return RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({rows}x{shape[-1]} and "
                            f"{self.in_features}x{self.out_features}): Linear(in_features={self.in_features}, "
                            f"out_features={self.out_features}) got an input of shape {tuple(shape)}; its last "
                            f"dimension must be {self.in_features}")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """A lookup table: int indices ``(*)`` -> rows ``(*, embedding_dim)``.

    ``weight``: ``(num_embeddings, embedding_dim)`` drawn from ``N(0, 1)``; the
    ``padding_idx`` row (if given) starts at zero and never receives a gradient.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 dtype=None, device=None):
        super().__init__()
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"padding_idx {padding_idx} is outside the table of {num_embeddings} rows")
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        self.weight = Parameter(zeros(num_embeddings, embedding_dim, dtype=dtype, device=device))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, indices) -> Tensor:
        return F.embedding(indices, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        pad = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


class Dropout(Module):
    """Inverted dropout with probability ``p`` in training mode; the identity in ``eval()``. Shape kept."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ReLU(Module):
    """``max(x, 0)`` elementwise (for ``Sequential``)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.relu()


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.tanh()


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.sigmoid()
