"""BLAS threads, set from inside the engine: ``set_num_threads(n)`` / ``get_num_threads()``.

PyTorch's names. The engine's matrix products are small (a batch of 64-128 rows against a
256-1024 wide weight), and on a machine where other work runs a second BLAS thread mostly
waits for a free core: OpenBLAS's threads spin at a barrier after every product, so one busy
core turns a 30 us product into milliseconds. So the engine uses ``DEFAULT_NUM_THREADS`` (one)
unless the user chose otherwise: ``import tinygrad_rnn`` sets it, except when one of the usual
environment variables (``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``)
says how many threads BLAS should use, which then wins.

Measured for the default: a translator training step (default architecture, batch 64, vocabularies
of 10,000, ``bench/seq2seq_speed.py``'s random batches), 1 and 2 threads alternated in one process,
6 steps each, on the shared 2-core machine (load average about 10): one thread 95 target tokens/s
(median; 77-202), two threads 15 (14-39), with 0.7 and 6.3 CPU seconds per step. Two threads were
6x slower over the whole step, so no per-region setting was tried; an idle machine was not
available to check whether a second thread helps there.

``auto_num_threads()`` is the count a program that owns the machine should use (the
translator's ``--threads auto``): the cores this process may run on, shared among the processes
of one job, less the cores other running work keeps busy (OpenBLAS's waiting threads make
oversubscription costly, see above). Measured on the idle 2-core machine, the translator's
training (real batches, ``translate train``) ran at 2,354 target tokens/s on one thread and
2,696 on two (1.15x; the whole default run: 28:47 against 31:25), and the PyTorch-twin benchmark
at 1,721 and 2,455 (1.43x).

The threads are set with ``threadpoolctl`` (it finds the BLAS library NumPy loaded, OpenBLAS
or MKL, and calls its own thread setter); without it, or without a BLAS it knows, both
functions do nothing and ``get_num_threads()`` returns ``None``. CuPy work on the GPU is not
affected.
"""
from __future__ import annotations

import os
import time

__all__ = ["set_num_threads", "get_num_threads", "DEFAULT_NUM_THREADS", "apply_default", "environment_chose",
           "auto_num_threads", "usable_cores", "busy_cores"]

DEFAULT_NUM_THREADS = 1
ENVIRONMENT_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

MAX_AUTO_THREADS = 8    # auto never goes above this (more was not measured)

_controller = None      # threadpoolctl's view of the loaded BLAS libraries, made on first use
_limiter = None         # the limit in force (kept so it is not undone)


def _blas():
    """threadpoolctl's controller restricted to BLAS libraries, or None when there is none."""
    global _controller
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController  # noqa: PLC0415 - only when threads are set
        except ImportError:
            _controller = False
        else:
            from . import backend  # noqa: F401,PLC0415 - NumPy (and so its BLAS) must be loaded first

            blas = ThreadpoolController().select(user_api="blas")
            _controller = blas if blas.lib_controllers else False
    return _controller or None


def set_num_threads(num_threads: int) -> None:
    """Use ``num_threads`` BLAS threads for the engine's CPU matrix products (``torch.set_num_threads``)."""
    global _limiter
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f"set_num_threads needs a positive integer, got {num_threads!r}")
    blas = _blas()
    if blas is not None:
        _limiter = blas.limit(limits=num_threads)


def get_num_threads() -> int | None:
    """The number of BLAS threads in use (``None`` when no BLAS library can be controlled)."""
    blas = _blas()
    if blas is None:
        return None
    return max(library.num_threads for library in blas.lib_controllers)


def environment_chose() -> bool:
    """True when one of ``ENVIRONMENT_VARIABLES`` says how many threads BLAS should use."""
    return any(os.environ.get(name) for name in ENVIRONMENT_VARIABLES)


def apply_default() -> None:
    """``set_num_threads(DEFAULT_NUM_THREADS)`` unless the environment already chose (see the module docstring)."""
    if not environment_chose():
        set_num_threads(DEFAULT_NUM_THREADS)


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def busy_cores(samples: int = 5, interval: float = 0.01) -> float:
    """How many cores other work keeps busy now: the fewest runnable tasks but this one over a few samples.

    Linux counts the runnable tasks in ``/proc/loadavg`` (its fourth field, ``running/total``);
    the minimum of ``samples`` readings ``interval`` seconds apart drops what only ran for a moment
    (work that keeps a core busy is runnable in every reading). Where there is no such file, the
    one-minute load average stands in (it still counts work that just ended, such as an install).
    """
    readings = []
    for index in range(samples):
        try:
            with open("/proc/loadavg", encoding="ascii") as file:
                running = int(file.read().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            break
        readings.append(max(running - 1, 0))  # the reader itself is running
        if index + 1 < samples:
            time.sleep(interval)
    if readings:
        return float(min(readings))
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this platform
        return 0.0


def auto_num_threads(processes: int = 1) -> int:
    """BLAS threads for a job that may use the machine: its share of the cores, less busy ones.

    ``processes``: how many processes of the same job share the machine (ranks of ``mpiexec``).
    Each gets ``usable_cores() // processes`` cores at most, fewer when other work keeps cores
    busy (:func:`busy_cores`, read once, when called), never fewer than one and never more than
    ``MAX_AUTO_THREADS``. On a 2-core machine: 2 when nothing else runs, else 1.
    """
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ValueError(f"auto_num_threads needs a positive number of processes, got {processes!r}")
    cores = usable_cores()
    free = int(cores - busy_cores() + 0.5)
    return max(1, min(cores // processes, free, MAX_AUTO_THREADS))
