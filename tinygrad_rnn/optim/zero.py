"""``ZeroRedundancyOptimizer``: the optimizer step sharded over the ranks (ZeRO stage 1).

In plain data parallelism every rank all-reduces the whole gradient and then runs the whole
optimizer step on all parameters: N ranks repeat the same update, and each keeps every moment.
Here each rank owns a contiguous 1/N slice of each flat parameter buffer (``optim/flat.py``: one
per parameter group, dtype and device) and, per step::

    reduce-scatter   the flat gradient: rank r receives the summed (or averaged) gradient of its slice only
    clip (optional)  the global norm: each rank's sum of squares over its slice, all-reduced as one number
    update           Adam / AdamW / SGD on the slice only: 1/N of the work, 1/N of the moments in memory
    all-gather       every rank's updated slice into every rank's parameters

The same bytes cross the wire as one all-reduce (a ring all-reduce *is* a reduce-scatter followed
by an all-gather), and the elementwise update gives the numbers the unsharded step gives; only the
clipping norm is summed in another order. This is what PyTorch's ``ZeroRedundancyOptimizer`` and
DeepSpeed's ZeRO stage 1 do (PyTorch's shards by whole parameters; this one by elements, so the
slices are equal to one element whatever the parameter sizes)::

    dist.init()
    model = DistributedDataParallel(module)                 # rank 0's weights everywhere
    optimizer = ZeroRedundancyOptimizer(model.parameters(), optim.Adam, op="mean", lr=1e-3)
    loss.backward()                                         # NOT model.reduce_gradients(): the optimizer reduces
    optimizer.clip_grad_norm_(5.0)                          # instead of nn.utils.clip_grad_norm_
    optimizer.step()

When it is built, the parameters of each dtype and device become views of one flat buffer, padded to
N equal chunks (their values unchanged; ``p.data`` is replaced once, before the optimizer's flat layouts
are made): each rank updates its chunk in place and the all-gather (``MPI_Allgather``, equal counts)
fills the others', with no copy in or out. Parameters whose arrays user code replaces later (``module.to``)
are copied into and out of such a buffer each step instead.

After ``step()`` every rank holds the same parameters; a parameter's ``.grad`` still holds this rank's
own (unreduced) gradient. ``op`` is DDP's (``tinygrad_rnn.nn.parallel``): ``"mean"`` when each
rank's loss is a mean over its equal share, ``"sum"`` when it is already divided by a global count.
A parameter without a gradient on a rank counts as zero there, as in DDP's flat buffers.

State dicts have the unsharded optimizer's layout (per parameter, PyTorch's), so checkpoints move
freely between sharded and unsharded training and between world sizes: :meth:`consolidate_state_dict`
(every rank calls it) gathers the slices, after which :meth:`state_dict` on rank ``to`` returns the
whole state; :meth:`load_state_dict` (every rank, the whole state) keeps this rank's slice.

CUDA parameters work, but the collectives travel through the host over MPI; with NCCL the
unsharded path (an NCCL all-reduce) is the faster one.
"""
from __future__ import annotations

from .. import backend
from .. import distributed as dist
from ..autograd import enable_grad, no_grad
from ..tensor import Tensor
from .optimizer import Optimizer

__all__ = ["ZeroRedundancyOptimizer"]


class _Shard:
    """This rank's slice ``[start, stop)`` of one :class:`flat.FlatLayout`, shaped as ``Optimizer._math``'s target.

    ``params``: the layout's parameters as one flat array (the all-gather lands there); ``data`` is
    ``[params[start:stop]]``, so ``_math`` updates only the slice. ``grad``: the reduced gradient of the
    slice. ``state``: the optimizer's state of the slice (flat arrays of ``stop - start`` elements, numbers).
    """

    def __init__(self, layout, rank: int, world_size: int):
        self.layout = layout
        self.xp = xp = layout.xp
        total = int(layout.grad.size)
        bounds = dist.shard_bounds(total, world_size)
        self.counts = [stop - start for start, stop in zip(bounds, bounds[1:])]
        self.start, self.stop = bounds[rank], bounds[rank + 1]
        # padded to world_size equal chunks, so the all-gathers have equal counts (MPI_Allgather)
        self.chunk = -(-total // world_size)
        self.own = slice(rank * self.chunk, (rank + 1) * self.chunk)  # this rank's chunk, padding included
        shared = _shared_buffer(layout, self.chunk * world_size)
        self.shared = shared is not None  # the parameters are views of the buffer: no copies in or out
        self.padded = shared if self.shared else xp.zeros_like(layout.grad, shape=(self.chunk * world_size,))
        self.params = self.padded[:total]
        self.param_views = layout.data if self.shared else layout.views(self.params)
        self.slice = self.params[self.start:self.stop]
        self.data = [self.slice]
        self.grad = xp.empty_like(self.slice)
        self.update = xp.empty_like(self.slice)
        self.state: dict = {}
        # (parameter index, its first element inside the slice, the end): the parameters the slice cuts
        self.pieces = []
        for index, (offset, size) in enumerate(zip(layout.offsets, layout.sizes)):
            low, high = max(offset, self.start), min(offset + size, self.stop)
            if low < high:
                self.pieces.append((index, low - offset, high - offset))

    # ``Optimizer._math``'s target interface (see flat.FlatLayout)
    def zeros(self):
        return self.xp.zeros_like(self.slice)

    def gather_params(self):
        return self.slice

    def apply_update(self) -> None:
        self.slice -= self.update

    def segments(self):
        return [(0, self.slice.size, self.slice)]

    # moving values between the parameters and the slice
    def load_slice(self) -> None:
        """The slice's part of the parameters' current values (user code may have changed them in place)."""
        if self.shared:
            return
        for index, low, high in self.pieces:
            start = self.layout.offsets[index] + low - self.start
            self.slice[start:start + high - low] = self.layout.data[index].reshape(-1)[low:high]

    def all_gather(self, padded, own=None) -> None:
        """Every rank's chunk of ``padded`` (``chunk * world_size`` elements) into every rank's; ``own``:
        this rank's ``stop - start`` elements, copied in first (``None``: already in place)."""
        if own is not None:
            padded[self.start:self.stop] = own
        dist.all_gather_into_tensor(Tensor._wrap(padded), Tensor._wrap(padded[self.own]))

    def store_params(self) -> None:
        """The gathered flat parameters back into every parameter's own array."""
        if self.shared:
            return
        for array, view in zip(self.layout.data, self.param_views):
            array[...] = view

    def slice_of(self, arrays: list):
        """The slice of the per-parameter ``arrays`` (shaped like the parameters), as one flat array."""
        out = self.zeros()
        for index, low, high in self.pieces:
            start = self.layout.offsets[index] + low - self.start
            value = arrays[index]
            value = value.data if isinstance(value, Tensor) else value
            out[start:start + high - low] = backend.to_device(value, self.layout.device).reshape(-1)[low:high]
        return out


def _address(array) -> int:
    return array.data.ptr if backend.device_of(array) == "cuda" else array.__array_interface__["data"][0]


def _shared_buffer(layout, padded_size: int):
    """The flat buffer of ``padded_size`` elements whose views the layout's parameters are, in order, or None."""
    base = layout.data[0].base
    if base is None or base.ndim != 1 or base.size != padded_size or base.dtype != layout.data[0].dtype:
        return None
    start, itemsize = _address(base), base.itemsize
    for array, offset in zip(layout.data, layout.offsets):
        if array.base is not base or not array.flags.c_contiguous or _address(array) != start + offset * itemsize:
            return None
    return base


def _into_one_buffer(params: list, world_size: int) -> None:
    """Make the parameters of each dtype and device views of one flat buffer (in their order, as the
    optimizer's flat layouts take them), padded to ``world_size`` equal chunks: the all-gather of the
    updated slices then lands in the parameters themselves. Their values do not change."""
    chunks: dict = {}
    for param in params:
        chunks.setdefault((backend.device_of(param.data), param.data.dtype.str), []).append(param)
    for members in chunks.values():
        total = sum(int(param.data.size) for param in members)
        chunk = -(-total // world_size)
        flat = backend.get_array_module(members[0].data).zeros_like(members[0].data, shape=(chunk * world_size,))
        offset = 0
        for param in members:
            size = int(param.data.size)
            view = flat[offset:offset + size].reshape(param.data.shape)
            view[...] = param.data
            param.data = view
            offset += size


class ZeroRedundancyOptimizer(Optimizer):
    """``ZeroRedundancyOptimizer(params, optimizer_class, op="mean", **defaults)``: ``optimizer_class``'s
    step (``optim.Adam``, ``optim.AdamW``, ``optim.SGD``) on this rank's 1/N of the parameters.

    Args:
        params: the same parameters (or parameter groups) in the same order on every rank.
        optimizer_class: the optimizer whose update runs on the slices; ``defaults`` are its arguments.
        op: how the ranks' gradients combine, ``"mean"`` or ``"sum"`` (module docstring).

    Needs ``tinygrad_rnn.distributed.init()`` first. ``param_groups`` are the inner optimizer's
    (learning-rate schedulers work as usual); ``optim`` is that inner optimizer.
    """

    def __init__(self, params, optimizer_class, op: str = "mean", **defaults):
        if op not in ("mean", "sum"):
            raise ValueError(f"gradients are combined with op='mean' or op='sum', got {op!r}")
        if not dist.is_initialized():
            raise RuntimeError("ZeroRedundancyOptimizer needs the process group: call "
                               "tinygrad_rnn.distributed.init() first (in every rank)")
        if not (isinstance(optimizer_class, type) and issubclass(optimizer_class, Optimizer)):
            raise TypeError(f"optimizer_class must be an optimizer class such as optim.Adam, got {optimizer_class!r}")
        params = list(params)
        world_size = dist.get_world_size()
        for group in params if params and isinstance(params[0], dict) else [{"params": params}]:
            if not isinstance(group["params"], Tensor):
                group["params"] = list(group["params"])
                _into_one_buffer([param for param in group["params"] if isinstance(param, Tensor)], world_size)
        self.optim = optimizer_class(params, **defaults)
        self.op = op
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.defaults = self.optim.defaults
        self.param_groups = self.optim.param_groups
        self._shards: list = []  # per group: (its layouts, their shards)
        self._reduced = False  # the gradients of this step are already reduce-scattered (by clip_grad_norm_)
        self._consolidated = None  # (step count, state dict) gathered by consolidate_state_dict
        self._steps = 0

    @property
    def state(self):
        """The inner optimizer's per-parameter state (empty: the sharded state lives in the slices)."""
        return self.optim.state

    def add_param_group(self, group: dict) -> None:
        self.optim.add_param_group(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optim.zero_grad(set_to_none)

    def _check(self, group: dict) -> None:
        self.optim._check(group)

    # ------------------------------------------------------------ the shards
    def _shards_of(self, index: int) -> list[_Shard]:
        """The shards of group ``index``'s flat layouts, rebuilt (state carried over) when the layouts are."""
        layouts = self.optim._layouts_of(index)
        while len(self._shards) <= index:
            self._shards.append(None)
        entry = self._shards[index]
        if entry is not None and len(entry[0]) == len(layouts) and all(a is b for a, b in zip(entry[0], layouts)):
            return entry[1]
        shards = [_Shard(layout, self.rank, self.world_size) for layout in layouts]
        if entry is not None:  # the parameters moved or were replaced: keep the state of equal-sized slices
            for old, new in zip(entry[1], shards):
                if old.counts == new.counts:
                    new.state = {name: backend.to_device(value, new.layout.device).astype(new.slice.dtype)
                                 if backend.is_array(value) else value for name, value in old.state.items()}
        self._shards[index] = (layouts, shards)
        return shards

    def _all_shards(self) -> list[_Shard]:
        return [shard for index in range(len(self.param_groups)) for shard in self._shards_of(index)]

    def _reduce_scatter(self) -> None:
        """Every shard's slice of the gradients summed (or averaged) over the ranks, once per step."""
        if self._reduced:
            return
        for shard in self._all_shards():
            layout = shard.layout
            for param, view in zip(layout.params, layout.grad_views):
                if param.grad is None:
                    view[...] = 0
                elif param.grad.data is not view:  # replaced by user code: copied in, as the optimizer would
                    view[...] = backend.to_device(param.grad.data, layout.device)
            dist.reduce_scatter_tensor(Tensor._wrap(shard.grad), Tensor._wrap(layout.grad), op=self.op,
                                       counts=shard.counts)
        self._reduced = True

    # ------------------------------------------------------------ clipping and the step
    def clip_grad_norm_(self, max_norm: float, norm_type: float = 2.0) -> Tensor:
        """``nn.utils.clip_grad_norm_`` over all the parameters, sharded: reduces the gradients first.

        Each rank sums its slices' squares (``norm_type`` p: ``|g|**p``; ``inf``: the maximum), one
        all-reduce combines the ranks' numbers, and each rank scales its slices by
        ``min(1, max_norm / (total_norm + 1e-6))``. Returns the total norm (the same on every rank)
        as a 0-d float64 Tensor on the CPU.
        """
        norm_type = float(norm_type)
        with no_grad():
            self._reduce_scatter()
            shards = self._all_shards()
            xp = backend.numpy
            partial = 0.0
            for shard in shards:
                if not shard.grad.size:
                    continue
                g = shard.grad
                if norm_type == float("inf"):
                    value = shard.xp.abs(g).max()
                elif norm_type == 2.0:
                    value = shard.xp.dot(g, g)
                else:
                    value = (shard.xp.abs(g) ** norm_type).sum()
                value = float(backend.item(value))
                partial = max(partial, value) if norm_type == float("inf") else partial + value
            total = Tensor(xp.asarray([partial], dtype=xp.float64))
            dist.all_reduce(total, op="max" if norm_type == float("inf") else "sum")
            total_norm = float(total.data[0])
            if norm_type != float("inf"):
                total_norm = total_norm ** 0.5 if norm_type == 2.0 else total_norm ** (1.0 / norm_type)
            for shard in shards:
                dtype = shard.grad.dtype
                norm = dtype.type(total_norm)
                coefficient = min(dtype.type(max_norm) / (norm + dtype.type(1e-6)), dtype.type(1.0))
                shard.grad *= coefficient
        return Tensor(xp.asarray(total_norm, dtype=xp.float64))

    def step(self, closure=None):
        """Reduce-scatter the gradients (unless :meth:`clip_grad_norm_` did), update this rank's slices,
        all-gather the parameters. Every rank calls it, with the same parameters."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            self._reduce_scatter()
            for index, group in enumerate(self.param_groups):
                for shard in self._shards_of(index):
                    shard.load_slice()
                    self.optim._math(shard, shard.grad, shard.state, group)  # an empty slice still counts the step
                    shard.all_gather(shard.padded)
                    shard.store_params()
        self._reduced = False
        self._steps += 1
        return loss

    # ------------------------------------------------------------ state dicts
    def consolidate_state_dict(self, to: int = 0) -> None:
        """Gather every rank's slices of the optimizer state (every rank calls it); :meth:`state_dict`
        on rank ``to`` then returns the whole state, in the unsharded optimizer's layout."""
        if not 0 <= to < self.world_size:
            raise ValueError(f"to={to} is not a rank of this world (0..{self.world_size - 1})")
        position = {id(param): index for index, param in enumerate(self.optim._all_params())}
        state = {}
        with no_grad():
            for shard in self._all_shards():
                layout = shard.layout
                gathered = {}
                for name, value in shard.state.items():
                    if backend.is_array(value):
                        whole = layout.xp.zeros_like(shard.padded)
                        shard.all_gather(whole, value)
                        gathered[name] = layout.views(whole[:layout.grad.size])
                for index, param in enumerate(layout.params):
                    if not shard.state:
                        continue
                    state[position[id(param)]] = {
                        name: Tensor._wrap(gathered[name][index]) if name in gathered else value
                        for name, value in shard.state.items()}
        packed = self.optim.state_dict()
        packed["state"] = state
        self._consolidated = (to, self._steps, packed) if self.rank == to else None

    def state_dict(self) -> dict:
        """The whole optimizer state as the unsharded optimizer's ``state_dict()`` has it.

        On rank ``to`` after :meth:`consolidate_state_dict`; before the first step, on any rank
        (there is no state yet, only the hyperparameters).

        Raises:
            RuntimeError: the state was not consolidated since the last step (or on another rank).
        """
        if not any(shard.state for shard in self._all_shards()):
            return self.optim.state_dict()
        if self._consolidated is None or self._consolidated[1] != self._steps:
            raise RuntimeError(f"rank {self.rank}: the optimizer state is sharded over the ranks: call "
                               "consolidate_state_dict(to=rank) on every rank first, then state_dict() on that rank")
        packed = self._consolidated[2]
        packed["param_groups"] = self.optim.state_dict()["param_groups"]  # learning rates may have changed since
        return packed

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a whole state (from :meth:`state_dict` or an unsharded optimizer's) on every rank; each
        keeps its own slice.

        Raises:
            ValueError: the parameters of one flat buffer do not all have state at the same step.
        """
        self.optim.load_state_dict(state_dict)
        loaded = self.optim.state
        for index in range(len(self.param_groups)):
            for shard in self._shards_of(index):
                states = [loaded.get(param, {}) for param in shard.layout.params]
                shard.state = {}
                if not any(states):
                    continue
                names = set(states[0])
                if any(set(state) != names for state in states):
                    raise ValueError("the saved optimizer state covers only some parameters of a parameter group "
                                     "(or differs between them): a sharded optimizer needs all or none")
                for name in sorted(names):
                    values = [state[name] for state in states]
                    if backend.is_array(values[0]):
                        shard.state[name] = shard.slice_of(values)
                    elif any(value != values[0] for value in values):
                        raise ValueError(f"the saved optimizer state has different {name!r} values within one "
                                         "parameter group: a sharded optimizer needs them equal")
                    else:
                        shard.state[name] = values[0]
        self.optim.state.clear()  # the slices hold what this rank needs
        self._consolidated = None

    def __repr__(self):
        return f"ZeroRedundancyOptimizer(rank={self.rank} of {self.world_size}, op={self.op!r}, {self.optim!r})"
