"""Benchmark: ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` layers (through Tensor and autograd) against PyTorch.

Not a test. The same harness as ``bench/rnn_kernels.py`` (same sizes, same separate-process
PyTorch worker alternating with us, same output and gradient check, same memory figure), but our
side is the engine's layer as a user calls it: ``output, h_n = layer(x, h0)`` with ``x`` requiring
grad (as when it comes from an embedding), then one backward from the outputs with the problem's
output gradients (``tg.autograd.backward``, as the worker's ``torch.autograd.backward``).

    python bench/rnn.py                      # the issue's table: 2 threads, wall clock, + memory
    python bench/rnn.py --quick              # two sizes, two rounds
    python bench/rnn.py --threads 1 --clock cpu   # one core each, CPU time: for a busy machine
    python bench/rnn.py --device cuda --inference # on a GPU: PyTorch there too (cuDNN), both synchronised

With ``--device cuda`` every timed call of either side ends with a device synchronisation (the
wall clock then sees the GPU's work), and the memory line compares the CuPy memory pool's peak
with PyTorch's ``torch.cuda.max_memory_allocated`` (``tracemalloc`` sees no GPU memory).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rnn_kernels as harness  # noqa: E402  (sets the BLAS thread count before NumPy loads)

import tinygrad_rnn as tg  # noqa: E402
from tinygrad_rnn import backend, nn  # noqa: E402

LAYERS = {"lstm": (nn.LSTM, {}), "gru": (nn.GRU, {}), "rnn_tanh": (nn.RNN, {}),
          "rnn_relu": (nn.RNN, {"nonlinearity": "relu"})}


class LayerProblem(harness.OurProblem):
    """One engine layer with the problem's weights; the methods mirror ``torch_worker.TorchProblem``."""

    DEVICES = ("cpu", "cuda")

    def __init__(self, mode, problem, device="cpu"):
        self.mode, self.p, self.device = mode, problem, device
        layer_class, kwargs = LAYERS[mode]
        hidden = problem["weight_hh"].shape[1]
        self.layer = layer_class(problem["x"].shape[2], hidden, **kwargs)
        self.layer.load_state_dict({f"{name}_l0": problem[name]
                                    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
        self.layer.to(device)

        def tensor(name, requires_grad=False, state=False):
            value = problem[name][None] if state else problem[name]  # states: (1, B, H)
            return tg.Tensor(value, device=device, requires_grad=requires_grad)

        self.x = tensor("x", requires_grad=True)
        self.h0 = tensor("h0", requires_grad=True, state=True)
        self.c0 = tensor("c0", requires_grad=True, state=True) if mode == "lstm" else None
        self.grad_output = tensor("grad_output")
        self.grad_h_n = tensor("grad_h_n", state=True)
        self.grad_c_n = tensor("grad_c_n", state=True) if mode == "lstm" else None

    def _run(self):
        hx = (self.h0, self.c0) if self.mode == "lstm" else self.h0
        output, state = self.layer(self.x, hx)
        h_n, c_n = state if self.mode == "lstm" else (state, None)
        return output, h_n, c_n

    def _sync(self):
        if self.device != "cpu":
            backend.xp_for(self.device).cuda.Device().synchronize()

    def forward_inference(self):
        with tg.no_grad():
            result = self._run()
        self._sync()
        return result

    def forward(self):
        result = self._run()
        self._sync()
        return result

    def forward_backward(self):
        for tensor in [self.x, self.h0, self.c0, *self.layer.parameters()]:
            if tensor is not None:
                tensor.grad = None
        output, h_n, c_n = self._run()
        roots, grads = [output, h_n], [self.grad_output, self.grad_h_n]
        if c_n is not None:
            roots.append(c_n)
            grads.append(self.grad_c_n)
        tg.autograd.backward(roots, grads)  # as torch.autograd.backward: one pass, no extra ops
        self._sync()
        return output, h_n, c_n

    def results(self):
        output, h_n, c_n = self.forward_backward()
        grads = {"grad_x": self.x.grad, "grad_h0": self.h0.grad, "grad_c0": self.c0.grad if self.c0 is not None else None}
        arrays = {"output": output, "h_n": h_n[0], "c_n": c_n[0] if c_n is not None else None}
        arrays.update({k: (v[0] if k in ("grad_h0", "grad_c0") else v) for k, v in grads.items() if v is not None})
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            arrays[f"grad_{name}"] = getattr(self.layer, f"{name}_l0").grad
        return {k: backend.as_numpy(v.data) for k, v in arrays.items() if v is not None}


if __name__ == "__main__":
    harness.main(sys.argv[1:], problem_class=LayerProblem,
                 description="nn.LSTM/GRU/RNN layers (Tensor + autograd) vs PyTorch (float32)")
