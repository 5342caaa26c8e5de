"""Train an LSTM data-parallel over MPI: ``mpiexec -n 2 python examples/distributed_lstm.py``.

Every rank builds the same model and draws the same global batches (same seeds); each trains on
its share of the rows, and ``reduce_gradients()`` averages the gradients over the ranks before the
Adam step, so N ranks take the very steps one process would take on the whole batch. The task:
output the running mean of a sequence of numbers. ``python examples/distributed_lstm.py`` runs
it as a world of one. Needs the ``mpi`` extra (``pip install "tinygrad-rnn[mpi]"``).
"""
import argparse

import numpy as np

import tinygrad_rnn as tg
import tinygrad_rnn.distributed as dist
from tinygrad_rnn import nn, optim
from tinygrad_rnn.nn.parallel import DistributedDataParallel


class RunningMean(nn.Module):
    def __init__(self, hidden_size: int = 32):
        super().__init__()
        self.lstm, self.head = nn.LSTM(1, hidden_size), nn.Linear(hidden_size, 1)

    def forward(self, x):  # x: (T, B, 1) -> (T, B, 1)
        return self.head(self.lstm(x)[0])


def main(steps: int, batch_size: int = 64, length: int = 20) -> float:
    dist.init()
    tg.manual_seed(0)
    model = DistributedDataParallel(RunningMean())  # every rank starts from rank 0's weights
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    data = np.random.default_rng(0)  # the same global batches on every rank
    share = slice(dist.get_rank(), None, dist.get_world_size())  # this rank's rows of each batch
    for step in range(1, steps + 1):
        x = data.uniform(-1, 1, (length, batch_size, 1)).astype(np.float32)
        running_mean = x.cumsum(axis=0) / np.arange(1, length + 1, dtype=np.float32)[:, None, None]
        loss = ((model(tg.Tensor(x[:, share])) - tg.Tensor(running_mean[:, share])) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        model.reduce_gradients()  # one all-reduce: the mean of the ranks' gradients
        optimizer.step()
        dist.all_reduce(loss, op="mean")  # for printing: the whole batch's loss
        if dist.get_rank() == 0 and (step == 1 or step % 50 == 0 or step == steps):
            print(f"step {step:4d}  loss {loss.item():.5f}  (world size {dist.get_world_size()})", flush=True)
    return loss.item()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="optimiser steps (default 300)")
    main(parser.parse_args().steps)
