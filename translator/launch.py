"""``translate train`` started alone starts its own data-parallel ranks: ``--processes N|auto``.

A Python process runs the engine's element-wise work and its interpreter on one core; only the
matrix products use more (BLAS threads). So on a CPU machine training runs faster as several
processes, each on its own core, than as one process with several BLAS threads: measured on the
idle 2-core machine, the default ``translate train`` made 2,782 target tokens/s as two ranks of one BLAS
thread against 2,369 as one process of two threads (1.17x, the first 240 s of training each), and
the whole run took 22:43 at 3,039 tokens/s against 30:54-31:50 at 2,162-2,250 (1.35-1.41x).
fairseq does the same with GPUs: ``fairseq-train`` spawns one process per visible GPU.

What this module decides and does, before anything is loaded:

- how many processes (:func:`processes_to_start`): ``--processes N`` if given, else
  ``$TRANSLATE_PROCESSES`` if set, else ``auto``: 2 on the CPU where at least two cores are idle and
  the ``mpi`` extra is installed (mpi4py, and ``mpiexec``, which the ``mpich`` package brings), else 1.
  More than 2 only when asked: on bigger machines the two ranks share the cores as BLAS threads
  (``tinygrad_rnn.threads.auto_num_threads``), and more ranks were not measured;
- starting them (:func:`run_ranks`): ``mpiexec -n N python -m translator <the same arguments>``; the
  ranks are the ordinary ``mpiexec -n N translate train`` of :mod:`translator.parallel` (the same
  batches, rank 0 prints and writes), and this process waits, passing Ctrl-C and SIGTERM on to
  ``mpiexec`` (which passes them to every rank once), and exits with its status.

Under a launcher already (``mpiexec ...``), nothing is started: the launcher's world is the run.
With dropout off, N ranks compute what one process computes up to the order of floating-point sums;
with dropout, the ranks after the first draw their own masks (see :mod:`translator.parallel`), so the
model differs from a one-process run as a run with another seed would.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from translator.errors import ConfigError

PROCESSES_ENV = "TRANSLATE_PROCESSES"
AUTO_PROCESSES = 2      # what auto starts where it starts more than one (measured on 2 cores)
MAX_PROCESSES = 1024
INSTALL_HINT = "pip install '.[mpi]' (mpi4py and mpich, which brings mpiexec)"

_FORWARDED_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


def find_mpiexec() -> str | None:
    """``mpiexec`` next to this Python (where ``pip install mpich`` puts it in a venv), else on the PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else shutil.which("mpiexec")


def mpi_missing() -> str | None:
    """What is missing to start ranks (a phrase), or None when mpi4py and mpiexec are both there."""
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed"
    if find_mpiexec() is None:
        return "mpiexec was found neither next to Python nor on the PATH"
    return None


def environment_processes() -> int | None:
    """``$TRANSLATE_PROCESSES`` as a count (``auto`` or unset: None); ConfigError naming the variable if bad."""
    value = os.environ.get(PROCESSES_ENV, "").strip()
    if not value or value == "auto":
        return None
    if not value.isdigit() or not 1 <= int(value) <= MAX_PROCESSES:
        raise ConfigError(f"{PROCESSES_ENV}={value}: give a number of processes from 1 to {MAX_PROCESSES} or auto, "
                          f"or unset it")
    return int(value)


def auto_processes(device: str) -> int:
    """``auto``: :data:`AUTO_PROCESSES` on the CPU with that many idle cores and MPI installed, else 1."""
    from tinygrad_rnn import threads  # noqa: PLC0415 - only when a run starts

    if device.lower() != "cpu" or mpi_missing() is not None:
        return 1
    idle = int(threads.usable_cores() - threads.busy_cores() + 0.5)
    return AUTO_PROCESSES if idle >= AUTO_PROCESSES else 1


def processes_to_start(requested: int | None, device: str) -> tuple[int, str]:
    """``(how many processes this run should be, why)`` for a ``translate train`` started alone.

    ``requested``: ``--processes`` (or the ``--config`` file's), None when neither gave one.
    ConfigError when more than one is asked for and MPI is missing.
    """
    count, why = requested, "--processes"
    if count is None:
        count, why = environment_processes(), f"${PROCESSES_ENV}"
    if count is None:
        return auto_processes(device), "auto"
    if count > 1 and (missing := mpi_missing()) is not None:
        raise ConfigError(f"{why} {count} starts {count} MPI ranks, but {missing}: {INSTALL_HINT}, "
                          f"or train in one process with --processes 1")
    return count, why


def rank_command(processes: int, arguments: Sequence[str]) -> list[str]:
    """``mpiexec -n N <this Python> -m translator <arguments>``: the ranks of a run this process starts."""
    return [find_mpiexec() or "mpiexec", "-n", str(processes), sys.executable, "-m", "translator", *arguments]


def run_ranks(processes: int, arguments: Sequence[str]) -> int:
    """Start the ranks (:func:`rank_command`), wait for them and return ``mpiexec``'s exit status.

    ``mpiexec`` runs in its own session, so a Ctrl-C in the terminal reaches it once, from here (its
    ranks run in sessions of their own too and get signals only from it): each SIGINT, SIGTERM and
    SIGHUP this process receives is passed on. Its standard input is empty, its output this process's.
    """
    started, pending = [], []  # the mpiexec process once it exists; signals that came before it did

    def pass_on(signum, _frame):
        if not started:
            pending.append(signum)
        elif started[0].poll() is None:
            started[0].send_signal(signum)

    previous = {}
    for name in _FORWARDED_SIGNALS:  # before the start, so no signal can end this process and orphan mpiexec
        if hasattr(signal, name):
            number = getattr(signal, name)
            previous[number] = signal.signal(number, pass_on)
    try:
        # no standard input: training reads none, and mpiexec would otherwise read the terminal for rank 0
        started.append(subprocess.Popen(rank_command(processes, arguments), stdin=subprocess.DEVNULL,
                                        start_new_session=True))
        for signum in pending:
            started[0].send_signal(signum)
        status = started[0].wait()
        return 128 - status if status < 0 else status  # killed by signal N: 128 + N, as a shell reports it
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
