"""Where a fused recurrent kernel's time goes: the work that runs step after step vs the large products.

Not a test. Same float32 problems and thread setting as ``bench/rnn_kernels.py``:

    python bench/rnn_profile.py                        # LSTM, the issue's five sizes, 2 BLAS threads
    python bench/rnn_profile.py --modes lstm,gru --sizes 16,100,256 --threads 1

For each size it times (median of ``--repeats`` after a warm-up, ms), in one process:

- ``whole``: ``sequence_forward`` + ``sequence_backward`` as the layers call them;
- ``step products``: the ``T`` forward (``h @ W_hh^T``, per gate) and ``T`` backward
  (``(B, G*H) @ W_hh``, after the same re-layout copy) recurrent products, in the kernel's layouts;
- ``gate math``: ``T`` forward and ``T`` backward steps of the kernel's own pointwise object;
- ``large``: the input projection, ``grad_weight_ih``, ``grad_weight_hh`` and ``grad_x``
  (4 products of ``2*T*B*I*G*H`` flops each), with their GFLOP/s;
- ``rest``: whole minus the three (loop and call overhead, masks, copies, allocation).

``in order`` = step products + gate math + rest: the part no second core can take over
except inside BLAS. Compare ``whole`` with PyTorch's fwd+bwd from ``bench/rnn.py``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rnn_kernels as harness  # noqa: E402  (sets the BLAS thread count before NumPy loads)
from timing import time_calls  # noqa: E402

np = harness.np
from tinygrad_rnn.nn.recurrent import kernels as rnn_kernels  # noqa: E402
from tinygrad_rnn.nn.recurrent.pointwise import StepBuffers, make_pointwise  # noqa: E402


def median_ms(run, repeats):
    run()                                       # warm up (buffer pool, BLAS threads)
    return statistics.median(time_calls(run, repeats)) * 1e3


def profile(mode, batch, steps, hidden, repeats):
    p = harness.make_problem(mode, batch, steps, hidden)
    gates = harness.GATES[mode]
    args = [p.get(k) for k in ("x", "h0", "c0", "weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    grads = [p["grad_output"], p["grad_h_n"], p.get("grad_c_n")]

    def whole():
        *_, saved = rnn_kernels.sequence_forward(mode, *args)
        rnn_kernels.sequence_backward(saved, *grads)

    w_hh_t = np.ascontiguousarray(p["weight_hh"].reshape(gates, hidden, hidden).transpose(0, 2, 1))
    h = p["h0"].copy()
    recurrent = np.empty((gates, batch, hidden), np.float32)
    d_step = np.random.default_rng(1).standard_normal((gates, batch, hidden)).astype(np.float32) * 0.1
    flat = np.empty((batch, gates, hidden), np.float32)
    dh = np.empty((batch, hidden), np.float32)

    def step_products():
        for _ in range(steps):
            np.matmul(h, w_hh_t, out=recurrent)
        for _ in range(steps):
            np.copyto(flat.transpose(1, 0, 2), d_step)
            np.matmul(flat.reshape(batch, -1), p["weight_hh"], out=dh)

    _, _, _, saved = rnn_kernels.sequence_forward(mode, *args)
    activations = saved.h_states[None] if saved.gates is None else saved.gates
    bias_hn = p["bias_hh"][2 * hidden:] if mode == "gru" else None
    pointwise = make_pointwise(mode, np, batch, hidden, np.float32, fold_scale=True, bias_hn=bias_hn)
    pre = np.random.default_rng(2).standard_normal(activations.shape).astype(np.float32) * 0.5
    work = np.empty_like(pre)
    state = np.empty((steps, batch, hidden), np.float32)
    hidden_n = np.empty_like(state) if mode == "gru" else None
    c_states = np.empty_like(state) if mode == "lstm" else None
    step = StepBuffers()
    step.recurrent, step.h_prev, step.c_prev, step.d_gates = recurrent, h, p.get("c0"), d_step
    step.dh, step.dc, step.direct = (np.zeros((batch, hidden), np.float32) for _ in range(3))
    step.dc = step.dc if mode == "lstm" else None

    def gate_math():
        np.copyto(work, pre)
        for t in range(steps):
            step.gates, step.h = work[:, t], state[t]
            step.c = None if c_states is None else c_states[t]
            step.hidden_n = None if hidden_n is None else hidden_n[t]
            pointwise.forward_step(step)
        np.copyto(work, activations)
        for t in range(steps):
            step.gates = work[:, t]
            step.c = None if c_states is None else c_states[t]
            step.hidden_n = None if hidden_n is None else hidden_n[t]
            pointwise.backward_step(step)

    x_rows = p["x"].reshape(steps * batch, -1)
    w_ih = p["weight_ih"].reshape(gates, hidden, -1)
    stack = np.empty((gates, steps * batch, hidden), np.float32)
    h_rows = np.ascontiguousarray(saved.h_states.reshape(steps * batch, hidden))
    grad_x, term = np.empty_like(x_rows), np.empty_like(x_rows)

    def large():
        np.matmul(x_rows, w_ih.transpose(0, 2, 1), out=stack)          # input projection
        np.matmul(stack.transpose(0, 2, 1), x_rows)                     # grad_weight_ih
        np.matmul(stack.transpose(0, 2, 1), h_rows)                     # grad_weight_hh
        np.matmul(stack[0], w_ih[0], out=grad_x)                        # grad_x
        for gate in range(1, gates):
            np.add(grad_x, np.matmul(stack[gate], w_ih[gate], out=term), out=grad_x)

    times = {name: median_ms(run, repeats) for name, run in
             (("whole", whole), ("step products", step_products), ("gate math", gate_math), ("large", large))}
    times["rest"] = times["whole"] - times["step products"] - times["gate math"] - times["large"]
    times["in order"] = times["step products"] + times["gate math"] + times["rest"]
    large_flops = 4 * 2 * steps * batch * hidden * gates * hidden
    return times, large_flops / times["large"] / 1e6


def main(argv=None):
    parser = argparse.ArgumentParser(description="where a fused recurrent kernel's time goes (float32)")
    parser.add_argument("--modes", default="lstm", help="comma list of lstm,gru,rnn_tanh,rnn_relu")
    parser.add_argument("--sizes", nargs="*", help="B,T,H triples (I = H); default: the issue's five")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", default="2", help="BLAS threads (read before NumPy loads)")
    args = parser.parse_args(argv)
    sizes = [tuple(int(v) for v in s.split(",")) for s in args.sizes] if args.sizes else harness.SIZES
    columns = ("whole", "step products", "gate math", "large", "rest", "in order")
    print(f"ms, median of {args.repeats}; {harness.THREADS} BLAS thread(s); load average "
          f"{harness.os.getloadavg()[0]:.1f}")
    print("mode       B    T    H | " + " | ".join(f"{c:>13s}" for c in columns) + " | large GFLOP/s")
    for mode in args.modes.split(","):
        for batch, steps, hidden in sizes:
            times, gflops = profile(mode, batch, steps, hidden, args.repeats)
            print(f"{mode:8s} {batch:3d} {steps:4d} {hidden:4d} | "
                  + " | ".join(f"{times[c]:13.1f}" for c in columns) + f" | {gflops:8.0f}")


if __name__ == "__main__":
    main()
