"""The backend seam: the only engine module that imports NumPy or CuPy.

Every other module asks this one for the array module of the data it holds
(``get_array_module(array)``), so each op is written once and runs on both
``"cpu"`` (NumPy) and ``"cuda"`` (CuPy).

Devices are plain strings: ``"cpu"`` or ``"cuda"``. The default device is
``"cpu"`` unless the environment variable ``TINYGRAD_RNN_DEVICE`` says
otherwise, and can be changed with :func:`set_default_device`.
"""
from __future__ import annotations

import os

import numpy

from . import profiler

__all__ = [
    "numpy", "get_array_module", "device_of", "xp_for", "to_device",
    "set_default_device", "get_default_device", "normalize_device",
    "cuda_available", "scatter_add", "as_numpy", "is_array",
    "manual_seed", "get_rng_state", "set_rng_state", "rng",
    "elementwise_kernel", "item", "raw_module", "gemm", "cuda_device_count", "use_cuda_device",
    "cuda_stream_pointer", "nccl_module",
]

_cupy = None
_cupy_error: str | None = None


def _load_cupy():
    """Import CuPy lazily: ``import tinygrad_rnn`` must need nothing but NumPy."""
    global _cupy, _cupy_error
    if _cupy is not None or _cupy_error is not None:
        return _cupy
    try:
        import cupy  # noqa: PLC0415 - optional dependency, imported on demand
    except ImportError:
        _cupy_error = ("CuPy is not installed: install the 'cuda' extra, "
                       "pip install 'tinygrad-rnn[cuda]' (cupy-cuda12x; use cupy-cuda13x on CUDA 13)")
        return None
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("no device")
    except Exception:  # CuPy raises several types when no driver/GPU exists
        _cupy_error = "CuPy is installed but no CUDA GPU is available on this machine; use device='cpu'"
        return None
    _cupy = cupy
    return _cupy


def cuda_available() -> bool:
    """True when CuPy imports and at least one CUDA GPU is present."""
    return _load_cupy() is not None


def normalize_device(device) -> str:
    """Turn ``None``/``"cpu"``/``"cuda"``/``"cuda:0"`` into ``"cpu"`` or ``"cuda"``; check CUDA exists."""
    if device is None:
        return get_default_device()
    name = str(device).lower()
    if name.startswith("cuda"):
        if _load_cupy() is None:
            raise RuntimeError(f"device 'cuda' requested but {_cupy_error}")
        return "cuda"
    if name == "cpu":
        return "cpu"
    raise ValueError(f"unknown device {device!r}: use 'cpu' or 'cuda'")


_default_device = None


def get_default_device() -> str:
    global _default_device
    if _default_device is None:
        _default_device = "cpu"
        env = os.environ.get("TINYGRAD_RNN_DEVICE")
        if env:
            _default_device = normalize_device(env)
    return _default_device


def set_default_device(device: str) -> None:
    """Set the device new tensors land on when none is given."""
    global _default_device
    _default_device = normalize_device(device)


def is_array(obj) -> bool:
    if isinstance(obj, numpy.ndarray):
        return True
    return _cupy is not None and isinstance(obj, _cupy.ndarray)


def get_array_module(array):
    """NumPy for host arrays (and scalars), CuPy for device arrays."""
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return _cupy
    return numpy


def device_of(array) -> str:
    return "cuda" if get_array_module(array) is not numpy else "cpu"


def xp_for(device: str):
    """The array module that holds data on ``device``."""
    return _load_cupy() if normalize_device(device) == "cuda" else numpy


def to_device(array, device: str):
    """Copy ``array`` to ``device`` (no copy when it already lives there).

    Profiler: host data (anything but a CuPy array) counts an upload, whatever the target,
    so the CPU counts what CUDA would; a CuPy array brought to the CPU counts a sync.
    """
    device = normalize_device(device)
    on_device = _cupy is not None and isinstance(array, _cupy.ndarray)
    if profiler.enabled:
        if not on_device:
            profiler.count_upload()
        elif device == "cpu":
            profiler.count_sync()
    if device == "cuda":
        return _cupy.asarray(array) if on_device else _load_cupy().asarray(array)
    if on_device:
        return _cupy.asnumpy(array)
    return numpy.asarray(array)


def as_numpy(array):
    """A NumPy copy/view of any backend array (for printing, saving, comparing).

    Profiler: a sync for any array (on the CPU a NumPy array is the device's data). Host
    data that never was on the device goes through ``numpy.asarray`` instead.
    """
    if profiler.enabled and is_array(array):
        profiler.count_sync()
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return _cupy.asnumpy(array)
    return numpy.asarray(array)


def item(array):
    """The Python number held by a one-element backend array: a device->host sync on CUDA."""
    if profiler.enabled:
        profiler.count_sync()
    return array.item()


def scatter_add(target, indices, values, skip=None) -> None:
    """``target[indices] += values`` with repeated indices accumulated (in place).

    NumPy spells it ``numpy.add.at``; CuPy keeps it in ``cupyx``. ``skip``: an index whose
    rows the caller overwrites afterwards (an embedding's ``padding_idx``), so the NumPy path
    may leave them out; CuPy adds them (leaving them out would need a data-dependent shape).
    For row indices (``indices (N,)`` ints, ``values (N, *target.shape[1:])``) the NumPy path
    is :func:`_scatter_add_rows`, bit-for-bit ``numpy.add.at``; anything else is ``numpy.add.at``.
    """
    if _cupy is not None and isinstance(target, _cupy.ndarray):
        import cupyx  # noqa: PLC0415

        cupyx.scatter_add(target, indices, values)
    elif (isinstance(indices, numpy.ndarray) and indices.ndim == 1 and indices.dtype.kind in "iu"
          and isinstance(values, numpy.ndarray) and values.shape == indices.shape + target.shape[1:]
          and values.dtype == target.dtype and indices.size and indices.min() >= 0):
        _scatter_add_rows(target, indices, values, skip)
    else:
        numpy.add.at(target, indices, values)


def _scatter_add_rows(target, indices, values, skip=None) -> None:
    """``numpy.add.at(target, indices, values)`` for non-negative row ``indices (N,)``, 2-3x faster.

    ``numpy.add.at`` pays per index. Here each target row's first occurrence is added by one
    buffered fancy ``+=`` (its rows are distinct there, so nothing is lost), and only the repeats
    go through ``numpy.add.at``, in their original order: every row sums the same values in the
    same order as ``numpy.add.at`` does, so the result is identical bit for bit (signed zeros too,
    as both compute ``target + value``). Rows of index ``skip`` are left out.
    """
    if skip is not None:
        kept = indices != skip
        if not kept.all():
            indices, values = indices[kept], values[kept]
            if not indices.size:
                return
    order = numpy.argsort(indices, kind="stable")      # equal indices keep their original order
    ordered = indices[order]
    first = numpy.empty(ordered.shape, dtype=bool)
    first[0] = True
    numpy.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    target[ordered[first]] += values[order[first]]
    if not first.all():
        repeats = order[~first]
        numpy.add.at(target, indices[repeats], values[repeats])


def elementwise_kernel(in_params: str, out_params: str, operation: str, name: str):
    """A CuPy ElementwiseKernel (compiled on first use); only valid when CuPy is present.

    Each call is one kernel launch, counted by the profiler.
    """
    cupy = _load_cupy()
    if cupy is None:
        raise RuntimeError(_cupy_error)
    return _CountedKernel(cupy.ElementwiseKernel(in_params, out_params, operation, name))


class _CountedKernel:
    """A CuPy kernel whose calls the profiler counts as launches (CuPy has no launch hook)."""

    __slots__ = ("kernel",)

    def __init__(self, kernel):
        self.kernel = kernel

    def __call__(self, *args, **kwargs):
        if profiler.enabled:
            profiler.count_launch()
        return self.kernel(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.kernel, name)


def raw_module(source: str):
    """A CuPy RawModule of CUDA C ``source`` (compiled on the first ``get_function``); CuPy only.

    Its functions' calls are kernel launches, counted by the profiler.
    """
    return _CountedModule(_require_cupy().RawModule(code=source))


class _CountedModule:
    """A CuPy RawModule whose functions count their launches (``get_function`` wraps them)."""

    __slots__ = ("module",)

    def __init__(self, module):
        self.module = module

    def get_function(self, name: str):
        return _CountedKernel(self.module.get_function(name))


_gemm_scalars: dict = {}
_cublas = None            # cupy_backends' cuBLAS binding, imported on the first CuPy gemm


def gemm(m: int, n: int, k: int, a, b, out, transpose_a=False, transpose_b=False, beta=0.0, offsets=(0, 0, 0)):
    """``out (m, n) = op(a) (m, k) @ op(b) (k, n) + beta * out`` in row-major order, in place.

    ``a``, ``b``, ``out``: C-contiguous arrays of one backend and dtype (float32/float64),
    read as flat memory from the element ``offsets`` ``(a, b, out)``: ``a`` holds ``(m, k)``
    (``(k, m)`` when ``transpose_a``), ``b`` holds ``(k, n)`` (``(n, k)`` when ``transpose_b``).
    NumPy: ``matmul`` on views. CuPy: one cuBLAS gemm on the pointers, no allocation, no copy,
    no check (the caller's shapes are trusted), for the recurrent kernels' per-step products;
    the profiler counts it as a launch.
    """
    global _cublas
    a_offset, b_offset, out_offset = offsets
    if _cupy is not None and isinstance(out, _cupy.ndarray):
        if _cublas is None:
            from cupy_backends.cuda.libs import cublas as _cublas  # noqa: PLC0415 - CuPy's own binding
        cublas = _cublas
        if profiler.enabled:
            profiler.count_launch()
        key = (out.dtype.char, beta)
        scalars = _gemm_scalars.get(key)
        if scalars is None:
            scalars = _gemm_scalars[key] = (numpy.array(1.0, out.dtype), numpy.array(beta, out.dtype))
        call = cublas.sgemm if out.dtype.char == "f" else cublas.dgemm
        handle = _cupy.cuda.device.get_cublas_handle()
        cublas.setPointerMode(handle, cublas.CUBLAS_POINTER_MODE_HOST)
        size = out.itemsize
        # row-major out = op(a) op(b) is column-major out^T = op(b)^T op(a)^T
        call(handle, cublas.CUBLAS_OP_T if transpose_b else cublas.CUBLAS_OP_N,
             cublas.CUBLAS_OP_T if transpose_a else cublas.CUBLAS_OP_N, n, m, k, scalars[0].ctypes.data,
             b.data.ptr + b_offset * size, k if transpose_b else n, a.data.ptr + a_offset * size,
             m if transpose_a else k, scalars[1].ctypes.data, out.data.ptr + out_offset * size, n)
        return out
    if not (a.flags.c_contiguous and b.flags.c_contiguous and out.flags.c_contiguous):
        raise ValueError("gemm reads and writes flat memory: pass C-contiguous arrays")
    a_view = a.reshape(-1)[a_offset:a_offset + m * k]
    a_view = a_view.reshape(k, m).T if transpose_a else a_view.reshape(m, k)
    b_view = b.reshape(-1)[b_offset:b_offset + k * n]
    b_view = b_view.reshape(n, k).T if transpose_b else b_view.reshape(k, n)
    out_view = out.reshape(-1)[out_offset:out_offset + m * n].reshape(m, n)
    if beta == 0.0:
        numpy.matmul(a_view, b_view, out=out_view)
    else:
        out_view *= beta
        out_view += a_view @ b_view
    return out


# ---------------------------------------------------------------- for tinygrad_rnn.distributed
def _require_cupy():
    cupy = _load_cupy()
    if cupy is None:
        raise RuntimeError(_cupy_error)
    return cupy


def cuda_device_count() -> int:
    """How many CUDA GPUs this process sees (0 without CuPy or a GPU)."""
    cupy = _load_cupy()
    return 0 if cupy is None else int(cupy.cuda.runtime.getDeviceCount())


def use_cuda_device(index: int) -> None:
    """Make GPU ``index`` the current device of this process (where new CUDA tensors land)."""
    _require_cupy().cuda.Device(int(index)).use()


def cuda_stream_pointer() -> int:
    """The raw handle of the CUDA stream CuPy queues work on (NCCL calls join that stream)."""
    return _require_cupy().cuda.get_current_stream().ptr


def nccl_module():
    """``cupy.cuda.nccl``: NCCL as CuPy wraps it; RuntimeError naming the fix when it is missing."""
    _require_cupy()
    try:
        from cupy.cuda import nccl  # noqa: PLC0415 - optional, only for multi-GPU training
    except ImportError as error:
        raise RuntimeError(f"CuPy was built without NCCL ({error}): install NCCL for your CUDA version "
                           "(pip install nvidia-nccl-cu12) or use backend='mpi'") from None
    if not getattr(nccl, "available", True):
        raise RuntimeError("CuPy cannot load the NCCL library: install it (pip install nvidia-nccl-cu12) "
                           "or use backend='mpi'")
    return nccl


# ---------------------------------------------------------------- randomness
# One generator for every random draw the engine makes (init, dropout, randn).
# Draws are made on the host and moved to the device, so a seed gives the same
# numbers on every backend.
rng = numpy.random.Generator(numpy.random.PCG64(0))


def manual_seed(seed: int) -> None:
    """Seed every random draw the engine makes."""
    rng.bit_generator.state = numpy.random.PCG64(int(seed)).state


def get_rng_state() -> dict:
    """A JSON-serialisable snapshot of the engine's generator."""
    return rng.bit_generator.state


def set_rng_state(state: dict) -> None:
    rng.bit_generator.state = state
