"""Compile the engine's CUDA kernels with NVRTC, no GPU needed: the recurrent kernels and the Adam step.

Most machines this project runs on have no GPU, so the CUDA tests skip and a kernel that does
not compile goes unnoticed (the old elementwise LSTM kernels once named a gate parameter ``i``,
which CuPy's generated loop already declares). The recurrent kernels are one raw CUDA source
(``pointwise_cuda.module_source``, what ``cupy.RawModule`` compiles), built here for float
and double exactly as the engine builds it, with NVRTC alone and CuPy's own compile options:

    python -m venv ../venv-cupy && ../venv-cupy/bin/pip install numpy cupy-cuda12x nvidia-cuda-nvrtc-cu12
    PYTHONPATH=. ../venv-cupy/bin/python scripts/compile-cuda-kernels.py

The Adam step (``optim/adam.py``) is a CuPy ElementwiseKernel: it is wrapped the way CuPy
wraps one (below). The script checks that the sources compile and that every kernel of
``pointwise_cuda.KERNELS`` is in the PTX, not what they compute (``tests/test_rnn_cuda.py``
runs their arithmetic through NumPy interpreters; ``scripts/gpu-check.sh`` runs them on a
GPU). Warnings are printed too.
Exit status: 0 when every source compiles, 1 otherwise, 2 when CuPy or NVRTC is missing.
"""
from __future__ import annotations

import sys
from pathlib import Path

try:
    import cupy
    from cupy.cuda import nvrtc
except ImportError as error:
    sys.exit(f"compile-cuda-kernels: needs CuPy and NVRTC ({error}); see the docstring for the install line")

from tinygrad_rnn.nn.recurrent import pointwise_cuda
from tinygrad_rnn.optim import adam

# what cupy.RawModule passes NVRTC by default (plus an architecture: there is no GPU to ask)
OPTIONS = ["-ftz=true", "-arch=compute_80"]
INCLUDE = Path(cupy.__file__).parent / "_core" / "include"

# the engine's ElementwiseKernels: name -> (in_params, out_params, operation)
ELEMENTWISE = {"adam": adam._KERNEL_SOURCE, "adam_amsgrad": adam._AMSGRAD_KERNEL_SOURCE}
ELEMENTWISE_WRAPPER = """#include <cupy/carray.cuh>
typedef {ctype} T;
extern "C" __global__ void {name}({params}) {{
  #pragma unroll 1
  CUPY_FOR(i, _ind.size()) {{
    _ind.set(i);
{references}
{operation};
  }}
}}
"""


def elementwise_source(name, in_params, out_params, operation, ctype):
    """An ElementwiseKernel's source wrapped the way CuPy wraps it (a ``CUPY_FOR(i, ...)`` loop over
    ``CArray`` arguments, one reference per parameter); followed by hand, so it can drift from a future CuPy."""
    params, references = [], []
    for spec, const in ((in_params, "const "), (out_params, "")):
        for param in spec.split(","):
            param_name = param.split()[-1]
            params.append(f"{const}CArray<{ctype}, 2, 1, 1> _raw_{param_name}")
            references.append(f"    {const}T &{param_name} = _raw_{param_name}[_ind.get()];")
    params.append("CIndexer<2, 1> _ind")
    return ELEMENTWISE_WRAPPER.format(ctype=ctype, name="tinygrad_rnn_" + name, params=", ".join(params),
                                      references="\n".join(references), operation=operation)


def compile_source(source, filename, options=()):
    """``(errors, warnings, kernel names in the PTX)`` of NVRTC on ``source``."""
    program = nvrtc.createProgram(source, filename, [], [])
    try:
        nvrtc.compileProgram(program, OPTIONS + list(options))
    except nvrtc.NVRTCError:
        log = nvrtc.getProgramLog(program).splitlines()
        return [line.strip() for line in log if "error" in line], [], []
    log = nvrtc.getProgramLog(program).splitlines()
    ptx = nvrtc.getPTX(program)
    ptx = ptx.decode() if isinstance(ptx, bytes) else ptx
    entries = [line.split()[-1].rstrip("(") for line in ptx.splitlines() if line.startswith(".visible .entry")]
    return [], [line.strip() for line in log if "warning" in line], entries


def main():
    try:
        print(f"compile-cuda-kernels: CuPy {cupy.__version__}, NVRTC {'.'.join(map(str, nvrtc.getVersion()))}")
    except Exception as error:  # noqa: BLE001 - CuPy raises several types when NVRTC is absent
        sys.exit(f"compile-cuda-kernels: NVRTC is not usable here ({error}); install nvidia-cuda-nvrtc-cu12")
    failures = 0
    expected = sorted("tinygrad_rnn_" + name for name in pointwise_cuda.KERNELS)
    for ctype in pointwise_cuda.CTYPES.values():
        errors, warnings, entries = compile_source(pointwise_cuda.module_source(ctype), f"recurrent_{ctype}.cu")
        missing = sorted(set(expected) - set(entries))
        if not errors and missing:
            errors = [f"kernels missing from the PTX: {', '.join(missing)}"]
        failures += bool(errors)
        status = "FAILS: " + " | ".join(errors) if errors else f"compiles ({len(entries)} kernels)"
        print(f"recurrent kernels {ctype:6s} {status}")
        for warning in warnings:
            print(f"    {warning}")
    for name, (in_params, out_params, operation) in ELEMENTWISE.items():
        for ctype in pointwise_cuda.CTYPES.values():
            source = elementwise_source(name, in_params, out_params, operation, ctype)
            errors, warnings, _ = compile_source(source, f"{name}_{ctype}.cu", [f"-I{INCLUDE}", "--std=c++17"])
            failures += bool(errors)
            print(f"{name:17s} {ctype:6s} " + ("FAILS: " + " | ".join(errors) if errors else "compiles"))
    print(f"compile-cuda-kernels: {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
