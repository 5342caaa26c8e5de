"""CUDA twins of ``pointwise``: one raw kernel per cell type and direction of data flow.

``sequence_cuda`` runs one time step as two launches, a cuBLAS product and one kernel
from here that does all of the step's pointwise work: the gate math, the state update
and the padding mask (forward), or the gate gradients, the carried gradients and the
mask (backward). The equations are those of ``pointwise`` (the NumPy reference) and
``gates`` (the sigmoid convention, written out by :func:`sigmoid`); what differs is the
layout, which is the one cuBLAS and cuDNN use:

- ``gates (T, B, G*H)`` time-major: step ``t``'s gates are one contiguous ``(B, G*H)`` block,
  so the recurrent product of a step writes (forward) and reads (backward) it directly;
  gate ``k`` of unit ``j`` of sequence ``b`` is element ``(t*B + b)*G*H + k*H + j``;
- ``rec (B, G*H)``: the step's recurrent product ``h_prev W_hh^T`` (no bias);
- states ``(T, B, H)`` and ``(B, H)``; ``lengths (B,)`` int32 on the device.

One thread owns one hidden unit ``(b, j)`` of the step (``units = B*H`` threads) and
touches only that unit's elements, so kernels may update buffers in place without races
(``tests/test_rnn_cuda.py`` checks this by running every kernel's source through a NumPy
interpreter that records which thread reads and writes which element).

Every kernel takes the same leading scalars ``units, hidden, batch, t, t_prev, first``:
``t`` the step, ``t_prev`` the step whose state it continues from (``first`` set: the
initial state ``h0``/``c0`` instead; ``t_prev`` then equals ``t`` so that every address
the kernel forms is valid: ``select`` evaluates both of its arguments). Backward kernels
also take ``out_stride``: ``B*H`` when there is a gradient of the output, ``0`` when the
caller passes one zero ``(B, H)`` block instead.

All six kernels are one source compiled once per dtype (``float``, ``double``) on first
use, so a cold start pays one NVRTC compilation for the whole recurrent path (CuPy caches
it on disk afterwards). ``scripts/compile-cuda-kernels.py`` compiles the source without a GPU.
"""
from __future__ import annotations

import hashlib
import os
import re
import sys

from ... import backend

BLOCK = 256                                 # threads per block
CTYPES = {"float32": "float", "float64": "double"}
SCALARS = ("units", "hidden", "batch", "t", "t_prev", "first")
BACKWARD_SCALARS = ("out_stride",)

PRELUDE = """typedef {ctype} T;
typedef long long index_t;
__device__ __forceinline__ T select(bool keep, T a, T b) {{ return keep ? a : b; }}
"""

# the index names every kernel body starts with (each thread: one unit (b, j) of step t)
INDEX_LINES = """
    const index_t b = idx / hidden;
    const index_t j = idx - b * hidden;
    const index_t here = index_t(t) * units + idx;
    const index_t before = index_t(t_prev) * units + idx;
    const index_t gate = (index_t(t) * batch + b) * {gates} * hidden + j;
    const index_t unit = b * {gates} * hidden + j;
    const bool keep = t < lengths[b];"""

# the later steps' gradient reaching this step's state, and with this step's output gradient
INCOMING_GRADIENT = """
    const T dh_later = carry[idx] + skip[idx];
    const T dh = dh_later + grad_output[index_t(t) * out_stride + idx];"""


def sigmoid(expression: str) -> str:
    """``sigmoid(a) = 1/2 + 1/2 * tanh(a / 2)``, the convention of ``gates``, as C text."""
    return f"(T(1) + tanh(({expression}) / T(2))) / T(2)"


def pre_activation(k: int) -> str:
    """Gate ``k``'s pre-activation ``x W_ih^T + b_ih + h_prev W_hh^T + b_hh`` for unit ``(b, j)``."""
    return (f"gates[gate + {k} * hidden] + rec[unit + {k} * hidden] + bias_ih[j + {k} * hidden] "
            f"+ bias_hh[j + {k} * hidden]")


# name: (gate count, array parameters, body); the scalars come first, see the module docstring
KERNELS = {
    # gates: x W_ih^T in, i f g o out; c_states, h_states, output: step t written
    "lstm_forward": (4, "const int* lengths, T* gates, const T* rec, const T* bias_ih, const T* bias_hh, "
                        "const T* h0, const T* c0, T* h_states, T* c_states, T* output", f"""
    const T h_before = select(first, h0[idx], h_states[before]);
    const T c_before = select(first, c0[idx], c_states[before]);
    const T vi = {sigmoid(pre_activation(0))};
    const T vf = {sigmoid(pre_activation(1))};
    const T vg = tanh({pre_activation(2)});
    const T vo = {sigmoid(pre_activation(3))};
    const T c_new = vf * c_before + vi * vg;
    const T h_new = vo * tanh(c_new);
    gates[gate] = vi;
    gates[gate + hidden] = vf;
    gates[gate + 2 * hidden] = vg;
    gates[gate + 3 * hidden] = vo;
    c_states[here] = select(keep, c_new, c_before);
    h_states[here] = select(keep, h_new, h_before);
    output[here] = select(keep, h_new, T(0));"""),
    # gates: i f g o in, dL/da out (0 where padded); dc: dL/dc' in, dL/dc_prev out;
    # skip: the part of dL/dh_prev that bypasses W_hh (all of dh_later where padded)
    "lstm_backward": (4, "const int* lengths, const T* carry, T* skip, const T* grad_output, T* gates, "
                         "const T* c0, const T* c_states, T* dc", INCOMING_GRADIENT + """
    const T vi = gates[gate];
    const T vf = gates[gate + hidden];
    const T vg = gates[gate + 2 * hidden];
    const T vo = gates[gate + 3 * hidden];
    const T c_before = select(first, c0[idx], c_states[before]);
    const T tc = tanh(c_states[here]);
    const T dc_total = dc[idx] + dh * vo * (T(1) - tc * tc);
    gates[gate] = select(keep, dc_total * vg * vi * (T(1) - vi), T(0));
    gates[gate + hidden] = select(keep, dc_total * c_before * vf * (T(1) - vf), T(0));
    gates[gate + 2 * hidden] = select(keep, dc_total * vi * (T(1) - vg * vg), T(0));
    gates[gate + 3 * hidden] = select(keep, dh * tc * vo * (T(1) - vo), T(0));
    dc[idx] = select(keep, dc_total * vf, dc[idx]);
    skip[idx] = select(keep, T(0), dh_later);"""),
    # gates: x W_ih^T in, r z n out; hidden_n: b_n = W_hn h_prev + b_hn
    "gru_forward": (3, "const int* lengths, T* gates, const T* rec, const T* bias_ih, const T* bias_hh, "
                       "const T* h0, T* h_states, T* hidden_n, T* output", f"""
    const T h_before = select(first, h0[idx], h_states[before]);
    const T vr = {sigmoid(pre_activation(0))};
    const T vz = {sigmoid(pre_activation(1))};
    const T vhn = rec[unit + 2 * hidden] + bias_hh[j + 2 * hidden];
    const T vn = tanh(gates[gate + 2 * hidden] + bias_ih[j + 2 * hidden] + vr * vhn);
    const T h_new = vn + vz * (h_before - vn);
    gates[gate] = vr;
    gates[gate + hidden] = vz;
    gates[gate + 2 * hidden] = vn;
    hidden_n[here] = vhn;
    h_states[here] = select(keep, h_new, h_before);
    output[here] = select(keep, h_new, T(0));"""),
    # gates: r z n in, dL/da_r, dL/da_z, dL/db_n (the recurrent side) out; hidden_n: b_n in,
    # dL/da_n (the input side) out; skip: dh * z, or dh_later where padded
    "gru_backward": (3, "const int* lengths, const T* carry, T* skip, const T* grad_output, T* gates, "
                        "const T* h0, const T* h_states, T* hidden_n", INCOMING_GRADIENT + """
    const T vr = gates[gate];
    const T vz = gates[gate + hidden];
    const T vn = gates[gate + 2 * hidden];
    const T vhn = hidden_n[here];
    const T h_before = select(first, h0[idx], h_states[before]);
    const T d_direct = dh * vz;
    const T dn = (dh - d_direct) * (T(1) - vn * vn);
    gates[gate] = select(keep, dn * vhn * vr * (T(1) - vr), T(0));
    gates[gate + hidden] = select(keep, dh * (h_before - vn) * vz * (T(1) - vz), T(0));
    gates[gate + 2 * hidden] = select(keep, dn * vr, T(0));
    hidden_n[here] = select(keep, dn, T(0));
    skip[idx] = select(keep, d_direct, dh_later);"""),
    # h_states: x W_ih^T in at step t, h' out (the activation is the state); relu: 0 tanh, 1 relu
    "rnn_forward": (1, "const int* lengths, const T* rec, const T* bias_ih, const T* bias_hh, const T* h0, "
                       "T* h_states, T* output, const int relu", """
    const T h_before = select(first, h0[idx], h_states[before]);
    const T a = h_states[here] + rec[unit] + bias_ih[j] + bias_hh[j];
    const T h_new = select(relu, select(a > T(0), a, T(0)), tanh(a));
    h_states[here] = select(keep, h_new, h_before);
    output[here] = select(keep, h_new, T(0));"""),
    # d_act: dL/da out (0 where padded)
    "rnn_backward": (1, "const int* lengths, const T* carry, T* skip, const T* grad_output, const T* h_states, "
                        "T* d_act, const int relu", INCOMING_GRADIENT + """
    const T h_here = h_states[here];
    const T da = select(relu, select(h_here > T(0), dh, T(0)), dh * (T(1) - h_here * h_here));
    d_act[here] = select(keep, da, T(0));
    skip[idx] = select(keep, T(0), dh_later);"""),
}

FUNCTION = """
extern "C" __global__ void tinygrad_rnn_{name}({scalars}, {arrays}) {{
    const index_t idx = index_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= units) return;{index_lines}{body}
}}
"""


def _index_lines(gates: int, body: str) -> str:
    """The lines of ``INDEX_LINES`` that ``body`` needs (directly or through a later index line)."""
    kept: list = []
    for line in reversed(INDEX_LINES.format(gates=gates).splitlines()[1:]):
        name = line.split("=")[0].split()[-1]
        if re.search(rf"\b{name}\b", body + "".join(kept)):
            kept.insert(0, "\n" + line)
    return "".join(kept)


def kernel_source(name: str) -> str:
    """The C function ``tinygrad_rnn_<name>`` (without the prelude)."""
    gates, arrays, body = KERNELS[name]
    scalars = SCALARS + (BACKWARD_SCALARS if name.endswith("_backward") else ())
    return FUNCTION.format(name=name, scalars=", ".join(f"const int {s}" for s in scalars), arrays=arrays,
                           index_lines=_index_lines(gates, body), body=body)


def module_source(ctype: str) -> str:
    """All kernels as one CUDA source for ``ctype`` (``"float"`` or ``"double"``)."""
    return PRELUDE.format(ctype=ctype) + "".join(kernel_source(name) for name in KERNELS)


_modules: dict = {}
_announced = False


def _cache_marker(source: str) -> str:
    """A file beside CuPy's kernel cache that says this source was compiled on this machine before."""
    cache_dir = os.environ.get("CUPY_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cupy", "kernel_cache")
    return os.path.join(cache_dir, "tinygrad_rnn-" + hashlib.sha1(source.encode()).hexdigest()[:16] + ".compiled")


def _announce(marker: str) -> None:
    """Say once per process, on stderr, that the first run compiles (only when no marker says it did)."""
    global _announced
    if not _announced and not os.path.exists(marker):
        print("tinygrad_rnn: compiling CUDA kernels (first run only)...", file=sys.stderr, flush=True)
        _announced = True


def _note_compiled(marker: str) -> None:
    try:
        os.makedirs(os.path.dirname(marker), exist_ok=True)
        with open(marker, "w"):
            pass
    except OSError:        # a read-only cache directory only costs the message next time
        pass


def _functions(dtype) -> dict:
    """Every kernel compiled for ``dtype``: ``{name: function}`` (compiled on first use, then cached)."""
    dtype_name = backend.numpy.dtype(dtype).name
    functions = _modules.get(dtype_name)
    if functions is None:
        if dtype_name not in CTYPES:
            raise TypeError(f"the CUDA recurrent kernels run in float32 or float64, got {dtype_name}: cast the "
                            f"layer and its input with .float() (or .double())")
        source = module_source(CTYPES[dtype_name])
        marker = _cache_marker(source)
        _announce(marker)
        module = backend.raw_module(source)
        functions = {name: module.get_function("tinygrad_rnn_" + name) for name in KERNELS}
        _note_compiled(marker)
        _modules[dtype_name] = functions
    return functions


class StepKernel:
    """One kernel of ``KERNELS`` bound to a dtype and a step size: ``kernel(*args)`` launches it.

    ``args`` are the kernel's parameters in order (the scalars as ``numpy.int32``, see
    :func:`scalars`); one launch of ``ceil(units / BLOCK)`` blocks.
    """

    def __init__(self, name: str, dtype, units: int):
        self.function = _functions(dtype)[name]
        self.grid, self.block = ((units + BLOCK - 1) // BLOCK,), (BLOCK,)

    def __call__(self, *args):
        self.function(self.grid, self.block, args)


def scalars(*values):
    """Kernel scalars as ``numpy.int32`` (what a CUDA ``int`` parameter needs)."""
    int32 = backend.numpy.int32
    for value in values:
        if not -2**31 <= value < 2**31:
            raise ValueError(f"{value} does not fit a CUDA int: the recurrent kernels take sizes below 2**31")
    return tuple(int32(value) for value in values)


__all__ = ["KERNELS", "BLOCK", "StepKernel", "scalars", "module_source", "kernel_source", "sigmoid"]
