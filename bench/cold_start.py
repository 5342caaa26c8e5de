"""Cold start: the translator's first training steps and greedy batch in a fresh process.

On a GPU the first steps pay for the CUDA context, the cuBLAS handles and every NVRTC
compilation of a kernel not yet in CuPy's kernel cache (``CUPY_CACHE_DIR``, default
``~/.cupy/kernel_cache``). With an empty cache this is what a user's first
``translate train --device cuda`` waits before training runs at speed; the issue's target is a
first training step of at most 10 s. Usage::

    CUPY_CACHE_DIR=$(mktemp -d) python bench/cold_start.py --device cuda   # cold: an empty cache
    python bench/cold_start.py --device cuda                               # warm: the cache as it is
    python bench/cold_start.py --device cpu                                # the same steps on the CPU

The network and batches are ``bench/seq2seq_speed.py``'s (default ``ModelConfig``, batch 64,
vocabularies of 10,000). Prints the seconds of each phase, how many kernels the cache gained,
and a last line ``cold start: ...`` that ``scripts/gpu-check.sh`` puts in its summary.
"""
from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from seq2seq_speed import OurSeq2Seq, make_batches  # noqa: E402  (imports the engine and the translator)

from tinygrad_rnn import backend  # noqa: E402
from translator.model import ModelConfig  # noqa: E402

TARGET_SECONDS = 10.0


def cache_files(directory):
    """Files in CuPy's kernel cache directory (one per compiled module), 0 if it does not exist."""
    if directory is None or not directory.is_dir():
        return 0
    return sum(1 for path in directory.rglob("*") if path.is_file())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (the point of it) or cpu")
    parser.add_argument("--steps", type=int, default=3, help="training steps timed one by one")
    args = parser.parse_args(argv)
    imported = time.perf_counter()
    try:
        device = backend.normalize_device(args.device)
    except (RuntimeError, ValueError) as error:
        parser.error(f"--device {args.device}: {error}")
    cache = None
    if device != "cpu":
        cache = Path(os.environ.get("CUPY_CACHE_DIR", Path.home() / ".cupy" / "kernel_cache"))
    cached_before = cache_files(cache)

    train_batches = make_batches(0, args.steps, 64, 10, 10000)
    decode_batches = make_batches(1, 2, 128, 10, 10000)
    ours = OurSeq2Seq(ModelConfig(), 10000, train_batches, decode_batches, device, beam=0)
    ours.sync()
    built = time.perf_counter()

    def timed(call):
        start = time.perf_counter()
        call()
        ours.sync()
        return time.perf_counter() - start

    ours.model.train()
    steps = [timed(lambda batch=batch: ours.train_step(batch)) for batch in train_batches]
    greedy = [timed(lambda batch=batch: ours.greedy_batch(batch[0], batch[1])) for batch in decode_batches]
    compiled = cache_files(cache) - cached_before

    print(f"device {device}; imports {imported - STARTED:.1f} s; model on the device (context, uploads) "
          f"{built - imported:.1f} s")
    print("training steps, s: " + ", ".join(f"{seconds:.2f}" for seconds in steps))
    print("greedy batches of 128, s: " + ", ".join(f"{seconds:.2f}" for seconds in greedy))
    if cache is not None:
        print(f"kernel cache {cache}: {cached_before} files before, {compiled} compiled by this run"
              + ("" if cached_before == 0 else " (NOT empty at the start: a warm start, not a cold one)"))
    line = (f"cold start: first training step {steps[0]:.1f} s (then {min(steps[1:] or steps):.2f} s), first greedy "
            f"batch {greedy[0]:.1f} s (then {greedy[-1]:.2f} s), {time.perf_counter() - STARTED:.1f} s from process start")
    if cache is not None:
        verdict = "met" if steps[0] <= TARGET_SECONDS else "MISSED"
        line += f", {compiled} kernels compiled; target first step <= {TARGET_SECONDS:.0f} s: {verdict}"
    print(line)


if __name__ == "__main__":
    main()
