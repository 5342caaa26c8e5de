"""BLAS threads set from inside the engine (threadpoolctl)."""
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import threads


@pytest.fixture
def restore_threads():
    before = tg.get_num_threads()
    yield
    if before is not None:
        tg.set_num_threads(before)


def test_set_and_get_num_threads(restore_threads):
    if tg.get_num_threads() is None:
        pytest.skip("no BLAS library threadpoolctl can control")
    tg.set_num_threads(2)
    assert tg.get_num_threads() == 2
    tg.set_num_threads(1)
    assert tg.get_num_threads() == 1


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_bad_thread_counts_are_refused(bad):
    with pytest.raises(ValueError, match="positive integer"):
        tg.set_num_threads(bad)


def test_the_default_applies_unless_the_environment_chose(monkeypatch):
    calls = []
    monkeypatch.setattr(threads, "set_num_threads", calls.append)
    for name in threads.ENVIRONMENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    threads.apply_default()
    assert calls == [threads.DEFAULT_NUM_THREADS]
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    threads.apply_default()
    assert calls == [threads.DEFAULT_NUM_THREADS]


def test_without_threadpoolctl_both_do_nothing(monkeypatch):
    monkeypatch.setattr(threads, "_controller", False)
    tg.set_num_threads(3)
    assert tg.get_num_threads() is None


@pytest.mark.parametrize("cores, busy, processes, expected", [
    (2, 0, 1, 2),       # an idle 2-core machine: both cores
    (2, 1, 1, 1),       # one core busy with other work
    (2, 3, 1, 1),       # overloaded: never fewer than one
    (2, 0, 2, 1),       # two ranks share the two cores
    (16, 0, 1, threads.MAX_AUTO_THREADS),
    (16, 4, 2, 8),      # 16 // 2 ranks = 8, 12 cores free
    (16, 10, 2, 6),
])
def test_auto_threads_share_the_idle_cores(monkeypatch, cores, busy, processes, expected):
    monkeypatch.setattr(threads, "usable_cores", lambda: cores)
    monkeypatch.setattr(threads, "busy_cores", lambda: busy)
    assert threads.auto_num_threads(processes) == expected


class _FakeProcLoadavg:
    """``open`` for ``/proc/loadavg``, giving one reading per call (None: the file cannot be read)."""

    def __init__(self, runnable):
        self.runnable = list(runnable)

    def __call__(self, path, *args, **kwargs):
        import io
        assert path == "/proc/loadavg"
        value = self.runnable.pop(0)
        if value is None:
            raise OSError("no such file")
        return io.StringIO(f"1.50 1.20 0.90 {value}/300 4242\n")


def test_busy_cores_is_the_fewest_other_runnable_tasks(monkeypatch):
    monkeypatch.setattr("builtins.open", _FakeProcLoadavg([3, 2, 4, 2, 3]))
    assert threads.busy_cores(samples=5, interval=0) == 1.0    # a moment's blip is dropped; the reader is not counted
    monkeypatch.setattr("builtins.open", _FakeProcLoadavg([1]))
    assert threads.busy_cores(samples=1, interval=0) == 0.0


def test_busy_cores_falls_back_to_the_load_average(monkeypatch):
    monkeypatch.setattr("builtins.open", _FakeProcLoadavg([None]))
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (0.7, 0.5, 0.2))
    assert threads.busy_cores(samples=3, interval=0) == 0.7

    def no_load():
        raise OSError("no load average")
    monkeypatch.setattr("builtins.open", _FakeProcLoadavg([None]))
    monkeypatch.setattr(threads.os, "getloadavg", no_load)
    assert threads.busy_cores(samples=3, interval=0) == 0.0


def test_busy_cores_reads_this_machine():
    assert 0 <= threads.busy_cores(samples=2, interval=0) < 10_000


@pytest.mark.parametrize("bad", [0, -2, 1.0, True])
def test_auto_threads_refuses_bad_process_counts(bad):
    with pytest.raises(ValueError, match="positive number of processes"):
        threads.auto_num_threads(bad)


def test_usable_cores_is_the_affinity_mask():
    import os
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert threads.usable_cores() == expected
