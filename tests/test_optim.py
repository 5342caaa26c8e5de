"""Optimizers: PyTorch's update formulas, training to ~zero loss, param groups, state dicts, exact resume."""
import numpy as np
import pytest

import tinygrad_rnn as tg
from helpers import DEVICES
from tinygrad_rnn import nn, optim
from tinygrad_rnn.nn import functional as F

XOR_INPUTS = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
XOR_TARGETS = [[0.0], [1.0], [1.0], [0.0]]

OPTIMIZERS = {
    "sgd_momentum": lambda params: optim.SGD(params, lr=0.1, momentum=0.9),
    "sgd_nesterov": lambda params: optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True),
    "adam": lambda params: optim.Adam(params, lr=0.03),
    "adam_amsgrad": lambda params: optim.Adam(params, lr=0.03, amsgrad=True),
    "adamw": lambda params: optim.AdamW(params, lr=0.03, weight_decay=1e-4),
}


def mlp(dropout=0.0):
    return nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Dropout(dropout), nn.Linear(16, 1))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_mlp_learns_xor_to_near_zero_loss(name, device):
    tg.manual_seed(0)
    model = mlp().to(device)
    optimizer = OPTIMIZERS[name](model.parameters())
    inputs, targets = tg.Tensor(XOR_INPUTS, device=device), tg.Tensor(XOR_TARGETS, device=device)
    for _ in range(400):
        optimizer.zero_grad()
        loss = F.mse_loss(model(inputs), targets)
        loss.backward()
        optimizer.step()
    assert loss.item() < 1e-3


# ---------------------------------------------------------------- update formulas against NumPy
def run(optimizer_factory, gradients, start):
    param = nn.Parameter(tg.Tensor(start.copy()))
    optimizer = optimizer_factory([param])
    for gradient in gradients:
        param.grad = tg.Tensor(gradient)
        optimizer.step()
    return param.numpy()


def np_sgd(p, gradients, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    buffer = None
    for g in gradients:
        g = g + weight_decay * p
        if momentum:
            buffer = g.copy() if buffer is None else momentum * buffer + (1 - dampening) * g
            g = g + momentum * buffer if nesterov else buffer
        p = p - lr * g
    return p


def np_adam(p, gradients, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False):
    (beta1, beta2), m, v, v_max = betas, 0.0, 0.0, 0.0
    for t, g in enumerate(gradients, start=1):
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_max = np.maximum(v_max, v)
        denom = np.sqrt(v_max if amsgrad else v) / np.sqrt(1 - beta2 ** t) + eps
        p = p - lr / (1 - beta1 ** t) * m / denom
    return p


rng = np.random.default_rng(0)
START = rng.standard_normal((3, 2))
GRADIENTS = [rng.standard_normal((3, 2)) for _ in range(6)]


@pytest.mark.parametrize("options", [dict(lr=0.1), dict(lr=0.1, momentum=0.9), dict(lr=0.05, momentum=0.8, dampening=0.3),
                                     dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)])
def test_sgd_update_formula(options):
    ours = run(lambda params: optim.SGD(params, **options), GRADIENTS, START)
    np.testing.assert_allclose(ours, np_sgd(START, GRADIENTS, **options), rtol=1e-12)


@pytest.mark.parametrize("options", [dict(lr=0.01), dict(lr=0.1, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1),
                                     dict(lr=0.01, amsgrad=True)])
def test_adam_update_formula(options):
    ours = run(lambda params: optim.Adam(params, **options), GRADIENTS, START)
    np.testing.assert_allclose(ours, np_adam(START, GRADIENTS, **options), rtol=1e-12)


@pytest.mark.parametrize("options", [dict(lr=0.01), dict(lr=0.1, weight_decay=0.5, amsgrad=True)])
def test_adamw_decouples_weight_decay(options):
    ours = run(lambda params: optim.AdamW(params, **options), GRADIENTS, START)
    expected = np_adam(START, GRADIENTS, decoupled=True, **{"weight_decay": 1e-2, **options})
    np.testing.assert_allclose(ours, expected, rtol=1e-12)


def test_updates_keep_the_parameter_array_and_dtype():
    param = nn.Parameter(tg.ones(4))
    array = param.data
    optimizer = optim.Adam([param])
    param.grad = tg.ones(4)
    optimizer.step()
    assert param.data is array and param.dtype == tg.float32
    assert optimizer.state[param]["exp_avg"].dtype == tg.float32


def test_parameters_without_gradient_are_skipped():
    used, unused = nn.Parameter(tg.ones(2)), nn.Parameter(tg.ones(2))
    optimizer = optim.SGD([used, unused], lr=1.0, momentum=0.5)
    used.grad = tg.ones(2)
    optimizer.step()
    assert used.numpy().tolist() == [0.0, 0.0] and unused.numpy().tolist() == [1.0, 1.0]
    assert unused not in optimizer.state


# ---------------------------------------------------------------- groups, zero_grad, closure, errors
def test_param_groups_take_their_own_hyperparameters():
    model = mlp()
    optimizer = optim.SGD([{"params": model[0].parameters()},
                           {"params": model[3].parameters(), "lr": 1.0}], lr=0.5, momentum=0.9)
    assert [group["lr"] for group in optimizer.param_groups] == [0.5, 1.0]
    assert optimizer.param_groups[1]["momentum"] == 0.9
    for param in model.parameters():
        param.grad = tg.ones(param.shape)
    before = [param.numpy().copy() for param in model.parameters()]
    optimizer.step()
    steps = [float((b - p.numpy()).mean()) for b, p in zip(before, model.parameters())]
    assert steps == pytest.approx([0.5, 0.5, 1.0, 1.0])
    with pytest.raises(ValueError, match="more than one parameter group"):
        optimizer.add_param_group({"params": [model[0].weight]})


def test_zero_grad_and_closure():
    param = nn.Parameter(tg.Tensor([3.0]))
    optimizer = optim.SGD([param], lr=0.25)

    def closure():
        optimizer.zero_grad()
        loss = (param * param).sum()
        loss.backward()
        return loss

    assert optimizer.step(closure).item() == 9.0
    assert param.item() == 1.5
    optimizer.zero_grad(set_to_none=False)
    assert param.grad.numpy().tolist() == [0.0]
    optimizer.zero_grad()
    assert param.grad is None


def test_constructor_errors_say_what_to_do():
    param = nn.Parameter(tg.ones(1))
    with pytest.raises(ValueError, match="learning rate"):
        optim.SGD([param], lr=-1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([param], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="beta"):
        optim.Adam([param], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(TypeError, match="single Tensor"):
        optim.Adam(param)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.Adam([param * 2])
    assert "Parameter Group 0" in repr(optim.Adam([param]))


# ---------------------------------------------------------------- state dicts and exact resume
def test_state_dict_is_indexed_by_position_and_loads_as_a_copy():
    tg.manual_seed(0)
    model = mlp()
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    model(tg.randn(3, 2)).sum().backward()
    optimizer.step()
    state = optimizer.state_dict()
    assert sorted(state["state"]) == [0, 1, 2, 3]
    assert state["state"][0]["step"] == 1 and isinstance(state["state"][0]["exp_avg"], tg.Tensor)
    assert state["param_groups"][0]["params"] == [0, 1, 2, 3] and state["param_groups"][0]["lr"] == 0.01

    fresh_model = mlp()
    fresh = optim.Adam(fresh_model.parameters(), lr=0.5)
    fresh.load_state_dict(state)
    assert fresh.param_groups[0]["lr"] == 0.01 and fresh.param_groups[0]["params"][0] is fresh_model[0].weight
    restored = fresh.state[fresh_model[0].weight]["exp_avg"]
    np.testing.assert_array_equal(restored, state["state"][0]["exp_avg"].numpy())
    restored[...] = 0  # a copy: the source optimizer is untouched
    assert np.abs(optimizer.state[model[0].weight]["exp_avg"]).sum() > 0


def test_load_state_dict_rejects_a_different_layout():
    model = mlp()
    state = optim.SGD(model.parameters(), lr=0.1).state_dict()
    with pytest.raises(ValueError, match="parameter groups"):
        optim.SGD([{"params": model[0].parameters()}, {"params": model[3].parameters()}], lr=0.1).load_state_dict(state)
    with pytest.raises(ValueError, match="same model"):
        optim.SGD(model[0].parameters(), lr=0.1).load_state_dict(state)


def train(model, optimizer, steps, inputs, targets):
    for _ in range(steps):
        optimizer.zero_grad()
        F.mse_loss(model(inputs), targets).backward()  # dropout draws from the engine's generator
        optimizer.step()


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_training_resumes_bit_for_bit_after_save_and_load(name, tmp_path):
    inputs, targets = tg.Tensor(XOR_INPUTS * 4), tg.Tensor(XOR_TARGETS * 4)
    tg.manual_seed(0)
    model = mlp(dropout=0.2)
    optimizer = OPTIMIZERS[name](model.parameters())
    train(model, optimizer, 10, inputs, targets)
    straight = [param.numpy().copy() for param in model.parameters()]

    tg.manual_seed(0)
    model = mlp(dropout=0.2)
    optimizer = OPTIMIZERS[name](model.parameters())
    train(model, optimizer, 5, inputs, targets)
    path = tmp_path / "checkpoint.npz"
    tg.save({"model": model.state_dict(), "optim": optimizer.state_dict(), "rng": tg.get_rng_state()}, path)
    tg.manual_seed(123)  # anything in between must not matter
    del model, optimizer

    checkpoint = tg.load(path)
    model = mlp(dropout=0.2)
    optimizer = OPTIMIZERS[name](model.parameters())
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optim"])
    tg.set_rng_state(checkpoint["rng"])
    train(model, optimizer, 5, inputs, targets)
    for resumed, expected in zip(model.parameters(), straight):
        np.testing.assert_array_equal(resumed.numpy(), expected)
