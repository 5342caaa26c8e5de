"""Shared fixtures. First: one BLAS thread for the whole suite.

On a 2-core machine with anything else running, a second OpenBLAS thread turned a 25 us matrix
product into 90 ms (spin-waiting threads fight for the cores) and the suite ran several times
slower. This must happen before NumPy is imported, which is why it sits at the top of conftest.
"""
import os as _os
import sys as _sys

if "numpy" not in _sys.modules:
    for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        _os.environ.setdefault(_variable, "1")

# and one process for every `translate train` a test starts (auto would start two MPI ranks on an idle
# 2-core machine with the mpi extra installed); the tests of translator.launch set their own
_os.environ.setdefault("TRANSLATE_PROCESSES", "1")

import pytest as _threads_pytest


@_threads_pytest.fixture(autouse=True)
def _restore_blas_threads():
    """A test (or a CLI command run in-process) may set the BLAS threads: later tests get one again."""
    import tinygrad_rnn as tg

    before = tg.get_num_threads()
    yield
    if before is not None and tg.get_num_threads() != before:
        tg.set_num_threads(before)


# --- translator data layer: the real spa-eng corpus (self-contained block) ----------------------
import os as _data_os
from pathlib import Path as _DataPath

import pytest as _data_pytest


def _spa_eng_candidates() -> list[_DataPath]:
    """Where the real spa-eng.zip may be: the data directory, then ../shared/data next to the repo."""
    repo_root = _DataPath(__file__).resolve().parents[1]
    candidates = []
    if _data_os.environ.get("TRANSLATE_DATA_DIR"):
        candidates.append(_DataPath(_data_os.environ["TRANSLATE_DATA_DIR"]).expanduser() / "spa-eng.zip")
    candidates.append(repo_root / "datasets" / "spa-eng.zip")
    candidates.append(repo_root.parent / "shared" / "data" / "spa-eng.zip")
    return candidates


@_data_pytest.fixture(scope="session")
def spa_eng_path() -> _DataPath:
    """Path of the real Tatoeba spa-eng.zip; skips the test if absent, fails if TRANSLATE_REQUIRE_DATA=1."""
    candidates = _spa_eng_candidates()
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    message = "real spa-eng.zip not found (looked at: " + ", ".join(str(path) for path in candidates) + ")"
    if _data_os.environ.get("TRANSLATE_REQUIRE_DATA") == "1":
        _data_pytest.fail(message + " and TRANSLATE_REQUIRE_DATA=1")
    _data_pytest.skip(message)
# --- end of translator data layer block -----------------------------------------------------------
