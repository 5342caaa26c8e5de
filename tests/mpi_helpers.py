"""Test helpers for programs run under ``mpiexec`` (tests/mpi_programs/): find it, skip without it, run."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from translator.launch import INSTALL_HINT, find_mpiexec, mpi_missing  # mpiexec: next to this Python, else on the PATH

MPI_PROGRAMS = Path(__file__).resolve().parent / "mpi_programs"
REPO_ROOT = Path(__file__).resolve().parent.parent


def _mpi_missing() -> str | None:
    missing = mpi_missing()
    return None if missing is None else f"{missing} ({INSTALL_HINT})"


MPI_MISSING = _mpi_missing()
needs_mpi = pytest.mark.skipif(MPI_MISSING is not None, reason=str(MPI_MISSING))


def mpi_environment(**extra: str) -> dict:
    """The children's environment: one BLAS thread each, this checkout first on the path."""
    environment = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **extra)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), environment.get("PYTHONPATH")]))
    return environment


def run_mpi(ranks: int, arguments: list, timeout: float = 60, **environment: str) -> subprocess.CompletedProcess:
    """``mpiexec -n ranks python arguments...`` with a timeout (a hang fails the test instead of blocking it)."""
    command = [find_mpiexec(), "-n", str(ranks), sys.executable, *map(str, arguments)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env=mpi_environment(**environment), cwd=REPO_ROOT)
