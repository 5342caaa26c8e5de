"""Benchmark: the raw fused recurrent kernels (``tinygrad_rnn.nn.recurrent.kernels``) against PyTorch.

Not a test. Times, in float32, one layer of LSTM/GRU/RNN for (B, T, I=H) in the
issue's sizes: inference forward, training forward (state kept for backward) and
forward+backward (input gradient included, as when the input comes from an
embedding). PyTorch runs in a separate process (``bench/torch_worker.py``, 2
threads) that alternates with this one, so neither's threads disturb the other's
timings; both get the same weights, inputs and output gradients, and their outputs
and gradients (input, initial state, weights) are compared with float32 tolerances.

PyTorch is looked for in ``--torch-python``, then ``$BENCH_TORCH_PYTHON``, then this
interpreter, then ``../venv-torch/bin/python`` beside the repository. Without it the
table has our numbers only, and says loudly that the reference is missing.

    python bench/rnn_kernels.py                        # full table + memory figure
    python bench/rnn_kernels.py --modes lstm --sizes 64,32,256 --rounds 3
    python bench/rnn_kernels.py --memory-only
    python bench/rnn_kernels.py --threads 1 --clock cpu   # both on one core, CPU time: for a busy machine

The memory figure: peak bytes that LSTM forward+backward at (B, T, I=H) = (64, 100,
512) allocates over the baseline with inputs, weights and output gradients already
allocated, from ``tracemalloc`` (NumPy reports its buffers to it), against the
activations BPTT must keep: gates, c and h for every step, ``T*B*6H`` floats.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path


def _threads_from_argv(argv):
    """``--threads N`` must reach OpenBLAS before NumPy loads it, so it is read before the import."""
    for index, arg in enumerate(argv):
        if arg == "--threads" and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--threads="):
            return arg.split("=", 1)[1]
    return "2"


THREADS = _threads_from_argv(sys.argv)
os.environ["OPENBLAS_NUM_THREADS"] = THREADS

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tinygrad_rnn import backend  # noqa: E402
from tinygrad_rnn.nn.recurrent import kernels as rnn_kernels  # noqa: E402
from tinygrad_rnn.nn.recurrent import workspace  # noqa: E402
from timing import time_methods  # noqa: E402  (bench/timing.py, beside this file)

SIZES = [(32, 32, 128), (64, 32, 256), (64, 64, 256), (64, 32, 512), (16, 100, 256)]
MODES = ["lstm", "gru", "rnn_tanh"]
GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}
TIMED = ("forward_inference", "forward", "forward_backward")
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
RESULT_NAMES = ["grad_x", "grad_h0", "grad_c0", "grad_weight_ih", "grad_weight_hh", "grad_bias_ih", "grad_bias_hh"]


def make_problem(mode, batch, steps, hidden, seed=0):
    """Float32 weights (PyTorch's uniform init), inputs, initial state and output gradients."""
    rng = np.random.default_rng(seed)
    bound = 1 / np.sqrt(hidden)
    gates = GATES[mode] * hidden
    problem = {
        "x": rng.standard_normal((steps, batch, hidden)),
        "h0": rng.standard_normal((batch, hidden)) * 0.1,
        "weight_ih": rng.uniform(-bound, bound, (gates, hidden)),
        "weight_hh": rng.uniform(-bound, bound, (gates, hidden)),
        "bias_ih": rng.uniform(-bound, bound, gates),
        "bias_hh": rng.uniform(-bound, bound, gates),
        "grad_output": rng.standard_normal((steps, batch, hidden)) * 0.1,
        "grad_h_n": rng.standard_normal((batch, hidden)) * 0.1,
    }
    if mode == "lstm":
        problem["c0"] = rng.standard_normal((batch, hidden)) * 0.1
        problem["grad_c_n"] = rng.standard_normal((batch, hidden)) * 0.1
    return {k: v.astype(np.float32) for k, v in problem.items()}


class OurProblem:
    """The same problem on our kernels; methods mirror ``torch_worker.TorchProblem``.

    NumPy arrays on the CPU only (``DEVICES``): ``bench/rnn.py`` times the layers on a GPU.
    """

    DEVICES = ("cpu",)

    def __init__(self, mode, problem, device="cpu"):
        self.mode, self.p = mode, problem
        self.args = [problem.get(k) for k in ("x", "h0", "c0", "weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        self.grads = [problem["grad_output"], problem["grad_h_n"], problem.get("grad_c_n")]

    def forward_inference(self):
        return rnn_kernels.sequence_forward(self.mode, *self.args, need_grad=False)

    def forward(self):
        return rnn_kernels.sequence_forward(self.mode, *self.args, need_grad=True)

    def forward_backward(self):
        output, h_n, c_n, saved = self.forward()
        return (output, h_n, c_n), rnn_kernels.sequence_backward(saved, *self.grads)

    def time(self, repeats, clock=time.perf_counter):
        return time_methods(self, TIMED, repeats, clock)

    def results(self):
        (output, h_n, c_n), grads = self.forward_backward()
        arrays = {"output": output, "h_n": h_n, "c_n": c_n, **dict(zip(RESULT_NAMES, grads))}
        return {k: v for k, v in arrays.items() if v is not None}


def find_torch_python(explicit):
    candidates = [explicit, os.environ.get("BENCH_TORCH_PYTHON")]
    if importlib.util.find_spec("torch") is not None:
        candidates.append(sys.executable)
    candidates.append(str(REPO.parent / "venv-torch" / "bin" / "python"))
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            # find_spec, not import: importing torch takes seconds (tens on a busy machine)
            probe = subprocess.run([candidate, "-c", "import importlib.util, sys; "
                                    "sys.exit(importlib.util.find_spec('torch') is None)"], capture_output=True)
            if probe.returncode == 0:
                return candidate
    return None


class TorchWorker:
    """``bench/torch_worker.py --serve`` in its own process, one problem at a time."""

    def __init__(self, python, mode, data_path, clock_name, device="cpu"):
        self.process = subprocess.Popen(
            [python, str(REPO / "bench" / "torch_worker.py"), "--mode", mode, "--data", data_path, "--serve",
             "--threads", THREADS, "--clock", clock_name, "--device", device],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.ready = self._read()

    def _read(self):
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the PyTorch worker exited early (see its error above)")
        return json.loads(line)

    def ask(self, command):
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self):
        self.process.stdin.write("quit\n")
        self.process.stdin.flush()
        self.process.wait(timeout=30)


def compare(ours, theirs):
    """Worst ``max|a - b| / max|b|`` over every output and gradient both computed."""
    worst, where = 0.0, ""
    for name, reference in theirs.items():
        if name not in ours:
            continue
        scale = max(float(np.abs(reference).max()), 1e-30)
        error = float(np.abs(ours[name] - reference).max()) / scale
        if error > worst:
            worst, where = error, name
    return worst, where


def summarize(seconds):
    seconds = np.asarray(seconds)
    median = float(np.median(seconds))
    spread = (np.percentile(seconds, 90) - np.percentile(seconds, 10)) / median * 100
    return median, spread


def bench_one(mode, size, rounds, repeats, torch_python, tmpdir, clock_name="wall", problem_class=OurProblem,
              device="cpu"):
    batch, steps, hidden = size
    problem = make_problem(mode, batch, steps, hidden)
    ours = problem_class(mode, problem, device)
    ours.time(2)                                          # warm up
    worker = None
    if torch_python:
        data_path = os.path.join(tmpdir, "problem.npz")
        np.savez(data_path, **problem)
        worker = TorchWorker(torch_python, mode, data_path, clock_name, device)
    times = {"ours": {k: [] for k in TIMED}, "torch": {k: [] for k in TIMED}}
    for _ in range(rounds):
        if worker:
            for name, seconds in worker.ask(f"time {repeats}").items():
                times["torch"][name].extend(seconds)
            time.sleep(0.2)                               # let PyTorch's OpenMP threads go idle
        for name, seconds in ours.time(repeats, CLOCKS[clock_name]).items():
            times["ours"][name].extend(seconds)
    check = None
    if worker:
        result_path = os.path.join(tmpdir, "torch_result.npz")
        worker.ask(f"check {result_path}")
        worker.close()
        with np.load(result_path) as theirs:
            check = compare(ours.results(), {k: theirs[k] for k in theirs.files})
    return times, check


def print_row(mode, size, times, check, columns):
    cells = [f"{mode:8s} {size[0]:3d} {size[1]:4d} {size[2]:4d}"]
    for name in columns:
        our_median, our_spread = summarize(times["ours"][name])
        cell = f"{our_median * 1e3:7.2f} ±{our_spread:3.0f}%"
        if times["torch"][name]:
            their_median, their_spread = summarize(times["torch"][name])
            best_ratio = min(times["ours"][name]) / min(times["torch"][name])
            cell += (f" {their_median * 1e3:7.2f} ±{their_spread:3.0f}% {our_median / their_median:5.2f}x"
                     f" ({best_ratio:4.2f}x)")
        cells.append(cell)
    if check is not None:
        error, where = check
        cells.append(f"{'ok' if error < 2e-4 else 'MISMATCH'} {error:.1e}{' ' + where if error >= 2e-4 else ''}")
    print(" | ".join(cells), flush=True)


def wait_for_quiet(max_load, max_wait):
    """Wait (up to ``max_wait`` s) until the 1-minute load average is below ``max_load``."""
    deadline = time.time() + max_wait
    while os.getloadavg()[0] >= max_load and time.time() < deadline:
        time.sleep(5)
    return os.getloadavg()[0]


MEMORY_SIZE = (64, 100, 512)


def measure_memory(batch=64, steps=100, hidden=512, problem_class=OurProblem):
    """Peak bytes LSTM forward+backward adds over the baseline (``tracemalloc``), and the activations BPTT keeps."""
    problem = make_problem("lstm", batch, steps, hidden)
    ours = problem_class("lstm", problem)
    ours.forward_backward()                               # warm up outside the measurement
    workspace.clear()                                     # recycled buffers would hide allocations
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    result = ours.forward_backward()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del result
    activations = steps * batch * 6 * hidden * 4
    return peak - baseline, activations, workspace.held_bytes()


def measure_gpu_memory(problem_class, device, torch_python, tmpdir, clock_name):
    """LSTM forward+backward at ``MEMORY_SIZE`` on the GPU: the CuPy pool's peak over its baseline
    (``bench/gpu_memory.py``) against PyTorch's ``max_memory_allocated`` over its baseline (None without PyTorch)."""
    from gpu_memory import pool_peak

    batch, steps, hidden = MEMORY_SIZE
    problem = make_problem("lstm", batch, steps, hidden)
    ours = problem_class("lstm", problem, device)
    ours.forward_backward()                               # warm up outside the measurement
    workspace.clear()                                     # recycled buffers would hide allocations
    with pool_peak() as peak:
        result = ours.forward_backward()
    del result
    theirs = None
    if torch_python:
        data_path = os.path.join(tmpdir, "memory.npz")
        np.savez(data_path, **problem)
        worker = TorchWorker(torch_python, "lstm", data_path, clock_name, device)
        theirs = worker.ask("memory")["peak_bytes"]
        worker.close()
    return peak["bytes"], theirs, steps * batch * 6 * hidden * 4


def main(argv=None, problem_class=OurProblem, description="fused recurrent kernels vs PyTorch (float32)"):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--modes", default=",".join(MODES), help="comma list of lstm,gru,rnn_tanh,rnn_relu")
    parser.add_argument("--sizes", nargs="*", help="B,T,H triples (I = H); default: the issue's five")
    parser.add_argument("--rounds", type=int, default=5, help="alternations between PyTorch and ours")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per round and process")
    parser.add_argument("--torch-python", help="a Python interpreter with PyTorch installed")
    parser.add_argument("--threads", default="2", help="threads for OpenBLAS and PyTorch alike (default 2)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: process CPU time, for a busy machine; needs --threads 1 to mean anything")
    parser.add_argument("--memory-only", action="store_true")
    parser.add_argument("--inference", action="store_true", help="also time the no-grad forward")
    parser.add_argument("--quiet-load", type=float, help="before each row, wait until the load average is below")
    parser.add_argument("--quick", action="store_true", help="two sizes, two rounds: a smoke run")
    parser.add_argument("--device", default="cpu", help="cpu or cuda: ours and PyTorch (cuDNN) both there")
    args = parser.parse_args(argv)
    device = "cuda" if args.device.startswith("cuda") else args.device
    if device not in problem_class.DEVICES:
        parser.error(f"--device {args.device}: this benchmark runs on {', '.join(problem_class.DEVICES)} only "
                     "(bench/rnn.py times the layers on a GPU)")
    if device != "cpu" and args.clock == "cpu":
        parser.error("--clock cpu cannot see GPU work: use the wall clock (the default) with --device cuda")
    if device != "cpu":
        try:
            backend.normalize_device(args.device)
        except RuntimeError as error:
            parser.error(f"--device {args.device}: {error}")
    if args.quick:
        args.sizes = args.sizes or ["32,32,128", "64,32,256"]
        args.rounds = min(args.rounds, 2)
    if args.clock == "cpu" and THREADS != "1":
        parser.error("--clock cpu adds up the CPU time of every thread (spinning ones too): use it with --threads 1")

    if not args.memory_only:
        sizes = [tuple(int(v) for v in s.split(",")) for s in args.sizes] if args.sizes else SIZES
        torch_python = find_torch_python(args.torch_python)
        if torch_python is None:
            print("!" * 78 + "\n!!! PyTorch NOT FOUND: the reference is MISSING, only our timings are shown.\n"
                  "!!! Give --torch-python or BENCH_TORCH_PYTHON (a venv with torch==2.13.0).\n" + "!" * 78)
        columns = (["forward_inference"] if args.inference else []) + ["forward", "forward_backward"]
        titles = {"forward_inference": "fwd (no grad)", "forward": "fwd (training)", "forward_backward": "fwd+bwd"}
        print(f"float32, ms: median ±(p90-p10)/median{'; ours, PyTorch, ratio of medians (ratio of minima)' if torch_python else ''}; "
              f"PyTorch: {torch_python or 'MISSING'}; {args.device}; {THREADS} thread(s), {args.clock} clock; "
              f"load average {os.getloadavg()[0]:.1f}")
        width = 46 if torch_python else 14
        print("mode       B    T    H | " + " | ".join(f"{titles[c]:^{width}s}" for c in columns)
              + (" | check" if torch_python else ""))
        with tempfile.TemporaryDirectory() as tmpdir:
            for mode in args.modes.split(","):
                for size in sizes:
                    if args.quiet_load:
                        wait_for_quiet(args.quiet_load, 600)
                    times, check = bench_one(mode, size, args.rounds, args.repeats, torch_python, tmpdir,
                                             args.clock, problem_class, args.device)
                    print_row(mode, size, times, check, columns)
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    if device != "cpu":
        with tempfile.TemporaryDirectory() as tmpdir:
            ours, theirs, activations = measure_gpu_memory(problem_class, args.device,
                                                           find_torch_python(args.torch_python), tmpdir, args.clock)
        line = (f"memory, LSTM fwd+bwd {MEMORY_SIZE} on {args.device}: ours {ours / 1e6:.1f} MB "
                f"= {ours / activations:.2f}x the activations BPTT keeps ({activations / 1e6:.1f} MB; CuPy pool peak)")
        if theirs is not None:
            line += f", PyTorch {theirs / 1e6:.1f} MB = {theirs / activations:.2f}x (max_memory_allocated)"
        print(line + "; each over its baseline with inputs, weights and output gradients allocated")
        return
    peak, activations, pooled = measure_memory(problem_class=problem_class)
    print(f"memory, LSTM fwd+bwd (64, 100, 512): peak over baseline {peak / 1e6:.1f} MB "
          f"= {peak / activations:.2f}x the activations BPTT keeps ({activations / 1e6:.1f} MB); "
          f"tracemalloc from an empty buffer pool, inputs, weights and output gradients allocated before "
          f"the baseline; the pool keeps {pooled / 1e6:.1f} MB for the next step")


if __name__ == "__main__":
    main()
