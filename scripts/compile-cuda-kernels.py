"""Compile the CUDA kernels of ``tinygrad_rnn/nn/recurrent/pointwise_cuda.py`` with NVRTC, no GPU needed.

Most machines this project runs on have no GPU, so the CUDA tests skip and a kernel that does
not compile goes unnoticed (the old elementwise LSTM kernels once named a gate parameter ``i``,
which CuPy's generated loop already declares). The recurrent kernels are one raw CUDA source
(``pointwise_cuda.module_source``, what ``cupy.RawModule`` compiles), built here for float
and double exactly as the engine builds it, with NVRTC alone and CuPy's own compile options:

    python -m venv ../venv-cupy && ../venv-cupy/bin/pip install numpy cupy-cuda12x nvidia-cuda-nvrtc-cu12
    PYTHONPATH=. ../venv-cupy/bin/python scripts/compile-cuda-kernels.py

It checks that the source compiles and that every kernel of ``pointwise_cuda.KERNELS`` is in
it, not what they compute (``tests/test_rnn_cuda.py`` runs their arithmetic through a NumPy
interpreter; ``scripts/gpu-check.sh`` runs them on a GPU). Warnings are printed too.
Exit status: 0 when every source compiles, 1 otherwise, 2 when CuPy or NVRTC is missing.
"""
from __future__ import annotations

import sys

try:
    import cupy
    from cupy.cuda import nvrtc
except ImportError as error:
    sys.exit(f"compile-cuda-kernels: needs CuPy and NVRTC ({error}); see the docstring for the install line")

from tinygrad_rnn.nn.recurrent import pointwise_cuda

# what cupy.RawModule passes NVRTC by default (plus an architecture: there is no GPU to ask)
OPTIONS = ["-ftz=true", "-arch=compute_80"]


def compile_source(source, filename):
    """``(errors, warnings, kernel names in the PTX)`` of NVRTC on ``source``."""
    program = nvrtc.createProgram(source, filename, [], [])
    try:
        nvrtc.compileProgram(program, OPTIONS)
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
    print(f"compile-cuda-kernels: {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
