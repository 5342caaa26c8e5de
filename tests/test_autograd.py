"""The backward pass: deep chains, shared nodes, accumulation, freeing, no_grad, gradcheck itself."""
import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn.autograd import Function
from helpers import tensor64


def test_chain_of_100000_ops_backprops_without_recursion():
    x = tg.Tensor([0.5], requires_grad=True, dtype="float64")
    y = x
    for _ in range(100_000):
        y = y * 1.0 + 0.0  # 200,000 nodes
    y.sum().backward()
    assert x.grad.tolist() == [1.0]


def test_diamond_graph_sums_gradients():
    x = tensor64([2.0])
    a = x * 3
    b = x * x
    c = a * b + a + b  # x used through two paths, a and b used twice
    c.backward(tg.Tensor(np.ones(1)))
    # c = 3x^3 + 3x + x^2 -> 9x^2 + 3 + 2x
    assert x.grad.tolist() == [9 * 4 + 3 + 4]


def test_gradients_accumulate_across_backward_calls():
    x = tensor64([1.0, 2.0])
    (x * x).sum().backward()
    (x * 3).sum().backward()
    assert x.grad.tolist() == [5.0, 7.0]
    x.zero_grad()
    assert x.grad is None


def test_graph_is_freed_unless_retained():
    x = tensor64([1.0])
    y = (x * x).exp()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * 2 * np.e)
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_no_grad_context_and_decorator():
    x = tensor64([1.0])
    with tg.no_grad():
        y = x * 2
    assert not y.requires_grad

    @tg.no_grad()
    def double(t):
        return t * 2

    assert not double(x).requires_grad
    assert (x * 2).requires_grad
    assert tg.is_grad_enabled()


def test_detach_cuts_the_graph():
    x = tensor64([3.0])
    h = x * 2
    out = h.detach() * x
    out.backward()
    assert x.grad.tolist() == [6.0]  # only the direct path; nothing through h


def test_retain_grad_keeps_intermediate_gradient():
    x = tensor64([1.0, 2.0])
    h = x * 3
    h.retain_grad()
    (h * h).sum().backward()
    assert h.grad.tolist() == [6.0, 12.0]


def test_backward_errors_are_clear():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tg.Tensor([1.0]).backward()
    with pytest.raises(RuntimeError, match="one-element"):
        tensor64([1.0, 2.0]).mul(2).backward()
    with pytest.raises(RuntimeError, match="floating point"):
        tg.Tensor([1, 2], requires_grad=True)


class WrongSquare(Function):
    """x**2 with a deliberately wrong derivative (x instead of 2x)."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, g):
        return g * self.x


def test_gradcheck_catches_a_wrong_backward():
    x = tensor64([0.3, -1.2, 2.0])
    with pytest.raises(tg.GradcheckError, match="input 0"):
        tg.gradcheck(lambda t: WrongSquare.apply(t), [x])
    assert tg.gradcheck(lambda t: WrongSquare.apply(t), [x], raise_exception=False) is False
    assert tg.gradcheck(lambda t: t * t, [x])


class NanGradient(Function):
    """x**2 whose backward gives NaN at one element: gradcheck must not let NaN pass."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, g):
        grad = 2 * g * self.x
        grad[1] = np.nan
        return grad


class InfGradient(NanGradient):
    def backward(self, g):
        grad = 2 * g * self.x
        grad[2] = np.inf
        return grad


@pytest.mark.parametrize("function, index, value", [(NanGradient, 1, "nan"), (InfGradient, 2, "inf")])
def test_gradcheck_fails_on_a_non_finite_analytic_gradient(function, index, value):
    x = tensor64([0.3, -1.2, 2.0])
    with pytest.raises(tg.GradcheckError, match=rf"input 0 .* not finite at index \({index},\): analytic {value}"):
        tg.gradcheck(lambda t: function.apply(t), [x])
    assert tg.gradcheck(lambda t: function.apply(t), [x], raise_exception=False) is False


def test_gradcheck_fails_on_a_non_finite_numeric_gradient():
    # sqrt at 0: the analytic gradient is inf, the central difference NaN (sqrt of -eps)
    x = tensor64([0.5, 0.0, 2.0])
    with np.errstate(all="ignore"), pytest.raises(tg.GradcheckError, match=r"input 1 .* not finite at index \(1,\)"):
        tg.gradcheck(lambda a, t: a * t.sqrt(), [tensor64([1.0, 1.0, 1.0]), x])


def test_mixing_devices_names_both(monkeypatch):
    class FakeDeviceArray(np.ndarray):
        """Stands in for a CuPy array: another array type means another device."""

    a = tensor64([1.0])
    b = tensor64([2.0])
    b.data = b.data.view(FakeDeviceArray)
    monkeypatch.setattr(tg.Tensor, "device", property(lambda self: "cuda" if self is b else "cpu"))
    with pytest.raises(RuntimeError, match="'cpu' and 'cuda'"):
        a + b


def test_cuda_request_without_cupy_or_gpu_explains():
    if tg.cuda_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="cuda"):
        tg.zeros(2, device="cuda")


def test_manual_seed_and_rng_state_reproduce_draws():
    tg.manual_seed(7)
    first = tg.randn(3).numpy()
    tg.manual_seed(7)
    assert np.array_equal(tg.randn(3).numpy(), first)
    state = tg.get_rng_state()
    a = tg.rand(4).numpy()
    tg.set_rng_state(state)
    assert np.array_equal(tg.rand(4).numpy(), a)


def test_factories():
    assert tg.zeros(2, 3).shape == (2, 3) and tg.zeros((2, 3)).dtype == tg.float32
    assert tg.ones(2, dtype="float64").dtype == tg.float64
    assert tg.full((2,), 7.0).tolist() == [7.0, 7.0]
    assert tg.arange(5).dtype == tg.int64 and tg.arange(0, 1, 0.5).tolist() == [0.0, 0.5]
    assert np.array_equal(tg.eye(3).numpy(), np.eye(3))
    u = tg.uniform(1000, low=-2, high=-1).numpy()
    assert u.min() >= -2 and u.max() <= -1
    assert tg.randn(2, 2, requires_grad=True).requires_grad


def test_backward_from_several_outputs_equals_summed_losses():
    x = tensor64([1.0, -2.0, 3.0])
    a, b = (x * x), x.exp().sum()
    tg.autograd.backward([a, b], [np.array([1.0, 2.0, 3.0]), tg.Tensor(np.array(0.5))])
    expected = 2 * x.numpy() * np.array([1.0, 2.0, 3.0]) + 0.5 * np.exp(x.numpy())
    np.testing.assert_allclose(x.grad.numpy(), expected)
    with pytest.raises(RuntimeError, match="does not match"):
        tg.autograd.backward([x * 2], [np.ones(2)])


def test_many_gradients_into_one_node_are_summed_without_touching_shared_arrays():
    """A node read by many others (as the encoder outputs are by every decoder step) gets its gradients
    summed, from the third one in place; an array that backward hands to two inputs (``a + b`` gives both
    the same gradient) must not change under the other's later sums. ``y2`` is one node deeper than
    ``y1``: the sum's node runs first (``y1``'s first gradient is the shared array), then ``y1``'s other
    readers, then ``y2``'s node, which an in-place sum into the shared array would have reached."""
    x = tg.Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    w = tg.Tensor(np.array([0.5, 0.25, -1.0]), requires_grad=True)
    y1 = x * 2.0                         # non-leaf
    y2 = (w * 3.0) * 1.0                 # non-leaf, one node deeper
    shared = y1 + y2                     # backward hands y1 and y2 one array
    loss = (shared * 1.5).sum() + (y1 * 4.0).sum() + (y1 * y1).sum() + (y1 * x).sum()
    loss.backward()
    x0, w0 = x.data, w.data
    y1v = 2 * x0
    # d/dy1 = 1.5 + 4 + 2 y1 + x (x also reached directly: + y1), d/dy2 = 1.5
    np.testing.assert_allclose(x.grad.numpy(), 2 * (1.5 + 4.0 + 2 * y1v + x0) + y1v, rtol=1e-14)
    np.testing.assert_allclose(w.grad.numpy(), np.full(3, 3 * 1.5), rtol=1e-14)
