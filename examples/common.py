"""Helpers shared by the example scripts: command line, tables, optional plots, budgets.

The scripts import this file as ``common`` (Python puts the script's own folder on
``sys.path``); the tests put ``examples/`` on the path the same way. Nothing here
imports matplotlib at import time: ``pyplot()`` does, and only when asked.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import time

import numpy as np

import tinygrad_rnn as tg
from tinygrad_rnn import nn

CELL_TYPES = ("RNN", "LSTM", "GRU")
LSTM_FORGET_BIAS = "LSTM+fb1"  # an LSTM whose forget-gate bias starts at +1 (Gers et al. 2000)
GATES = {"RNN": 1, "LSTM": 4, "GRU": 3, LSTM_FORGET_BIAS: 4}


# ------------------------------------------------------------------ command line
def base_parser(description: str) -> argparse.ArgumentParser:
    """A parser with the flags every experiment shares: ``--quick``, ``--seeds``, ``--out``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true",
                        help="a small version that finishes in well under 30 s (used by the tests)")
    parser.add_argument("--seeds", type=seed_list, default=None,
                        help="comma-separated seeds, e.g. 0,1,2 (default: the experiment's own choice)")
    parser.add_argument("--out", default=None,
                        help="folder for figures (PNG, needs matplotlib: pip install tinygrad-rnn[plot]); "
                             "tables are always printed")
    return parser


def seed_list(text: str) -> tuple[int, ...]:
    """``"0,1,2"`` -> ``(0, 1, 2)``; says what is wrong instead of raising a traceback."""
    try:
        seeds = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds wants comma-separated integers like 0,1,2, got {text!r}")
    if not seeds:
        raise argparse.ArgumentTypeError("--seeds needs at least one integer")
    return seeds


def int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 10,25,50, got {text!r}")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


# ------------------------------------------------------------------ output
def markdown_table(headers, rows) -> str:
    """A GitHub-markdown table (it reads as plain text too), numbers already formatted."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def mean_std(values, digits: int = 3) -> str:
    """``"0.012 ± 0.004"`` over seeds (just the value for a single seed)."""
    values = np.asarray(values, dtype=float)
    if values.size == 1:
        return f"{values[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def pyplot():
    """matplotlib's pyplot with a file-only backend, or ``None`` when matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def figure_path(out: str | None, name: str) -> str | None:
    """Where to save figure ``name`` (``None``: no ``--out`` or no matplotlib, so no figure)."""
    if out is None or pyplot() is None:
        return None
    os.makedirs(out, exist_ok=True)
    return os.path.join(out, name)


def announce_plotting(out: str | None) -> None:
    if out is not None and pyplot() is None:
        print("matplotlib is not installed (pip install tinygrad-rnn[plot]): printing tables only")


class Stopwatch:
    def __init__(self):
        self.start = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self.start


# ------------------------------------------------------------------ models and budgets
def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def recurrent_parameters(cell_type: str, input_size: int, hidden_size: int) -> int:
    """Parameters of one PyTorch-layout layer: ``G*H*(I + H) + 2*G*H`` (two bias vectors)."""
    gates = GATES[cell_type]
    return gates * hidden_size * (input_size + hidden_size) + 2 * gates * hidden_size


def hidden_size_for_budget(cell_type: str, input_size: int, output_size: int, budget: int) -> int:
    """The hidden size whose recurrent layer plus ``Linear(H, output_size)`` head comes closest to ``budget``."""
    def total(hidden):
        return recurrent_parameters(cell_type, input_size, hidden) + hidden * output_size + output_size
    upper = int(math.sqrt(budget)) + 2
    return min(range(1, upper + 1), key=lambda hidden: abs(total(hidden) - budget))


def recurrent_layer(cell_type: str, input_size: int, hidden_size: int, **kwargs) -> nn.Module:
    return {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}[cell_type](input_size, hidden_size, **kwargs)


def base_cell(cell_type: str) -> str:
    """The layer type behind a cell name: ``"LSTM+fb1"`` is an ``LSTM``."""
    return "LSTM" if cell_type == LSTM_FORGET_BIAS else cell_type


def open_forget_gates(lstm: nn.Module, value: float = 1.0) -> None:
    """Add ``value`` to every forget-gate bias (gate order ``i, f, g, o``: rows ``H:2H`` of ``bias_ih``)."""
    hidden = lstm.hidden_size
    for name, parameter in lstm.named_parameters():
        if name.startswith("bias_ih"):
            parameter.data[hidden:2 * hidden] += value


def cell(cell_type: str, input_size: int, hidden_size: int, **kwargs) -> nn.Module:
    return {"RNN": nn.RNNCell, "LSTM": nn.LSTMCell, "GRU": nn.GRUCell}[cell_type](input_size, hidden_size, **kwargs)


def seed_everything(seed: int) -> np.random.Generator:
    """Seed the engine (weights, dropout) and return a NumPy generator for the task's data."""
    tg.manual_seed(seed)
    return np.random.default_rng(10_000 + seed)


def tensor(array, dtype="float32") -> tg.Tensor:
    return tg.Tensor(np.asarray(array, dtype=dtype))


def configure(args, quick, full, **overrides):
    """The quick or full config of an experiment, with ``--seeds`` and any truthy override applied."""
    changes = {name: value for name, value in overrides.items() if value}
    if args.seeds:
        changes["seeds"] = args.seeds
    config = quick if args.quick else full
    return dataclasses.replace(config, **changes) if changes else config


def timed_run(run, config, out):
    """``run(config, out=out)`` with the plotting notice before and the total runtime after."""
    announce_plotting(out)
    watch = Stopwatch()
    report = run(config, out=out)
    print(f"\ntotal runtime {watch.seconds():.0f} s")
    return report
