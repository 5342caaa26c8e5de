"""``tinygrad_rnn.distributed``: collectives across processes, for data-parallel training.

Spelled like ``torch.distributed``; the processes are MPI ranks, started by ``mpiexec``::

    import tinygrad_rnn.distributed as dist
    dist.init()                              # every rank; MPI.COMM_WORLD is the group
    dist.get_rank(), dist.get_world_size()   # 0..N-1, N
    dist.all_reduce(tensor, op="sum")        # in place: every rank ends with the sum (or "mean", "max", "min")
    dist.broadcast(tensor, src=0)            # in place: every rank ends with rank 0's values
    dist.reduce_scatter_tensor(out, tensor)  # rank r ends with its 1/N slice of the sum
    dist.all_gather_into_tensor(out, tensor) # every rank ends with all ranks' slices, end to end
    dist.barrier()

``mpiexec -n 4 python train.py`` runs four ranks; ``python train.py`` alone is a world of one
(collectives leave tensors as they are, except that ``"mean"`` divides by 1). The data-parallel wrapper built on these calls is
:class:`tinygrad_rnn.nn.parallel.DistributedDataParallel`.

Backends: ``"mpi"`` reduces host (NumPy) arrays with MPI and stages CUDA arrays through the host;
``"nccl"`` reduces CUDA (CuPy) arrays GPU to GPU with ``cupy.cuda.nccl`` (the NCCL unique id is made
by rank 0 and broadcast over MPI), and still uses MPI for host arrays. ``init()`` picks ``"nccl"``
when the default device is ``"cuda"``; with CUDA it gives each rank its own GPU: local rank ``r`` (its
index among the ranks on the same node) uses GPU ``r``.

Failure: a collective waits for every rank, so a rank that dies would leave the others waiting for
ever. After ``init()`` in a world of several ranks, an exception that nobody catches prints its
traceback and calls ``MPI_Abort``, which ends every rank; a rank killed by a signal ends the job too
(``mpiexec`` tears the others down). Leaving with ``sys.exit(code)`` skips the exception hook: code
that exits early on an error calls :func:`abort` or runs inside :func:`abort_on_failure`.

Only this module imports ``mpi4py``, on first use: ``import tinygrad_rnn`` never needs it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
import traceback as traceback_module
from typing import Iterator

from . import backend
from .backend import get_default_device
from .tensor import Tensor

__all__ = ["init", "is_available", "is_initialized", "get_backend", "get_rank", "get_world_size",
           "get_local_rank", "barrier", "all_reduce", "broadcast", "reduce_scatter_tensor",
           "all_gather_into_tensor", "shard_bounds", "all_gather_object", "broadcast_object_list",
           "abort", "abort_at_exit", "abort_on_failure", "all_failed", "exit_code_of", "destroy_process_group", "ReduceOp",
           "INSTALL_HINT"]

INSTALL_HINT = 'pip install "tinygrad-rnn[mpi]"'


class ReduceOp:
    """The reductions :func:`all_reduce` knows (plain strings work too)."""

    SUM, MEAN, MAX, MIN = "sum", "mean", "max", "min"


_OPS = (ReduceOp.SUM, ReduceOp.MEAN, ReduceOp.MAX, ReduceOp.MIN)


@dataclasses.dataclass
class _Group:
    """The world this process belongs to (``MPI.COMM_WORLD``), and NCCL's view of it when used."""

    mpi: object  # the mpi4py.MPI module
    comm: object  # MPI.COMM_WORLD
    rank: int
    world_size: int
    local_rank: int
    backend: str
    local_size: int = 1
    failure_comm: object = None  # a private copy of comm: failing ranks meet there (see all_failed)
    nccl: object = None  # cupy.cuda.nccl
    nccl_comm: object = None  # its NcclCommunicator over the same ranks


_group: _Group | None = None


# ---------------------------------------------------------------- setting up
def _import_mpi():
    try:
        from mpi4py import MPI  # noqa: PLC0415 - optional dependency, imported on first use
    except ImportError:
        raise RuntimeError(f"tinygrad_rnn.distributed needs MPI (mpi4py and an MPI library): {INSTALL_HINT}") from None
    return MPI


def is_available() -> bool:
    """True when mpi4py and an MPI library import (``init()`` can work)."""
    try:
        _import_mpi()
    except RuntimeError:
        return False
    return True


def init(backend: str | None = None) -> None:
    """Join the world of ``MPI.COMM_WORLD`` (every rank calls it once, before any collective).

    Args:
        backend: ``"mpi"`` or ``"nccl"`` (CUDA tensors GPU to GPU); ``None`` picks ``"nccl"`` when
            the default device is ``"cuda"``, else ``"mpi"``. A second call with the same backend
            does nothing; ``init("nccl")`` after ``init("mpi")`` adds NCCL (a program may start MPI
            first, before it knows its device).
    Raises:
        RuntimeError: MPI (or, for ``"nccl"``, CuPy with NCCL) is not installed, more ranks share a
            node than it has GPUs, or the group was already set up with NCCL and ``"mpi"`` is asked.
    """
    global _group
    chosen = backend or ("nccl" if get_default_device() == "cuda" else "mpi")
    if chosen not in ("mpi", "nccl"):
        raise ValueError(f"unknown backend {chosen!r}: use 'mpi' or 'nccl'")
    if _group is not None:
        if _group.backend == "mpi" and chosen == "nccl":
            _init_nccl(_group, _group.local_size)
            _group.backend = "nccl"
        elif _group.backend != chosen:
            raise RuntimeError(f"the process group is already set up with backend {_group.backend!r}; call "
                               f"destroy_process_group() before init(backend={chosen!r})")
        return
    MPI = _import_mpi()
    comm = MPI.COMM_WORLD
    rank, world_size = comm.Get_rank(), comm.Get_size()
    node = comm.Split_type(MPI.COMM_TYPE_SHARED, key=rank)
    local_rank = node.Get_rank()
    local_size = node.Get_size()
    node.Free()
    group = _Group(MPI, comm, rank, world_size, local_rank, "mpi", local_size, failure_comm=comm.Dup())
    if world_size > 1:
        _abort_on_uncaught_exceptions(comm)
    if chosen == "nccl":
        _init_nccl(group, local_size)
        group.backend = "nccl"
    _group = group


def _init_nccl(group: _Group, local_size: int) -> None:
    """One GPU per rank (local rank -> GPU), and an NCCL communicator over the MPI ranks."""
    gpus = backend.cuda_device_count()
    if gpus < 1:
        backend.normalize_device("cuda")  # raises the backend's message: no CuPy, or no GPU
    if local_size > gpus:
        raise RuntimeError(f"{local_size} ranks run on this node but it has {gpus} GPU(s): start at most {gpus} "
                           f"ranks per node (mpiexec -n {gpus}), or use backend='mpi'")
    backend.use_cuda_device(group.local_rank)
    nccl = backend.nccl_module()
    unique_id = nccl.get_unique_id() if group.rank == 0 else None
    unique_id = group.comm.bcast(unique_id, root=0)
    group.nccl = nccl
    group.nccl_comm = nccl.NcclCommunicator(group.world_size, unique_id, group.rank)


def _abort_on_uncaught_exceptions(comm) -> None:
    """Print the traceback, then end every rank: the others may be waiting for this one."""
    previous = sys.excepthook

    def hook(kind, value, traceback):
        if previous is sys.__excepthook__:
            # one write: the default hook writes the last line in pieces, and MPI_Abort tears down
            # mpiexec's output forwarding, which lost the message after "RuntimeError: " (1 run in 20)
            sys.stderr.write("".join(traceback_module.format_exception(kind, value, traceback)))
        else:
            previous(kind, value, traceback)
        sys.stderr.flush()
        comm.Abort(130 if issubclass(kind, KeyboardInterrupt) else 1)

    sys.excepthook = hook


def destroy_process_group() -> None:
    """Leave the group (NCCL communicator freed); MPI itself is finalised when Python exits."""
    global _group
    if _group is not None and _group.nccl_comm is not None:
        _group.nccl_comm.destroy()
    _group = None


def _require_group() -> _Group:
    if _group is None:
        raise RuntimeError("the process group is not initialised: call tinygrad_rnn.distributed.init() first")
    return _group


def is_initialized() -> bool:
    return _group is not None


def get_backend() -> str:
    return _require_group().backend


def get_rank() -> int:
    """This process's rank, 0..world_size-1 (0 in a world of one)."""
    return _require_group().rank


def get_world_size() -> int:
    return _require_group().world_size


def get_local_rank() -> int:
    """This process's index among the ranks on its node (the GPU it uses with NCCL)."""
    return _require_group().local_rank


# ---------------------------------------------------------------- failure
def abort(message: str | None = None, exit_code: int = 1) -> None:
    """Print ``message`` (if any) on stderr and end every rank now (``MPI_Abort``); a world of one just exits."""
    if message:
        print(message, file=sys.stderr, flush=True)
    group = _group
    if group is None or group.world_size == 1:
        raise SystemExit(exit_code)
    group.comm.Abort(exit_code)


def abort_at_exit(exit_code: int = 1) -> None:
    """When Python exits, call ``MPI_Abort(exit_code)`` instead of finalising MPI (ends every rank then)."""
    group = _group
    if group is None or group.world_size == 1 or not exit_code:
        return
    set_abort_status = getattr(group.mpi, "_set_abort_status", None)  # mpi4py >= 4
    if set_abort_status is not None:
        set_abort_status(exit_code)
    else:
        group.comm.Abort(exit_code)


def exit_code_of(error: BaseException) -> int:
    """The status a process ends with when ``error`` leaves it (SystemExit's code, 130 for Ctrl-C, else 1)."""
    if isinstance(error, SystemExit):
        code = error.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 130 if isinstance(error, KeyboardInterrupt) else 1


@contextlib.contextmanager
def abort_on_failure() -> Iterator[None]:
    """Any exception leaving the block, ``sys.exit(code)`` with a non-zero code included, ends every rank.

    The exception still propagates (so its message or traceback is shown); when Python exits, MPI is
    aborted instead of finalised, so ranks waiting in a collective for this one end too.
    """
    try:
        yield
    except BaseException as error:
        abort_at_exit(exit_code_of(error))
        raise


def all_failed(grace: float) -> bool:
    """Called by a rank that failed: did every rank fail? (True when all of them call this within ``grace`` s.)

    An error that every rank meets (bad input they all read) can end every rank normally, reported
    once; an error only some ranks meet must abort, or the others wait in a collective for ever.
    The ranks meet in a non-blocking barrier on a private copy of the communicator, so a rank that
    is still inside a collective of the program is not confused by it. True at once in a world of one.
    """
    group = _require_group()
    if group.world_size == 1:
        return True
    request = group.failure_comm.Ibarrier()
    deadline = time.monotonic() + grace
    while not request.Test():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


# ---------------------------------------------------------------- collectives
def barrier() -> None:
    """Wait until every rank has called ``barrier()``."""
    _require_group().comm.Barrier()


def all_reduce(tensor: Tensor, op: str = ReduceOp.SUM) -> None:
    """Reduce ``tensor`` over every rank, in place: each rank ends with the same result.

    Args:
        tensor: any shape; float16/32/64 or int32/64, on ``"cpu"`` or ``"cuda"`` (the same dtype,
            shape and device on every rank).
        op: ``"sum"``, ``"mean"`` (the sum divided by the world size; floating point only),
            ``"max"`` or ``"min"``.
    """
    group = _require_group()
    if op not in _OPS:
        raise ValueError(f"unknown reduction {op!r}: use one of {', '.join(_OPS)}")
    if op == ReduceOp.MEAN and tensor.dtype.kind != "f":
        raise TypeError(f"op='mean' needs a floating point tensor, got {tensor.dtype}: reduce with 'sum' and divide")
    array = tensor.data
    if backend.device_of(array) == "cuda" and group.nccl_comm is not None:
        _nccl_all_reduce(group, array, op)
    else:
        _mpi_all_reduce(group, array, op)
    if op == ReduceOp.MEAN:
        array /= array.dtype.type(group.world_size)


def broadcast(tensor: Tensor, src: int = 0) -> None:
    """Copy rank ``src``'s ``tensor`` into every rank's ``tensor`` (same shape and dtype everywhere), in place."""
    group = _require_group()
    if not 0 <= src < group.world_size:
        raise ValueError(f"src={src} is not a rank of this world (0..{group.world_size - 1})")
    array = tensor.data
    if backend.device_of(array) == "cuda" and group.nccl_comm is not None:
        contiguous = _contiguous(array)
        contiguous_bytes = contiguous.view(backend.numpy.uint8) if contiguous.dtype.kind == "b" else contiguous
        group.nccl_comm.bcast(contiguous_bytes.data.ptr, contiguous_bytes.size, _nccl_dtype(group, contiguous_bytes),
                              src, backend.cuda_stream_pointer())
    else:
        host = backend.as_numpy(array) if backend.device_of(array) == "cuda" else _contiguous(array)
        group.comm.Bcast(host.reshape(-1).view(backend.numpy.uint8), root=src)
        contiguous = host
    _write_back(array, contiguous)


def all_gather_object(object_list: list, obj) -> None:
    """Fill ``object_list`` (of world-size length) with every rank's ``obj``, in rank order (pickled over MPI)."""
    group = _require_group()
    if len(object_list) != group.world_size:
        raise ValueError(f"object_list must have world_size={group.world_size} entries, got {len(object_list)}")
    object_list[:] = group.comm.allgather(obj)


def broadcast_object_list(object_list: list, src: int = 0) -> None:
    """Replace the entries of ``object_list`` with rank ``src``'s (any picklable objects), in place."""
    group = _require_group()
    object_list[:] = group.comm.bcast(list(object_list), root=src)


def _contiguous(array):
    return backend.get_array_module(array).ascontiguousarray(array)


def _write_back(array, result) -> None:
    """Copy a reduced/broadcast buffer into the tensor's own array unless it already is that array."""
    if result is not array:
        array[...] = backend.to_device(result, backend.device_of(array))


_MPI_STAGING = {"float16": "float32", "bool": "int32"}  # dtypes MPI has no (portable) reduction for


def _mpi_all_reduce(group: _Group, array, op: str) -> None:
    numpy = backend.numpy
    host = backend.as_numpy(array) if backend.device_of(array) == "cuda" else array
    staged = _MPI_STAGING.get(host.dtype.name)
    buffer = host.astype(staged) if staged else numpy.ascontiguousarray(host)
    mpi = group.mpi
    mpi_op = {ReduceOp.SUM: mpi.SUM, ReduceOp.MEAN: mpi.SUM, ReduceOp.MAX: mpi.MAX, ReduceOp.MIN: mpi.MIN}[op]
    group.comm.Allreduce(mpi.IN_PLACE, buffer, op=mpi_op)
    _write_back(array, buffer.astype(host.dtype, copy=False))


_NCCL_DTYPES = {"float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64",
                "int32": "NCCL_INT32", "int64": "NCCL_INT64", "uint8": "NCCL_UINT8", "int8": "NCCL_INT8"}


def _nccl_dtype(group: _Group, array) -> int:
    name = _NCCL_DTYPES.get(array.dtype.name)
    if name is None:
        raise TypeError(f"NCCL cannot reduce {array.dtype} tensors: use one of {', '.join(_NCCL_DTYPES)}")
    return getattr(group.nccl, name)


def _nccl_all_reduce(group: _Group, array, op: str) -> None:
    nccl = group.nccl
    nccl_op = {ReduceOp.SUM: nccl.NCCL_SUM, ReduceOp.MEAN: nccl.NCCL_SUM, ReduceOp.MAX: nccl.NCCL_MAX,
               ReduceOp.MIN: nccl.NCCL_MIN}[op]
    buffer = _contiguous(array)
    # In place (send buffer == receive buffer), queued on CuPy's current stream, so the kernels that
    # made the gradients finish first and the ones that read the result start after.
    group.nccl_comm.allReduce(buffer.data.ptr, buffer.data.ptr, buffer.size, _nccl_dtype(group, buffer), nccl_op,
                              backend.cuda_stream_pointer())
    _write_back(array, buffer)


def shard_bounds(total: int, world_size: int) -> list[int]:
    """Where each rank's contiguous slice of ``total`` elements starts: ``world_size + 1`` offsets.

    Rank ``r`` holds ``[bounds[r], bounds[r + 1])``: ``ceil(total / world_size)`` elements each, the
    last rank(s) fewer when ``total`` is not divisible by ``world_size``. A buffer padded to
    ``world_size`` such chunks can then be all-gathered with equal counts (``MPI_Allgather``, several
    times faster than ``MPI_Allgatherv`` in MPICH, and what NCCL requires).
    """
    chunk = -(-total // world_size)
    return [min(rank * chunk, total) for rank in range(world_size + 1)]


def _counts(total: int, group: _Group, counts) -> list[int]:
    if counts is None:
        bounds = shard_bounds(total, group.world_size)
        return [stop - start for start, stop in zip(bounds, bounds[1:])]
    counts = [int(count) for count in counts]
    if len(counts) != group.world_size or sum(counts) != total or min(counts) < 0:
        raise ValueError(f"counts={counts} must give one size >= 0 per rank ({group.world_size}) adding up to "
                         f"the {total} elements of the whole tensor")
    return counts


def _host_contiguous(array):
    """A contiguous host (NumPy) array with ``array``'s values (``array`` itself when it already is one)."""
    return backend.as_numpy(array) if backend.device_of(array) == "cuda" else _contiguous(array)


def reduce_scatter_tensor(output: Tensor, input: Tensor, op: str = ReduceOp.SUM, counts=None) -> None:  # noqa: A002
    """Reduce ``input`` over every rank and leave rank ``r`` only its slice of the result, in ``output``.

    Args:
        output: this rank's slice: ``counts[rank]`` elements (any shape), ``input``'s dtype and device.
        input: the whole tensor, flat or not (its elements in C order), the same size on every rank.
        op: ``"sum"`` or ``"mean"`` (the sum divided by the world size).
        counts: the slice sizes of ranks ``0..N-1`` (they add up to ``input``'s size); ``None``:
            :func:`shard_bounds`' split (sizes differing by at most one).

    The same bytes cross the wire as half of a ring all-reduce (MPI_Reduce_scatter). CUDA tensors
    travel through the host over MPI (also with the ``"nccl"`` backend).
    """
    group = _require_group()
    if op not in (ReduceOp.SUM, ReduceOp.MEAN):
        raise ValueError(f"reduce_scatter_tensor reduces with op='sum' or op='mean', got {op!r}")
    counts = _counts(input.numel(), group, counts)
    if output.numel() != counts[group.rank]:
        raise ValueError(f"output holds {output.numel()} elements, but rank {group.rank}'s slice has "
                         f"{counts[group.rank]}")
    source = _host_contiguous(input.data).reshape(-1)
    staged = _MPI_STAGING.get(source.dtype.name)
    if staged:
        source = source.astype(staged)
    target = output.data
    direct = backend.device_of(target) != "cuda" and target.flags.c_contiguous and target.dtype == source.dtype
    result = target.reshape(-1) if direct else backend.numpy.empty(counts[group.rank], dtype=source.dtype)
    if group.world_size == 1:
        result[...] = source
    else:
        group.comm.Reduce_scatter(source, result, recvcounts=counts, op=group.mpi.SUM)
    if op == ReduceOp.MEAN:
        result /= result.dtype.type(group.world_size)
    if not direct:
        _write_back(target, result.astype(output.dtype, copy=False).reshape(output.shape))


def all_gather_into_tensor(output: Tensor, input: Tensor, counts=None) -> None:  # noqa: A002
    """Every rank's ``input`` end to end, in rank order, into every rank's ``output`` (MPI_Allgatherv).

    Args:
        output: the whole tensor (its elements in C order), the same size on every rank.
        input: this rank's slice, ``counts[rank]`` elements. It may be a view of ``output`` at this
            rank's offset (then it is not copied: MPI_IN_PLACE).
        counts: the slice sizes of ranks ``0..N-1``; ``None``: :func:`shard_bounds`' split. Equal
            counts (pad ``output`` to a multiple of the world size) take the faster ``MPI_Allgather``.
    """
    group = _require_group()
    counts = _counts(output.numel(), group, counts)
    if input.numel() != counts[group.rank]:
        raise ValueError(f"input holds {input.numel()} elements, but rank {group.rank}'s slice has "
                         f"{counts[group.rank]}")
    offsets = [sum(counts[:rank]) for rank in range(group.world_size)]
    array = output.data
    on_host = backend.device_of(array) != "cuda" and array.flags.c_contiguous
    whole = array.reshape(-1) if on_host else _host_contiguous(array).reshape(-1).copy()
    mine = whole[offsets[group.rank]:offsets[group.rank] + counts[group.rank]]
    piece = _host_contiguous(input.data).reshape(-1)
    if piece.size and not (piece.__array_interface__["data"][0] == mine.__array_interface__["data"][0]
                           and piece.dtype == mine.dtype):
        mine[...] = piece  # not already in place
    if group.world_size > 1 and len(set(counts)) == 1:
        group.comm.Allgather(group.mpi.IN_PLACE, whole)
    elif group.world_size > 1:
        group.comm.Allgatherv(group.mpi.IN_PLACE, [whole, (counts, offsets)])
    if not on_host:
        _write_back(array, whole.reshape(array.shape))
