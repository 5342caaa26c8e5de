"""Stateless layer functions, with ``torch.nn.functional``'s names and semantics.

Everything here is composed from the engine's primitives except two deliberate
fused Functions, each tested against its composed twin:

- ``cross_entropy``: log-softmax and negative log-likelihood in one node with
  the hand-written gradient ``softmax - onehot`` (it runs on ``(B*T, vocab)``
  logits every training step). Its composed twin is
  ``_composed_nll(log_softmax(x, 1), ...)``.
- ``embedding``: a row gather whose backward scatter-adds into the weight
  and leaves the ``padding_idx`` row without gradient.
"""
from __future__ import annotations

from .. import backend
from ..autograd import Function
from ..tensor import Tensor

REDUCTIONS = ("mean", "sum", "none")


def softmax(x: Tensor, dim: int) -> Tensor:
    """``exp(x) / sum(exp(x))`` along ``dim``, shifted by the maximum so it never overflows. Shape kept."""
    exps = (x - x.detach().max(dim, keepdim=True)).exp()
    return exps / exps.sum(dim, keepdim=True)


def log_softmax(x: Tensor, dim: int) -> Tensor:
    """``x - logsumexp(x)`` along ``dim`` (stable for large logits). Shape kept."""
    return x - x.logsumexp(dim, keepdim=True)


# ---------------------------------------------------------------- losses
def _check_reduction(reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _integer_array(values, device: str, requirement: str):
    """A Tensor, array or list of ints as a backend int array on ``device``; TypeError otherwise."""
    array = values.data if isinstance(values, Tensor) else values
    if not backend.is_array(array):
        array = backend.numpy.asarray(array)
    array = backend.to_device(array, device)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{requirement}, got dtype {array.dtype}")
    return array


def _flatten_classes(input: Tensor, target):
    """``(N, C, d1, ...)``/``(C,)`` scores and matching targets -> ``(M, C)``, ``(M,)`` and the per-item shape."""
    target = _integer_array(target, input.device, "targets must be integer class indices")
    item_shape = () if input.ndim == 1 else (input.shape[0],) + input.shape[2:]
    if tuple(target.shape) != item_shape:
        raise ValueError(f"target shape {tuple(target.shape)} does not match the scores {input.shape}: expected "
                         f"{item_shape} (the scores' shape without the class dimension)")
    if input.ndim == 1:
        input = input.unsqueeze(0)
    elif input.ndim > 2:  # (N, C, d...) -> (N, d..., C) -> (N*d..., C)
        input = input.permute((0,) + tuple(range(2, input.ndim)) + (1,)).reshape(-1, input.shape[1])
    return input, target.reshape(-1), item_shape


def _check_targets(target, classes: int, ignore_index: int):
    xp = backend.get_array_module(target)
    valid = target != ignore_index
    bad = valid & ((target < 0) | (target >= classes))
    if bool(bad.any()):
        value = int(target[xp.argmax(bad)])
        raise IndexError(f"target {value} is out of range for {classes} classes (use 0..{classes - 1}, "
                         f"or ignore_index={ignore_index} for positions to skip)")
    return valid


class _CrossEntropy(Function):
    """Fused ``nll(log_softmax(logits))`` with label smoothing, for ``(M, C)`` logits and ``(M,)`` targets.

    Per row (``p = softmax(x)``, ``eps`` the smoothing, ``t`` the target):
    ``loss = (1 - eps) * (logZ - x_t) + eps * (logZ - mean_c x_c)`` and
    ``dloss/dx = p - (1 - eps) * onehot(t) - eps / C``; ignored rows give 0.
    """

    def forward(self, logits, target, valid=None, label_smoothing=0.0, reduction="mean"):
        xp = backend.get_array_module(logits)
        rows, classes = logits.shape
        self.rows = xp.arange(rows)
        self.safe_target = xp.where(valid, target, 0)
        self.valid, self.eps, self.reduction = valid, label_smoothing, reduction
        shifted = logits - logits.max(axis=1, keepdims=True)
        target_logit = shifted[self.rows, self.safe_target]
        mean_logit = shifted.mean(axis=1) if label_smoothing else None
        probs = xp.exp(shifted, out=shifted)  # reuse the buffer: it is saved for backward
        normaliser = probs.sum(axis=1)
        log_z = xp.log(normaliser)
        probs /= normaliser[:, None]
        self.probs = probs
        loss = log_z - target_logit
        if label_smoothing:
            loss = (1 - label_smoothing) * loss + label_smoothing * (log_z - mean_logit)
        loss = xp.where(valid, loss, xp.zeros((), dtype=loss.dtype))
        self.count = int(valid.sum())
        if reduction == "none":
            return loss
        total = loss.sum()
        if reduction == "mean":
            total = total / logits.dtype.type(self.count) if self.count else logits.dtype.type("nan")
        return xp.asarray(total, dtype=logits.dtype)

    def backward(self, g):
        xp = backend.get_array_module(g)
        zero = xp.zeros((), dtype=g.dtype)
        if self.reduction == "mean":
            g = g / g.dtype.type(max(self.count, 1))
        scale = xp.where(self.valid, g, zero)  # (M,): the weight of each row's loss
        grad = self.probs * scale[:, None]
        grad[self.rows, self.safe_target] -= (1 - self.eps) * scale
        if self.eps:
            grad -= (self.eps / grad.shape[1]) * scale[:, None]
        return grad, None


def _reduce(loss: Tensor, valid_count, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    total = loss.sum()
    return total if reduction == "sum" else total / valid_count


def _composed_nll(log_probs: Tensor, target, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """``nll_loss`` composed from primitives (with optional label smoothing); the fused loss's twin."""
    _check_reduction(reduction)
    flat, target, item_shape = _flatten_classes(log_probs, target)
    rows, classes = flat.shape
    xp = backend.get_array_module(flat.data)
    valid = _check_targets(target, classes, ignore_index)
    picked = flat[xp.arange(rows), xp.where(valid, target, 0)]
    loss = -picked
    if label_smoothing:
        loss = (1 - label_smoothing) * loss - label_smoothing * flat.mean(1)
    loss = loss * Tensor._wrap(valid.astype(flat.dtype))
    count = int(valid.sum())
    if reduction == "mean" and count == 0:
        return loss.sum() * float("nan")
    return _reduce(loss.reshape(item_shape), count, reduction)


def nll_loss(input: Tensor, target, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of ``target`` under log-probabilities ``input``.

    ``input``: ``(N, C)``, ``(N, C, d1, ...)`` or ``(C,)`` log-probabilities;
    ``target``: ``(N,)``, ``(N, d1, ...)`` or ``()`` int class indices. Targets
    equal to ``ignore_index`` contribute nothing; ``"mean"`` divides by the
    number of the others (NaN when there are none, as in PyTorch).
    Returns a 0-d Tensor, or the target's shape for ``reduction="none"``.
    """
    return _composed_nll(input, target, ignore_index, reduction)


def cross_entropy(input: Tensor, target, *, ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """``nll_loss(log_softmax(input, 1), target)`` with PyTorch's label smoothing, fused.

    ``input``: ``(N, C)``, ``(N, C, d1, ...)`` or ``(C,)`` unnormalised scores;
    ``target``: ``(N,)``, ``(N, d1, ...)`` or ``()`` int class indices.
    Each counted position's loss is ``(1 - eps) * -log p_t + eps * mean_c(-log p_c)``
    with ``eps = label_smoothing``; positions whose target is ``ignore_index``
    give 0 and are left out of the ``"mean"``. Returns a 0-d Tensor, or the
    target's shape for ``reduction="none"``.
    """
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    flat, target, item_shape = _flatten_classes(input, target)
    valid = _check_targets(target, flat.shape[1], ignore_index)
    loss = _CrossEntropy.apply(flat, target, valid=valid, label_smoothing=float(label_smoothing),
                               reduction=reduction)
    return loss.reshape(item_shape) if reduction == "none" else loss


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """``(input - target)**2``, averaged, summed or kept (``"none"``: the broadcast shape)."""
    _check_reduction(reduction)
    diff = input - target
    squared = diff * diff
    if reduction == "none":
        return squared
    return squared.sum() if reduction == "sum" else squared.mean()


# ---------------------------------------------------------------- dropout, embedding
def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout: zero each element with probability ``p``, scale the rest by ``1/(1-p)``.

    The identity when not ``training`` or ``p == 0``. The mask is drawn from
    the engine's generator (``backend.rng``), so ``manual_seed`` reproduces it.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    keep = backend.rng.random(x.shape, dtype="float32") >= p
    mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    return x * Tensor._wrap(backend.to_device(mask, x.device))


class _Embedding(Function):
    """``weight[indices]``; backward scatter-adds rows (repeats accumulate), ``padding_idx`` row gets 0."""

    def forward(self, weight, indices, padding_idx=None):
        self.shape, self.indices, self.padding_idx = weight.shape, indices, padding_idx
        return weight[indices]

    def backward(self, g):
        xp = backend.get_array_module(g)
        grad = xp.zeros(self.shape, dtype=g.dtype)
        backend.scatter_add(grad, self.indices.reshape(-1), g.reshape(-1, self.shape[1]))
        if self.padding_idx is not None:
            grad[self.padding_idx] = 0
        return grad, None


def _check_embedding_indices(indices, count: int) -> None:
    """IndexError naming the first index outside ``0..count-1`` (host arrays only)."""
    if indices.dtype.kind not in "iu" or not indices.size:
        return  # _integer_array names a wrong dtype
    bad = (indices < 0) | (indices >= count)
    if bad.any():
        value = int(indices.reshape(-1)[bad.reshape(-1).argmax()])
        raise IndexError(f"embedding index {value} is out of range: the table has {count} rows "
                         f"(num_embeddings={count}), valid indices are 0..{count - 1}")


def embedding(input, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` ``(num_embeddings, embedding_dim)`` picked by int ``input`` ``(*)`` -> ``(*, embedding_dim)``.

    The ``padding_idx`` row (negative counts from the end) receives no gradient. Indices held on the
    host (lists, NumPy arrays, CPU tensors) are range-checked; indices already on the GPU are not (the
    check would synchronise every call), and CuPy wraps an out-of-range index around.
    """
    count = weight.shape[0]
    indices = input.data if isinstance(input, Tensor) else input
    if not backend.is_array(indices) or backend.device_of(indices) == "cpu":
        _check_embedding_indices(backend.numpy.asarray(indices), count)
    indices = _integer_array(indices, weight.device, "embedding indices must be integers")
    if padding_idx is not None:
        if not -count <= padding_idx < count:
            raise ValueError(f"padding_idx {padding_idx} is outside the table of {count} rows")
        padding_idx %= count
    return _Embedding.apply(weight, indices, padding_idx=padding_idx)


__all__ = ["softmax", "log_softmax", "cross_entropy", "nll_loss", "mse_loss", "dropout", "embedding"]
