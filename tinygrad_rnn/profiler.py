"""Counting what the engine does: ops, host syncs, uploads and CUDA kernel launches, per region.

Off by default. While it is off every hook costs one read of the module-level flag
``profiler.enabled`` and nothing is counted::

    from tinygrad_rnn import profiler

    with profiler.record() as counts:           # counting is on inside (records nest)
        with profiler.region("decode"):          # optional named sub-regions
            ...
    counts.ops, counts.syncs, counts.uploads, counts.launches   # totals for the record
    counts.regions["decode"].ops                 # the same fields for one region

What is counted, and where the hooks sit:

- ``ops``: engine operations, one per ``Function.apply`` (a forward call; the backward
  pass is not counted separately).
- ``syncs``: device->host reads, which stall the host until the GPU has caught up:
  ``Tensor.item()`` (and ``float()``, ``int()``, ``bool()`` of a tensor), ``Tensor.numpy()``,
  ``tolist()``, ``repr``, and inside the engine ``backend.as_numpy``, ``backend.item`` and
  ``backend.to_device(..., "cpu")`` of device data.
- ``uploads``: host->device copies: host data (a NumPy array or scalar, a Python number or
  list) turned into a tensor's array by ``backend.to_device`` (so ``Tensor(...)``,
  ``Tensor.to``, random factories, the scalar in ``x * 2``).
- ``launches``: CUDA kernels launched by the engine's own CuPy kernels (those made with
  ``backend.elementwise_kernel`` or ``backend.raw_module``) and its own cuBLAS calls
  (``backend.gemm``, the recurrent kernels' per-step products). CuPy offers no hook that
  sees the launches of its own array operations, reductions or cuBLAS calls (only an
  external profiler with CUPTI, such as Nsight Systems, does), so those are not in this
  number; on the CPU it stays 0.

The code paths are the same on the CPU and on CUDA, so the counts are too, and counts
pinned by tests on a CPU-only machine hold on a GPU. That is why the CPU counts a sync or
an upload where the same call would make one on a GPU: on the CPU a NumPy array is the
device's data, so ``as_numpy`` of it counts a sync and ``to_device`` of it counts an
upload. Engine code that holds host data (lengths or token ids the user passed as a list
or NumPy array) converts it with ``backend.numpy.asarray``, which counts nothing, and code
that wraps an array already on the device uses ``Tensor._wrap``, which counts nothing.

Regions: an event counts in every open record and, inside ``region(name)``, also in
``record.regions[name]`` of every open record (a region entered twice accumulates; nested
regions each count the events inside them). ``region`` outside any record does nothing.
Counting is for one thread at a time, like the engine's grad mode.
"""
from __future__ import annotations

__all__ = ["Counts", "record", "region", "is_enabled"]

enabled = False          # the one flag every hook reads; True while a record is open
_records: list = []      # the open records, outermost first
_active: list = []       # every Counts an event goes to: the open records and their open regions


class Counts:
    """Event totals of one record or one region: ``ops``, ``syncs``, ``uploads``, ``launches``
    (ints) and ``regions`` (name -> Counts; empty for a region)."""

    __slots__ = ("ops", "syncs", "uploads", "launches", "regions")

    def __init__(self):
        self.ops = self.syncs = self.uploads = self.launches = 0
        self.regions: dict[str, Counts] = {}

    def as_dict(self) -> dict:
        """``{"ops": ..., "syncs": ..., "uploads": ..., "launches": ...}``."""
        return {"ops": self.ops, "syncs": self.syncs, "uploads": self.uploads, "launches": self.launches}

    def __repr__(self):
        fields = ", ".join(f"{name}={value}" for name, value in self.as_dict().items())
        regions = f", regions={self.regions!r}" if self.regions else ""
        return f"Counts({fields}{regions})"


def is_enabled() -> bool:
    """True while counting (inside ``record()``)."""
    return enabled


class record:  # noqa: N801 - used like a function: ``with profiler.record() as counts``
    """Count every event inside the ``with`` block into a new :class:`Counts` (returned by ``as``).

    Records nest: an event counts in every open record.
    """

    def __enter__(self) -> Counts:
        global enabled
        self.counts = Counts()
        _records.append(self.counts)
        _active.append(self.counts)
        enabled = True
        return self.counts

    def __exit__(self, *exc):
        global enabled
        _remove(_records, self.counts)
        _remove(_active, self.counts)
        for counts in self.counts.regions.values():  # a region left open past its record's end
            _remove(_active, counts)
        enabled = bool(_records)
        return False


class region:  # noqa: N801 - used like a function: ``with profiler.region("decode")``
    """Count the events inside the block also under ``regions[name]`` of every open record.

    ``as`` gives the innermost record's Counts for this region (``None`` when not counting).
    """

    def __init__(self, name: str):
        self.name = name
        self.pushed = ()

    def __enter__(self):
        if not enabled:
            return None
        pushed = []
        for owner in _records:
            counts = owner.regions.get(self.name)
            if counts is None:
                counts = owner.regions[self.name] = Counts()
            if not any(counts is active for active in _active):  # the same region nested in itself
                _active.append(counts)
                pushed.append(counts)
        self.pushed = pushed
        return _records[-1].regions[self.name]

    def __exit__(self, *exc):
        for counts in self.pushed:
            _remove(_active, counts)
        self.pushed = ()
        return False


def _remove(items: list, item) -> None:
    """Remove ``item`` by identity (Counts compare by identity anyway; this says so)."""
    for index in range(len(items) - 1, -1, -1):
        if items[index] is item:
            del items[index]
            return


# The hooks call these only after reading ``enabled``, so they cost nothing while it is off.
def count_op() -> None:
    for counts in _active:
        counts.ops += 1


def count_sync() -> None:
    for counts in _active:
        counts.syncs += 1


def count_upload() -> None:
    for counts in _active:
        counts.uploads += 1


def count_launch() -> None:
    for counts in _active:
        counts.launches += 1
