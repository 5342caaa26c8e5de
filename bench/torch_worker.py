"""PyTorch reference timings for the benchmarks, run in its own process.

Run with a Python that has PyTorch (never a dependency of this project)::

    python bench/torch_worker.py --mode lstm --data problem.npz --out result.npz --rounds 5 --repeats 5
    python bench/torch_worker.py --mode gru --data problem.npz --serve      # driven by bench/*.py
    python bench/torch_worker.py --mode seq2seq --data batches.npz --serve --device cuda

Why a separate process: on a 2-core machine PyTorch's OpenMP threads keep spinning
after each parallel region and distort anything timed beside them, so the
benchmarks alternate between this process and their own.

Modes ``lstm``, ``gru``, ``rnn_tanh``, ``rnn_relu``: one recurrent layer. Input npz (float32):
``x (T, B, I)``, ``h0 (B, H)``, ``c0 (B, H)`` (LSTM), ``weight_ih (G*H, I)``, ``weight_hh (G*H, H)``,
``bias_ih``, ``bias_hh (G*H,)``, and the gradients fed to backward ``grad_output (T, B, H)``,
``grad_h_n (B, H)``, ``grad_c_n (B, H)`` (LSTM). Timed, each a list of seconds per call:
``forward_inference`` (no grad), ``forward`` (input requires grad, graph kept),
``forward_backward`` (forward plus ``torch.autograd.backward`` of the three outputs).
Output npz: those lists as ``time_<name>`` plus ``output``, ``h_n``, ``c_n`` and the
gradients ``grad_x``, ``grad_h0``, ``grad_c0``, ``grad_weight_ih``, ``grad_weight_hh``,
``grad_bias_ih``, ``grad_bias_hh`` for checking.

Mode ``seq2seq``: the translator's PyTorch twin (``bench/torch_seq2seq.py``, whose docstring
describes its npz), timed ``train``, ``greedy`` and (when the npz asks) ``beam``.

``--device cuda``: the problem lives on the GPU (cuDNN for the layers), and every timed call
ends with ``torch.cuda.synchronize()``, so the wall clock sees the GPU's work.

``--serve`` reads one command per line on stdin and answers one JSON line on stdout:
``time REPEATS`` -> ``{"<timed name>": [seconds, ...], ...}``;
``check PATH`` -> writes the outputs and gradients to PATH, answers ``{"ok": true}``;
``memory`` -> ``{"peak_bytes": N}``: what one timed training call allocates on the GPU at its
peak over what was allocated before (``torch.cuda.max_memory_allocated``), null on the CPU;
``quit``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch
from timing import time_methods  # bench/timing.py: this script's folder is first on sys.path

TIMED = ("forward_inference", "forward", "forward_backward")


class TorchProblem:
    """A one-layer torch.nn.LSTM/GRU/RNN loaded with the npz's weights and inputs."""

    timed = TIMED

    def __init__(self, mode, data, device="cpu"):
        self.mode = mode
        self.device = torch.device(device)
        x = data["x"]
        hidden = data["weight_hh"].shape[1]
        has_bias = "bias_ih" in data
        if mode == "lstm":
            module = torch.nn.LSTM(x.shape[2], hidden, bias=has_bias)
        elif mode == "gru":
            module = torch.nn.GRU(x.shape[2], hidden, bias=has_bias)
        else:
            module = torch.nn.RNN(x.shape[2], hidden, nonlinearity=mode[len("rnn_"):], bias=has_bias)
        names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if has_bias else [])
        with torch.no_grad():
            for name in names:
                getattr(module, name + "_l0").copy_(torch.from_numpy(data[name]))
        self.module = module.to(self.device)
        self.parameters = [getattr(module, name + "_l0") for name in names]
        self.names = names

        def tensor(name, requires_grad=False, state=False):
            value = torch.from_numpy(data[name])
            value = (value[None] if state else value).to(self.device)
            return value.requires_grad_(True) if requires_grad else value

        self.x = tensor("x", requires_grad=True)
        self.h0 = tensor("h0", requires_grad=True, state=True)
        self.c0 = tensor("c0", requires_grad=True, state=True) if mode == "lstm" else None
        self.grads = [tensor("grad_output"), tensor("grad_h_n", state=True)]
        if mode == "lstm":
            self.grads.append(tensor("grad_c_n", state=True))

    def _sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _run(self):
        state = (self.h0, self.c0) if self.mode == "lstm" else self.h0
        output, state = self.module(self.x, state)
        return [output, *state] if self.mode == "lstm" else [output, state]

    def forward(self):
        outputs = self._run()
        self._sync()
        return outputs

    def forward_inference(self):
        with torch.no_grad():
            return self.forward()

    def forward_backward(self):
        for tensor in [self.x, self.h0, self.c0, *self.parameters]:
            if tensor is not None:
                tensor.grad = None
        outputs = self._run()
        torch.autograd.backward(outputs, self.grads)
        self._sync()
        return outputs

    def warm_up(self):
        self.time(2)                                   # oneDNN primitives / cuDNN plans, allocators

    def time(self, repeats, clock=time.perf_counter):
        return time_methods(self, self.timed, repeats, clock)

    def memory(self):
        """Peak bytes of one forward+backward over those allocated before it, on the GPU; None on the CPU."""
        if self.device.type != "cuda":
            return None
        self._sync()
        baseline = torch.cuda.memory_allocated(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        outputs = self.forward_backward()
        peak = torch.cuda.max_memory_allocated(self.device) - baseline
        del outputs
        return peak

    def results(self):
        outputs = self.forward_backward()
        arrays = {"output": outputs[0], "h_n": outputs[1][0], "grad_x": self.x.grad, "grad_h0": self.h0.grad[0]}
        if self.mode == "lstm":
            arrays["c_n"] = outputs[2][0]
            arrays["grad_c0"] = self.c0.grad[0]
        for name, parameter in zip(self.names, self.parameters):
            arrays["grad_" + name] = parameter.grad
        return {k: v.detach().cpu().numpy() for k, v in arrays.items()}


def serve(problem, clock):
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "time":
            answer = problem.time(int(argument), clock)
        elif command == "check":
            np.savez(argument, **problem.results())
            answer = {"ok": True}
        elif command == "memory":
            answer = {"peak_bytes": problem.memory()}
        elif command == "quit":
            break
        else:
            answer = {"error": f"unknown command {command!r}"}
        print(json.dumps(answer), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", required=True, choices=["lstm", "gru", "rnn_tanh", "rnn_relu", "seq2seq"])
    parser.add_argument("--data", required=True, help="npz with weights, inputs and output gradients")
    parser.add_argument("--out", help="npz to write timings, outputs and gradients to")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: process CPU time, robust on a busy machine but meaningful with 1 thread only")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (cuDNN; timed with CUDA synchronisation)")
    parser.add_argument("--serve", action="store_true", help="answer commands on stdin (see module doc)")
    args = parser.parse_args(argv)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(args.threads)
    if args.device != "cpu" and not torch.cuda.is_available():
        sys.exit(f"torch_worker: --device {args.device} but this PyTorch sees no GPU "
                 f"(torch {torch.__version__}, CUDA {torch.version.cuda})")
    with np.load(args.data) as data:
        arrays = {k: data[k] for k in data.files}
    if args.mode == "seq2seq":
        from torch_seq2seq import Seq2SeqProblem
        problem = Seq2SeqProblem(arrays, args.device)
    else:
        problem = TorchProblem(args.mode, arrays, args.device)
    if args.serve:
        ready = {"ready": True, "torch": torch.__version__, "device": args.device,
                 "cudnn": torch.backends.cudnn.version() if args.device != "cpu" else None}
        if args.mode == "seq2seq":  # its check must see the weights before any training
            ready["parameters"] = sum(p.numel() for p in problem.model.parameters())
        else:
            problem.warm_up()
        print(json.dumps(ready), flush=True)
        serve(problem, clock)
        return
    problem.warm_up()
    times = {name: [] for name in problem.timed}
    for _ in range(args.rounds):
        for name, seconds in problem.time(args.repeats, clock).items():
            times[name].extend(seconds)
    for name in problem.timed:
        print(f"{name:18s} median {np.median(times[name]) * 1e3:8.2f} ms  "
              f"spread {np.percentile(times[name], 10) * 1e3:.2f}-{np.percentile(times[name], 90) * 1e3:.2f}")
    if args.out:
        np.savez(args.out, **problem.results(), **{f"time_{k}": np.asarray(v) for k, v in times.items()})


if __name__ == "__main__":
    main()
