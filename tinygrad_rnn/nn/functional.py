"""Stateless layer functions, with ``torch.nn.functional``'s names and semantics.

Everything here is composed from the engine's primitives except four deliberate
fused Functions, each tested against its composed twin:

- ``cross_entropy``: log-softmax and negative log-likelihood in one node with
  the hand-written gradient ``softmax - onehot`` (it runs on ``(B*T, vocab)``
  logits every training step). Its composed twin is
  ``_composed_nll(log_softmax(x, 1), ...)``.
- ``linear_cross_entropy``: the output layer ``x W^T + b`` and that loss in one
  node (a decoder's whole output side after its loop); twin:
  ``cross_entropy(x @ W.T + b, ...)``.
- ``linear``: ``x W^T + b`` in one node with the bias added in place (a decoder's
  output layer at every search step); twin: ``x @ W.T + b``.
- ``embedding``: a row gather whose backward scatter-adds into the weight
  and leaves the ``padding_idx`` row without gradient.
"""
from __future__ import annotations

from .. import backend
from ..autograd import Function, retaining_graph
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


def _host_or_device_array(values):
    """A Tensor's array, a backend array, or a list made a NumPy array (nothing is copied to a device)."""
    array = values.data if isinstance(values, Tensor) else values
    return array if backend.is_array(array) else backend.numpy.asarray(array)


def _on_host(array) -> bool:
    """True for NumPy data: checks on it cost no wait for a GPU (on the CPU backend everything is NumPy)."""
    return backend.get_array_module(array) is backend.numpy


def _flatten_classes(input: Tensor, target):
    """``(N, C, d1, ...)``/``(C,)`` scores and matching targets -> ``(M, C)``, ``(M,)`` and the per-item shape.

    The targets stay where they are (host or device): :func:`_prepare_targets` checks and moves them.
    """
    target = _host_or_device_array(target)
    if target.dtype.kind not in "iu":
        raise TypeError(f"targets must be integer class indices, got dtype {target.dtype}")
    item_shape = () if input.ndim == 1 else (input.shape[0],) + input.shape[2:]
    if tuple(target.shape) != item_shape:
        raise ValueError(f"target shape {tuple(target.shape)} does not match the scores {input.shape}: expected "
                         f"{item_shape} (the scores' shape without the class dimension)")
    if input.ndim == 1:
        input = input.unsqueeze(0)
    elif input.ndim > 2:  # (N, C, d...) -> (N, d..., C) -> (N*d..., C)
        input = input.permute((0,) + tuple(range(2, input.ndim)) + (1,)).reshape(-1, input.shape[1])
    return input, target.reshape(-1), item_shape


def _prepare_targets(target, classes: int, ignore_index: int, device: str):
    """``(M,)`` int targets -> ``(target, valid, count)`` on ``device``: ``valid`` marks the rows that count.

    Host (NumPy) targets are range-checked on the host before the upload, and their ``count`` is
    an int. Targets already on a GPU are not checked (that would make the host wait for the GPU,
    every training step) and their ``count`` stays a 0-d device array.
    """
    if _on_host(target):
        valid = target != ignore_index
        bad = valid & ((target < 0) | (target >= classes))
        if bad.any():
            value = int(target[bad.argmax()])
            raise IndexError(f"target {value} is out of range for {classes} classes (use 0..{classes - 1}, "
                             f"or ignore_index={ignore_index} for positions to skip)")
        count = int(valid.sum())
        target = backend.to_device(target, device)
        return target, target != ignore_index, count
    valid = target != ignore_index
    return target, valid, valid.sum()


# Rows of (M, C) logits handled at a time on the CPU: the loss makes about six passes over its
# rows, and a block of 16 rows of a 10,000-class output (640 KB) stays in the cache through all of
# them (a translator's loss forward measured ~1.5x faster than whole-array passes). CuPy arrays are
# done whole (a block per launch would cost more than it saves).
CPU_ROW_BLOCK = 16


def _softmax_loss(logits, target, valid, label_smoothing: float, bias=None):
    """Per-row smoothed cross-entropy ``(M,)`` (0 where not ``valid``), ``exp(x - max) (M, C)`` and its row sums ``(M,)``.

    ``bias (C,)``, if given, is first added to ``logits``. Overwrites ``logits`` with ``exp(x - max)``
    (the caller keeps it for backward: the softmax is that divided by the row sums, a division left to
    backward, where it joins the scaling by the loss weights, one pass over the ``(M, C)`` array fewer).
    With ``p = softmax(x)``, ``eps`` the smoothing and ``t`` the target:
    ``loss = (1 - eps) (logZ - x_t) + eps (logZ - mean_c x_c)``.
    Row by row, so NumPy data goes in blocks of ``CPU_ROW_BLOCK`` rows (the same numbers).
    """
    xp = backend.get_array_module(logits)
    rows = logits.shape[0]
    if xp is not backend.numpy or rows <= CPU_ROW_BLOCK:
        loss, sums = _softmax_loss_rows(logits, target, valid, label_smoothing, bias)
        return loss, logits, sums
    loss = xp.empty(rows, dtype=logits.dtype)
    sums = xp.empty(rows, dtype=logits.dtype)
    for start in range(0, rows, CPU_ROW_BLOCK):
        end = start + CPU_ROW_BLOCK
        loss[start:end], sums[start:end] = _softmax_loss_rows(logits[start:end], target[start:end], valid[start:end],
                                                              label_smoothing, bias)
    return loss, logits, sums


def _softmax_loss_rows(logits, target, valid, label_smoothing: float, bias=None):
    """:func:`_softmax_loss` of some rows: their losses and row sums; ``logits`` becomes ``exp(x - max)``."""
    xp = backend.get_array_module(logits)
    if bias is not None:
        logits += bias
    safe_target = xp.where(valid, target, 0)
    logits -= logits.max(axis=1, keepdims=True)
    target_logit = xp.take_along_axis(logits, safe_target[:, None], axis=1)[:, 0]
    mean_logit = logits.mean(axis=1) if label_smoothing else None
    exps = xp.exp(logits, out=logits)
    sums = exps.sum(axis=1)
    log_z = xp.log(sums)
    loss = log_z - target_logit
    if label_smoothing:
        loss = (1 - label_smoothing) * loss + label_smoothing * (log_z - mean_logit)
    return xp.where(valid, loss, xp.zeros((), dtype=loss.dtype)), sums


def _reduce_rows(loss, count, reduction: str):
    """Row losses ``(M,)`` -> ``"none"``: themselves; ``"sum"``; ``"mean"`` over ``count`` rows (NaN for none)."""
    xp = backend.get_array_module(loss)
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "mean":
        if isinstance(count, int):
            total = total / loss.dtype.type(count) if count else loss.dtype.type("nan")
        else:  # a device count: no host decision
            total = xp.where(count > 0, total / xp.maximum(count, 1).astype(loss.dtype), loss.dtype.type("nan"))
    return xp.asarray(total, dtype=loss.dtype)


def _grad_logits(exps, sums, g, target, valid, count, label_smoothing: float, reduction: str, in_place: bool):
    """d(loss)/d(logits) ``(M, C) = scale * (p - (1 - eps) onehot(t) - eps / C)``, ``scale`` each row's weight.

    ``p = exps / sums`` (see :func:`_softmax_loss`): the division is folded into the row's scale.
    """
    xp = backend.get_array_module(exps)
    if reduction == "mean":
        g = g / (g.dtype.type(max(count, 1)) if isinstance(count, int) else xp.maximum(count, 1).astype(g.dtype))
    scale = xp.where(valid, g, xp.zeros((), dtype=g.dtype))  # (M,)
    grad = exps if in_place else exps.copy()
    prob_scale = scale / sums
    smoothing = (label_smoothing / grad.shape[1]) * scale[:, None] if label_smoothing else None  # (M, 1)
    block = CPU_ROW_BLOCK if xp is backend.numpy else grad.shape[0]  # two passes, in the cache on the CPU
    for start in range(0, grad.shape[0], max(block, 1)):
        rows = slice(start, start + block)
        grad[rows] *= prob_scale[rows, None]
        if smoothing is not None:
            grad[rows] -= smoothing[rows]
    rows = xp.arange(grad.shape[0])
    grad[rows, xp.where(valid, target, 0)] -= (1 - label_smoothing) * scale
    return grad


class _CrossEntropy(Function):
    """Fused ``nll(log_softmax(logits))`` with label smoothing, for ``(M, C)`` logits and ``(M,)`` targets.

    Per row (``p = softmax(x)``, ``eps`` the smoothing, ``t`` the target):
    ``loss = (1 - eps) * (logZ - x_t) + eps * (logZ - mean_c x_c)`` and
    ``dloss/dx = p - (1 - eps) * onehot(t) - eps / C``; ignored rows give 0.
    """

    def forward(self, logits, target, valid=None, count=0, label_smoothing=0.0, reduction="mean"):
        self.target, self.valid, self.count = target, valid, count
        self.eps, self.reduction = label_smoothing, reduction
        loss, self.exps, self.sums = _softmax_loss(logits.copy(), target, valid, label_smoothing)
        return _reduce_rows(loss, count, reduction)

    def backward(self, g):
        return _grad_logits(self.exps, self.sums, g, self.target, self.valid, self.count, self.eps, self.reduction,
                            in_place=False), None


class _LinearCrossEntropy(Function):
    """``cross_entropy(x W^T + b, t)`` in one node: the output layer and the loss of ``(N, H)`` rows.

    Forward: ``logits = x W^T + b`` (one ``(N, H) @ (H, C)`` product) then the smoothed loss of
    :class:`_CrossEntropy`, on a buffer that becomes ``exp(x - max)``. Backward, with ``G`` the logits'
    gradient (computed in that buffer): ``dx = G W``, ``dW = G^T x``, ``db = sum_rows G``.
    """

    def forward(self, x, weight, bias, target, valid=None, count=0, label_smoothing=0.0, reduction="mean"):
        self.x, self.weight = x, weight
        self.target, self.valid, self.count = target, valid, count
        self.eps, self.reduction = label_smoothing, reduction
        # the bias is added block by block inside the softmax, while each block is in the cache
        loss, self.exps, self.sums = _softmax_loss(x @ weight.T, target, valid, label_smoothing, bias)
        return _reduce_rows(loss, count, reduction)

    def backward(self, g):
        grad = _grad_logits(self.exps, self.sums, g, self.target, self.valid, self.count, self.eps, self.reduction,
                            in_place=not retaining_graph())
        needs = self.needs_input_grad
        xp = backend.get_array_module(grad)
        grad_weight = grad_bias = None
        if needs[1]:  # computed straight into the optimizer's flat gradient buffer where there is one
            grad_weight = xp.matmul(grad.T, self.x, out=self.grad_buffer(1, self.weight.shape, grad.dtype))
        if needs[2]:
            grad_bias = grad.sum(axis=0, out=self.grad_buffer(2, (grad.shape[1],), grad.dtype))
        return grad @ self.weight if needs[0] else None, grad_weight, grad_bias, None


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
    target, valid, count = _prepare_targets(target, classes, ignore_index, flat.device)
    picked = flat[xp.arange(rows), xp.where(valid, target, 0)]
    loss = -picked
    if label_smoothing:
        loss = (1 - label_smoothing) * loss - label_smoothing * flat.mean(1)
    loss = loss * Tensor._wrap(valid.astype(flat.dtype))
    count = count if isinstance(count, int) else int(backend.item(count))  # the reference may wait for the device
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


def _check_loss_options(reduction, label_smoothing):
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")


def cross_entropy(input: Tensor, target, *, ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """``nll_loss(log_softmax(input, 1), target)`` with PyTorch's label smoothing, fused.

    ``input``: ``(N, C)``, ``(N, C, d1, ...)`` or ``(C,)`` unnormalised scores;
    ``target``: ``(N,)``, ``(N, d1, ...)`` or ``()`` int class indices.
    Each counted position's loss is ``(1 - eps) * -log p_t + eps * mean_c(-log p_c)``
    with ``eps = label_smoothing``; positions whose target is ``ignore_index``
    give 0 and are left out of the ``"mean"``. Returns a 0-d Tensor, or the
    target's shape for ``reduction="none"``.

    Targets given on the host (a list, a NumPy array) are range-checked there before they are
    copied to the device; targets already on a GPU are not (the check would wait for the GPU).
    """
    _check_loss_options(reduction, label_smoothing)
    flat, target, item_shape = _flatten_classes(input, target)
    target, valid, count = _prepare_targets(target, flat.shape[1], ignore_index, flat.device)
    loss = _CrossEntropy.apply(flat, target, valid=valid, count=count, label_smoothing=float(label_smoothing),
                               reduction=reduction)
    return loss.reshape(item_shape) if reduction == "none" else loss


def linear_cross_entropy(input: Tensor, weight: Tensor, bias: Tensor | None, target, *, ignore_index: int = -100,
                         reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """``cross_entropy(input @ weight.T + bias, target, ...)`` as one fused node.

    ``input``: ``(N, H)``; ``weight``: ``(C, H)``; ``bias``: ``(C,)`` or None; ``target``: ``(N,)`` int.
    The output layer and the loss of every row at once: one ``(N, H) @ (H, C)`` product whose
    ``(N, C)`` result becomes the (unnormalised) softmax and then, in backward, the logits' gradient, so no
    other ``(N, C)`` array is made. Options, result and target checks as :func:`cross_entropy`.
    Its composed twin is ``cross_entropy(input @ weight.T + bias, target)``.
    """
    _check_loss_options(reduction, label_smoothing)
    if input.ndim != 2 or weight.ndim != 2 or weight.shape[1] != input.shape[1]:
        raise ValueError(f"linear_cross_entropy expects input (N, H) and weight (C, H), got input {input.shape} "
                         f"and weight {weight.shape}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"bias should have shape ({weight.shape[0]},) to match the weight, got {bias.shape}")
    target = _host_or_device_array(target)
    if target.dtype.kind not in "iu" or tuple(target.shape) != (input.shape[0],):
        raise ValueError(f"target should be ({input.shape[0]},) int class indices, got {target.dtype} "
                         f"{tuple(target.shape)}")
    target, valid, count = _prepare_targets(target, weight.shape[0], ignore_index, input.device)
    return _LinearCrossEntropy.apply(input, weight, bias, target, valid=valid, count=count,
                                     label_smoothing=float(label_smoothing), reduction=reduction)


class _Linear(Function):
    """``x W^T + b`` for ``(N, in)`` rows in one node, the bias added into the product in place.

    Backward, for the output gradient ``G (N, out)``: ``dx = G W``, ``dW = G^T x``, ``db = sum_rows G``.
    """

    def forward(self, x, weight, bias):
        self.x, self.weight = x, weight
        out = x @ weight.T
        if bias is not None:
            out += bias
        return out

    def backward(self, g):
        needs = self.needs_input_grad
        return (g @ self.weight if needs[0] else None, g.T @ self.x if needs[1] else None,
                g.sum(axis=0) if needs[2] else None)


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias``: ``input (*, in_features)``, ``weight (out_features, in_features)``,
    ``bias (out_features,)`` or None -> ``(*, out_features)``, as one fused node (two more reshape
    nodes for input that is not 2-D). Its composed twin is ``input @ weight.T + bias``.
    """
    if weight.ndim != 2 or input.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear expects input (*, {weight.shape[-1]}) for weight (out_features, in_features) "
                         f"{weight.shape}, got input {input.shape}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"bias should have shape ({weight.shape[0]},) to match the weight, got {bias.shape}")
    if input.ndim == 2:
        return _Linear.apply(input, weight, bias)
    flat = _Linear.apply(input.reshape(-1, weight.shape[1]), weight, bias)
    return flat.reshape(input.shape[:-1] + (weight.shape[0],))


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
        grad = self.grad_buffer(0, self.shape, g.dtype)  # the optimizer's flat gradient buffer, if any
        if grad is None:
            grad = xp.zeros(self.shape, dtype=g.dtype)
        else:
            grad.fill(0)
        backend.scatter_add(grad, self.indices.reshape(-1), g.reshape(-1, self.shape[1]), skip=self.padding_idx)
        if self.padding_idx is not None:
            grad[self.padding_idx] = 0
        return grad, None


def _check_embedding_indices(indices, count: int) -> None:
    """IndexError naming the first index outside ``0..count-1`` (host arrays only)."""
    if not indices.size:
        return
    bad = (indices < 0) | (indices >= count)
    if bad.any():
        value = int(indices.reshape(-1)[bad.reshape(-1).argmax()])
        raise IndexError(f"embedding index {value} is out of range: the table has {count} rows "
                         f"(num_embeddings={count}), valid indices are 0..{count - 1}")


def embedding(input, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` ``(num_embeddings, embedding_dim)`` picked by int ``input`` ``(*)`` -> ``(*, embedding_dim)``.

    The ``padding_idx`` row (negative counts from the end) receives no gradient. Indices held on the
    host (lists, NumPy arrays, CPU tensors) are range-checked there before they are copied to the
    device; indices already on the GPU (a decoder's own predictions) are not (the check would
    synchronise every call), and CuPy wraps an out-of-range index around.
    """
    indices = _host_or_device_array(input)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"embedding indices must be integers, got dtype {indices.dtype}")
    count = weight.shape[0]
    if _on_host(indices):
        _check_embedding_indices(indices, count)
    if not (isinstance(input, Tensor) and input.device == weight.device):  # a Tensor there is device data
        indices = backend.to_device(indices, weight.device)
    if padding_idx is not None:
        if not -count <= padding_idx < count:
            raise ValueError(f"padding_idx {padding_idx} is outside the table of {count} rows")
        padding_idx %= count
    return _Embedding.apply(weight, indices, padding_idx=padding_idx)


__all__ = ["softmax", "log_softmax", "linear", "cross_entropy", "linear_cross_entropy", "nll_loss", "mse_loss", "dropout", "embedding"]
