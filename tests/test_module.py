"""nn.Module: registration, traversal, modes, moving/casting, state dicts; Parameter; containers."""
import re
from collections import OrderedDict

import numpy as np
import pytest

import tinygrad_rnn as tg
from helpers import DEVICES
from tinygrad_rnn import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(tg.ones(3))
        self.inner = nn.Linear(3, 2)
        self.register_buffer("running", tg.zeros(2))
        self.register_buffer("scratch", tg.zeros(4), persistent=False)
        self.note = "plain attribute"

    def forward(self, x):
        return self.inner(x * self.scale) + self.running


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = Block()
        self.layers = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])
        self.head = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))

    def forward(self, x):
        x = self.first(x)
        for layer in self.layers:
            x = layer(x).tanh()
        return self.head(x)


PARAMETER_NAMES = ["first.scale", "first.inner.weight", "first.inner.bias", "layers.0.weight", "layers.0.bias",
                   "layers.1.weight", "layers.1.bias", "head.0.weight", "head.0.bias", "head.2.weight",
                   "head.2.bias"]


def test_parameters_are_registered_by_attribute_with_dotted_names():
    net = Net()
    assert [name for name, _ in net.named_parameters()] == PARAMETER_NAMES
    assert len(list(net.parameters())) == len(PARAMETER_NAMES)
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())
    assert net.first.note == "plain attribute"
    assert [name for name, _ in net.first.named_parameters(recurse=False)] == ["scale"]


def test_children_modules_and_buffers():
    net = Net()
    assert [name for name, _ in net.named_children()] == ["first", "layers", "head"]
    assert list(net.children())[0] is net.first
    names = [name for name, _ in net.named_modules()]
    assert names[:3] == ["", "first", "first.inner"] and "head.1" in names and len(names) == 10
    assert [name for name, _ in net.named_buffers()] == ["first.running", "first.scratch"]


def test_shared_parameter_is_listed_once():
    net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    net[1].weight = net[0].weight
    assert len(list(net.parameters())) == 3
    assert list(net.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]


def test_reassigning_and_deleting_attributes():
    block = Block()
    with pytest.raises(TypeError, match="nn.Parameter"):
        block.scale = tg.ones(3)
    block.scale = None
    assert block.scale is None and "first.scale" not in Net().first.state_dict()
    block.running = tg.ones(2)
    assert block.running.numpy().tolist() == [1, 1] and "running" in block.state_dict()
    del block.inner
    assert [name for name, _ in block.named_children()] == []


def test_assigning_a_parameter_before_init_says_how_to_fix():
    class Broken(nn.Module):
        def __init__(self):
            self.weight = nn.Parameter(tg.ones(1))

    with pytest.raises(AttributeError, match=r"super\(\).__init__\(\)"):
        Broken()


def test_train_eval_recurses_and_controls_dropout():
    net = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    assert net.training and net[1].training
    assert net.eval() is net
    assert not net.training and not net[1].training
    x = tg.randn(3, 4)
    np.testing.assert_array_equal(net(x).numpy(), net(x).numpy())
    net.train()
    assert net[1].training


def test_call_runs_forward_and_zero_grad_sets_none():
    net = Net()
    out = net(tg.randn(5, 3))
    assert out.shape == (5, 1)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_double_and_float_cast_in_place_keeping_parameter_objects():
    net = Net()
    before = list(net.parameters())
    net(tg.randn(2, 3)).sum().backward()
    assert net.double() is net
    after = list(net.parameters())
    assert all(a is b for a, b in zip(before, after))
    assert all(p.dtype == tg.float64 and p.grad.dtype == tg.float64 for p in after)
    assert net.first.running.dtype == tg.float64
    assert net(tg.randn(2, 3, dtype="float64")).dtype == tg.float64
    net.float()
    assert all(p.dtype == tg.float32 for p in net.parameters())


@pytest.mark.parametrize("device", DEVICES)
def test_to_device_moves_parameters_and_buffers(device):
    net = Net()
    params = list(net.parameters())
    net.to(device)
    assert all(p.device == device for p in net.parameters()) and net.first.running.device == device
    assert all(a is b for a, b in zip(params, net.parameters()))
    assert net(tg.randn(2, 3, device=device)).device == device


def test_state_dict_names_values_and_buffers():
    net = Net()
    state = net.state_dict()
    # PyTorch order: a module's own parameters, then its buffers, then its children
    assert list(state)[:4] == ["first.scale", "first.running", "first.inner.weight", "first.inner.bias"]
    assert "first.scratch" not in state  # non-persistent buffer
    assert set(PARAMETER_NAMES) <= set(state)
    assert all(type(v) is tg.Tensor and not v.requires_grad for v in state.values())
    np.testing.assert_array_equal(state["head.0.weight"].numpy(), net.head[0].weight.numpy())


def test_load_state_dict_round_trip_reproduces_outputs_bit_for_bit():
    tg.manual_seed(0)
    source, target = Net(), Net()
    x = tg.randn(4, 3)
    state = {k: v.numpy().copy() for k, v in source.state_dict().items()}  # NumPy arrays are accepted
    weight = target.head[0].weight
    result = target.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert target.head[0].weight is weight  # loaded in place
    np.testing.assert_array_equal(target(x).numpy(), source(x).numpy())


def test_load_state_dict_casts_to_parameter_dtype():
    net = nn.Linear(2, 2)
    state = {"weight": np.ones((2, 2), dtype=np.float64), "bias": tg.Tensor([1, 2], dtype="int64")}
    net.load_state_dict(state)
    assert net.weight.dtype == tg.float32 and net.bias.numpy().tolist() == [1.0, 2.0]


def test_load_state_dict_names_every_bad_key_and_loads_nothing():
    net = Net()
    before = net.head[0].weight.numpy().copy()
    state = dict(net.state_dict())
    del state["first.scale"], state["layers.1.bias"]
    state["extra.weight"] = np.zeros(1)
    state["bogus"] = np.zeros(1)
    state["head.0.weight"] = np.zeros((3, 3))
    state["head.2.bias"] = np.zeros((7,))
    with pytest.raises(RuntimeError) as info:
        net.load_state_dict(state)
    message = str(info.value)
    for key in ["first.scale", "layers.1.bias", "extra.weight", "bogus", "head.0.weight", "head.2.bias"]:
        assert key in message
    assert "(3, 3)" in message and "(4, 2)" in message
    np.testing.assert_array_equal(net.head[0].weight.numpy(), before)


@pytest.mark.parametrize("value, shown", [
    (np.zeros((2, 2), dtype=np.complex128), "ndarray of dtype complex128"),
    (np.full((2, 2), None, dtype=object), "ndarray of dtype object"),
    (np.full((2, 2), "x"), "ndarray of dtype <U1"),
    ("weights", "str of dtype <U7"),
    (None, "NoneType of dtype object"),
    ([[1.0, 2.0], [3.0]], "list of dtype object"),
])
def test_load_state_dict_refuses_non_numeric_values_naming_key_and_dtype(value, shown):
    net = nn.Linear(2, 2)
    before = net.weight.numpy().copy()
    with pytest.raises(RuntimeError, match=re.escape(f"weight: {shown}")) as info:
        net.load_state_dict({"weight": value, "bias": np.zeros(2)})
    assert "nothing was loaded" in str(info.value)
    np.testing.assert_array_equal(net.weight.numpy(), before)  # never silently NaN


@pytest.mark.parametrize("state", [None, [("weight", np.zeros((2, 2)))], "weight"])
def test_load_state_dict_needs_a_mapping(state):
    with pytest.raises(TypeError, match="Expected state_dict to be dict-like"):
        nn.Linear(2, 2).load_state_dict(state)


def test_load_state_dict_non_strict_reports_missing_and_unexpected():
    net = nn.Linear(2, 2)
    result = net.load_state_dict({"weight": np.zeros((2, 2)), "other": np.zeros(3)}, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["other"]
    assert net.weight.numpy().sum() == 0
    with pytest.raises(RuntimeError, match="shape mismatch"):
        net.load_state_dict({"weight": np.zeros((1, 2))}, strict=False)


def test_parameter_shares_memory_and_repr():
    data = np.zeros(3, dtype=np.float32)
    param = nn.Parameter(data)
    param.data[0] = 5
    assert data[0] == 5 and param.requires_grad
    assert repr(param).startswith("Parameter containing:")
    assert not nn.Parameter(tg.ones(2), requires_grad=False).requires_grad


def test_repr_shows_the_tree():
    text = repr(Net())
    assert text.startswith("Net(\n  (first): Block(")
    assert "(0): Linear(in_features=2, out_features=4, bias=True)" in text
    assert "(1): ReLU()" in text


def test_sequential_indexing_slicing_and_ordered_dict():
    seq = nn.Sequential(OrderedDict([("encode", nn.Linear(2, 3)), ("act", nn.Tanh())]))
    assert [name for name, _ in seq.named_parameters()] == ["encode.weight", "encode.bias"]
    assert isinstance(seq[-1], nn.Tanh) and len(seq) == 2
    assert isinstance(seq[:1], nn.Sequential) and len(seq[:1]) == 1
    seq.append(nn.Linear(3, 1))
    assert seq(tg.randn(4, 2)).shape == (4, 1)
    with pytest.raises(TypeError):
        nn.Sequential(lambda x: x)


def test_module_list_operations_renumber():
    layers = nn.ModuleList([nn.Linear(1, 1) for _ in range(2)])
    first = layers[0]
    layers.insert(0, nn.Linear(1, 2))
    layers.append(nn.Linear(1, 3))
    layers += [nn.Linear(1, 4)]
    assert len(layers) == 5 and layers[1] is first and layers[-1].out_features == 4
    del layers[0]
    assert layers[0] is first
    assert [name for name, _ in layers.named_children()] == ["0", "1", "2", "3"]
    layers[1] = nn.Linear(1, 5)
    assert layers[1].out_features == 5 and len(list(layers.parameters())) == 8


def test_apply_and_requires_grad():
    net = Net()
    seen = []
    net.apply(lambda module: seen.append(type(module).__name__))
    assert seen[-1] == "Net" and seen.count("Linear") == 5
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())
