"""The CUDA path of the fused recurrent kernels (``recurrent.sequence_cuda`` and the raw kernels of
``recurrent.pointwise_cuda``), checked without a GPU and, where one exists, on it.

Without a GPU, a small interpreter runs each kernel's CUDA C source on NumPy arrays: the
kernel bodies are straight-line per-thread code (declarations, stores, ``tanh``, ``select``),
so the interpreter runs every statement for all threads at once, and records which thread
reads and writes which element of which buffer: a kernel whose threads touch each other's
elements (a race on a GPU), or an address outside its buffer, fails the test. The whole
CUDA sequence driver then runs on NumPy arrays (``backend.gemm`` has a NumPy branch) with
these emulated kernels, against the NumPy path (the reference, itself checked against
finite differences in ``test_rnn_kernels.py``). The launches per time step are counted.
What only a GPU can check (compilation by NVRTC, cuBLAS, launch) runs in the ``cuda``-marked
test, skipped here; ``scripts/compile-cuda-kernels.py`` compiles the source without a GPU.
"""
import ctypes
import re
import types

import numpy as np
import pytest

from tinygrad_rnn import backend, profiler
from tinygrad_rnn.nn.recurrent import kernels as rnn_kernels, pointwise_cuda, sequence_cuda
from test_rnn_kernels import MODES, NAMES, loss_weights, make_problem, reference_sequence

# ----------------------------------------------------------------------------- the interpreter
FUNCTION = re.compile(r'extern "C" __global__ void (\w+)\(([^)]*)\) \{(.*?)\n\}', re.S)
DECLARATION = re.compile(r"const (index_t|int|bool|T) (\w+) = (.+)")
STORE = re.compile(r"(\w+)\[([^\]]+)\] = (.+)")
GUARD = re.compile(r"if \((.+)\) return")


def python_expression(expression, integer=False):
    """The C expression as NumPy Python: casts dropped, ``tanh``/``select`` vectorised."""
    expression = re.sub(r"\b(index_t|T)\(", "(", expression)
    expression = re.sub(r"\btanh\(", "np.tanh(", expression)
    expression = re.sub(r"\bselect\(", "np.where(", expression)
    if integer:
        expression = expression.replace("/", "//")
    return expression


class Traced:
    """A flat view of one kernel argument that records each thread's reads and writes."""

    def __init__(self, name, array, const, threads):
        assert array.flags.c_contiguous, f"{name}: kernels take C-contiguous buffers"
        self.name, self.flat, self.const, self.threads = name, array.reshape(-1), const, threads
        self.reads, self.writes = [], []

    def _index(self, index):
        index = np.broadcast_to(np.asarray(index), self.threads().shape)
        if index.size and (index.min() < 0 or index.max() >= self.flat.size):
            raise IndexError(f"{self.name}: address {index.min()}..{index.max()} outside 0..{self.flat.size - 1}")
        return index

    def __getitem__(self, index):
        index = self._index(index)
        self.reads.append(index.copy())
        return self.flat[index]

    def __setitem__(self, index, value):
        assert not self.const, f"{self.name} is const"
        index = self._index(index)
        self.writes.append(index.copy())
        self.flat[index] = np.broadcast_to(value, index.shape)

    def races(self, threads):
        """Elements written by one thread and read or written by another."""
        owner = {}
        found = []
        for index in self.writes:
            for thread, element in zip(threads, index):
                if owner.setdefault(element, thread) != thread:
                    found.append((self.name, "write", element))
        for index in self.reads:
            for thread, element in zip(threads, index):
                if owner.get(element, thread) != thread:
                    found.append((self.name, "read", element))
        return found


class EmulatedFunction:
    def __init__(self, name, params, body, counter):
        self.name, self.counter = name, counter
        self.params = [(p.split()[-1].lstrip("*"), "*" in p, p.startswith("const")) for p in params.split(",")]
        self.statements = [s.strip() for s in body.split(";") if s.strip()]

    def __call__(self, grid, block, args):
        assert len(args) == len(self.params), f"{self.name}: {len(args)} arguments for {len(self.params)} parameters"
        self.counter.append(self.name)
        threads = np.arange(grid[0] * block[0])
        env = {"np": np, "blockIdx": types.SimpleNamespace(x=threads // block[0]),
               "blockDim": types.SimpleNamespace(x=block[0]), "threadIdx": types.SimpleNamespace(x=threads % block[0])}
        traced = []
        for (name, pointer, const), value in zip(self.params, args):
            if pointer:
                assert isinstance(value, np.ndarray), f"{self.name}: {name} must be an array"
                env[name] = Traced(name, value, const, lambda: env["idx"])
                traced.append(env[name])
            else:
                assert isinstance(value, np.int32), f"{self.name}: scalar {name} must be numpy.int32, got {type(value)}"
                env[name] = int(value)
        for statement in self.statements:
            declaration, store, guard = (p.fullmatch(statement) for p in (DECLARATION, STORE, GUARD))
            if guard:
                assert set(env) & {"idx"} and "b" not in env, "the guard must follow idx"
                env["idx"] = env["idx"][~eval(python_expression(guard[1], True), env)]  # noqa: S307
            elif declaration:
                kind, name, expression = declaration.groups()
                env[name] = eval(python_expression(expression, kind in ("index_t", "int")), env)  # noqa: S307
            elif store:
                target, index, expression = store.groups()
                value = eval(python_expression(expression), env)  # noqa: S307
                env[target][eval(python_expression(index, True), env)] = value  # noqa: S307
            else:
                raise AssertionError(f"{self.name}: the interpreter does not know {statement!r}")
        races = [race for array in traced for race in array.races(env["idx"])]
        assert not races, f"{self.name}: threads share elements: {races[:5]}"


class EmulatedModule:
    """Stands in for ``cupy.RawModule``: ``get_function(name)`` runs that function of the source."""

    def __init__(self, source, counter):
        self.functions = {name: (params, body) for name, params, body in FUNCTION.findall(source)}
        assert self.functions, "no kernel found in the source"
        self.counter = counter

    def get_function(self, name):
        return EmulatedFunction(name, *self.functions[name], self.counter)


# the ElementwiseKernel interpreter (the engine's other CuPy kernels, e.g. the Adam step of test_optim_flat.py)
def _elementwise_expression(expression):
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
                env[target] = eval(_elementwise_expression(expression), env)  # noqa: S307 - our own kernel source
        for out_name, array in zip(out_names, arrays[len(in_names):]):
            np.copyto(array, np.broadcast_to(env[out_name], array.shape))
    return run


class CountingModule:
    """The array module with every call counted, except allocations and host-side type queries."""

    NOT_LAUNCHES = {"empty", "result_type", "dtype"}

    def __init__(self, xp, counter):
        self._xp, self._counter = xp, counter

    def __getattr__(self, name):
        value = getattr(self._xp, name)
        if name in self.NOT_LAUNCHES or isinstance(value, type) or not callable(value):
            return value

        def counted(*args, **kwargs):
            result = value(*args, **kwargs)
            if not (name == "ascontiguousarray" and result is args[0]):      # no copy, no launch
                self._counter.append(name)
            return result
        return counted


class CountingBackend:
    """``backend`` as ``sequence_cuda`` sees it in these tests: its gemm calls, uploads and array operations
    are appended to ``launches``."""

    def __init__(self, launches):
        self._launches = launches

    def get_array_module(self, array):
        return CountingModule(backend.get_array_module(array), self._launches)

    def gemm(self, *args, **kwargs):
        self._launches.append("gemm")
        return backend.gemm(*args, **kwargs)

    def to_device(self, *args):
        self._launches.append("upload")
        return backend.to_device(*args)

    def __getattr__(self, name):
        return getattr(backend, name)


def use_emulated_cuda(monkeypatch, tmp_path, kernels=None):
    """Route the fused kernels through ``sequence_cuda`` on NumPy arrays, kernels run by the interpreter.

    Returns the list every launch (kernel, gemm, array operation, upload) appends its name to."""
    launches = []
    if kernels is not None:
        monkeypatch.setattr(pointwise_cuda, "KERNELS", kernels)
    monkeypatch.setenv("CUPY_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(pointwise_cuda, "_modules", {})
    monkeypatch.setattr(backend, "raw_module", lambda source: EmulatedModule(source, launches))
    monkeypatch.setattr(rnn_kernels, "uses_device_kernels", lambda xp: True)
    monkeypatch.setattr(sequence_cuda, "backend", CountingBackend(launches))
    return launches


# ----------------------------------------------------------------------------- the CUDA path = the NumPy path
def run_everything(mode, p, weights, lengths, reverse):
    """Sequence forward + backward and cell forward + backward, every array they return."""
    args = [p[k] for k in NAMES]
    out, h_n, c_n, saved = rnn_kernels.sequence_forward(mode, *args, lengths=lengths, reverse=reverse)
    grads = rnn_kernels.sequence_backward(saved, *weights)
    cell_h, cell_c, cell_saved = rnn_kernels.cell_forward(mode, p["x"][0], *args[1:])
    cell_grads = rnn_kernels.cell_backward(cell_saved, weights[1], weights[2])
    return (out, h_n, c_n, *grads, cell_h, cell_c, *cell_grads)


def assert_same(ours, theirs):
    for index, (a, b) in enumerate(zip(ours, theirs)):
        if b is None:
            assert a is None, f"result {index}: expected None"
        else:
            np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-12, err_msg=f"result {index}")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("lengths,reverse", [(None, False), (None, True), ([4, 2, 1], False), ([1, 4, 3], True)])
@pytest.mark.parametrize("bias", [True, False])
def test_cuda_path_matches_numpy_path(monkeypatch, tmp_path, mode, lengths, reverse, bias):
    p = make_problem(mode, steps=4, batch=3, input_size=3, hidden=5, seed=21, bias=bias)
    weights = loss_weights(mode, 4, 3, 5, seed=22)
    on_numpy = run_everything(mode, p, weights, lengths, reverse)
    use_emulated_cuda(monkeypatch, tmp_path)
    on_cuda = run_everything(mode, p, weights, lengths, reverse)
    expected = reference_sequence(mode, *(p[k] for k in NAMES), lengths=lengths, reverse=reverse)
    np.testing.assert_allclose(on_cuda[0], expected[0], rtol=1e-12, atol=1e-13)
    assert_same(on_cuda, on_numpy)
    if lengths is not None:
        steps = np.arange(4)[:, None]
        assert np.all(on_cuda[0][steps >= np.array(lengths)[None, :]] == 0), "padded outputs must be exactly 0"


@pytest.mark.parametrize("mode", MODES)
def test_cuda_path_without_some_gradients_and_twice(monkeypatch, tmp_path, mode):
    """No grad_output (a cell), no grad_h_n; retain_saved runs backward twice, then it refuses."""
    p = make_problem(mode, steps=5, batch=4, input_size=2, hidden=3, seed=5)
    out_weight, h_weight, c_weight = loss_weights(mode, 5, 4, 3, seed=6)
    cases = [(out_weight, None, c_weight), (None, h_weight, None)]
    expected = []
    for grads in cases:
        saved = rnn_kernels.sequence_forward(mode, *(p[k] for k in NAMES), lengths=[5, 2, 4, 1])[3]
        expected.append(rnn_kernels.sequence_backward(saved, *grads))
    use_emulated_cuda(monkeypatch, tmp_path)
    for grads, reference in zip(cases, expected):
        saved = rnn_kernels.sequence_forward(mode, *(p[k] for k in NAMES), lengths=[5, 2, 4, 1])[3]
        assert_same(rnn_kernels.sequence_backward(saved, *grads, retain_saved=True), reference)
        assert_same(rnn_kernels.sequence_backward(saved, *grads), reference)
        with pytest.raises(RuntimeError, match="retain_saved"):
            rnn_kernels.sequence_backward(saved, *grads)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("batch_first,use", [(False, ("output", "h", "c")), (True, ("output",)), (False, ("h",))])
def test_layers_on_the_cuda_path_equal_composed(monkeypatch, tmp_path, mode, batch_first, use):
    """Two bidirectional layers through the autograd Functions: non-contiguous inputs and gradients
    (batch_first, the directions' halves of the output), missing gradients, given initial states."""
    from test_rnn import BATCH, INPUT, MIXED_LENGTHS, STEPS, initial_state, make_layer, run

    layer = make_layer(mode, num_layers=2, bidirectional=True, batch_first=batch_first)
    x = np.random.default_rng(9).standard_normal((BATCH, STEPS, INPUT) if batch_first else (STEPS, BATCH, INPUT))
    hx = initial_state(mode, 2, 2)
    layer.fused = False
    composed = run(layer, x, hx, MIXED_LENGTHS, use=use)
    layer.fused = True
    launches = use_emulated_cuda(monkeypatch, tmp_path)
    fused = run(layer, x, hx, MIXED_LENGTHS, use=use)
    assert launches.count("tinygrad_rnn_" + ("rnn" if mode.startswith("rnn") else mode) + "_backward") == 4 * STEPS
    assert fused.keys() == composed.keys()
    for key in composed:
        np.testing.assert_allclose(fused[key], composed[key], rtol=1e-10, atol=1e-12, err_msg=key)


def test_cuda_path_float32(monkeypatch, tmp_path):
    p = make_problem("lstm", steps=3, batch=2, input_size=3, hidden=4, dtype=np.float32)
    use_emulated_cuda(monkeypatch, tmp_path)
    out, h_n, c_n, saved = rnn_kernels.sequence_forward("lstm", *(p[k] for k in NAMES))
    assert out.dtype == h_n.dtype == c_n.dtype == np.float32
    p64 = {k: None if v is None else v.astype(np.float64) for k, v in p.items()}
    np.testing.assert_allclose(out, reference_sequence("lstm", *(p64[k] for k in NAMES))[0], rtol=1e-5, atol=1e-6)
    grads = rnn_kernels.sequence_backward(saved, np.ones_like(out), None, None)
    assert all(g.dtype == np.float32 for g in grads if g is not None)


def test_cuda_path_refuses_float16(monkeypatch, tmp_path):
    p = make_problem("gru", dtype=np.float16)
    use_emulated_cuda(monkeypatch, tmp_path)
    with pytest.raises(TypeError, match=r"float32 or float64, got float16.*\.float\(\)"):
        rnn_kernels.sequence_forward("gru", *(p[k] for k in NAMES))


# ----------------------------------------------------------------------------- launches per step
def launches_per_call(monkeypatch, tmp_path, mode, steps, lengths):
    p = make_problem(mode, steps=steps, batch=3, input_size=3, hidden=4, seed=2)
    weights = loss_weights(mode, steps, 3, 4, seed=3)
    launches = use_emulated_cuda(monkeypatch, tmp_path)
    saved = rnn_kernels.sequence_forward(mode, *(p[k] for k in NAMES), lengths=lengths)[3]
    forward = list(launches)
    launches.clear()
    rnn_kernels.sequence_backward(saved, *weights)
    return forward, list(launches)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("padded", [False, True])
def test_two_launches_per_time_step(monkeypatch, tmp_path, mode, padded):
    """Each step is one gemm and one kernel, forward and backward, padded or not; the rest is per call."""
    short = launches_per_call(monkeypatch, tmp_path, mode, 3, [3, 1, 2] if padded else None)
    long = launches_per_call(monkeypatch, tmp_path, mode, 7, [7, 1, 2] if padded else None)
    for direction, (few, many) in zip(("forward", "backward"), zip(short, long)):
        extra = sorted(many)
        for name in few:
            extra.remove(name)
        kernel = "tinygrad_rnn_" + ("rnn" if mode.startswith("rnn") else mode) + "_" + direction
        assert sorted(extra) == sorted(["gemm", kernel] * 4), f"{direction}: 4 more steps added {extra}"


def test_launch_count_sees_an_extra_operation(monkeypatch, tmp_path):
    """The count must notice one array operation added to the per-step loop."""
    kernel_class = pointwise_cuda.StepKernel

    class SlowerKernel(kernel_class):
        def __call__(self, *args):
            sequence_cuda.backend.get_array_module(args[-1]).copyto(args[-1], args[-1])
            super().__call__(*args)
    monkeypatch.setattr(pointwise_cuda, "StepKernel", SlowerKernel)
    short = launches_per_call(monkeypatch, tmp_path, "gru", 3, None)[0]
    long = launches_per_call(monkeypatch, tmp_path, "gru", 7, None)[0]
    assert len(long) - len(short) == 3 * 4


# ----------------------------------------------------------------------------- the interpreter checks itself
def test_interpreter_rejects_a_wrong_kernel(monkeypatch, tmp_path):
    """The emulated check must fail when a kernel's formula is wrong."""
    broken = dict(pointwise_cuda.KERNELS)
    gates, params, body = broken["gru_forward"]
    assert "vr * vhn" in body
    broken["gru_forward"] = (gates, params, body.replace("vr * vhn", "vz * vhn"))
    use_emulated_cuda(monkeypatch, tmp_path, broken)
    p = make_problem("gru")
    out = rnn_kernels.sequence_forward("gru", *(p[k] for k in NAMES))[0]
    expected = reference_sequence("gru", *(p[k] for k in NAMES))[0]
    assert not np.allclose(out, expected, rtol=1e-6)


@pytest.mark.parametrize("change", [
    ("skip[idx] = select(keep, d_direct, dh_later)", "skip[j] = select(keep, d_direct, dh_later)"),   # a race
    ("const T vhn = hidden_n[here];", "const T vhn = hidden_n[here + 1];"),                      # a neighbour's
    ("const T vhn = hidden_n[here];", "const T vhn = hidden_n[here + units * 9];"),              # out of bounds
])
def test_interpreter_catches_threads_sharing_elements(monkeypatch, tmp_path, change):
    broken = dict(pointwise_cuda.KERNELS)
    gates, params, body = broken["gru_backward"]
    assert change[0] in body
    broken["gru_backward"] = (gates, params, body.replace(*change))
    use_emulated_cuda(monkeypatch, tmp_path, broken)
    p = make_problem("gru", batch=3, hidden=2)
    saved = rnn_kernels.sequence_forward("gru", *(p[k] for k in NAMES))[3]
    with pytest.raises((AssertionError, IndexError), match="share elements|outside"):
        rnn_kernels.sequence_backward(saved, *loss_weights("gru", 4, 3, 2))


# ----------------------------------------------------------------------------- backend.gemm's cuBLAS call
class FakeDeviceArray:
    """A ``cupy.ndarray`` as ``backend.gemm`` sees it: a dtype and a device address (here: into a NumPy buffer)."""

    def __init__(self, host, address):
        self.host, self.dtype, self.itemsize = host, host.dtype, host.itemsize
        self.data = types.SimpleNamespace(ptr=address)


class FakeCublas:
    """cuBLAS's column-major gemm contract, on the NumPy buffers behind fake device addresses."""

    CUBLAS_OP_N, CUBLAS_OP_T, CUBLAS_POINTER_MODE_HOST = 0, 1, 0

    def __init__(self, arrays):
        self.arrays = arrays

    def setPointerMode(self, handle, mode):  # noqa: N802 - cuBLAS's name
        assert mode == self.CUBLAS_POINTER_MODE_HOST

    def _matrix(self, address, rows, cols, ld):
        """Flat buffer and the indices of a column-major ``rows x cols`` matrix with leading dimension ``ld``."""
        assert ld >= max(1, rows), f"leading dimension {ld} < {rows} rows"
        for array in self.arrays:
            offset, remainder = divmod(address - array.data.ptr, array.itemsize)
            if 0 <= offset < array.host.size:
                assert remainder == 0
                index = offset + np.arange(rows)[:, None] + np.arange(cols)[None, :] * ld
                assert index.max() < array.host.size, "the matrix runs past its buffer"
                return array.host.reshape(-1), index
        raise AssertionError(f"address {address} is in no buffer")

    def _operand(self, op, address, rows, cols, ld):
        if op == self.CUBLAS_OP_N:
            flat, index = self._matrix(address, rows, cols, ld)
            return flat[index]
        flat, index = self._matrix(address, cols, rows, ld)
        return flat[index].T

    def sgemm(self, handle, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        scalar = ctypes.c_float if self.arrays[0].dtype == np.float32 else ctypes.c_double
        product = self._operand(transa, a, m, k, lda) @ self._operand(transb, b, k, n, ldb)
        flat, index = self._matrix(c, m, n, ldc)
        flat[index] = scalar.from_address(alpha).value * product + scalar.from_address(beta).value * flat[index]

    dgemm = sgemm


@pytest.mark.parametrize("transpose_a", [False, True])
@pytest.mark.parametrize("transpose_b", [False, True])
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_gemm_on_cuda_calls_cublas_as_the_numpy_branch_computes(monkeypatch, transpose_a, transpose_b, beta):
    """The CuPy branch's operand order, transposes and leading dimensions, against cuBLAS's contract."""
    m, n, k, offsets = 3, 5, 4, (2, 3, 1)
    rng = np.random.default_rng(0)
    a, b, out = (rng.standard_normal(size) for size in (m * k + 4, k * n + 5, m * n + 2))
    expected = backend.gemm(m, n, k, a, b, out.copy(), transpose_a, transpose_b, beta, offsets)
    fakes = [FakeDeviceArray(array, (index + 1) << 32) for index, array in enumerate((a, b, out.copy()))]
    monkeypatch.setattr(backend, "_cupy", types.SimpleNamespace(
        ndarray=FakeDeviceArray, cuda=types.SimpleNamespace(device=types.SimpleNamespace(get_cublas_handle=lambda: 1))))
    monkeypatch.setattr(backend, "_cublas", FakeCublas(fakes))
    with profiler.record() as counts:
        assert backend.gemm(m, n, k, *fakes, transpose_a, transpose_b, beta, offsets) is fakes[2]
    np.testing.assert_allclose(fakes[2].host, expected, rtol=1e-13, atol=1e-13)
    assert counts.launches == 1


def test_raw_module_kernels_count_launches(monkeypatch):
    """The profiler sees the recurrent kernels' launches on a GPU (CuPy has no hook of its own)."""
    class FakeCupy:
        class RawModule:
            def __init__(self, code):
                self.code = code

            def get_function(self, name):
                return lambda grid, block, args: f"{name} launched"

    monkeypatch.setattr(backend, "_load_cupy", lambda: FakeCupy)
    function = backend.raw_module("source").get_function("tinygrad_rnn_gru_forward")
    with profiler.record() as counts:
        assert function((1,), (256,), ()) == "tinygrad_rnn_gru_forward launched"
        function((1,), (256,), ())
    assert counts.launches == 2


# ----------------------------------------------------------------------------- cold start
def test_compiling_is_announced_once_and_only_the_first_time(monkeypatch, tmp_path, capsys):
    use_emulated_cuda(monkeypatch, tmp_path)
    monkeypatch.setattr(pointwise_cuda, "_announced", False)
    p = make_problem("lstm")
    rnn_kernels.sequence_forward("lstm", *(p[k] for k in NAMES))
    rnn_kernels.sequence_forward("lstm", *(p[k].astype(np.float32) if p[k] is not None else None for k in NAMES))
    assert capsys.readouterr().err.count("compiling CUDA kernels (first run only)") == 1
    # a new process on the same machine: CuPy's cache has the kernels, nothing to say
    monkeypatch.setattr(pointwise_cuda, "_announced", False)
    monkeypatch.setattr(pointwise_cuda, "_modules", {})
    rnn_kernels.sequence_forward("lstm", *(p[k] for k in NAMES))
    assert "compiling" not in capsys.readouterr().err


def test_one_source_holds_every_kernel():
    source = pointwise_cuda.module_source("float")
    assert source.count("__global__") == len(pointwise_cuda.KERNELS) == 6
    assert {name.split("_")[0] for name in pointwise_cuda.KERNELS} == {"lstm", "gru", "rnn"}


# ----------------------------------------------------------------------------- on a GPU
@pytest.mark.cuda
@pytest.mark.skipif(not backend.cuda_available(), reason="CuPy or a CUDA GPU is not available on this machine")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reverse", [False, True])
def test_gpu_matches_numpy(mode, dtype, reverse):
    p = make_problem(mode, steps=7, batch=5, input_size=6, hidden=9, seed=31, dtype=dtype)
    weights = loss_weights(mode, 7, 5, 9, seed=32)
    weights = tuple(None if w is None else w.astype(dtype) for w in weights)
    results = {}
    for device in ("cpu", "cuda"):
        for lengths in (None, [7, 3, 1, 7, 5]):
            args = [None if p[k] is None else backend.to_device(p[k], device) for k in NAMES]
            w = [None if g is None else backend.to_device(g, device) for g in weights]
            out, h_n, c_n, saved = rnn_kernels.sequence_forward(mode, *args, lengths=lengths, reverse=reverse)
            grads = rnn_kernels.sequence_backward(saved, *w)
            cell_h, cell_c, cell_saved = rnn_kernels.cell_forward(mode, args[0][0], *args[1:])
            cell_grads = rnn_kernels.cell_backward(cell_saved, w[1], w[2])
            results.setdefault(device, []).extend(
                backend.as_numpy(a) for a in (out, h_n, c_n, *grads, cell_h, cell_c, *cell_grads) if a is not None)
    tolerance = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    assert len(results["cuda"]) == len(results["cpu"])
    for on_gpu, on_cpu in zip(results["cuda"], results["cpu"]):
        np.testing.assert_allclose(on_gpu, on_cpu, **tolerance)
