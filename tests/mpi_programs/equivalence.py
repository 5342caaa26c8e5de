"""Run by tests/test_distributed.py: train a small LSTM regressor data-parallel and save the weights.

``python equivalence.py OUT.npz`` (a world of one) and ``mpiexec -n 2 python equivalence.py OUT.npz``
see the same global batches; each rank trains on its share, so the two runs must end with the same
weights up to floating-point summation order. Three trainings, 20 Adam steps each, dropout-free:

* ``float64/mean`` and ``float32/mean``: each rank's loss is the mean over its equal share, gradients
  averaged (``op="mean"``);
* ``float64/sum``: sequences have different lengths, the loss is summed over the valid steps and
  divided by the global batch's count of valid steps, gradients summed (``op="sum"``).

Rank 0 writes ``OUT.npz`` (keys ``<dtype>/<op>/<parameter name>``, and ``initial/<name>`` for the
float32 starting point); every rank checks that its
weights equal rank 0's bit for bit.
"""
import sys

import numpy as np

import tinygrad_rnn as tg
import tinygrad_rnn.distributed as dist
from tinygrad_rnn import nn, optim
from tinygrad_rnn.nn.parallel import DistributedDataParallel

GLOBAL_BATCH, STEPS, TIME_STEPS, FEATURES = 8, 20, 6, 3


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(FEATURES, 12, num_layers=2)
        self.head = nn.Linear(12, 1)

    def forward(self, x):  # x: (T, B, FEATURES) -> (T, B)
        output, _ = self.lstm(x)
        return self.head(output).squeeze(-1)


def train(dtype: str, op: str) -> dict:
    rank, size = dist.get_rank(), dist.get_world_size()
    share = slice(rank * GLOBAL_BATCH // size, (rank + 1) * GLOBAL_BATCH // size)
    tg.manual_seed(0)
    model = DistributedDataParallel(Regressor().to(dtype=dtype), op=op)
    initial = {f"initial/{name}": tensor.numpy().copy() for name, tensor in model.module.state_dict().items()}
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    data = np.random.default_rng(1)  # the same global batches on every rank
    for _ in range(STEPS):
        x = data.standard_normal((TIME_STEPS, GLOBAL_BATCH, FEATURES))
        y = x.sum(axis=2).cumsum(axis=0) / 4
        lengths = data.integers(2, TIME_STEPS + 1, size=GLOBAL_BATCH)
        valid = np.arange(TIME_STEPS)[:, None] < lengths[None, :]  # (T, B)
        prediction = model(tg.Tensor(x[:, share].astype(dtype)))
        error = (prediction - tg.Tensor(y[:, share].astype(dtype))) ** 2
        if op == "mean":
            loss = error.mean()
        else:  # normalised by the GLOBAL count of valid steps: the shares' gradients add up
            loss = (error * tg.Tensor(valid[:, share].astype(dtype))).sum() / float(valid.sum())
        optimizer.zero_grad()
        loss.backward()
        model.reduce_gradients()
        optimizer.step()
    weights = {name: tensor.numpy() for name, tensor in model.module.state_dict().items()}
    for name, tensor in model.module.state_dict().items():
        from_rank0 = tensor.clone()
        dist.broadcast(from_rank0, src=0)
        assert np.array_equal(from_rank0.numpy(), weights[name]), f"rank {rank} drifted from rank 0 in {name}"
    return weights, initial


dist.init()
results = {}
for dtype, op in (("float64", "mean"), ("float32", "mean"), ("float64", "sum")):
    weights, initial = train(dtype, op)
    results.update({f"{dtype}/{op}/{name}": array for name, array in weights.items()}, **initial)
if dist.get_rank() == 0:
    np.savez(sys.argv[1], **results)
print(f"rank {dist.get_rank()} of {dist.get_world_size()}: trained", flush=True)
