"""Optimizers over flat buffers: the same numbers as the per-parameter path, fallbacks when user code
changes gradients, data or state, the CUDA kernel's arithmetic, the operation counts, argument checks."""
import math

import numpy as np
import pytest

import tinygrad_rnn as tg
from helpers import CountingArray, count_array_operations
from tinygrad_rnn import backend, nn, optim, profiler
from tinygrad_rnn.nn.utils import clip_grad_norm_
from tinygrad_rnn.optim import adam as adam_module
from tinygrad_rnn.optim import flat

CONFIGS = {
    "adam_l2": lambda params: optim.Adam(params, lr=0.01, weight_decay=0.1),
    "adam_amsgrad": lambda params: optim.Adam(params, lr=0.01, betas=(0.8, 0.99), amsgrad=True),
    "adamw": lambda params: optim.AdamW(params, lr=0.01, weight_decay=0.05),
    "adamw_amsgrad": lambda params: optim.AdamW(params, lr=0.01, weight_decay=0.05, amsgrad=True),
    "sgd_momentum_l2": lambda params: optim.SGD(params, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01),
    "sgd_nesterov": lambda params: optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True),
    "sgd_plain": lambda params: optim.SGD(params, lr=0.05),
}


def model64(seed=0):
    tg.manual_seed(seed)
    return nn.Sequential(nn.Embedding(7, 3), nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()


def backward(model, seed):
    generator = np.random.default_rng(seed)
    indices = tg.Tensor(generator.integers(0, 7, size=5))
    target = tg.Tensor(generator.standard_normal((5, 2)))
    ((model(indices) - target) ** 2).sum().backward()


def reference_step(optimizer):
    """The per-parameter path, by hand."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            if param.grad is not None:
                optimizer._update(param, optimizer.state[param], group)


def reference_clip(params, max_norm):
    grads = [p.grad.numpy() for p in params]
    total = math.sqrt(sum(float((g * g).sum()) for g in grads))
    for g in grads:
        g *= min(1.0, max_norm / (total + 1e-6))
    return total


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_flat_path_equals_the_per_parameter_reference(name, monkeypatch):
    fused_model, reference_model = model64(), model64()
    fused, reference = CONFIGS[name](fused_model.parameters()), CONFIGS[name](reference_model.parameters())
    taken = []
    original = optim.Optimizer._flat_update
    monkeypatch.setattr(optim.Optimizer, "_flat_update",
                        lambda self, layout, group: taken.append(original(self, layout, group)) or taken[-1])
    for step in range(6):
        fused.zero_grad()
        reference.zero_grad()
        backward(fused_model, step)
        backward(reference_model, step)
        for param in reference_model.parameters():   # gradients of its own, not in a flat buffer
            param.grad = tg.Tensor(param.grad.numpy().copy())
        max_norm = 0.5 if step % 2 else 100.0         # clipping on every other step
        total = clip_grad_norm_(fused_model.parameters(), max_norm)
        assert total.item() == pytest.approx(reference_clip(list(reference_model.parameters()), max_norm),
                                             rel=1e-13)
        fused.step()
        reference_step(reference)
    assert taken and all(taken)   # every step took the flat path
    for ours, theirs in zip(fused_model.parameters(), reference_model.parameters()):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12, atol=1e-14)
    ours, theirs = fused.state_dict()["state"], reference.state_dict()["state"]
    assert sorted(ours) == sorted(theirs)
    for index in ours:
        assert sorted(ours[index]) == sorted(theirs[index])
        for key, value in ours[index].items():
            if isinstance(value, tg.Tensor):
                np.testing.assert_allclose(value.numpy(), theirs[index][key].numpy(), rtol=1e-12, atol=1e-14)
            else:
                assert value == theirs[index][key]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_flat_and_per_parameter_arithmetic_are_bit_identical_without_clipping(name):
    fused_model, reference_model = model64(1), model64(1)
    fused, reference = CONFIGS[name](fused_model.parameters()), CONFIGS[name](reference_model.parameters())
    for step in range(4):
        for model in (fused_model, reference_model):
            for param in model.parameters():
                param.grad = None
            backward(model, step)
        fused.step()
        reference_step(reference)
    for ours, theirs in zip(fused_model.parameters(), reference_model.parameters()):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_gradients_land_in_the_flat_buffer_and_parameters_keep_their_arrays():
    model = model64()
    arrays = [p.data for p in model.parameters()]
    optimizer = optim.Adam(model.parameters())
    backward(model, 0)
    layout, = optimizer._layouts_of(0)
    assert all(a is p.data for a, p in zip(arrays, model.parameters()))
    assert all(np.shares_memory(p.grad.data, layout.grad) for p in model.parameters())
    optimizer.step()
    assert all(a is p.data for a, p in zip(arrays, model.parameters()))
    assert all(np.shares_memory(state["exp_avg"], layout.state["exp_avg"][0]) for state in optimizer.state.values())
    optimizer.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_a_parameter_without_gradient_takes_the_per_parameter_path():
    used, unused = nn.Parameter(tg.ones(2)), nn.Parameter(tg.ones(2))
    optimizer = optim.SGD([used, unused], lr=1.0, momentum=0.5)
    (used * 1.0).sum().backward()
    optimizer.step()
    assert used.numpy().tolist() == [0.0, 0.0] and unused.numpy().tolist() == [1.0, 1.0]
    assert unused not in optimizer.state
    optimizer.zero_grad()
    (used * 1.0 + unused * 2.0).sum().backward()   # now both: states disagree, still per parameter
    optimizer.step()
    assert used.numpy().tolist() == [-1.5, -1.5] and unused.numpy().tolist() == [-1.0, -1.0]


def test_replaced_gradients_data_and_state_are_followed():
    model = model64()
    optimizer = optim.Adam(model.parameters(), lr=0.1)
    reference_model = model64()
    reference = optim.Adam(reference_model.parameters(), lr=0.1)
    for m in (model, reference_model):
        backward(m, 0)
    first = next(model.parameters())
    first.grad = tg.Tensor(first.grad.numpy() * 2)                # a gradient set by user code
    next(reference_model.parameters()).grad = tg.Tensor(next(reference_model.parameters()).grad.numpy() * 2)
    optimizer.step()
    reference_step(reference)
    # state replaced by load_state_dict, then the model cast to float32 (data replaced)
    optimizer.load_state_dict(optimizer.state_dict())
    model.float()
    reference_model.float()
    for m in (model, reference_model):
        for param in m.parameters():
            param.grad = None
        backward(m, 1)
    optimizer.step()
    reference.load_state_dict(reference.state_dict())
    reference_step(reference)
    for ours, theirs in zip(model.parameters(), reference_model.parameters()):
        assert ours.dtype == tg.float32
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)
    assert all(state["exp_avg"].dtype == np.float32 for state in optimizer.state.values())


def test_clip_over_part_of_a_layout_uses_each_gradient():
    model = model64()
    optim.SGD(model.parameters(), lr=0.1)
    backward(model, 0)
    some = list(model.parameters())[:2]
    assert len(flat.gradient_arrays(some)) == 2
    assert len(flat.gradient_arrays(list(model.parameters()) * 2)) == 1   # duplicates: still one buffer
    expected = np.sqrt(sum((p.grad.numpy() ** 2).sum() for p in some))
    assert clip_grad_norm_(some, 1e9).item() == pytest.approx(expected, rel=1e-13)


def test_zero_grad_in_place_zeroes_the_flat_buffer():
    model = model64()
    optimizer = optim.Adam(model.parameters())
    backward(model, 0)
    optimizer.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in model.parameters())


# ---------------------------------------------------------------- the CUDA kernel, run by an interpreter
def emulate(monkeypatch):
    from test_rnn_cuda import emulated_kernel

    def with_sqrt(in_params, out_params, operation, name):
        return emulated_kernel(in_params, out_params, operation.replace("sqrt(", "np.sqrt("), name)

    monkeypatch.setattr(backend, "elementwise_kernel", with_sqrt)
    monkeypatch.setattr(adam_module, "_KERNELS", {})
    monkeypatch.setattr(adam_module, "_uses_kernel", lambda grad: True)


@pytest.mark.parametrize("name", ["adam_l2", "adam_amsgrad", "adamw", "adamw_amsgrad"])
def test_adam_kernel_source_matches_the_numpy_sequence(name, monkeypatch):
    models = [model64(2), model64(2)]
    optimizers = [CONFIGS[name](m.parameters()) for m in models]
    for step in range(3):
        for index, (model, optimizer) in enumerate(zip(models, optimizers)):
            for param in model.parameters():
                param.grad = None
            backward(model, step)
            if index == 1:
                with monkeypatch.context() as patch:
                    emulate(patch)
                    optimizer.step()
            else:
                optimizer.step()
    for ours, theirs in zip(*(m.parameters() for m in models)):
        np.testing.assert_allclose(theirs.numpy(), ours.numpy(), rtol=1e-13, atol=1e-15)


# ---------------------------------------------------------------- counts per optimizer step
def test_counts_per_optimizer_step_of_the_translators_default_model():
    """zero_grad + clip_grad_norm_ + Adam.step for translator's default ModelConfig: no engine op, no
    sync, no upload, and 7 + 13 per block array operations. Before the flat buffers it was 68 + 286
    array operations (3 per parameter + 2 to clip, 13 per parameter for Adam), one sync and one upload.
    On the CPU the 12 of Adam and the parameter's change run on cache-sized blocks of each parameter (a
    GPU kernel does them all at once): more NumPy calls, each on data in the cache, 2x faster for the
    bench's 9.6M parameters."""
    from translator.model import Seq2Seq
    from translator.model_config import ModelConfig

    model = Seq2Seq(ModelConfig(), 11, 13)
    params = list(model.parameters())
    assert len(params) == 22
    for param in params:
        param.data = param.data.view(CountingArray)
    optimizer = optim.Adam(model.parameters(), lr=3e-3)
    found = []
    for step in range(3):
        with profiler.record() as counts:
            zero_grad = count_array_operations(optimizer.zero_grad)
            for param in params:  # what backward does with each leaf's gradient
                tg.autograd._accumulate_leaf(param, np.full(param.shape, 0.5, dtype=param.dtype))
            clip = count_array_operations(lambda: clip_grad_norm_(model.parameters(), 1.0))
            update = count_array_operations(optimizer.step)
        found.append((zero_grad, clip, update))
        assert counts.as_dict() == {"ops": 0, "syncs": 0, "uploads": 0, "launches": 0}
    # On the CPU Adam's 12 operations and the subtraction run per cache-sized block of each parameter
    blocks = sum(-(-int(param.data.size) // adam_module._BLOCK) for param in params)
    assert found[1:] == [(0, 7, 13 * blocks)] * 2
    assert found[0][:2] == (0, 7) and found[0][2] > 13 * blocks  # the first step also makes the moment buffers
    # clipping reads the factor on the host (free on the CPU): without clipping the scaling pass is skipped
    assert count_array_operations(lambda: clip_grad_norm_(model.parameters(), 1e9)) == 6


# ---------------------------------------------------------------- PyTorch's argument checks
@pytest.mark.parametrize("make, message", [
    (lambda p: optim.Adam(p, lr=float("nan")), "Invalid learning rate: nan"),
    (lambda p: optim.Adam(p, lr=-0.1), "Invalid learning rate: -0.1"),
    (lambda p: optim.Adam(p, eps=float("nan")), "Invalid epsilon value: nan"),
    (lambda p: optim.Adam(p, betas=(float("nan"), 0.9)), "Invalid beta parameter at index 0: nan"),
    (lambda p: optim.Adam(p, betas=(0.9, 1.0)), "Invalid beta parameter at index 1: 1.0"),
    (lambda p: optim.AdamW(p, weight_decay=float("nan")), "Invalid weight_decay value: nan"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=float("nan")), "Invalid momentum value: nan"),
    (lambda p: optim.SGD(p, lr=0.1, weight_decay=-1.0), "Invalid weight_decay value: -1.0"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.5, nesterov=True), "Nesterov momentum requires"),
    (lambda p: optim.SGD([{"params": p, "lr": float("nan")}], lr=0.1), "Invalid learning rate: nan"),
])
def test_bad_hyperparameters_are_refused_like_pytorch(make, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")) as error:
        make([nn.Parameter(tg.ones(2))])
    assert "it must" in str(error.value) or "Nesterov" in str(error.value)


def test_non_numbers_and_bad_saved_hyperparameters_are_refused():
    param = nn.Parameter(tg.ones(2))
    with pytest.raises(TypeError, match="Invalid learning rate: 'x': it must be a number"):
        optim.Adam([param], lr="x")
    optimizer = optim.Adam([param])
    state = optimizer.state_dict()
    state["param_groups"][0]["lr"] = "x"
    with pytest.raises(TypeError, match="Invalid learning rate"):
        optimizer.load_state_dict(state)
    assert optimizer.param_groups[0]["lr"] == 1e-3   # nothing was loaded


@pytest.mark.parametrize("options", [dict(), dict(amsgrad=True, weight_decay=0.1)])
@pytest.mark.parametrize("make", [optim.Adam, optim.AdamW])
def test_adam_in_blocks_equals_whole_arrays_bit_for_bit(make, options, monkeypatch):
    """The CPU update runs on cache-sized blocks of the flat buffers: the same bits as whole-array passes."""
    rng = np.random.default_rng(0)
    shapes = [(7, 5), (11,), (3, 4, 2)]
    starts = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
    grads = [[rng.standard_normal(shape).astype(np.float32) for shape in shapes] for _ in range(3)]
    results = []
    for block in (16, 1 << 30):   # 16: blocks that cut through parameters; then one block
        monkeypatch.setattr(adam_module, "_BLOCK", block)
        params = [nn.Parameter(tg.Tensor(start.copy())) for start in starts]
        optimizer = make(params, lr=0.01, **options)
        for step_grads in grads:
            optimizer.zero_grad()
            for param, grad in zip(params, step_grads):
                tg.autograd._accumulate_leaf(param, grad)
            optimizer.step()
        results.append([param.data.copy() for param in params])
    for blocked, whole in zip(*results):
        assert np.array_equal(blocked, whole)


# ---------------------------------------------------------------- gradients computed into the flat buffer
def _embedding_output_problem(tied: bool):
    """An embedding and an output layer with the fused loss (a decoder's two big gradients), float64."""
    tg.manual_seed(3)
    embedding = nn.Embedding(11, 4, padding_idx=0).double()
    output = nn.Linear(4, 11).double()
    if tied:
        output.weight = embedding.weight
    return embedding, output


def _loss_of(embedding, output, step):
    generator = np.random.default_rng(step)
    tokens = generator.integers(0, 11, size=(6,))
    tokens[2] = tokens[3]  # a repeated row: the scatter must add both
    hidden = embedding(tg.Tensor(tokens)).tanh()
    return nn.functional.linear_cross_entropy(hidden, output.weight, output.bias, generator.integers(0, 11, size=6),
                                              label_smoothing=0.1)


@pytest.mark.parametrize("tied", [False, True])
def test_gradients_computed_into_the_flat_buffer_equal_fresh_ones(tied):
    """With an optimizer's flat buffers the embedding's and the output layer's gradients are computed in
    their views of the buffer (no copy): the same numbers as without an optimizer, several steps (so
    zero_grad, reuse and, tied, a second accumulation into the view are covered)."""
    plain, flat_model = _embedding_output_problem(tied), _embedding_output_problem(tied)
    params = list(nn.ModuleList(list(flat_model)).parameters())
    optimizer = optim.Adam(params, lr=0.01)
    arrived_in_buffer = []
    accumulate = tg.autograd._accumulate_leaf

    def recording(tensor, grad):
        slot = tensor._grad_slot
        if tensor.grad is None and slot is not None:
            arrived_in_buffer.append(grad is slot[1])
        accumulate(tensor, grad)

    for step in range(3):
        optimizer.zero_grad()
        for module in plain:
            module.zero_grad()
        _loss_of(*plain, step).backward()
        arrived_in_buffer.clear()
        tg.autograd._accumulate_leaf = recording
        try:
            _loss_of(*flat_model, step).backward()
        finally:
            tg.autograd._accumulate_leaf = accumulate
        # every parameter's first gradient was computed in its view: output weight and bias, embedding
        assert arrived_in_buffer == [True] * len(params)
        plain_params = list(nn.ModuleList(list(plain)).parameters())
        for ours, reference in zip(params, plain_params):
            np.testing.assert_array_equal(ours.grad.numpy(), reference.grad.numpy())
            slot = ours._grad_slot
            assert slot is not None and ours.grad.data is slot[1]  # in the buffer, as before
        optimizer.step()
        for ours, reference in zip(params, plain_params):  # keep the two on the same weights
            reference.data[...] = ours.data


def test_grad_buffer_is_offered_only_to_a_leaf_without_gradient_that_appears_once():
    """Function.grad_buffer: the view for a parameter whose gradient is still None; None once it has one,
    for a tensor passed twice, for another shape or dtype, and without an optimizer."""
    seen = {}

    class Probe(tg.autograd.Function):
        def forward(self, a, b):
            return a * b

        def backward(self, g):
            seen["a"] = self.grad_buffer(0, self.inputs[0].shape, self.inputs[0].dtype)
            seen["a_wrong_shape"] = self.grad_buffer(0, (1,), self.inputs[0].dtype)
            seen["a_wrong_dtype"] = self.grad_buffer(0, self.inputs[0].shape, np.float32)
            return g * self.inputs[1].data, g * self.inputs[0].data

    weight = tg.Tensor(np.arange(3.0), requires_grad=True)
    other = tg.Tensor(np.ones(3), requires_grad=True)
    Probe.apply(weight, other).sum().backward()
    assert seen["a"] is None  # no optimizer: no buffer
    optimizer = optim.SGD([weight, other], lr=0.1)
    optimizer.zero_grad()
    Probe.apply(weight, other).sum().backward()
    assert seen["a"] is weight._grad_slot[1]
    assert seen["a_wrong_shape"] is None and seen["a_wrong_dtype"] is None
    Probe.apply(weight, other).sum().backward()  # the gradient exists now: accumulate, no buffer
    assert seen["a"] is None
    np.testing.assert_array_equal(weight.grad.numpy(), 2 * np.ones(3))
    optimizer.zero_grad()
    Probe.apply(weight, weight).sum().backward()  # the same tensor twice: a buffer would be written twice
    assert seen["a"] is None
    np.testing.assert_array_equal(weight.grad.numpy(), 2 * np.arange(3.0))
