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

The threads are set with ``threadpoolctl`` (it finds the BLAS library NumPy loaded, OpenBLAS
or MKL, and calls its own thread setter); without it, or without a BLAS it knows, both
functions do nothing and ``get_num_threads()`` returns ``None``. CuPy work on the GPU is not
affected.
"""
from __future__ import annotations

import os

__all__ = ["set_num_threads", "get_num_threads", "DEFAULT_NUM_THREADS", "apply_default"]

DEFAULT_NUM_THREADS = 1
ENVIRONMENT_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

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


def apply_default() -> None:
    """``set_num_threads(DEFAULT_NUM_THREADS)`` unless the environment already chose (see the module docstring)."""
    if not any(os.environ.get(name) for name in ENVIRONMENT_VARIABLES):
        set_num_threads(DEFAULT_NUM_THREADS)
