"""Run by tests/test_distributed.py on a machine with a GPU: the NCCL backend on CUDA tensors.

``python nccl.py`` (a world of one) or ``mpiexec -n G python nccl.py`` with G GPUs on the node.
Each rank checks all_reduce, broadcast and a DistributedDataParallel step on CUDA tensors, which go
through ``cupy.cuda.nccl``; host tensors still go through MPI.
"""
import numpy as np

import tinygrad_rnn as tg
import tinygrad_rnn.distributed as dist
from tinygrad_rnn import nn, optim
from tinygrad_rnn.nn.parallel import DistributedDataParallel

dist.init(backend="nccl")
rank, size = dist.get_rank(), dist.get_world_size()
assert dist.get_backend() == "nccl"
ranks_sum = size * (size + 1) / 2  # sum over ranks of (rank + 1)
for dtype in ("float32", "float64", "float16", "int32", "int64"):
    values = np.arange(4).astype(dtype) * (rank + 1)
    for op, want in (("sum", np.arange(4) * ranks_sum), ("max", np.arange(4) * size),
                     ("min", np.arange(4) * 1), ("mean", np.arange(4) * ranks_sum / size)):
        if op == "mean" and not dtype.startswith("float"):
            continue
        tensor = tg.Tensor(values, device="cuda")
        dist.all_reduce(tensor, op=op)
        assert tensor.device == "cuda" and tensor.dtype == np.dtype(dtype)
        np.testing.assert_allclose(tensor.numpy(), want.astype(dtype), err_msg=f"{op} {dtype}")
host = tg.Tensor(np.ones(3) * (rank + 1))
dist.all_reduce(host)  # CPU tensors: MPI
np.testing.assert_array_equal(host.numpy(), np.ones(3) * ranks_sum)
for dtype in ("float32", "int64", "bool"):
    tensor = tg.Tensor((np.arange(5) + rank) % 2 == 0 if dtype == "bool" else (np.arange(5) + rank).astype(dtype),
                       device="cuda")
    dist.broadcast(tensor, src=size - 1)
    want = np.arange(5) + size - 1
    np.testing.assert_array_equal(tensor.numpy(), want % 2 == 0 if dtype == "bool" else want.astype(dtype))

tg.manual_seed(rank)
model = DistributedDataParallel(nn.LSTM(3, 8).to("cuda"))
optimizer = optim.Adam(model.parameters(), lr=1e-2)
x = tg.Tensor(np.random.default_rng(rank).standard_normal((5, 2, 3)).astype(np.float32), device="cuda")
loss = model(x)[0].square().mean()
loss.backward()
assert model.reduce_gradients() == 1
optimizer.step()
for tensor in model.module.state_dict().values():
    assert tensor.device == "cuda"
    copy = tensor.clone()
    dist.broadcast(copy, src=0)
    np.testing.assert_array_equal(copy.numpy(), tensor.numpy())  # every rank took the same step
print(f"rank {rank} of {size}: nccl ok", flush=True)
