#!/usr/bin/env bash
# The GPU check, in one command, for a machine with a CUDA GPU, CuPy and PyTorch with CUDA (the
# benchmarks' reference) already installed; it needs no network and installs nothing:
#
#     PYTHONPATH=. bash scripts/gpu-check.sh
#
# Steps, each with its own time limit, its output shown and kept in a log:
#   cold-start  bench/cold_start.py with an EMPTY CuPy kernel cache: the translator's first
#               training step (CUDA context, cuBLAS, every NVRTC compilation; target <= 10 s).
#               The cache it fills is then used by every later step, so they run warm.
#   pytest      every test marked `cuda` (pytest -m cuda): CuPy kernels against NumPy, float64.
#   layers      bench/rnn.py --device cuda: nn.LSTM/GRU/RNN forward (no grad, training) and
#               forward+backward against PyTorch's cuDNN layers, and the memory figure.
#   seq2seq     bench/seq2seq_speed.py --device cuda: translator training target tok/s and greedy
#               sentences/s against the PyTorch twin on the GPU, plus the engine's counts.
#   translate   a short real run: `translate train --dataset numbers` (one epoch of 2,000 pairs)
#               and `translate run` on --device cuda.
# Logs go to $OUT/gpu-check when OUT is set, else to a new temporary directory (printed). A
# summary table ends the run. It refuses to start (exit 2) when CuPy or the GPU is missing,
# rather than "passing" with every CUDA test skipped; otherwise every step runs, and the exit
# status is 1 when any step failed or ran out of time, 0 when all passed.
#
# About 5 minutes on one H200 when every step passes; the limits below bound a hung step.
# GPU_CHECK_STEPS="layers seq2seq" runs only the steps named (e.g. to rerun what failed); the
# cold-start step alone measures with an empty kernel cache, the others then compile what they need.
# GPU_CHECK_SMOKE=1 checks this script itself on a machine without a GPU: the same steps on the
# CPU at toy sizes (pytest then skips every cuda test); its numbers mean nothing.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"

SMOKE="${GPU_CHECK_SMOKE:-0}"
if [ -n "${OUT:-}" ]; then
    LOGS="$OUT/gpu-check"
else
    LOGS="$(mktemp -d -t gpu-check.XXXXXX)"
fi
mkdir -p "$LOGS"
SCRATCH="$(mktemp -d -t gpu-check-scratch.XXXXXX)"  # the kernel cache and the model: not logs
trap 'rm -rf "$SCRATCH"' EXIT
echo "gpu-check: logs in $LOGS"

if [ "$SMOKE" = 1 ]; then
    DEVICE=cpu
    echo "gpu-check: GPU_CHECK_SMOKE=1: every step on the CPU at toy sizes (checks the script, not the GPU)"
else
    DEVICE=cuda
    python - <<'PY' 2>&1 | tee "$LOGS/preflight.log"
import sys
from tinygrad_rnn import backend
try:
    backend.normalize_device("cuda")
except RuntimeError as error:
    sys.exit(f"gpu-check: the CUDA path cannot run here: {error}")
cupy = backend.xp_for("cuda")
props = cupy.cuda.runtime.getDeviceProperties(0)
print(f"gpu-check: Python {sys.version.split()[0]}, CuPy {cupy.__version__}, GPU {props['name'].decode()}, "
      f"CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}")
try:
    import torch
    print(f"gpu-check: PyTorch {torch.__version__}, sees the GPU: {torch.cuda.is_available()}, "
          f"cuDNN {torch.backends.cudnn.version() if torch.cuda.is_available() else None}")
except ImportError:
    print("gpu-check: PyTorch is not importable here: the benchmarks look for it in ../venv-torch or "
          "$BENCH_TORCH_PYTHON, else they show our side only")
PY
    [ "${PIPESTATUS[0]}" = 0 ] || exit 2
fi

NAMES=()
RESULTS=()
DURATIONS=()
status=0

# run_step NAME SECONDS COMMAND...: run it under `timeout`, show and log its output, record the result.
run_step() {
    local name="$1" limit="$2"
    shift 2
    if [ -n "${GPU_CHECK_STEPS:-}" ] && [[ " $GPU_CHECK_STEPS " != *" $name "* ]]; then
        return
    fi
    echo
    echo "== $name (limit ${limit} s, log $LOGS/$name.log): $*"
    local start end rc result
    start=$(date +%s)
    timeout -k 10 "$limit" "$@" 2>&1 | tee "$LOGS/$name.log"
    rc=${PIPESTATUS[0]}
    end=$(date +%s)
    case "$rc" in
        0) result="ok" ;;
        124|137) result="TIMEOUT"; status=1 ;;
        *) result="FAILED ($rc)"; status=1 ;;
    esac
    NAMES+=("$name")
    RESULTS+=("$result")
    DURATIONS+=("$((end - start))")
}

export CUPY_CACHE_DIR="$SCRATCH/cupy-kernel-cache"  # empty: the first step measures a cold start
mkdir -p "$CUPY_CACHE_DIR"

if [ "$SMOKE" = 1 ]; then
    run_step cold-start 300 python bench/cold_start.py --device cpu --steps 2
    run_step pytest 900 python -m pytest -m cuda -q -rs -p no:cacheprovider tests
    run_step layers 600 python bench/rnn.py --device cpu --inference --modes gru --sizes 8,5,16 \
        --rounds 1 --repeats 1
    run_step seq2seq 600 python bench/seq2seq_speed.py --device cpu --steps 1 --batch 8 --decode-batch 8 \
        --decode-batches 1 --vocab 200 --hidden 32 --rounds 1 --count
    TRAIN_SIZE="--max-pairs 300 --dev-size 32 --test-size 32 --hidden-size 32 --embedding-size 32"
else
    run_step cold-start 180 python bench/cold_start.py --device cuda
    run_step pytest 420 python -m pytest -m cuda -q -rs -p no:cacheprovider tests
    run_step layers 300 python bench/rnn.py --device cuda --inference --modes lstm,gru,rnn_tanh \
        --sizes 32,32,128 64,32,256 16,100,256 64,64,512 256,50,512 --rounds 3 --repeats 5
    run_step seq2seq 300 python bench/seq2seq_speed.py --device cuda --steps 10 --decode-batches 8 \
        --rounds 3 --beam 5 --count
    TRAIN_SIZE="--max-pairs 2000 --dev-size 100 --test-size 100"
fi
MODEL="$SCRATCH/numbers-model"
run_step translate 240 bash -c "
    python -m translator train --dataset numbers $TRAIN_SIZE --epochs 1 --device $DEVICE --model $MODEL \
        --no-progress &&
    python -m translator run --model $MODEL --device $DEVICE --beam 1 veintitrés 'ciento cuarenta y dos' &&
    python -m translator run --model $MODEL --device $DEVICE --beam 5 'dos mil once'"

echo
echo "== gpu-check summary ($DEVICE; logs in $LOGS)"
printf '%-11s %-12s %7s\n' step result seconds
for index in "${!NAMES[@]}"; do
    printf '%-11s %-12s %7s\n' "${NAMES[$index]}" "${RESULTS[$index]}" "${DURATIONS[$index]}"
done
echo
# The lines worth a glance, from the logs (the layer table is printed in full above).
grep -h "^cold start:" "$LOGS/cold-start.log" 2>/dev/null
tail -n 1 "$LOGS/pytest.log" 2>/dev/null
grep -h "^memory" "$LOGS/layers.log" 2>/dev/null
grep -hE "^(parameters|check|training|greedy|beam|memory)" "$LOGS/seq2seq.log" 2>/dev/null
grep -h -A 5 "^counts" "$LOGS/seq2seq.log" 2>/dev/null
grep -hE "^(training stopped|test BLEU)" "$LOGS/translate.log" 2>/dev/null
echo "== gpu-check finished with status $status"
exit "$status"
