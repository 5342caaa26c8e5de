"""Every differentiable op: forward against NumPy, every input gradient through gradcheck."""
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_rnn as tg
from helpers import DEVICES, tensor64

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=25, print_blob=True)
settings.load_profile("ci")

rng = np.random.default_rng(0)


def broadcastable_pair():
    """Two shapes that broadcast together (NumPy rules), up to 3 dims of size <= 3."""
    return hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3)


def values(shape, low=-2.0, high=2.0, seed=0):
    return np.random.default_rng(seed).uniform(low, high, size=shape)


BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / b, lambda a, b: a / b),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@given(shapes=broadcastable_pair(), seed=st.integers(0, 10))
def test_binary_ops_broadcast(name, shapes, seed):
    ours, reference = BINARY[name]
    (sa, sb), _ = shapes.input_shapes, None
    a_np = values(sa, seed=seed)
    b_np = values(sb, low=0.5, high=2.0, seed=seed + 1) * np.sign(values(sb, seed=seed + 2) + 1e-3)
    a, b = tensor64(a_np), tensor64(b_np)
    np.testing.assert_allclose(ours(a, b).numpy(), reference(a_np, b_np))
    tg.gradcheck(ours, [a, b])
    # every broadcast input receives a gradient summed back to its own shape
    a.grad = b.grad = None
    ours(a, b).sum().backward()
    assert a.grad.shape == a.shape and b.grad.shape == b.shape


UNARY = {
    "neg": (lambda x: -x, lambda x: -x, (-2, 2)),
    "exp": (lambda x: x.exp(), np.exp, (-2, 2)),
    "log": (lambda x: x.log(), np.log, (0.2, 3)),
    "sqrt": (lambda x: x.sqrt(), np.sqrt, (0.2, 3)),
    "tanh": (lambda x: x.tanh(), np.tanh, (-3, 3)),
    "sigmoid": (lambda x: x.sigmoid(), lambda x: 1 / (1 + np.exp(-x)), (-5, 5)),
    "relu": (lambda x: x.relu(), lambda x: np.maximum(x, 0), (-2, 2)),
    "abs": (lambda x: abs(x), np.abs, (-2, 2)),
    "pow_scalar": (lambda x: x ** 3, lambda x: x ** 3, (-2, 2)),
    "rpow": (lambda x: 2.0 ** x, lambda x: 2.0 ** x, (-2, 2)),
    "clip": (lambda x: x.clip(-0.5, 0.7), lambda x: np.clip(x, -0.5, 0.7), (-2, 2)),
    "square": (lambda x: x.square(), np.square, (-2, 2)),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=4), seed=st.integers(0, 10))
def test_unary_ops(name, shape, seed):
    ours, reference, (low, high) = UNARY[name]
    x_np = values(shape, low, high, seed)
    # keep finite differences away from kinks (relu/abs at 0, clip at its bounds)
    x_np = np.where(np.abs(x_np) < 1e-3, 0.1, x_np)
    x_np = np.where(np.abs(np.abs(x_np) - 0.5) < 1e-3, 0.3, x_np)
    x_np = np.where(np.abs(x_np - 0.7) < 1e-3, 0.3, x_np)
    x = tensor64(x_np)
    np.testing.assert_allclose(ours(x).numpy(), reference(x_np), rtol=1e-12, atol=1e-12)
    tg.gradcheck(ours, [x])


def test_pow_tensor_exponent():
    a, b = tensor64(values((2, 3), 0.5, 2)), tensor64(values((3,), -1, 1, 1))
    np.testing.assert_allclose((a ** b).numpy(), a.numpy() ** b.numpy())
    tg.gradcheck(lambda a, b: a ** b, [a, b])


@pytest.mark.parametrize("op", ["maximum", "minimum"])
@given(shapes=broadcastable_pair(), seed=st.integers(0, 10))
def test_maximum_minimum(op, shapes, seed):
    sa, sb = shapes.input_shapes
    a_np, b_np = values(sa, seed=seed), values(sb, seed=seed + 7)
    a, b = tensor64(a_np), tensor64(b_np)
    np.testing.assert_allclose(getattr(tg, op)(a, b).numpy(), getattr(np, op)(a_np, b_np))
    tg.gradcheck(getattr(tg, op), [a, b])


def test_kinks_and_ties_match_pytorch():
    """relu'(0) = 0, abs'(0) = 0, maximum ties split in half, max ties split evenly, max(dim) picks the first."""
    x = tensor64([-1.0, 0.0, 2.0])
    x.relu().sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 1.0]
    x.grad = None
    abs(x).sum().backward()
    assert x.grad.tolist() == [-1.0, 0.0, 1.0]
    a, b = tensor64([1.0, 2.0]), tensor64([1.0, 3.0])
    tg.maximum(a, b).sum().backward()
    assert a.grad.tolist() == [0.5, 0.0] and b.grad.tolist() == [0.5, 1.0]
    y = tensor64([3.0, 1.0, 3.0])
    y.max().backward()
    assert y.grad.tolist() == [0.5, 0.0, 0.5]
    z = tensor64([[3.0, 1.0, 3.0]])
    z.max(dim=1).sum().backward()
    assert z.grad.tolist() == [[1.0, 0.0, 0.0]]
    c = tensor64([0.0, 0.5, 1.0])
    c.clip(0.0, 1.0).sum().backward()
    assert c.grad.tolist() == [1.0, 1.0, 1.0]  # PyTorch passes the gradient at the bounds


REDUCTIONS = {
    "sum": (lambda x, d, k: x.sum(dim=d, keepdim=k), lambda x, d, k: x.sum(axis=d, keepdims=k)),
    "mean": (lambda x, d, k: x.mean(dim=d, keepdim=k), lambda x, d, k: x.mean(axis=d, keepdims=k)),
    "max": (lambda x, d, k: x.max(dim=d, keepdim=k), lambda x, d, k: x.max(axis=d, keepdims=k)),
    "min": (lambda x, d, k: x.min(dim=d, keepdim=k), lambda x, d, k: x.min(axis=d, keepdims=k)),
    "logsumexp": (lambda x, d, k: x.logsumexp(dim=d, keepdim=k),
                  lambda x, d, k: np.log(np.exp(x).sum(axis=d, keepdims=k))),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), data=st.data())
def test_reductions(name, shape, data):
    ours, reference = REDUCTIONS[name]
    dim = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    if name in ("max", "min") and dim is None:
        dim_args = None
    else:
        dim_args = dim
    keepdim = data.draw(st.booleans())
    x_np = values(shape, seed=len(shape)) + np.arange(np.prod(shape)).reshape(shape) * 1e-3  # no ties
    x = tensor64(x_np)
    np.testing.assert_allclose(ours(x, dim_args, keepdim).numpy(), reference(x_np, dim_args, keepdim),
                               rtol=1e-12)
    tg.gradcheck(lambda t: ours(t, dim_args, keepdim), [x])


def test_sum_over_several_dims():
    x = tensor64(values((2, 3, 4)))
    np.testing.assert_allclose(x.sum(dim=(0, 2)).numpy(), x.numpy().sum(axis=(0, 2)))
    tg.gradcheck(lambda t: t.sum(dim=(0, 2), keepdim=True), [x])


@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((2, 3, 4), (4, 5)),
                                   ((4,), (4, 5)), ((3, 4), (4,)), ((1, 3, 4), (2, 4, 2)),
                                   ((2, 1, 3), (2, 3, 4)), ((2, 3, 4), (2, 4, 1)), ((2, 3, 1), (2, 1, 4))])
def test_matmul(sa, sb):
    a, b = tensor64(values(sa)), tensor64(values(sb, seed=1))
    np.testing.assert_allclose((a @ b).numpy(), a.numpy() @ b.numpy())
    np.testing.assert_allclose(a.dot(b).numpy(), a.numpy() @ b.numpy())
    tg.gradcheck(lambda a, b: a.matmul(b), [a, b])


@pytest.mark.parametrize("sa, sb, pair", [((4, 3), (5, 2), "4x3 and 5x2"), ((2, 4, 3), (2, 5, 2), "4x3 and 5x2"),
                                          ((3,), (4, 2), "1x3 and 4x2"), ((4, 3), (4,), "4x3 and 4x1"),
                                          ((3,), (4,), "1x3 and 4x1")])
def test_matmul_mismatch_names_the_shapes(sa, sb, pair):
    with pytest.raises(RuntimeError, match=re.escape(f"mat1 and mat2 shapes cannot be multiplied ({pair})")) as info:
        tg.zeros(*sa) @ tg.zeros(*sb)
    assert f"{sa} and {sb}" in str(info.value) and "gufunc" not in str(info.value)


def test_matmul_of_unbroadcastable_batches_or_0d_names_the_problem():
    with pytest.raises(RuntimeError, match=re.escape("batch dimensions (2,) and (3,) do not broadcast")):
        tg.zeros(2, 4, 3) @ tg.zeros(3, 3, 2)
    with pytest.raises(RuntimeError, match="at least 1D, but they are 0D and 1D"):
        tg.Tensor(1.0) @ tg.zeros(3)


def test_shape_ops():
    x_np = values((2, 3, 4))
    x = tensor64(x_np)
    cases = [
        (lambda t: t.reshape(6, 4), lambda a: a.reshape(6, 4)),
        (lambda t: t.view(-1), lambda a: a.reshape(-1)),
        (lambda t: t.transpose(0, 2), lambda a: a.transpose(2, 1, 0)),
        (lambda t: t.permute(1, 2, 0), lambda a: a.transpose(1, 2, 0)),
        (lambda t: t.T, lambda a: a.T),
        (lambda t: t[:, :1].expand(2, 5, 4), lambda a: np.broadcast_to(a[:, :1], (2, 5, 4))),
        (lambda t: t.unsqueeze(1).squeeze(1), lambda a: a),
        (lambda t: t.flatten(1), lambda a: a.reshape(2, 12)),
        (lambda t: t.pad((1, 2, 0, 1)), lambda a: np.pad(a, ((0, 0), (0, 1), (1, 2)))),
        (lambda t: t[1, ::2, 1:3], lambda a: a[1, ::2, 1:3]),
        (lambda t: t[..., -1], lambda a: a[..., -1]),
        (lambda t: t[np.array([0, 1, 1, 0])], lambda a: a[np.array([0, 1, 1, 0])]),
        (lambda t: t[:, np.array([2, 2, 0])], lambda a: a[:, np.array([2, 2, 0])]),
        (lambda t: t[np.array([0, 1]), np.array([2, 2])], lambda a: a[np.array([0, 1]), np.array([2, 2])]),
        (lambda t: t.gather(2, np.array([[[0, 0]] * 3, [[3, 1]] * 3])),
         lambda a: np.take_along_axis(a, np.array([[[0, 0]] * 3, [[3, 1]] * 3]), axis=2)),
    ]
    for ours, reference in cases:
        np.testing.assert_allclose(ours(x).numpy(), reference(x_np))
        tg.gradcheck(ours, [x])


def test_repeated_integer_index_accumulates():
    """Integer-array indexing is a gather; its backward scatter-adds repeated indices."""
    table = tensor64(np.zeros((3, 2)))
    table[np.array([0, 2, 0, 0])].sum().backward()
    assert table.grad.tolist() == [[3.0, 3.0], [0.0, 0.0], [1.0, 1.0]]


def test_cat_stack_split_chunk():
    a, b = tensor64(values((2, 3))), tensor64(values((2, 2), seed=1))
    np.testing.assert_allclose(tg.cat([a, b], dim=1).numpy(), np.concatenate([a.numpy(), b.numpy()], 1))
    tg.gradcheck(lambda a, b: tg.cat([a, b], dim=-1), [a, b])
    c = tensor64(values((2, 3), seed=2))
    np.testing.assert_allclose(tg.stack([a, c], dim=1).numpy(), np.stack([a.numpy(), c.numpy()], 1))
    tg.gradcheck(lambda a, c: tg.stack([a, c], dim=0), [a, c])
    x = tensor64(values((7, 2)))
    pieces = x.split(3)
    assert [p.shape for p in pieces] == [(3, 2), (3, 2), (1, 2)]
    tg.gradcheck(lambda t: t.split([2, 5])[1] * 2, [x])  # unused piece gets a zero gradient
    tg.gradcheck(lambda t: tuple(t.chunk(4, dim=0)), [x])
    with pytest.raises(RuntimeError, match="expects split_sizes to sum exactly to 7"):
        x.split([2, 2])


def test_where_and_masked_fill():
    a, b = tensor64(values((2, 3))), tensor64(values((3,), seed=1))
    cond = np.array([[True, False, True], [False, False, True]])
    np.testing.assert_allclose(tg.where(cond, a, b).numpy(), np.where(cond, a.numpy(), b.numpy()))
    tg.gradcheck(lambda a, b: tg.where(cond, a, b), [a, b])
    filled = a.masked_fill(tg.Tensor(cond), -1.0)
    assert filled.numpy()[0, 0] == -1.0 and filled.numpy()[0, 1] == a.numpy()[0, 1]


def test_comparisons_and_argmax_have_no_gradient():
    x = tensor64([[1.0, 3.0, 2.0], [0.0, -1.0, 5.0]])
    for result in (x > 1, x == 3, x <= 0, x != 2, x.argmax(dim=1), x.argmin()):
        assert not result.requires_grad
    assert x.argmax(dim=1).tolist() == [1, 2]
    assert x.argmax(dim=1, keepdim=True).shape == (2, 1)
    assert x.argmax().item() == 5
    assert (x > 1).dtype == np.bool_


def test_cast_is_differentiable_and_dtypes_follow_pytorch():
    x = tg.Tensor([1.0, 2.0], requires_grad=True)
    assert x.dtype == tg.float32
    assert tg.Tensor([1, 2]).dtype == tg.int64
    y = x.double() * 3
    assert y.dtype == tg.float64
    y.sum().backward()
    assert x.grad.dtype == tg.float32 and x.grad.tolist() == [3.0, 3.0]
    assert (x * 2).dtype == tg.float32  # Python scalars do not promote
    assert tg.Tensor(np.zeros(2)).dtype == tg.float64  # NumPy arrays keep their dtype, as torch.tensor does
    assert tg.Tensor(np.float64(2.0)).dtype == tg.float64  # and so do NumPy scalars


def test_python_operators_with_scalars_and_arrays():
    x = tensor64([1.0, 2.0])
    np.testing.assert_allclose((1 - x).numpy(), [0.0, -1.0])
    np.testing.assert_allclose((2 / x).numpy(), [2.0, 1.0])
    np.testing.assert_allclose((np.array([1.0, 1.0]) + x).numpy(), [2.0, 3.0])
    tg.gradcheck(lambda t: (1 - t) * (3 / t) + t ** 2, [x])


@pytest.mark.parametrize("device", DEVICES)
def test_ops_run_on_each_device(device):
    x = tg.Tensor(values((3, 4)), device=device, requires_grad=True)
    w = tg.Tensor(values((4, 2), seed=1), device=device, requires_grad=True)
    loss = x.dot(w).tanh().logsumexp(dim=1).mean()
    loss.backward()
    assert x.grad.device == device and w.grad.shape == (4, 2)
    expected = np.log(np.exp(np.tanh(x.numpy() @ w.numpy())).sum(1)).mean()
    np.testing.assert_allclose(loss.item(), expected)
