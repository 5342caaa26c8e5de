"""``tinygrad_rnn.distributed`` and ``nn.parallel``: collectives, data-parallel equivalence, failures.

The multi-rank tests start ``mpiexec -n 2 python tests/mpi_programs/<program>.py`` (a few seconds
each) and skip, with the reason, only where mpi4py or mpiexec is missing.
"""
import subprocess
import sys
import time

import numpy as np
import pytest

import tinygrad_rnn as tg
import tinygrad_rnn.distributed as dist
from tinygrad_rnn import nn, optim
from tinygrad_rnn.nn.parallel import DistributedDataParallel, _buckets, all_reduce_gradients

from mpi_helpers import MPI_PROGRAMS, mpi_environment, needs_mpi, run_mpi


def test_the_engine_imports_and_runs_without_mpi4py():
    program = (
        "import sys; sys.modules['mpi4py'] = None\n"  # makes 'import mpi4py' fail as if it were not installed
        "import tinygrad_rnn as tg; from tinygrad_rnn import nn, optim\n"
        "import tinygrad_rnn.distributed as dist\n"
        "model = nn.LSTM(2, 3); model(tg.randn(4, 1, 2))[0].sum().backward()\n"
        "assert not dist.is_available() and not dist.is_initialized()\n"
        "try:\n    dist.init()\nexcept RuntimeError as error:\n    print(error)\n"
    )
    finished = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60,
                              env=mpi_environment())
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == ('tinygrad_rnn.distributed needs MPI (mpi4py and an MPI library): '
                                       'pip install "tinygrad-rnn[mpi]"')


def test_collectives_need_init_first():
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match=r"call tinygrad_rnn.distributed.init\(\) first"):
        dist.get_rank()
    with pytest.raises(RuntimeError, match=r"distributed.init\(\) first"):
        DistributedDataParallel(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="op='mean' or op='sum'"):
        all_reduce_gradients(nn.Linear(2, 2).parameters(), op="max")
    with pytest.raises(RuntimeError, match=r"ZeroRedundancyOptimizer needs the process group"):
        optim.ZeroRedundancyOptimizer(nn.Linear(2, 2).parameters(), optim.Adam)
    with pytest.raises(ValueError, match="op='mean' or op='sum'"):
        optim.ZeroRedundancyOptimizer(nn.Linear(2, 2).parameters(), optim.Adam, op="max")


def test_buckets_keep_order_split_by_size_and_never_mix_dtypes():
    tensors = [tg.zeros(4, dtype="float32"), tg.zeros(2, dtype="float64"), tg.zeros(3, dtype="float32"),
               tg.zeros(10, dtype="float32"), tg.zeros(1, dtype="float32")]
    buckets = _buckets(tensors, cap_bytes=28)
    shapes = [[(tensor.shape[0], tensor.dtype.name) for tensor in bucket] for bucket in buckets]
    # float32: 16 + 12 bytes fit 28; the 40-byte tensor exceeds the cap alone; then 4 bytes
    assert shapes == [[(4, "float32"), (3, "float32")], [(10, "float32")], [(1, "float32")], [(2, "float64")]]


@needs_mpi
def test_all_reduce_broadcast_and_gradient_buckets_on_two_ranks():
    finished = run_mpi(2, [MPI_PROGRAMS / "collectives.py"])
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "rank 0 of 2: ok" in finished.stdout and "rank 1 of 2: ok" in finished.stdout  # lines may interleave


def _largest_relative_difference(ours: np.ndarray, reference: np.ndarray) -> float:
    return float(np.max(np.abs(ours - reference) / np.maximum(np.abs(reference), 1e-300)))


@needs_mpi
def test_two_ranks_train_an_lstm_exactly_like_one_rank_with_the_same_global_batch(tmp_path):
    one = subprocess.run([sys.executable, MPI_PROGRAMS / "equivalence.py", tmp_path / "one.npz"],
                         capture_output=True, text=True, timeout=120, env=mpi_environment())
    assert one.returncode == 0, one.stderr
    two = run_mpi(2, [MPI_PROGRAMS / "equivalence.py", tmp_path / "two.npz"], timeout=120)
    assert two.returncode == 0, two.stdout + two.stderr
    single, double = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    assert sorted(single.files) == sorted(double.files)
    for training in ("float64/mean", "float64/sum", "float32/mean"):
        names = [name for name in single.files if name.startswith(training + "/")]
        assert len(names) == 10  # 2 LSTM layers x 4 tensors + the head's 2
        for name in names:
            reference, ours = single[name], double[name]
            assert ours.dtype == np.dtype(training.split("/")[0])
            if training.startswith("float64"):
                assert _largest_relative_difference(ours, reference) <= 1e-9, name
            else:  # float32: the two summation orders differ by a few ulps per step, over 20 steps
                np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-5 * np.abs(reference).max(),
                                           err_msg=name)
    moved = [np.abs(single[f"float32/mean/{name[8:]}"] - single[name]).max() for name in single.files
             if name.startswith("initial/")]
    assert min(moved) > 1e-3  # the 20 steps did train every parameter


@needs_mpi
@pytest.mark.parametrize("mode", ["raise", "exit", "kill", "alone"])
def test_a_failing_rank_ends_the_whole_job_quickly(mode):
    started = time.perf_counter()
    finished = run_mpi(2, [MPI_PROGRAMS / "failure.py", mode], timeout=60)  # a hang raises TimeoutExpired
    assert time.perf_counter() - started < 60
    assert finished.returncode != 0
    assert "finished every step" not in finished.stdout
    expected = {"raise": "RuntimeError: rank 1 failed on purpose", "exit": "rank 1 exits with status 3",
                "kill": "Killed", "alone": "rank 1 failed, every rank failed: False"}[mode]
    assert expected in finished.stdout + finished.stderr


@needs_mpi
def test_ranks_that_all_fail_agree_and_end_normally():
    finished = run_mpi(2, [MPI_PROGRAMS / "failure.py", "together"], timeout=60)
    assert finished.returncode == 4, finished.stdout + finished.stderr
    assert "rank 0: every rank failed: True" in finished.stdout and "rank 1: every rank failed: True" in finished.stdout
    assert "Abort" not in finished.stderr


@pytest.mark.cuda
@pytest.mark.skipif(not tg.cuda_available(), reason="CuPy or a CUDA GPU is not available on this machine")
@needs_mpi
def test_nccl_backend_reduces_cuda_tensors():
    ranks = min(tg.backend.cuda_device_count(), 2)
    finished = run_mpi(ranks, [MPI_PROGRAMS / "nccl.py"], timeout=120)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert all(f"rank {rank} of {ranks}: nccl ok" in finished.stdout for rank in range(ranks))


@needs_mpi
def test_the_sharded_optimizer_step_equals_the_unsharded_one_and_one_rank(tmp_path):
    """ZeroRedundancyOptimizer: reduce-scatter, clipping and the update on 1/N, all-gather (mpi_programs/zero.py)."""
    one = subprocess.run([sys.executable, MPI_PROGRAMS / "zero.py", tmp_path / "one.npz"],
                         capture_output=True, text=True, timeout=120, env=mpi_environment())
    assert one.returncode == 0, one.stderr
    two = run_mpi(2, [MPI_PROGRAMS / "zero.py", tmp_path / "two.npz"], timeout=120)
    assert two.returncode == 0, two.stdout + two.stderr
    single, double = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    assert sorted(single.files) == sorted(double.files)
    names = [name[len("adam/unsharded/"):] for name in single.files if name.startswith("adam/unsharded/")]
    assert len(names) == 10  # 2 LSTM layers x 4 tensors + the head's 2: 2077 numbers, odd, so uneven slices
    for kind in ("adam", "adamw", "sgd"):
        for run in (single, double):
            for way in ("unsharded", "sharded"):
                for name in names:  # against one rank, unsharded: the reference
                    assert _largest_relative_difference(run[f"{kind}/{way}/{name}"],
                                                        single[f"{kind}/unsharded/{name}"]) <= 1e-9, (kind, way, name)
        clipped = single[f"norms/{kind}/unsharded"] > 0.2
        assert clipped.sum() >= 5  # clipping acted (on the steps whose norm exceeded 0.2)
        np.testing.assert_allclose(double[f"norms/{kind}/sharded"], single[f"norms/{kind}/unsharded"], rtol=1e-9)
    for run in (single, double):
        for name in names:  # saved after 10 steps and loaded: the same as 20 steps straight
            assert np.array_equal(run[f"resumed/{name}"], run[f"adam/sharded/{name}"]), name
            assert _largest_relative_difference(run[f"crossed/{name}"], run[f"adam/sharded/{name}"]) <= 1e-9, name
        state = [name for name in run.files if name.startswith("state10/")]
        assert len(state) == 30  # step, exp_avg, exp_avg_sq for each of the 10 parameters
        for name in state:  # the consolidated state has the unsharded optimizer's layout and values
            assert _largest_relative_difference(run[name], run["state10_unsharded/" + name[len("state10/"):]]) <= 1e-9
