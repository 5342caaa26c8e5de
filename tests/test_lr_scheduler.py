"""LR schedulers: PyTorch's schedules (closed forms), plateau logic, state round trips."""
import math

import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import nn, optim
from tinygrad_rnn.optim import lr_scheduler


def optimizer(lr=0.1, second_lr=None):
    groups = [{"params": [nn.Parameter(tg.ones(1))]}]
    if second_lr is not None:
        groups.append({"params": [nn.Parameter(tg.ones(1))], "lr": second_lr})
    return optim.SGD(groups, lr=lr)


def schedule(scheduler, steps):
    """The rate of each group after construction and after each of ``steps`` steps."""
    rates = [scheduler.get_last_lr()]
    for _ in range(steps):
        scheduler.optimizer.step()
        scheduler.step()
        rates.append(scheduler.get_last_lr())
    return rates


def test_step_lr():
    rates = schedule(lr_scheduler.StepLR(optimizer(0.1, second_lr=1.0), step_size=3, gamma=0.5), 10)
    for epoch, (first, second) in enumerate(rates):
        assert first == pytest.approx(0.1 * 0.5 ** (epoch // 3))
        assert second == pytest.approx(1.0 * 0.5 ** (epoch // 3))


def test_exponential_lr():
    scheduler = lr_scheduler.ExponentialLR(optimizer(0.2), gamma=0.9)
    for epoch, (rate,) in enumerate(schedule(scheduler, 8)):
        assert rate == pytest.approx(0.2 * 0.9 ** epoch)
    assert scheduler.optimizer.param_groups[0]["lr"] == scheduler.get_last_lr()[0]


@pytest.mark.parametrize("start_factor, end_factor, total_iters", [(0.1, 1.0, 4), (1 / 3, 1.0, 5), (1.0, 0.5, 3)])
def test_linear_lr_warmup(start_factor, end_factor, total_iters):
    scheduler = lr_scheduler.LinearLR(optimizer(0.5), start_factor, end_factor, total_iters)
    for epoch, (rate,) in enumerate(schedule(scheduler, total_iters + 4)):
        factor = start_factor + (end_factor - start_factor) * min(epoch, total_iters) / total_iters
        assert rate == pytest.approx(0.5 * factor, rel=1e-12)
    with pytest.raises(ValueError, match="start_factor"):
        lr_scheduler.LinearLR(optimizer(), start_factor=0.0)


def test_reduce_on_plateau_patience_cooldown_and_min_lr():
    opt = optimizer(1.0)
    scheduler = lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2, cooldown=1, min_lr=0.2)
    metrics = [10, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9]
    rates = []
    for metric in metrics:
        scheduler.step(metric)
        rates.append(scheduler.get_last_lr()[0])
    # improve twice; 3 bad steps (> patience 2) reduce at step 4; the cooldown step after a reduction
    # does not count, so the next 3 bad steps reduce at step 8 and at step 12 (to min_lr, not 0.125)
    assert rates == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.2]
    for metric in [9] * 8:
        scheduler.step(metric)
    assert scheduler.get_last_lr() == [0.2]  # never below min_lr


def test_reduce_on_plateau_thresholds_and_max_mode():
    relative = lr_scheduler.ReduceLROnPlateau(optimizer(1.0), patience=0, threshold=0.1)
    relative.step(1.0)
    relative.step(0.95)  # not 10% better than 1.0: a bad step, patience 0 -> reduce
    assert relative.get_last_lr() == [pytest.approx(0.1)]
    absolute = lr_scheduler.ReduceLROnPlateau(optimizer(1.0), patience=0, threshold=0.01, threshold_mode="abs")
    absolute.step(1.0)
    absolute.step(0.98)
    assert absolute.get_last_lr() == [1.0] and absolute.best == 0.98
    maximise = lr_scheduler.ReduceLROnPlateau(optimizer(1.0), mode="max", patience=1, factor=0.1)
    for bleu in [10.0, 12.0, 11.0, 11.5]:
        maximise.step(bleu)
    assert maximise.get_last_lr() == [pytest.approx(0.1)] and maximise.best == 12.0
    with pytest.raises(ValueError, match="factor"):
        lr_scheduler.ReduceLROnPlateau(optimizer(), factor=1.0)
    with pytest.raises(ValueError, match="mode"):
        lr_scheduler.ReduceLROnPlateau(optimizer(), mode="up")


def make_scheduler(name, opt):
    return {
        "step": lambda: lr_scheduler.StepLR(opt, step_size=2, gamma=0.5),
        "exponential": lambda: lr_scheduler.ExponentialLR(opt, gamma=0.8),
        "linear": lambda: lr_scheduler.LinearLR(opt, start_factor=0.25, total_iters=6),
        "plateau": lambda: lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1, cooldown=1),
    }[name]()


def advance(scheduler, steps, start=0):
    metrics = [5, 4, 4, 4, 4, 3, 3, 3, 3, 3, 3, 3]
    for step in range(start, start + steps):
        scheduler.optimizer.step()
        if isinstance(scheduler, lr_scheduler.ReduceLROnPlateau):
            scheduler.step(metrics[step])
        else:
            scheduler.step()


@pytest.mark.parametrize("name", ["step", "exponential", "linear", "plateau"])
def test_state_round_trip_resumes_the_same_schedule(name, tmp_path):
    opt = optimizer(1.0)
    scheduler = make_scheduler(name, opt)
    advance(scheduler, 10)
    straight = scheduler.get_last_lr()

    opt = optimizer(1.0)
    scheduler = make_scheduler(name, opt)
    advance(scheduler, 5)
    tg.save({"optim": opt.state_dict(), "scheduler": scheduler.state_dict()}, tmp_path / "sched.npz")
    checkpoint = tg.load(tmp_path / "sched.npz")
    assert "optimizer" not in checkpoint["scheduler"]

    opt = optimizer(1.0)
    scheduler = make_scheduler(name, opt)  # building takes step 0 and may change the rate ...
    opt.load_state_dict(checkpoint["optim"])  # ... which the optimizer's state restores
    scheduler.load_state_dict(checkpoint["scheduler"])
    assert scheduler.get_last_lr() == [opt.param_groups[0]["lr"]]
    advance(scheduler, 5, start=5)
    assert scheduler.get_last_lr() == straight
    assert math.isclose(opt.param_groups[0]["lr"], straight[0])
