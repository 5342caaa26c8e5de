"""Data-parallel ``translate train`` over MPI: ``mpiexec -n N translate train ...``.

Started by ``mpiexec -n N`` (seen in the launcher's environment, before MPI is imported), training
runs as N ranks of one job; started alone it is a world of one (:class:`World`) and nothing changes.
The :class:`translator.training.Trainer` asks its world for everything that involves the other
ranks; :class:`MPIWorld` answers over ``tinygrad_rnn.distributed``. Why the result does not depend on N:

- every rank builds the same data, the same seeded model (rank 0's weights are broadcast anyway)
  and the same batch plan; of each global batch (``--batch-size`` examples, sorted by length) rank r
  takes rows r, r+N, r+2N, ..., so the shares have similar lengths and no rank waits long;
- a rank's loss is the sum of its target tokens' cross-entropies divided by the *global* batch's
  target tokens, and the gradients are summed (one all-reduce of the flat gradient buffer), so every rank
  holds the gradient of the whole batch's mean loss. By default (``--shard-optimizer``, on the CPU) the
  step is sharded (``tinygrad_rnn.optim.ZeroRedundancyOptimizer``): the gradients are reduce-scattered,
  each rank clips (the global norm is one all-reduced number) and runs Adam on its 1/N of the
  parameters, and the updated parameters are all-gathered; with ``--no-shard-optimizer`` (and always
  with ``--device cuda``, where NCCL's all-reduce is faster) every rank all-reduces the gradients and
  runs clipping and Adam on all of them. Either way the weights stay equal, and with dropout off, N
  ranks take the steps one process takes, up to the order of floating-point sums. ``last.npz`` holds
  the whole optimizer state in the unsharded layout (gathered on rank 0; each rank keeps its slice
  when it resumes), so a run may resume with the other setting or another N;
- decisions that depend on a clock or a signal are agreed every step: a Ctrl-C (``mpiexec`` passes
  it to every rank) or ``--max-time`` on any rank stops all of them after the same batch, and the
  every-few-minutes save of ``last.npz`` happens on all of them at the same batch;
- evaluation is sharded: each rank translates every N-th dev (or test) sentence, every rank gathers
  all the translations and scores them, so all ranks see the same BLEU (and take the same
  learning-rate and early-stopping decisions); the dev loss is summed over the ranks' dev batches;
- rank 0 alone prints and writes (progress bar, log lines, ``log.jsonl``, checkpoints, the model
  directory); the other ranks read it on ``--resume`` and write nothing;
- random draws (dropout, scheduled sampling): rank 0 continues the seeded stream a one-process run
  uses; rank r > 0 draws from its own stream, seeded by ``(seed, r)``. ``last.npz`` keeps every
  rank's generator, so ``--resume`` with the same N continues exactly. With another N, weights,
  optimizer, schedule, data position and rank 0's generator continue; ranks without a saved
  generator start one seeded by ``(seed, rank, step)``, so with dropout the continuation draws other
  (equally random) masks than the original N would have;
- ``--device cuda``: rank r uses GPU ``local rank`` (its index on its node) and gradients are
  reduced GPU to GPU with NCCL.

Failures: a rank killed by a signal takes the job down (``mpiexec``); an error on one rank that
the others do not share ends every rank within ``FAILURE_GRACE_SECONDS`` (MPI_Abort); an error that
every rank meets (a bad option, missing data, a diverged loss) ends them all normally, reported once
by rank 0. Checkpoints are written atomically, so none is ever half-written.
"""
from __future__ import annotations

import contextlib
import functools
import os
import sys
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

import tinygrad_rnn as tg
from tinygrad_rnn import nn, optim
from translator.batching import Batch, make_batch
from translator.checkpoint import ModelDirectory
from translator.errors import ConfigError

FAILURE_GRACE_SECONDS = 10.0  # how long a failing rank waits to learn whether every rank failed

# The world size and rank each MPI launcher puts in its processes' environment.
_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_SIZE")
_RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK", "PMIX_RANK")
LAUNCHER_VARIABLES = _SIZE_VARIABLES + _RANK_VARIABLES  # any of them set: a launcher started this process


def _launcher_value(names: Sequence[str], default: int) -> int:
    for name in names:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return default


def under_launcher() -> bool:
    """Whether an MPI launcher started this process (then it is a rank, even of a world of one)."""
    return any(os.environ.get(name) for name in LAUNCHER_VARIABLES)


def launched_world_size() -> int:
    """How many ranks ``mpiexec`` started (1 outside it); reads the environment, imports no MPI."""
    return _launcher_value(_SIZE_VARIABLES, 1)


def launched_rank() -> int:
    """This process's rank as ``mpiexec`` numbered it (0 outside it)."""
    return _launcher_value(_RANK_VARIABLES, 0)


def world_for(device: str) -> World:
    """The world of this process: :class:`MPIWorld` under ``mpiexec -n N`` with N > 1, else :class:`World`."""
    return MPIWorld(device) if launched_world_size() > 1 else World()


def start_mpi() -> None:
    """Start MPI first thing under ``mpiexec -n N`` (N > 1): a rank that failed before MPI_Init would
    leave the others waiting in it for ever, while after it every failure can be handled.

    Raises:
        ConfigError: launched by ``mpiexec`` but mpi4py is missing.
    """
    if launched_world_size() > 1:
        from tinygrad_rnn import distributed  # noqa: PLC0415

        try:
            distributed.init(backend="mpi")
        except RuntimeError as error:
            raise ConfigError(f"started by mpiexec with {launched_world_size()} ranks, but {error}") from None


def on_every_rank(command: Callable) -> Callable:
    """Decorates a CLI command that every rank of an ``mpiexec`` job runs: :func:`failures_reported_once`."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        with failures_reported_once(lambda message: print(message, file=sys.stderr, flush=True)):
            return command(*args, **kwargs)
    return wrapper


@contextlib.contextmanager
def failures_reported_once(report: Callable[[str], None]) -> Iterator[None]:
    """Around a command every rank runs: each failure ends every rank, and is reported once.

    A failure every rank meets within :data:`FAILURE_GRACE_SECONDS` (a bad option, missing data, a
    diverged loss, Ctrl-C twice) ends all of them normally: rank 0 lets the exception through (the
    CLI prints it), the others leave silently with the same status. A failure only some ranks meet
    (a bug, a full disk on rank 0, a lost GPU) is printed by the rank that met it, with its rank, and
    ends every rank through MPI_Abort. ``report`` prints a follower's one-line message.
    """
    try:
        yield
    except BaseException as error:
        from tinygrad_rnn import distributed  # noqa: PLC0415

        status = distributed.exit_code_of(error)
        if launched_world_size() == 1 or not status or not distributed.is_initialized():
            raise
        rank, size = distributed.get_rank(), distributed.get_world_size()
        if distributed.all_failed(FAILURE_GRACE_SECONDS):
            if rank == 0:
                raise
            raise SystemExit(status) from None
        distributed.abort_at_exit(status)
        message = getattr(error, "format_message", None)
        if rank == 0 or message is None:
            raise  # rank 0's message, or a traceback that names the failure
        report(f"translate: error on rank {rank} of {size}: {message()}")
        raise SystemExit(status) from None


def take_rows(batch: Batch, rows: np.ndarray, examples) -> Batch:
    """The batch of ``batch``'s rows ``rows`` (positions in it), padded to their own longest sentence."""
    return make_batch(examples, batch.indices[rows])


class World:
    """A world of one process: every question about the other ranks has the trivial answer."""

    rank, size = 0, 1

    @property
    def is_leader(self) -> bool:
        """Rank 0: the one that prints and writes."""
        return self.rank == 0

    def share(self, batch: Batch, examples) -> tuple[Batch | None, int]:
        """``(this rank's part of the global batch or None if it has no row, the global batch's target tokens)``."""
        return batch, batch.num_target_tokens

    def optimizer(self, parameters, lr: float, shard: bool):
        """The Adam optimizer of training (sharded over the ranks when ``shard`` and the world allows it)."""
        return optim.Adam(parameters, lr=lr)

    def reduce_gradients(self, parameters, optimizer) -> None:
        """Sum every parameter's gradient over the ranks (each rank's loss is already globally normalised);
        a sharded optimizer reduces them itself, in its step."""

    def clip_grad_norm_(self, parameters, optimizer, max_norm: float) -> None:
        """Clip the (reduced) gradients' global norm to ``max_norm``."""
        nn.utils.clip_grad_norm_(parameters, max_norm)

    def consolidate(self, optimizer) -> None:
        """Before rank 0 saves ``optimizer.state_dict()``: gather a sharded optimizer's state (collective)."""

    def any(self, *flags: bool) -> tuple[bool, ...]:
        """Each flag OR-ed over the ranks (one collective for all of them)."""
        return tuple(bool(flag) for flag in flags)

    def sum(self, *values: float) -> tuple[float, ...]:
        """Each value summed over the ranks (one collective for all of them)."""
        return tuple(float(value) for value in values)

    def mine(self, items: Iterable) -> Iterator:
        """This rank's items of a sequence every rank walks alike: items ``rank, rank + N, ...``."""
        return iter(items)

    def sharded(self, translate: Callable[[list[str]], list[str]]) -> Callable[[list[str]], list[str]]:
        """``translate`` with the sentences shared out among the ranks and the results gathered by every rank."""
        return translate

    def start(self, model, seed: int, state: dict | None, step: int) -> None:
        """After the model is built (or restored): equal weights everywhere, this rank's random stream."""

    def rng_states(self) -> list | None:
        """Every rank's generator state (collective), to save in ``last.npz``; None in a world of one."""
        return None


class MPIWorld(World):
    """N ranks started by ``mpiexec``; see the module docstring for what each one does."""

    def __init__(self, device: str):
        from tinygrad_rnn import distributed  # noqa: PLC0415 - mpi4py only when launched by mpiexec

        self.dist = distributed
        distributed.init(backend="nccl" if tg.backend.normalize_device(device) == "cuda" else "mpi")
        self.rank, self.size = distributed.get_rank(), distributed.get_world_size()

    def share(self, batch: Batch, examples) -> tuple[Batch | None, int]:
        rows = np.arange(self.rank, len(batch), self.size)
        return (take_rows(batch, rows, examples) if len(rows) else None), batch.num_target_tokens

    def optimizer(self, parameters, lr: float, shard: bool):
        if not shard or self.dist.get_backend() == "nccl":  # NCCL: its all-reduce beats staging through the host
            return optim.Adam(parameters, lr=lr)
        return optim.ZeroRedundancyOptimizer(parameters, optim.Adam, op="sum", lr=lr)

    def reduce_gradients(self, parameters, optimizer) -> None:
        if isinstance(optimizer, optim.ZeroRedundancyOptimizer):
            return  # reduce-scattered in its clip_grad_norm_ or step
        from tinygrad_rnn.nn.parallel import all_reduce_gradients  # noqa: PLC0415

        all_reduce_gradients(parameters, op="sum")

    def clip_grad_norm_(self, parameters, optimizer, max_norm: float) -> None:
        if isinstance(optimizer, optim.ZeroRedundancyOptimizer):
            optimizer.clip_grad_norm_(max_norm)
        else:
            super().clip_grad_norm_(parameters, optimizer, max_norm)

    def consolidate(self, optimizer) -> None:
        if isinstance(optimizer, optim.ZeroRedundancyOptimizer):
            optimizer.consolidate_state_dict(to=0)

    def _all_reduce(self, values, op: str) -> np.ndarray:
        tensor = tg.Tensor(np.asarray(values, dtype=np.float64))
        self.dist.all_reduce(tensor, op=op)
        return tensor.numpy()

    def any(self, *flags: bool) -> tuple[bool, ...]:
        return tuple(bool(value) for value in self._all_reduce([float(bool(flag)) for flag in flags], "max"))

    def sum(self, *values: float) -> tuple[float, ...]:
        return tuple(float(value) for value in self._all_reduce(values, "sum"))

    def mine(self, items: Iterable) -> Iterator:
        return (item for index, item in enumerate(items) if index % self.size == self.rank)

    def sharded(self, translate: Callable[[list[str]], list[str]]) -> Callable[[list[str]], list[str]]:
        def translate_share(sentences: list[str]) -> list[str]:
            shares = [None] * self.size
            self.dist.all_gather_object(shares, translate(list(sentences[self.rank::self.size])))
            merged = [""] * len(sentences)
            for rank, translations in enumerate(shares):
                merged[rank::self.size] = translations
            return merged
        return translate_share

    def start(self, model, seed: int, state: dict | None, step: int) -> None:
        from tinygrad_rnn.nn.parallel import broadcast_parameters  # noqa: PLC0415

        broadcast_parameters(model)  # equal by construction (same seed); this makes sure of it
        saved = (state or {}).get("rank_rng")
        if saved is not None and len(saved) == self.size:
            tg.set_rng_state(saved[self.rank])  # resumed with the same N: exactly where each rank was
        elif self.rank > 0:
            key = [seed, self.rank] if state is None else [seed, self.rank, step]
            tg.set_rng_state(np.random.PCG64(key).state)

    def rng_states(self) -> list | None:
        states = [None] * self.size
        self.dist.all_gather_object(states, tg.get_rng_state())
        return states


def directory_for(directory: ModelDirectory) -> ModelDirectory:
    """The model directory as this process may use it: ranks > 0 of an ``mpiexec`` job read, never write."""
    return directory if launched_rank() == 0 else ReadOnlyDirectory(directory.path)


class ReadOnlyDirectory(ModelDirectory):
    """The model directory as ranks > 0 see it: they read it (to resume) and never write to it.

    ``check_fresh`` is rank 0's alone (rank 0 may already have created the directory when another
    rank looks). ``has_best`` only steers writes, which this rank skips: it answers from the disk,
    or from the ``save_best`` it skipped.
    """

    def __init__(self, path):
        super().__init__(path)
        self._best_written = False

    def check_fresh(self, overwrite: bool) -> None:
        pass

    def create(self, data, model_config, config, first_checkpoint) -> None:
        first_checkpoint()  # rank 0 writes it; every rank takes part in gathering the random streams

    def save_last(self, *args, **kwargs) -> None:
        pass

    def remove_temporaries(self) -> None:
        pass

    def save_epoch(self, *args, **kwargs) -> None:
        pass

    def draw_curves(self) -> bool:
        return False

    def save_best(self, *args, **kwargs) -> None:
        self._best_written = True

    def has_best(self) -> bool:
        return self._best_written or super().has_best()

    def log(self, event: str, **fields) -> None:
        pass
