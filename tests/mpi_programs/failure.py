"""Run by tests/test_distributed.py under ``mpiexec -n 2``: rank 1 fails at step 5 of a training-like loop.

``failure.py raise``: an uncaught exception; ``failure.py exit``: ``sys.exit(3)`` inside
``dist.abort_on_failure()``; ``failure.py kill``: SIGKILL; ``failure.py alone``: rank 1 asks
``dist.all_failed`` and, alone, aborts. Rank 0 keeps reducing, so without the engine's abort it would
wait in ``all_reduce`` for ever; the test needs the whole job to end. ``failure.py together``: both
ranks fail at step 5, agree that they all failed and exit normally with status 4.
"""
import os
import signal
import sys
import time

import tinygrad_rnn as tg
import tinygrad_rnn.distributed as dist

mode = sys.argv[1]
dist.init()
rank = dist.get_rank()
if mode == "together":
    for step in range(6):
        dist.all_reduce(tg.ones(10))
    everyone = dist.all_failed(grace=20)
    print(f"rank {rank}: every rank failed: {everyone}", flush=True)
    sys.exit(4 if everyone else 5)
with dist.abort_on_failure():
    for step in range(10_000):
        if rank == 1 and step == 5:
            if mode == "raise":
                raise RuntimeError("rank 1 failed on purpose")
            if mode == "exit":
                print("rank 1 exits with status 3", file=sys.stderr, flush=True)
                sys.exit(3)
            if mode == "alone":
                everyone = dist.all_failed(grace=0.5)
                print(f"rank 1 failed, every rank failed: {everyone}", file=sys.stderr, flush=True)
                sys.exit(3)
            os.kill(os.getpid(), signal.SIGKILL)
        gradient = tg.ones(1000)
        dist.all_reduce(gradient)
        time.sleep(0.001)
print(f"rank {rank} finished every step", flush=True)
