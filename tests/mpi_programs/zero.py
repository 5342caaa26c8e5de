"""Run by tests/test_distributed.py: the sharded optimizer step (ZeroRedundancyOptimizer) against the unsharded one.

``python zero.py OUT.npz`` (a world of one) and ``mpiexec -n 2 python zero.py OUT.npz`` train a small
LSTM regressor (2077 parameters: an odd count, so the two ranks' slices differ in size) for 20 steps
with gradient clipping (a max norm the gradients exceed), float64, no dropout, in two ways each:

* ``unsharded``: ``DistributedDataParallel.reduce_gradients()`` (all-reduce), ``nn.utils.clip_grad_norm_``,
  the optimizer on every parameter;
* ``sharded``: ``ZeroRedundancyOptimizer`` (reduce-scatter, sharded clipping and update, all-gather);

for Adam (``op="mean"``), AdamW (``op="sum"``, losses divided by the global count) and SGD with
momentum (its parameters' arrays replaced after the optimizer was built: the copying path). Rank 0 writes ``OUT.npz`` with keys ``<optimizer>/<way>/<parameter>``, plus:

* ``resumed/<parameter>``: Adam sharded for 10 steps, its consolidated state saved and loaded into a fresh
  model and sharded optimizer, 10 more steps (must equal ``adam/sharded`` exactly);
* ``crossed/<parameter>``: the same state loaded into an unsharded Adam instead;
* ``state10/...`` and ``state10_unsharded/...``: the consolidated sharded state after 10 steps and the
  unsharded optimizer's at the same point.

Every rank checks that its weights equal rank 0's bit for bit, and that ``state_dict()`` refuses to
answer before ``consolidate_state_dict()``.
"""
import sys

import numpy as np

import tinygrad_rnn as tg
import tinygrad_rnn.distributed as dist
from tinygrad_rnn import nn, optim
from tinygrad_rnn.nn.parallel import DistributedDataParallel

GLOBAL_BATCH, STEPS, TIME_STEPS, FEATURES, MAX_NORM = 8, 20, 6, 3, 0.2
OPTIMIZERS = {"adam": (optim.Adam, dict(lr=1e-2), "mean"),
              "adamw": (optim.AdamW, dict(lr=1e-2, weight_decay=0.1), "sum"),
              "sgd": (optim.SGD, dict(lr=0.1, momentum=0.9), "mean")}


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(FEATURES, 12, num_layers=2)
        self.head = nn.Linear(12, 1)

    def forward(self, x):  # x: (T, B, FEATURES) -> (T, B)
        output, _ = self.lstm(x)
        return self.head(output).squeeze(-1)


def batches():
    data = np.random.default_rng(1)  # the same global batches on every rank
    for _ in range(STEPS):
        x = data.standard_normal((TIME_STEPS, GLOBAL_BATCH, FEATURES))
        y = x.sum(axis=2).cumsum(axis=0) / 4
        yield x, y


def build(kind: str, sharded: bool):
    optimizer_class, arguments, op = OPTIMIZERS[kind]
    tg.manual_seed(0)
    model = DistributedDataParallel(Regressor().to(dtype="float64"), op=op)
    if sharded:
        optimizer = optim.ZeroRedundancyOptimizer(model.parameters(), optimizer_class, op=op, **arguments)
        if kind == "sgd":  # parameters given arrays of their own: the step copies slices in and out instead
            for parameter in model.parameters():
                parameter.data = parameter.data.copy()
    else:
        optimizer = optimizer_class(model.parameters(), **arguments)
    return model, optimizer


def train(kind: str, model, optimizer, steps: range) -> list[float]:
    rank, size = dist.get_rank(), dist.get_world_size()
    share = slice(rank * GLOBAL_BATCH // size, (rank + 1) * GLOBAL_BATCH // size)
    op = OPTIMIZERS[kind][2]
    norms = []
    for step, (x, y) in enumerate(batches()):
        if step not in steps:
            continue
        error = (model(tg.Tensor(x[:, share])) - tg.Tensor(y[:, share])) ** 2
        loss = error.mean() if op == "mean" else error.sum() / float(error.numel() * size)
        optimizer.zero_grad()
        loss.backward()
        if isinstance(optimizer, optim.ZeroRedundancyOptimizer):
            norms.append(float(optimizer.clip_grad_norm_(MAX_NORM)))
        else:
            model.reduce_gradients()
            norms.append(float(nn.utils.clip_grad_norm_(model.parameters(), MAX_NORM)))
        optimizer.step()
    return norms


def weights_of(model, prefix: str) -> dict:
    weights = {f"{prefix}/{name}": tensor.numpy().copy() for name, tensor in model.module.state_dict().items()}
    for name, tensor in model.module.state_dict().items():
        from_rank0 = tensor.clone()
        dist.broadcast(from_rank0, src=0)
        assert np.array_equal(from_rank0.numpy(), tensor.numpy()), f"rank {dist.get_rank()} drifted in {name}"
    return weights


def flat_state(state_dict: dict, prefix: str) -> dict:
    out = {}
    for index, entries in state_dict["state"].items():
        for name, value in entries.items():
            out[f"{prefix}/{index}/{name}"] = value.numpy().copy() if hasattr(value, "numpy") else np.asarray(value)
    return out


dist.init()
results = {}
for kind in OPTIMIZERS:
    for sharded in (False, True):
        model, optimizer = build(kind, sharded)
        norms = train(kind, model, optimizer, range(STEPS))
        if sharded:  # the parameters are views of the buffer the all-gather fills, except where replaced
            assert [shard.shared for shard in optimizer._all_shards()] == [kind != "sgd"], kind
        assert sum(norm > MAX_NORM for norm in norms) >= 5, f"{kind}: clipping acted on too few steps: {norms}"
        results.update(weights_of(model, f"{kind}/{'sharded' if sharded else 'unsharded'}"))
        results[f"norms/{kind}/{'sharded' if sharded else 'unsharded'}"] = np.asarray(norms)

# save after 10 steps, load into fresh optimizers, go on
model, optimizer = build("adam", sharded=True)
train("adam", model, optimizer, range(10))
try:
    optimizer.state_dict()
    raise AssertionError("state_dict() answered before consolidate_state_dict()")
except RuntimeError as error:
    assert "consolidate_state_dict" in str(error)
optimizer.consolidate_state_dict(to=0)
saved = [None]
if dist.get_rank() == 0:
    whole = optimizer.state_dict()
    saved = [{"optimizer": {"state": {index: {name: value.numpy().copy() if hasattr(value, "numpy") else value
                                              for name, value in entries.items()}
                                      for index, entries in whole["state"].items()},
                            "param_groups": whole["param_groups"]},
              "model": {name: tensor.numpy().copy() for name, tensor in model.module.state_dict().items()}}]
    results.update(flat_state(whole, "state10"))
dist.broadcast_object_list(saved, src=0)  # as every rank reads the checkpoint file
saved = saved[0]
for sharded, prefix in ((True, "resumed"), (False, "crossed")):
    model, optimizer = build("adam", sharded)
    model.module.load_state_dict({name: tg.Tensor(array) for name, array in saved["model"].items()})
    optimizer.load_state_dict({"state": {index: {name: tg.Tensor(value) if isinstance(value, np.ndarray) else value
                                                 for name, value in entries.items()}
                                         for index, entries in saved["optimizer"]["state"].items()},
                               "param_groups": saved["optimizer"]["param_groups"]})
    train("adam", model, optimizer, range(10, STEPS))
    results.update(weights_of(model, prefix))

model, optimizer = build("adam", sharded=False)
train("adam", model, optimizer, range(10))
results.update(flat_state(optimizer.state_dict(), "state10_unsharded"))

if dist.get_rank() == 0:
    np.savez(sys.argv[1], **results)
print(f"rank {dist.get_rank()} of {dist.get_world_size()}: trained", flush=True)
