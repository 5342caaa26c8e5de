"""Peak GPU memory of our side: the CuPy memory pool's high-water mark over a block of code.

CuPy's pool reports only what is in use now (``used_bytes``), so a memory hook follows every
allocation from and release to the pool and keeps the maximum. The PyTorch side's figure is
``torch.cuda.max_memory_allocated`` (``bench/torch_worker.py``'s ``memory`` command); both count
the bytes handed to arrays/tensors (rounded to the allocators' block sizes), not what the pools
keep cached. Benchmarks only: the engine itself imports CuPy only in ``tinygrad_rnn/backend.py``.
"""
from __future__ import annotations

import contextlib


@contextlib.contextmanager
def pool_peak():
    """``with pool_peak() as peak: ...`` then ``peak["bytes"]``: the pool's most bytes in use, over its use at entry."""
    import cupy

    pool = cupy.get_default_memory_pool()

    class PeakHook(cupy.cuda.MemoryHook):
        name = "BenchPoolPeak"

        def __init__(self):
            self.used = self.baseline = self.peak = pool.used_bytes()

        def malloc_postprocess(self, **kwargs):
            self.used += kwargs["mem_size"]
            self.peak = max(self.peak, self.used)

        def free_postprocess(self, **kwargs):
            self.used -= kwargs["mem_size"]

    cupy.cuda.Device().synchronize()
    hook, result = PeakHook(), {"bytes": 0}
    with hook:
        yield result
        cupy.cuda.Device().synchronize()
    result["bytes"] = hook.peak - hook.baseline
