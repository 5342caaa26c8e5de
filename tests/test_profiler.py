"""The profiler: exact counts for small cases, nothing counted while off, regions and nesting."""
import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import backend, nn, profiler
from tinygrad_rnn.autograd import Function

from helpers import DEVICES


def leaves(device, *shapes):
    return [tg.Tensor(np.ones(shape, dtype=np.float32), device=device, requires_grad=True) for shape in shapes]


@pytest.mark.parametrize("device", DEVICES)
def test_counts_of_a_product_and_its_backward(device):
    a, b = leaves(device, (3,), (3,))
    with profiler.record() as counts:
        (a * b).sum().backward()
    # Mul and Sum are two Function applications; backward reads nothing back and uploads nothing
    assert counts.as_dict() == {"ops": 2, "syncs": 0, "uploads": 0, "launches": 0}


@pytest.mark.parametrize("device", DEVICES)
def test_reading_values_back_counts_one_sync_each(device):
    a, = leaves(device, (2, 2))
    with profiler.record() as counts:
        total = a.sum()
        total.item()
        float(total)
        bool(total > 0)        # the comparison is no Function; bool() reads it back
        a.numpy()
        a.tolist()
    assert (counts.ops, counts.syncs, counts.uploads) == (1, 5, 0)  # a Python scalar in a comparison is no copy


@pytest.mark.parametrize("device", DEVICES)
def test_host_data_becoming_device_data_counts_uploads(device):
    a, = leaves(device, (2,))
    with profiler.record() as counts:
        tg.Tensor([1.0, 2.0], device=device)        # Python data
        tg.Tensor(np.zeros(2), device=device)       # a NumPy array
        a * 2.0                                     # the scalar operand
        tg.randn(2, device=device)                  # drawn on the host
        tg.zeros(2, device=device)                  # made on the device: no upload
        a.detach()                                  # the same data: no upload
    assert (counts.ops, counts.uploads, counts.syncs) == (1, 4, 0)


@pytest.mark.parametrize("device", DEVICES)
def test_engine_reads_go_through_the_backend_and_count_as_syncs(device):
    logits = tg.Tensor(np.zeros((4, 5), dtype=np.float32), device=device, requires_grad=True)
    with profiler.record() as counts:
        loss = nn.functional.cross_entropy(logits, np.array([0, 1, 2, 3]))   # host targets: checked there
        backend.item(loss.data)
    assert (counts.syncs, counts.uploads) == (1, 1)  # the targets go up once; only the explicit read syncs


def test_counting_is_off_by_default_and_outside_a_record():
    assert not profiler.is_enabled()
    a, b = leaves("cpu", (3,), (3,))
    outer = profiler.Counts()
    profiler._active.append(outer)   # a sink that would see any event counted while off
    try:
        (a * b).sum().backward()
        (a * b).sum().item()
        tg.Tensor([1.0])
        with profiler.region("ignored") as inside:
            a.numpy()
    finally:
        profiler._active.remove(outer)
    assert inside is None
    assert outer.as_dict() == {"ops": 0, "syncs": 0, "uploads": 0, "launches": 0}
    assert not profiler.is_enabled()


def test_hooks_read_the_flag_and_call_nothing_while_off(monkeypatch):
    calls = []
    for name in ("count_op", "count_sync", "count_upload", "count_launch"):
        monkeypatch.setattr(profiler, name, lambda name=name: calls.append(name))
    a, b = leaves("cpu", (3,), (3,))
    (a * b).sum().backward()
    a.sum().item()
    tg.Tensor(np.zeros(2)).numpy()
    assert calls == []


def test_regions_count_their_own_events_and_the_record_counts_all():
    a, = leaves("cpu", (3,))
    with profiler.record() as counts:
        with profiler.region("forward") as forward:
            loss = (a * a).sum()
        with profiler.region("read"):
            loss.item()
        with profiler.region("forward"):      # entered again: accumulates
            a.exp()
        a.tanh()                              # in no region
    assert forward is counts.regions["forward"]
    assert counts.regions["forward"].as_dict() == {"ops": 3, "syncs": 0, "uploads": 0, "launches": 0}
    assert counts.regions["read"].as_dict() == {"ops": 0, "syncs": 1, "uploads": 0, "launches": 0}
    assert (counts.ops, counts.syncs) == (4, 1)
    assert not profiler.is_enabled()


def test_nested_regions_and_records():
    a, = leaves("cpu", (3,))
    with profiler.record() as outer:
        a.exp()
        with profiler.region("step"):
            with profiler.record() as inner:
                with profiler.region("step"):         # the outer record's "step" is already open
                    with profiler.region("attention"):
                        a.tanh()
                    a.exp()
            assert profiler.is_enabled()             # the outer record is still open
            a.sigmoid()
    assert (outer.ops, inner.ops) == (4, 2)
    assert outer.regions["step"].ops == 3            # counted once although opened twice
    assert inner.regions["step"].ops == 2
    assert outer.regions["attention"].ops == inner.regions["attention"].ops == 1
    assert not profiler.is_enabled() and profiler._active == [] and profiler._records == []


def test_a_record_closes_cleanly_when_an_error_leaves_it():
    with pytest.raises(ValueError):
        with profiler.record():
            with profiler.region("broken"):
                raise ValueError("boom")
    assert not profiler.is_enabled() and profiler._active == [] and profiler._records == []


def test_custom_functions_count_as_ops():
    class Double(Function):
        def forward(self, x):
            return x * 2

        def backward(self, g):
            return g * 2

    a, = leaves("cpu", (2,))
    with profiler.record() as counts:
        Double.apply(Double.apply(a)).sum().backward()
    assert counts.ops == 3


def test_engine_kernels_count_launches(monkeypatch):
    """``backend.elementwise_kernel`` wraps each kernel so its calls count (CuPy itself has no hook)."""
    class FakeCupy:
        @staticmethod
        def ElementwiseKernel(in_params, out_params, operation, name):  # noqa: N802 - CuPy's name
            return lambda *args: "launched"

    monkeypatch.setattr(backend, "_load_cupy", lambda: FakeCupy)
    kernel = backend.elementwise_kernel("T x", "T y", "y = x", "copy")
    kernel(1)
    with profiler.record() as counts:
        assert kernel(1) == "launched"
        kernel(2)
    assert counts.launches == 2
