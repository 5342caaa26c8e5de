"""Compile the CuPy elementwise kernels of ``tinygrad_rnn/nn/recurrent/pointwise_cuda.py`` with NVRTC, no GPU needed.

Most machines this project runs on have no GPU, so the CUDA tests skip and a kernel that does
not compile goes unnoticed (the LSTM kernels once named a gate parameter ``i``, which CuPy's
generated loop already declares). This script wraps each kernel's C source the way CuPy's
``ElementwiseKernel`` does (a ``CUPY_FOR(i, ...)`` loop over ``CArray`` arguments, one
reference per parameter) and compiles it for float and double with NVRTC alone:

    python -m venv ../venv-cupy && ../venv-cupy/bin/pip install numpy cupy-cuda12x nvidia-cuda-nvrtc-cu12
    PYTHONPATH=. ../venv-cupy/bin/python scripts/compile-cuda-kernels.py

It checks that the sources compile, not what they compute (``tests/test_rnn_cuda.py`` runs
their arithmetic through a NumPy interpreter; ``scripts/gpu-check.sh`` runs them on a GPU).
The wrapper follows CuPy's code generation by hand, so it can drift from a future CuPy.
Exit status: 0 when every kernel compiles, 1 otherwise, 2 when CuPy or NVRTC is missing.
"""
from __future__ import annotations

import sys
from pathlib import Path

try:
    import cupy
    from cupy.cuda import nvrtc
except ImportError as error:
    sys.exit(f"compile-cuda-kernels: needs CuPy and NVRTC ({error}); see the docstring for the install line")

from tinygrad_rnn.nn.recurrent import pointwise_cuda as rnn_cuda

INCLUDE = Path(cupy.__file__).parent / "_core" / "include"
WRAPPER = """#include <cupy/carray.cuh>
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


def kernel_source(name, in_params, out_params, operation, ctype):
    params, references = [], []
    for spec, const in ((in_params, "const "), (out_params, "")):
        for param in spec.split(","):
            param_name = param.split()[-1]
            params.append(f"{const}CArray<{ctype}, 2, 1, 1> _raw_{param_name}")
            references.append(f"    {const}T &{param_name} = _raw_{param_name}[_ind.get()];")
    params.append("CIndexer<2, 1> _ind")
    return WRAPPER.format(ctype=ctype, name="tinygrad_rnn_" + name, params=", ".join(params),
                          references="\n".join(references), operation=operation)


def compile_errors(source, filename):
    """NVRTC's error lines for ``source`` (empty when it compiles)."""
    program = nvrtc.createProgram(source, filename, [], [])
    try:
        nvrtc.compileProgram(program, [f"-I{INCLUDE}", "--std=c++17", "-arch=compute_80"])
    except nvrtc.NVRTCError:
        return [line.strip() for line in nvrtc.getProgramLog(program).splitlines() if "error" in line]
    return []


def main():
    try:
        print(f"compile-cuda-kernels: CuPy {cupy.__version__}, NVRTC {'.'.join(map(str, nvrtc.getVersion()))}")
    except Exception as error:  # noqa: BLE001 - CuPy raises several types when NVRTC is absent
        sys.exit(f"compile-cuda-kernels: NVRTC is not usable here ({error}); install nvidia-cuda-nvrtc-cu12")
    failures = 0
    for name, (in_params, out_params, operation) in rnn_cuda._SOURCES.items():
        for ctype in ("float", "double"):
            errors = compile_errors(kernel_source(name, in_params, out_params, operation, ctype), f"{name}.cu")
            failures += bool(errors)
            print(f"{name:20s} {ctype:6s} " + ("compiles" if not errors else "FAILS: " + " | ".join(errors)))
    print(f"compile-cuda-kernels: {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
