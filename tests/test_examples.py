"""The ``--quick`` form of every experiment in ``examples/`` runs, and shows its qualitative result.

Each assertion keeps a margin over the trivial baseline and is only made where the
quick form shows it robustly (fixed seeds; see examples/README.md for the full runs).

Each quick run happens in a child process with ``OPENBLAS_NUM_THREADS=1``: on a busy
2-core machine OpenBLAS's second thread waits for a core and turns a 30-microsecond
matrix product into a 90-millisecond one, which made these runs 5-20x slower
in-process (the variable must be set before NumPy loads). The child pickles the
run's report to a temporary file (our own data, read back by this process).
"""
from __future__ import annotations

import importlib
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mpi_helpers import needs_mpi, run_mpi

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


CHILD = """
import pickle, sys
sys.path.insert(0, sys.argv[1])
module = __import__(sys.argv[2])
report = module.run(module.QUICK, verbose=False)
with open(sys.argv[3], "wb") as file:
    pickle.dump(report, file)
"""


def single_threaded_environment() -> dict:
    environment = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(EXAMPLES.parent), environment.get("PYTHONPATH")]))
    return environment


@pytest.fixture(scope="module")
def examples_path():
    sys.path.insert(0, str(EXAMPLES))
    yield
    sys.path.remove(str(EXAMPLES))


def quick(name: str, tmp_path: Path):
    """Run ``examples/<name>.py``'s quick configuration in a child process: ``(module, report)``."""
    report_path = tmp_path / f"{name}.pickle"
    finished = subprocess.run([sys.executable, "-c", CHILD, str(EXAMPLES), name, str(report_path)],
                              capture_output=True, text=True, env=single_threaded_environment(), timeout=300)
    assert finished.returncode == 0, finished.stderr
    with open(report_path, "rb") as file:
        report = pickle.load(file)
    return importlib.import_module(name), report


def test_memory_tasks_lstm_and_gru_bridge_the_gap_rnn_does_not(examples_path, tmp_path):
    module, report = quick("memory_tasks", tmp_path)
    (gap,) = module.QUICK.gaps
    mse = {cell: report["runs"]["adding"][cell][gap][0]["metric"] for cell in ("RNN", "LSTM", "GRU")}
    baseline = module.ADDING_BASELINE_MSE
    assert mse["LSTM"] < 0.3 * baseline, mse
    assert mse["GRU"] < 0.3 * baseline, mse
    assert mse["RNN"] > 0.7 * baseline, mse
    hidden_sizes = {cell: size for cell, (size, _) in report["sizes"]["adding"].items()}
    parameters = [count for _, count in report["sizes"]["adding"].values()]
    assert hidden_sizes == {"RNN": 66, "LSTM": 32, "GRU": 37}
    assert max(parameters) / min(parameters) < 1.03  # the same budget per cell type


def test_memory_task_generators(examples_path):
    module = importlib.import_module("memory_tasks")
    rng = np.random.default_rng(0)
    x, y = module.adding_batch(rng, 2000, 40)
    assert x.shape == (40, 2000, 2) and y.shape == (2000, 1)
    assert (x[:20, :, 1].sum(axis=0) == 1).all() and (x[20:, :, 1].sum(axis=0) == 1).all()
    np.testing.assert_allclose((x[:, :, 0] * x[:, :, 1]).sum(axis=0), y[:, 0], rtol=1e-6)
    assert abs(((y - 1.0) ** 2).mean() - module.ADDING_BASELINE_MSE) < 0.01
    x, y = module.copy_batch(rng, 5, gap=10, copy_length=3)
    tokens = x.argmax(axis=2)
    assert x.shape == (16, 5, module.ALPHABET + 2) and y.shape == (3, 5)
    np.testing.assert_array_equal(tokens[:3] - 1, y)
    assert (tokens[12] == module.ALPHABET + 1).all() and (tokens[3:12] == 0).all() and (tokens[13:] == 0).all()


def test_gradient_flow_vanishing_exploding_and_clipping(examples_path, tmp_path):
    module, report = quick("gradient_flow", tmp_path)
    summary = module.summarise(report)
    for cell in ("RNN", "LSTM", "GRU"):
        assert summary[(cell, "h", "init")]["decay"] < 0.8  # vanishing at initialisation
        norms = summary[(cell, "h", "init")]["norms"]
        assert norms[-1] < 1e-6 * norms[0]
    gru = summary[("GRU", "h", "trained")]["norms"][-1], summary[("GRU", "h", "init")]["norms"][-1]
    assert gru[0] > 1e3 * gru[1]  # training the GRU opened a path back to the start
    ratios = report["exploding"]
    assert ratios[("tanh", 1.5)][-1] > 1.0 > 1e-6 > ratios[("tanh", 0.5)][-1]
    assert ratios[("relu", 1.5)][-1] > 1.0
    unclipped, clipped = report["clipping"].values()
    assert not math.isfinite(unclipped[0]["mse"]) or np.nanmax(unclipped[0]["gradient_norms"]) > 1e3
    assert math.isfinite(clipped[0]["mse"])


def test_sequence_shapes_all_four_beat_their_baselines(examples_path, tmp_path):
    _, results = quick("sequence_shapes", tmp_path)
    one_to_many = results["one-to-many"][0]
    assert one_to_many["metric"] < 0.1 * one_to_many["baseline"]
    many_to_one = results["many-to-one"][0]
    assert many_to_one["metric"] > many_to_one["baseline"] + 0.25
    aligned = results["many-to-many aligned"][0]
    assert aligned["metric"] > max(aligned["baseline"], aligned["baseline_current_token"]) + 0.4
    unaligned = results["many-to-many unaligned"][0]
    assert unaligned["metric"] > 0.3 > 100 * unaligned["baseline"]


def test_airline_forecast_networks_beat_seasonal_naive_on_growth(examples_path, tmp_path):
    module, results = quick("airline_forecast", tmp_path)
    assert len(module.AIRLINE_PASSENGERS) == 144 and module.AIRLINE_PASSENGERS[-1] == 432
    naive = module.mean_error(results, "seasonal naive", "one step ahead", "MAPE %")
    assert naive == pytest.approx(10.5, abs=0.1)
    for cell in ("LSTM", "GRU"):
        assert module.mean_error(results, f"{cell}, yearly log growth", "one step ahead", "MAPE %") < 0.75 * naive


def test_attention_helps_on_long_sequences(examples_path, tmp_path):
    module, report = quick("attention_length", tmp_path)
    longest = module.QUICK.eval_lengths[-1]
    token_accuracy = {name: by_length[longest][0][0] for name, by_length in report["results"].items()}
    chance = 1 / module.QUICK.symbols
    with_attention, without = (token_accuracy[module.variant_name(attention, 32)] for attention in (True, False))
    assert with_attention > without + 0.1
    assert without > chance


def test_script_runs_from_the_command_line_and_rejects_bad_flags():
    environment = single_threaded_environment()
    script = str(EXAMPLES / "airline_forecast.py")
    finished = subprocess.run([sys.executable, script, "--quick"], capture_output=True, text=True,
                              env=environment, timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert "seasonal naive" in finished.stdout and "total runtime" in finished.stdout
    rejected = subprocess.run([sys.executable, script, "--seeds", "one,two"], capture_output=True, text=True,
                              env=environment, timeout=60)
    assert rejected.returncode == 2
    assert "--seeds wants comma-separated integers" in rejected.stderr and "Traceback" not in rejected.stderr


@needs_mpi
def test_distributed_lstm_example_trains_on_two_ranks():
    """(That two ranks train exactly like one is tested in test_distributed.py.)"""
    two = run_mpi(2, [EXAMPLES / "distributed_lstm.py", "--steps", "100"], timeout=120)
    assert two.returncode == 0, two.stdout + two.stderr
    lines = [line.split() for line in two.stdout.splitlines() if line.startswith("step")]
    assert [line[1] for line in lines] == ["1", "50", "100"]  # rank 0 alone prints
    assert all(line[-1] == "2)" for line in lines)
    losses = [float(line[3]) for line in lines]
    assert losses[-1] < 0.1 * losses[0]
