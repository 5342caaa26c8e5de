"""The one timing loop of the benchmarks, shared by our side and the PyTorch worker.

Standard library only: ``bench/torch_worker.py`` runs under another virtual environment's
Python and imports this file from beside it.
"""
from __future__ import annotations

import time


def time_calls(run, repeats, clock=time.perf_counter):
    """Seconds per call of ``run()``, ``repeats`` calls one after another."""
    seconds = []
    for _ in range(repeats):
        start = clock()
        run()
        seconds.append(clock() - start)
    return seconds


def time_methods(target, names, repeats, clock=time.perf_counter):
    """``{name: time_calls(target.name, ...)}`` for each method name, in order."""
    return {name: time_calls(getattr(target, name), repeats, clock) for name in names}
