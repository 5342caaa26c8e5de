"""Data-parallel training speed of the default translator model: N ranks x 1 BLAS thread against 1.

One rank of the measurement (started by ``mpiexec``) trains the default ``Seq2Seq`` (ModelConfig's
defaults, the default vocabulary sizes) on random batches of the default global batch size, each
rank on its share of the rows, as ``mpiexec -n N translate train`` does: loss summed over the
share's target tokens and divided by the global batch's, gradients summed with one all-reduce per
25 MB bucket, clipping and Adam. Rank 0 prints one JSON line: global target tokens per second, and
per step the milliseconds of compute (forward + backward), of the wait for the slowest rank's
compute (a barrier after the backward pass; the mean over the ranks of each rank's median wait),
of the gradient all-reduce, and of clipping + Adam, in wall-clock time and (compute, all-reduce,
clipping + Adam) in rank 0's CPU time, which other jobs on a shared machine do not inflate; plus the
time of the all-reduce alone on the same bytes with both ranks already waiting (the pure
communication). The defaults are the default ``translate train`` model on spa-eng: the vocabulary
sizes its SentencePiece models reach, its global batch, and its mean length in pieces::

    mpiexec -n 2 python bench/distributed_speed.py --steps 20
    mpiexec -n 2 python bench/distributed_speed.py --steps 20 --shard   # ZeroRedundancyOptimizer

With ``--shard`` the optimizer step is sharded (``optim.ZeroRedundancyOptimizer``: reduce-scatter,
clipping and Adam on this rank's half, all-gather): the communication figures are then the
reduce-scatter plus the all-gather, the update figures the sharded clipping and Adam (with the
copies in and out of the flat parameter buffer).

``python bench/distributed_speed.py --compare 1,2 --rounds 3`` starts the runs itself, alternating
1 rank and 2 ranks so a change in the machine's load hits both, and prints each round and the
speed-up per round (the median and the range); ``--sharding both`` (the default) runs each world
of more than one rank twice, unsharded and sharded (``on``/``off``: only one way). Set
``OPENBLAS_NUM_THREADS=1`` (the comparison does).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import tinygrad_rnn as tg
from seq2seq_speed import random_batch  # beside this file
from tinygrad_rnn import nn, optim
from translator.config import TrainConfig
from translator.model import ModelConfig, Seq2Seq

ROOT = Path(__file__).resolve().parent.parent


def measure(args) -> dict | None:
    import tinygrad_rnn.distributed as dist  # noqa: PLC0415 - mpi4py only in the measuring ranks
    from tinygrad_rnn.nn.parallel import all_reduce_gradients, broadcast_parameters  # noqa: PLC0415

    dist.init()
    rank, size = dist.get_rank(), dist.get_world_size()
    tg.manual_seed(0)
    model = Seq2Seq(ModelConfig(dropout=0.0), args.source_vocab, args.target_vocab)
    broadcast_parameters(model)
    if args.shard:
        optimizer = optim.ZeroRedundancyOptimizer(model.parameters(), optim.Adam, op="sum", lr=1e-3)
        collectives = _timed_collectives(dist)
    else:
        optimizer = optim.Adam(model.parameters(), lr=1e-3)
    parameters = list(model.parameters())
    rng = np.random.default_rng(0)  # the same global batches on every rank
    batches = [random_batch(rng, args.batch, args.length, args.source_vocab, args.target_vocab)
               for _ in range(args.steps + 1)]
    model.train()
    compute, waits, communicate, update, tokens = [], [], [], [], 0
    compute_cpu, reduce_cpu, update_cpu = [], [], []  # CPU seconds of this rank (other jobs do not inflate them)
    for step, (source, lengths, target_in, target_out) in enumerate(batches):
        share = slice(rank, None, size)
        global_tokens = int((target_out != 0).sum())
        dist.barrier()  # every rank starts the step together: the wait below is load imbalance
        started, cpu_started = time.perf_counter(), time.process_time()
        optimizer.zero_grad()
        width = int((target_out[share] != 0).sum(axis=1).max())  # trimmed to the share's longest, as make_batch does
        loss = model.loss(source[share][:, :lengths[share].max()], lengths[share], target_in[share][:, :width],
                          target_out[share][:, :width], label_smoothing=0.1, reduction="sum") / float(global_tokens)
        loss.backward()
        finished_backward, cpu_finished_backward = time.perf_counter(), time.process_time()
        if size > 1:  # the wait for the slowest rank's compute (load imbalance), apart from the communication
            dist.barrier()
        computed, cpu_computed = time.perf_counter(), time.process_time()
        if args.shard:  # the collectives happen inside clipping and the step: timed by their wrappers
            collectives[:] = [0.0, 0.0]
            optimizer.clip_grad_norm_(5.0)
            optimizer.step()
            finished, cpu_finished = time.perf_counter(), time.process_time()
            reduced, cpu_reduced = computed + collectives[0], cpu_computed + collectives[1]
        else:
            if size > 1:  # as translate train: a world of one reduces nothing
                all_reduce_gradients(parameters, op="sum")
            reduced, cpu_reduced = time.perf_counter(), time.process_time()
            nn.utils.clip_grad_norm_(parameters, 5.0)
            optimizer.step()
            finished, cpu_finished = time.perf_counter(), time.process_time()
        if step:  # the first step is a warm-up
            compute.append(finished_backward - started)
            waits.append(computed - finished_backward)
            communicate.append(reduced - computed)
            update.append(finished - reduced)
            compute_cpu.append(cpu_finished_backward - cpu_started)
            reduce_cpu.append(cpu_reduced - cpu_computed)
            update_cpu.append(cpu_finished - cpu_reduced)
            tokens += global_tokens
    # the all-reduce alone: every rank already waiting, the same bytes as the gradients
    flat = tg.zeros(sum(parameter.numel() for parameter in parameters))
    pure = []
    for _ in range(args.steps):
        dist.barrier()
        started = time.perf_counter()
        dist.all_reduce(flat)
        pure.append(time.perf_counter() - started)
    median_waits = [0.0] * size  # each rank's median wait
    if size > 1:
        dist.all_gather_object(median_waits, statistics.median(waits))
    if rank != 0:
        return None
    step_seconds = [a + w + b + c for a, w, b, c in zip(compute, waits, communicate, update)]
    return {"ranks": size, "sharded": bool(args.shard), "parameters": int(flat.numel()), "megabytes_reduced": round(4 * flat.numel() / 1e6, 1),
            "steps": len(step_seconds), "global_batch": args.batch,
            "tokens_per_second": round(tokens / sum(step_seconds), 1),
            "step_ms": round(1e3 * statistics.median(step_seconds), 1),
            "compute_ms": round(1e3 * statistics.median(compute), 1),
            "wait_ms": round(1e3 * statistics.mean(median_waits), 1),
            "all_reduce_ms": round(1e3 * statistics.median(communicate), 1),
            "clip_adam_ms": round(1e3 * statistics.median(update), 1),
            "pure_all_reduce_ms": round(1e3 * statistics.median(pure), 1),
            "compute_cpu_ms": round(1e3 * statistics.median(compute_cpu), 1),
            "all_reduce_cpu_ms": round(1e3 * statistics.median(reduce_cpu), 1),
            "clip_adam_cpu_ms": round(1e3 * statistics.median(update_cpu), 1),
            "step_cpu_ms": round(1e3 * statistics.median([a + b + c for a, b, c in zip(compute_cpu, reduce_cpu,
                                                                                          update_cpu)]), 1),
            "load_average": round(os.getloadavg()[0], 2)}


def _timed_collectives(dist) -> list[float]:
    """Wrap the sharded optimizer's two collectives so their wall-clock and CPU seconds add up in the list returned."""
    spent = [0.0, 0.0]

    def timed(collective):
        def run(*args, **kwargs):
            started, cpu_started = time.perf_counter(), time.process_time()
            collective(*args, **kwargs)
            spent[0] += time.perf_counter() - started
            spent[1] += time.process_time() - cpu_started
        return run

    dist.reduce_scatter_tensor = timed(dist.reduce_scatter_tensor)
    dist.all_gather_into_tensor = timed(dist.all_gather_into_tensor)
    return spent


def _label(world: tuple[int, bool]) -> str:
    ranks, sharded = world
    return f"{ranks} rank{'s' if ranks > 1 else ''}{' sharded' if sharded else ''}"


def compare(args) -> None:
    mpiexec = str(Path(sys.executable).parent / "mpiexec")
    if not Path(mpiexec).is_file():
        mpiexec = shutil.which("mpiexec")
    environment = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environment.get("PYTHONPATH")]))
    worlds = []  # (ranks, sharded)
    for part in args.compare.split(","):
        ranks = int(part)
        ways = [False] if ranks == 1 else {"both": [False, True], "on": [True], "off": [False]}[args.sharding]
        worlds.extend((ranks, sharded) for sharded in ways)
    flags = ["--steps", str(args.steps), "--batch", str(args.batch), "--length", str(args.length),
             "--source-vocab", str(args.source_vocab), "--target-vocab", str(args.target_vocab)]
    rounds = []
    for round_number in range(args.rounds):
        results = {}
        for world in worlds:
            finished = subprocess.run([mpiexec, "-n", str(world[0]), sys.executable, __file__, *flags,
                                       *(["--shard"] if world[1] else [])],
                                      capture_output=True, text=True, env=environment, check=True)
            results[world] = json.loads(finished.stdout.strip().splitlines()[-1])
            print(f"round {round_number + 1}: {json.dumps(results[world])}", flush=True)
        rounds.append(results)
    base = worlds[0]
    for world in worlds[1:]:
        ratios = [r[world]["tokens_per_second"] / r[base]["tokens_per_second"] for r in rounds]
        shares = [r[world]["all_reduce_ms"] / r[world]["step_ms"] for r in rounds]
        waits = [r[world]["wait_ms"] / r[world]["step_ms"] for r in rounds]
        pure = [r[world]["pure_all_reduce_ms"] / r[world]["step_ms"] for r in rounds]
        cpu_ratios = [r[base]["step_cpu_ms"] / r[world]["step_cpu_ms"] for r in rounds]
        cpu_shares = [r[world]["all_reduce_cpu_ms"] / r[world]["step_cpu_ms"] for r in rounds]
        print(f"{_label(world)} vs {_label(base)}: wall-clock speed-up median {statistics.median(ratios):.2f}x "
              f"(rounds: "
              f"{', '.join(f'{ratio:.2f}' for ratio in ratios)}); waiting for the slowest rank "
              f"{statistics.median(waits):.0%} of a step, communication "
              f"{statistics.median(shares):.0%} of a step, the all-reduce alone {statistics.median(pure):.0%}; "
              f"CPU time per step: {statistics.median(cpu_ratios):.2f}x less per rank, communication "
              f"{statistics.median(cpu_shares):.0%} of it")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps (after one warm-up step)")
    parser.add_argument("--batch", type=int, default=TrainConfig().batch_size,
                        help="global batch (translate train's default)")
    parser.add_argument("--length", type=int, default=9,
                        help="mean sentence length in tokens (the default SentencePiece pieces of spa-eng: about 9)")
    parser.add_argument("--source-vocab", type=int, default=7993, help="(the default run's Spanish pieces)")
    parser.add_argument("--target-vocab", type=int, default=7938, help="(the default run's English pieces)")
    parser.add_argument("--compare", default=None, help="e.g. 1,2: start these world sizes alternately")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shard", action="store_true", help="shard the optimizer step (ZeroRedundancyOptimizer)")
    parser.add_argument("--sharding", choices=("both", "on", "off"), default="both",
                        help="with --compare: run worlds of more than one rank unsharded and sharded, or one way")
    args = parser.parse_args()
    if args.compare:
        compare(args)
        return
    result = measure(args)
    if result is not None:
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
