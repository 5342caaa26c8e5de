#!/usr/bin/env bash
# The GPU check, in one command, for a machine with a CUDA GPU and CuPy (and PyTorch, for the
# benchmark's reference) already installed; it needs no network and installs nothing:
#
#     bash scripts/gpu-check.sh
#
# 1. refuses to go on (exit 2) when CuPy or the GPU is missing, rather than "passing" with
#    every CUDA test skipped;
# 2. runs every test marked `cuda` (pytest -m cuda): the CuPy kernels against the NumPy
#    references, float64;
# 3. runs the GPU benchmark (bench/rnn.py --device cuda --quick).
# Exits non-zero when any step fails; both steps run either way, so one run shows everything.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"

python - <<'PY' || exit 2
import sys
from tinygrad_rnn import backend
try:
    backend.normalize_device("cuda")
except RuntimeError as error:
    sys.exit(f"gpu-check: the CUDA path cannot run here: {error}")
cupy = backend.xp_for("cuda")
props = cupy.cuda.runtime.getDeviceProperties(0)
print(f"gpu-check: Python {sys.version.split()[0]}, CuPy {cupy.__version__}, GPU {props['name'].decode()}")
PY

status=0
echo "== pytest -m cuda"
python -m pytest -m cuda -q -rs -p no:cacheprovider tests || status=$?
echo "== bench/rnn.py --device cuda --quick"
if [ -f bench/rnn.py ]; then
    python bench/rnn.py --device cuda --quick || status=$?
else
    echo "gpu-check: bench/rnn.py is missing: the GPU benchmark did not run" >&2
    status=1
fi
echo "== gpu-check finished with status $status"
exit "$status"
