"""The CuPy elementwise kernels of ``recurrent.pointwise_cuda``, checked without a GPU and, where one exists, on it.

Without a GPU, a small interpreter runs each kernel's C source on NumPy arrays
(the kernels are straight-line per-element code: declarations, assignments,
``exp``/``tanh`` and ``?:``), and the whole fused sequence runs through the CuPy
step classes. That checks the kernels' arithmetic and wiring against the
reference; what only a GPU can check (compilation, launch) runs in the
``cuda``-marked test, skipped here.
"""
import re

import numpy as np
import pytest

from tinygrad_rnn import backend
from tinygrad_rnn.nn.recurrent import kernels as rnn_kernels, pointwise_cuda as rnn_cuda
from test_rnn_kernels import MODES, NAMES, loss_weights, make_problem, reference_sequence


def _python_expression(expression):
    expression = re.sub(r"\bT\((\d+)\)", r"\1", expression)
    expression = re.sub(r"\b(exp|tanh)\(", r"np.\1(", expression)
    match = re.fullmatch(r"(.+?)\?(.+):(.+)", expression)
    if match:
        expression = "np.where({}, {}, {})".format(*(part.strip() for part in match.groups()))
    return expression


def emulated_kernel(in_params, out_params, operation, name):
    """A stand-in for ``cupy.ElementwiseKernel`` that evaluates ``operation`` with NumPy, vectorised."""
    in_names = [p.split()[-1] for p in in_params.split(",")]
    out_names = [p.split()[-1] for p in out_params.split(",")]

    def run(*arrays):
        env = {"np": np}
        env.update({n: np.array(a) for n, a in zip(in_names + out_names, arrays)})
        for statement in filter(None, (s.strip() for s in operation.split(";"))):
            declarations = statement[2:].split(",") if statement.startswith("T ") else [statement]
            for declaration in declarations:
                target, expression = (part.strip() for part in declaration.split("=", 1))
                env[target] = eval(_python_expression(expression), env)  # noqa: S307 - our own kernel source
        for out_name, array in zip(out_names, arrays[len(in_names):]):
            np.copyto(array, np.broadcast_to(env[out_name], array.shape))
    return run


def use_emulated_cuda(monkeypatch, sources=None):
    """Route the fused kernels through ``rnn_cuda``'s step classes, with kernels run by the emulator."""
    if sources is not None:
        monkeypatch.setattr(rnn_cuda, "_SOURCES", sources)
    monkeypatch.setattr(backend, "elementwise_kernel", emulated_kernel)
    monkeypatch.setattr(rnn_cuda, "_KERNELS", {})
    monkeypatch.setattr(rnn_kernels, "make_pointwise",
                        lambda mode, xp, batch, hidden, dtype, fold_scale=False, bias_hn=None, empty=None:
                        rnn_cuda.make_pointwise(mode, xp, hidden, dtype, bias_hn=bias_hn))


def run_everything(mode, p, weights, lengths, reverse):
    """Sequence forward + backward and cell forward + backward, every array they return."""
    args = [p[k] for k in NAMES]
    out, h_n, c_n, saved = rnn_kernels.sequence_forward(mode, *args, lengths=lengths, reverse=reverse)
    grads = rnn_kernels.sequence_backward(saved, *weights)
    cell_h, cell_c, cell_saved = rnn_kernels.cell_forward(mode, p["x"][0], *args[1:])
    cell_grads = rnn_kernels.cell_backward(cell_saved, weights[1], weights[2])
    return (out, h_n, c_n, *grads, cell_h, cell_c, *cell_grads)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("lengths,reverse", [(None, False), ([4, 2, 1], True)])
def test_kernel_sources_match_numpy_path(monkeypatch, mode, lengths, reverse):
    p = make_problem(mode, steps=4, batch=3, input_size=3, hidden=5, seed=21)
    weights = loss_weights(mode, 4, 3, 5, seed=22)
    on_numpy = run_everything(mode, p, weights, lengths, reverse)
    use_emulated_cuda(monkeypatch)
    on_kernels = run_everything(mode, p, weights, lengths, reverse)
    expected = reference_sequence(mode, *(p[k] for k in NAMES), lengths=lengths, reverse=reverse)
    np.testing.assert_allclose(on_kernels[0], expected[0], rtol=1e-12, atol=1e-13)
    for ours, theirs in zip(on_kernels, on_numpy):
        if theirs is None:
            assert ours is None
        else:
            np.testing.assert_allclose(ours, theirs, rtol=1e-11, atol=1e-12)


def test_emulator_rejects_a_wrong_kernel(monkeypatch):
    """The emulated check must fail when a kernel's formula is wrong."""
    broken = dict(rnn_cuda._SOURCES)
    in_params, out_params, operation = broken["gru_forward"]
    assert "vr * vhn" in operation
    broken["gru_forward"] = (in_params, out_params, operation.replace("vr * vhn", "vz * vhn"))
    use_emulated_cuda(monkeypatch, broken)
    p = make_problem("gru")
    out = rnn_kernels.sequence_forward("gru", *(p[k] for k in NAMES))[0]
    expected = reference_sequence("gru", *(p[k] for k in NAMES))[0]
    assert not np.allclose(out, expected, rtol=1e-6)


def reserved_names_in(in_params, out_params, operation):
    """Parameter and local names a CuPy ElementwiseKernel may not use: ``i``, ``n``, ``_...``.

    CuPy's generated loop declares ``i``; a parameter of that name is redeclared inside
    the loop body and the kernel fails to compile, which only a GPU would show.
    """
    names = [p.split()[-1] for p in (in_params + "," + out_params).split(",")]
    for statement in operation.split(";"):
        statement = statement.strip()
        if statement.startswith("T "):
            names += [declaration.split("=")[0].strip() for declaration in statement[2:].split(",")]
    return [name for name in names if name in rnn_cuda.RESERVED_NAMES or name.startswith("_")]


@pytest.mark.parametrize("name", sorted(rnn_cuda._SOURCES))
def test_kernels_avoid_cupy_reserved_names(name):
    assert reserved_names_in(*rnn_cuda._SOURCES[name]) == []


def test_reserved_name_check_catches_a_gate_called_i():
    assert reserved_names_in("T rec_i", "T i, T n", "T _v = i + rec_i; i = _v; n = i;") == ["i", "n", "_v"]


@pytest.mark.cuda
@pytest.mark.skipif(not backend.cuda_available(), reason="CuPy or a CUDA GPU is not available on this machine")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_matches_numpy(mode, dtype):
    p = make_problem(mode, steps=7, batch=5, input_size=6, hidden=9, seed=31, dtype=dtype)
    weights = loss_weights(mode, 7, 5, 9, seed=32)
    weights = tuple(None if w is None else w.astype(dtype) for w in weights)
    lengths = [7, 3, 1, 7, 5]
    results = {}
    for device in ("cpu", "cuda"):
        args = [None if p[k] is None else backend.to_device(p[k], device) for k in NAMES]
        w = [None if g is None else backend.to_device(g, device) for g in weights]
        out, h_n, c_n, saved = rnn_kernels.sequence_forward(mode, *args, lengths=lengths, reverse=True)
        grads = rnn_kernels.sequence_backward(saved, *w)
        results[device] = [backend.as_numpy(a) for a in (out, h_n, c_n, *grads) if a is not None]
    tolerance = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    for on_gpu, on_cpu in zip(results["cuda"], results["cpu"]):
        np.testing.assert_allclose(on_gpu, on_cpu, **tolerance)
