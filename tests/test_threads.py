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
