"""Data parallelism: ``DistributedDataParallel`` and the bucketed gradient all-reduce beneath it.

Every rank (an MPI process, see :mod:`tinygrad_rnn.distributed`) holds a full copy of the model
and computes gradients on its own share of each batch. Before the optimizer step the gradients
are combined across ranks, so every rank applies the same update and the copies stay equal::

    dist.init()
    model = DistributedDataParallel(nn.LSTM(8, 32))  # every rank starts from rank 0's weights
    loss = criterion(model(x_share), y_share)         # this rank's share of the global batch
    loss.backward()
    model.reduce_gradients()                          # one all-reduce per bucket
    optimizer.step()

``reduce_gradients()`` is called explicitly after ``backward()`` (there are no backward hooks
here to start it, and on a CPU the reduction could not overlap the backward pass anyway).

Mean or sum (``op``):
    ``"mean"`` (the default, as in PyTorch's DDP and Horovod): each rank's loss is a mean over its
    own share, and the shares are equal, so the mean of the N ranks' gradients is the gradient of
    the whole batch's mean loss.
    ``"sum"``: each rank's loss is already divided by a *global* count (the target tokens of the whole
    global batch, say, when the shares hold different numbers of tokens), so each rank's gradient is
    its share's part of the whole batch's gradient, and their sum is that gradient. Averaging here
    would divide by N once too often.

Flat buffers first: the optimizers keep each parameter group's gradients as views of one flat
array per dtype and device (``tinygrad_rnn/optim/flat.py``; backward writes into them), and when
the parameters fill such an array it is reduced as it is, in place, with one call, whatever its
size: no copy. A gradient a rank lacks counts as zero there, and afterwards every parameter of the
array has a gradient (zero if no rank had one).

Buckets for the rest (parameters no optimizer holds yet): their gradients are copied into flat
buffers of at most ``bucket_cap_mb`` megabytes (25, DDP's default) and each is reduced with one
call, because a collective costs a fixed latency per call on top of its bytes. Each bucket also
carries one count per parameter of the ranks that produced a gradient for it: a parameter with no
gradient on some ranks counts as zero there, and one with no gradient on any rank keeps ``grad = None``.
"""
from __future__ import annotations

from .. import backend
from .. import distributed as dist
from ..autograd import no_grad
from ..tensor import Tensor
from .module import Module

__all__ = ["DistributedDataParallel", "all_reduce_gradients", "broadcast_parameters", "DEFAULT_BUCKET_CAP_MB"]

DEFAULT_BUCKET_CAP_MB = 25.0


def _buckets(tensors, cap_bytes: float) -> list[list[Tensor]]:
    """Split ``tensors`` into lists of one dtype and device, each at most ``cap_bytes`` (a larger tensor alone)."""
    by_kind: dict[tuple[str, str], list[Tensor]] = {}
    for tensor in tensors:
        by_kind.setdefault((tensor.dtype.str, tensor.device), []).append(tensor)
    buckets = []
    for members in by_kind.values():
        current, size = [], 0
        for tensor in members:
            nbytes = tensor.numel() * tensor.dtype.itemsize
            if current and size + nbytes > cap_bytes:
                buckets.append(current)
                current, size = [], 0
            current.append(tensor)
            size += nbytes
        buckets.append(current)
    return buckets


def _check_op(op: str) -> None:
    if op not in ("mean", "sum"):
        raise ValueError(f"gradients are combined with op='mean' or op='sum', got {op!r}")


def all_reduce_gradients(parameters, op: str = "mean", bucket_cap_mb: float = DEFAULT_BUCKET_CAP_MB) -> int:
    """Combine the ``.grad`` of ``parameters`` across every rank (see the module docstring for ``op``).

    Args:
        parameters: the same parameters in the same order on every rank (``model.parameters()``);
            those that do not require grad are skipped.
        op: ``"mean"`` (each rank's loss is a mean over its equal share) or ``"sum"`` (each rank's loss
            is already divided by the global batch's count).
        bucket_cap_mb: the largest flat buffer reduced in one call, in megabytes.
    Returns:
        The number of all-reduce calls made (flat optimizer buffers, then buckets).

    Afterwards each ``.grad`` is a view into the buffer that was reduced.
    """
    _check_op(op)
    parameters = [parameter for parameter in parameters if parameter.requires_grad]
    layouts, others = _whole_flat_layouts(parameters)
    buckets = _buckets(others, bucket_cap_mb * 2**20) if others else []
    with no_grad():
        for layout in layouts:
            _reduce_layout(layout, op)
        for bucket in buckets:
            _reduce_bucket(bucket, op)
    return len(layouts) + len(buckets)


def _whole_flat_layouts(parameters: list[Tensor]) -> tuple[list, list[Tensor]]:
    """The optimizer's flat gradient buffers (``optim/flat.py``) that ``parameters`` fill completely, and
    the parameters outside them. It depends only on how the optimizer was built, never on which
    gradients this rank has, so every rank makes the same calls."""
    layouts, members = {}, {}
    for parameter in parameters:
        slot = parameter._grad_slot
        if slot is not None and slot[0] is parameter.data:
            layouts[id(slot[2])] = slot[2]
            members.setdefault(id(slot[2]), set()).add(id(parameter))
    whole = [layout for key, layout in layouts.items() if members[key] == {id(p) for p in layout.params}]
    covered = {id(parameter) for layout in whole for parameter in layout.params}
    return whole, [parameter for parameter in parameters if id(parameter) not in covered]


def _reduce_layout(layout, op: str) -> None:
    """One all-reduce of an optimizer's flat gradient buffer, in place; every parameter's gradient its view.

    A gradient this rank lacks counts as zero, and every parameter of the buffer has a gradient
    afterwards (zero when no rank had one: the buffer holds no per-parameter counts).
    """
    for parameter, view in zip(layout.params, layout.grad_views):
        if parameter.grad is None:
            view[...] = 0
        elif parameter.grad.data is not view:  # replaced by user code: copied in, as the optimizer would
            view[...] = backend.to_device(parameter.grad.data, layout.device)
    dist.all_reduce(Tensor._wrap(layout.grad), op=op)
    for parameter, view in zip(layout.params, layout.grad_views):
        parameter.grad = Tensor._wrap(view)


def _reduce_bucket(bucket: list[Tensor], op: str) -> None:
    first = bucket[0]
    xp = backend.get_array_module(first.data)
    dtype = first.dtype
    pieces = [parameter.grad.data.reshape(-1) if parameter.grad is not None else xp.zeros(parameter.numel(), dtype)
              for parameter in bucket]
    present = xp.asarray([parameter.grad is not None for parameter in bucket], dtype=dtype)
    flat = xp.concatenate(pieces + [present])
    dist.all_reduce(Tensor._wrap(flat), op="sum")
    gradients_size = flat.size - len(bucket)
    if op == "mean":
        flat[:gradients_size] /= dtype.type(dist.get_world_size())
    anywhere = None  # how many ranks had each gradient: read (a device sync) only when this rank lacks one
    offset = 0
    for index, parameter in enumerate(bucket):
        size = parameter.numel()
        if parameter.grad is None:
            if anywhere is None:
                anywhere = backend.as_numpy(flat[gradients_size:]) > 0
            if not anywhere[index]:
                offset += size
                continue
        parameter.grad = Tensor._wrap(flat[offset:offset + size].reshape(parameter.shape))
        offset += size


def broadcast_parameters(module_or_tensors, src: int = 0, bucket_cap_mb: float = DEFAULT_BUCKET_CAP_MB) -> None:
    """Copy rank ``src``'s values into every rank's parameters (and buffers, for a Module), in place.

    ``module_or_tensors``: a Module (its ``state_dict()`` tensors) or an iterable of Tensors, the same
    on every rank. One broadcast per bucket, as in :func:`all_reduce_gradients`.
    """
    if isinstance(module_or_tensors, Module):
        tensors = list(module_or_tensors.state_dict().values())
    else:
        tensors = list(module_or_tensors)
    for bucket in _buckets(tensors, bucket_cap_mb * 2**20):
        xp = backend.get_array_module(bucket[0].data)
        flat = xp.concatenate([tensor.data.reshape(-1) for tensor in bucket])
        dist.broadcast(Tensor._wrap(flat), src=src)
        offset = 0
        for tensor in bucket:
            size = tensor.numel()
            tensor.data[...] = flat[offset:offset + size].reshape(tensor.shape)
            offset += size


class DistributedDataParallel(Module):
    """Wraps ``module`` for data-parallel training: rank 0's weights everywhere, then one call to combine gradients.

    Args:
        module: the model; the same architecture on every rank. Its parameters and buffers are
            overwritten with rank 0's when the wrapper is made.
        op: how :meth:`reduce_gradients` combines them, ``"mean"`` or ``"sum"`` (module docstring).
        bucket_cap_mb: the largest buffer reduced in one call.

    Calling the wrapper calls ``module``; ``state_dict()`` keys gain the prefix ``"module."`` as in
    PyTorch (save ``ddp.module.state_dict()`` to get the plain model's keys).
    """

    def __init__(self, module: Module, op: str = "mean", bucket_cap_mb: float = DEFAULT_BUCKET_CAP_MB):
        super().__init__()
        _check_op(op)
        if not dist.is_initialized():
            raise RuntimeError("DistributedDataParallel needs the process group: call "
                               "tinygrad_rnn.distributed.init() first (in every rank)")
        self.module = module
        self.op = op
        self.bucket_cap_mb = float(bucket_cap_mb)
        with no_grad():
            broadcast_parameters(module, src=0, bucket_cap_mb=self.bucket_cap_mb)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def reduce_gradients(self) -> int:
        """Combine every parameter's gradient across ranks (after ``backward()``, before ``step()``); returns the call count."""
        return all_reduce_gradients(self.module.parameters(), self.op, self.bucket_cap_mb)

    def extra_repr(self) -> str:
        return f"op={self.op!r}, bucket_cap_mb={self.bucket_cap_mb:g}"
