"""Run by tests/test_distributed.py under ``mpiexec -n 2``: rank 1 fails at step 5 of a training-like loop.

``failure.py raise``: an uncaught exception; ``failure.py exit``: ``sys.exit(3)`` inside
``dist.abort_on_failure()``; ``failure.py kill``: SIGKILL. Rank 0 keeps reducing, so without the
engine's abort it would wait in ``all_reduce`` for ever; the test needs the whole job to end.
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
with dist.abort_on_failure():
    for step in range(10_000):
        if rank == 1 and step == 5:
            if mode == "raise":
                raise RuntimeError("rank 1 failed on purpose")
            if mode == "exit":
                print("rank 1 exits with status 3", file=sys.stderr, flush=True)
                sys.exit(3)
            os.kill(os.getpid(), signal.SIGKILL)
        gradient = tg.ones(1000)
        dist.all_reduce(gradient)
        time.sleep(0.001)
print(f"rank {rank} finished every step", flush=True)
