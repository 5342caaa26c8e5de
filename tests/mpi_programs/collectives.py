"""Run by tests/test_distributed.py under ``mpiexec -n 2``: the collectives' semantics, checked in every rank.

Each rank asserts what it must see and prints ``rank R of N: ok``; a failed assertion ends the job
(the engine aborts every rank on an uncaught exception) and the test sees the traceback.
"""
import numpy as np

import tinygrad_rnn as tg
import tinygrad_rnn.distributed as dist
from tinygrad_rnn import nn, optim
from tinygrad_rnn.nn.parallel import DistributedDataParallel, all_reduce_gradients, broadcast_parameters

dist.init()
rank, size = dist.get_rank(), dist.get_world_size()
assert dist.is_initialized() and dist.get_backend() == "mpi" and size == 2
assert dist.get_local_rank() == rank  # both ranks run on this one node
dist.init()  # a second call with the same backend does nothing

# all_reduce: in place, every op, several dtypes; value of rank r is (r + 1) * base
base = np.arange(6, dtype=np.float64).reshape(2, 3) - 2.0
mine = (rank + 1) * base
for dtype in ("float64", "float32", "float16", "int64", "int32"):
    expected = {"sum": 3 * base, "max": np.maximum(base, 2 * base), "min": np.minimum(base, 2 * base)}
    if dtype.startswith("float"):
        expected["mean"] = 1.5 * base
    for op, want in expected.items():
        tensor = tg.Tensor(mine.astype(dtype))
        before = tensor.data
        dist.all_reduce(tensor, op=op)
        assert tensor.data is before and tensor.dtype == np.dtype(dtype), (op, dtype)  # in place
        np.testing.assert_array_equal(tensor.numpy(), want.astype(dtype), err_msg=f"{op} {dtype}")

# a non-contiguous tensor (a transposed view) is reduced in place too
matrix = tg.Tensor((rank + 1) * np.arange(6.0).reshape(2, 3))
view = tg.Tensor._wrap(matrix.data.T)
dist.all_reduce(view)
np.testing.assert_array_equal(matrix.numpy(), 3 * np.arange(6.0).reshape(2, 3))

try:
    dist.all_reduce(tg.Tensor(np.arange(3)), op="mean")
except TypeError as error:
    assert "floating point" in str(error)
else:
    raise AssertionError("mean of an integer tensor must be refused")

# broadcast from either rank, any dtype
for source in (0, 1):
    for dtype in ("float32", "int64", "bool"):
        tensor = tg.Tensor((np.arange(5) * (rank + 3) % 2 == 0).astype(dtype) if dtype == "bool"
                           else (np.arange(5) * (rank + 3)).astype(dtype))
        dist.broadcast(tensor, src=source)
        want = np.arange(5) * (source + 3)
        np.testing.assert_array_equal(tensor.numpy(), (want % 2 == 0) if dtype == "bool" else want.astype(dtype))
dist.barrier()

# DistributedDataParallel: rank 0's initial weights everywhere, whatever each rank drew
tg.manual_seed(100 + rank)
model = DistributedDataParallel(nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2)))
for name, tensor in model.state_dict().items():
    assert name.startswith("module.")
    dist_copy = tensor.clone()
    dist.all_reduce(dist_copy, op="max")
    np.testing.assert_array_equal(dist_copy.numpy(), tensor.numpy())  # max over ranks == own value: equal

# gradients: mean and sum, one call per bucket, None-gradient bookkeeping
parameters = list(model.parameters())  # weight (4,3), bias (4,), weight (2,4), bias (2,)
for parameter in parameters:
    parameter.grad = tg.Tensor(np.full(parameter.shape, rank + 1.0, dtype=np.float32))
assert model.reduce_gradients() == 1  # 30 floats: one bucket
for parameter in parameters:
    np.testing.assert_array_equal(parameter.grad.numpy(), np.full(parameter.shape, 1.5, dtype=np.float32))
for parameter in parameters:
    parameter.grad = tg.Tensor(np.full(parameter.shape, rank + 1.0, dtype=np.float32))
# a cap of 48 bytes: 48 | 16 + 32 | 8 bytes -> three buckets, three calls
assert all_reduce_gradients(parameters, op="sum", bucket_cap_mb=48 / 2**20) == 3
for parameter in parameters:
    np.testing.assert_array_equal(parameter.grad.numpy(), np.full(parameter.shape, 3.0, dtype=np.float32))
# first parameter: a gradient on rank 1 only -> both ranks get it (rank 0 counted zero);
# second: no gradient anywhere -> stays None; the others as usual
for index, parameter in enumerate(parameters):
    parameter.grad = tg.Tensor(np.full(parameter.shape, 2.0, dtype=np.float32))
    if index == 1 or (index == 0 and rank == 0):
        parameter.grad = None
all_reduce_gradients(parameters, op="sum")
np.testing.assert_array_equal(parameters[0].grad.numpy(), np.full((4, 3), 2.0, dtype=np.float32))
assert parameters[1].grad is None
np.testing.assert_array_equal(parameters[2].grad.numpy(), np.full((2, 4), 4.0, dtype=np.float32))

# with an optimizer, its flat gradient buffer is reduced as it is: one call, the gradients its views
optimizer = optim.SGD(model.parameters(), lr=0.1)
(layout,) = optimizer._layouts_of(0)
for index, parameter in enumerate(parameters):
    parameter.grad = None if (index == 3 and rank == 0) else tg.Tensor(np.full(parameter.shape, rank + 1.0,
                                                                               dtype=np.float32))
assert model.reduce_gradients() == 1
for index, (parameter, view) in enumerate(zip(parameters, layout.grad_views)):
    assert parameter.grad.data is view
    np.testing.assert_array_equal(parameter.grad.numpy(), np.full(parameter.shape, 1.0 if index == 3 else 1.5,
                                                                  dtype=np.float32))  # mean; rank 0's missing: 0

# float64 and float32 parameters never share a bucket; broadcast_parameters takes plain tensors too
mixed = [tg.Tensor(np.full(3, rank, dtype=np.float64)), tg.Tensor(np.full(2, rank, dtype=np.float32))]
broadcast_parameters(mixed, src=1)
assert [tensor.numpy().tolist() for tensor in mixed] == [[1.0] * 3, [1.0] * 2]
assert mixed[0].dtype == np.float64 and mixed[1].dtype == np.float32

# object collectives: any picklable value
gathered = [None] * size
dist.all_gather_object(gathered, {"rank": rank, "text": "x" * rank})
assert gathered == [{"rank": 0, "text": ""}, {"rank": 1, "text": "x"}]
objects = [rank, f"from {rank}"]
dist.broadcast_object_list(objects, src=1)
assert objects == [1, "from 1"]

# reduce_scatter_tensor / all_gather_into_tensor: shard_bounds' split (7 = 4 + 3), explicit counts, mean
assert dist.shard_bounds(7, 2) == [0, 4, 7] and dist.shard_bounds(3, 4) == [0, 1, 2, 3, 3]
whole = tg.Tensor((rank + 1) * np.arange(7.0))
part = tg.zeros(4 - rank, dtype="float64")
dist.reduce_scatter_tensor(part, whole)
np.testing.assert_array_equal(part.numpy(), 3 * np.arange(7.0)[[0, 4][rank]:[4, 7][rank]])
part = tg.zeros(2 + 3 * rank, dtype="float32")
dist.reduce_scatter_tensor(part, tg.Tensor((rank + 1) * np.arange(7.0, dtype=np.float32)), op="mean", counts=[2, 5])
np.testing.assert_array_equal(part.numpy(), 1.5 * np.arange(7.0, dtype=np.float32)[[0, 2][rank]:[2, 7][rank]])
gathered = tg.zeros(7, dtype="float64")
dist.all_gather_into_tensor(gathered, tg.Tensor(np.full(4 - rank, rank + 1.0)))  # uneven: MPI_Allgatherv
np.testing.assert_array_equal(gathered.numpy(), [1, 1, 1, 1, 2, 2, 2])
padded = tg.Tensor(np.arange(8.0) * (rank + 1))  # equal chunks, in place: MPI_Allgather
dist.all_gather_into_tensor(padded, tg.Tensor._wrap(padded.data[4 * rank:4 * rank + 4]))
np.testing.assert_array_equal(padded.numpy(), np.r_[np.arange(4.0), 2 * np.arange(4.0, 8.0)])
try:
    dist.reduce_scatter_tensor(tg.zeros(5), tg.zeros(7))
    raise AssertionError("a wrong output size was accepted")
except ValueError as error:
    assert "rank" in str(error) and "slice" in str(error)

print(f"rank {rank} of {size}: ok", flush=True)
