"""nn.functional: forward against NumPy formulas, gradients by gradcheck, fused loss == composed twin."""
import numpy as np
import pytest

import tinygrad_rnn as tg
from helpers import DEVICES, tensor64
from tinygrad_rnn.nn import functional as F
from tinygrad_rnn.nn.functional import _composed_nll

rng = np.random.default_rng(0)


def np_log_softmax(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def np_cross_entropy(logits, target, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
    """PyTorch's documented formula, for (N, C) logits."""
    log_probs = np_log_softmax(logits.astype(np.float64), 1)
    valid = target != ignore_index
    nll = -log_probs[np.arange(len(target)), np.where(valid, target, 0)]
    loss = ((1 - label_smoothing) * nll - label_smoothing * log_probs.mean(1)) * valid
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.sum() / valid.sum()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_and_log_softmax_match_numpy(device, dim):
    x = rng.standard_normal((3, 4, 5)) * 3
    expected = np_log_softmax(x, dim)
    np.testing.assert_allclose(F.log_softmax(tensor64(x, device), dim).numpy(), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(F.softmax(tensor64(x, device), dim).numpy(), np.exp(expected), rtol=1e-10)


def test_softmax_and_log_softmax_are_stable_for_huge_logits():
    x = tg.Tensor([[1e4, 0.0, -1e4], [-5e3, -5e3, -5e3]])
    assert np.isfinite(F.log_softmax(x, 1).numpy()).all()
    np.testing.assert_allclose(F.softmax(x, 1).numpy(), [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-6)


@pytest.mark.parametrize("dim", [0, 1])
def test_softmax_gradients(dim):
    x = tensor64(rng.standard_normal((3, 4)))
    tg.gradcheck(lambda x: F.softmax(x, dim), [x])
    tg.gradcheck(lambda x: F.log_softmax(x, dim), [x])


def test_cross_entropy_known_value():
    # -log softmax([1, 2, 3])[2] = log(1 + e**-1 + e**-2)
    loss = F.cross_entropy(tg.Tensor([[1.0, 2.0, 3.0]]), [2])
    assert loss.item() == pytest.approx(0.40760596, rel=1e-6)


CASES = [
    dict(),
    dict(reduction="sum"),
    dict(reduction="none"),
    dict(label_smoothing=0.1),
    dict(label_smoothing=0.3, reduction="sum"),
    dict(label_smoothing=0.2, reduction="none"),
    dict(ignore_index=0),
    dict(ignore_index=2, label_smoothing=0.1),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("options", CASES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_cross_entropy_matches_pytorch_formula(device, options):
    logits = rng.standard_normal((7, 5)) * 2
    target = np.array([0, 2, 4, 2, 1, 0, 3])
    ours = F.cross_entropy(tg.Tensor(logits, device=device), tg.Tensor(target, device=device), **options)
    np.testing.assert_allclose(ours.numpy(), np_cross_entropy(logits, target, **options), rtol=1e-6, atol=1e-7)
    # the composed twin, written from the primitives
    composed = _composed_nll(F.log_softmax(tg.Tensor(logits, device=device), 1), target, **options)
    np.testing.assert_allclose(composed.numpy(), ours.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("options", CASES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_cross_entropy_gradcheck_and_fused_equals_composed(options):
    logits = rng.standard_normal((6, 4))
    target = np.array([0, 3, 2, 2, 1, 0])
    tg.gradcheck(lambda x: F.cross_entropy(x, target, **options), [tensor64(logits)])
    fused, composed = tensor64(logits), tensor64(logits)
    upstream = rng.standard_normal(6) if options.get("reduction") == "none" else None
    F.cross_entropy(fused, target, **options).backward(upstream)
    _composed_nll(F.log_softmax(composed, 1), target, **options).backward(upstream)
    np.testing.assert_allclose(fused.grad.numpy(), composed.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("options", [dict(), dict(reduction="none", label_smoothing=0.1), dict(ignore_index=1)])
def test_cross_entropy_with_extra_dims_and_unbatched(options):
    logits = rng.standard_normal((2, 4, 3, 5))  # (N, C, d1, d2)
    target = rng.integers(0, 4, size=(2, 3, 5))
    flat_logits = logits.transpose(0, 2, 3, 1).reshape(-1, 4)
    expected = np_cross_entropy(flat_logits, target.reshape(-1), **options)
    ours = F.cross_entropy(tensor64(logits), target, **options)
    if options.get("reduction") == "none":
        expected = expected.reshape(2, 3, 5)
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-10)
    small_target = target[:, :1, :2]
    tg.gradcheck(lambda x: F.cross_entropy(x, small_target, **options), [tensor64(logits[:, :, :1, :2])])
    single = F.cross_entropy(tensor64(logits[0, :, 0, 0]), np.array(target[0, 0, 0]))
    assert single.shape == ()


def test_cross_entropy_all_ignored_mean_is_nan_with_zero_gradient():
    logits = tg.Tensor(np.zeros((2, 3)), requires_grad=True)
    loss = F.cross_entropy(logits, [-100, -100])
    assert np.isnan(loss.item())
    loss.backward()
    assert (logits.grad.numpy() == 0).all()
    assert F.cross_entropy(logits, [-100, -100], reduction="sum").item() == 0


def test_cross_entropy_keeps_float32_and_large_logits_finite():
    logits = tg.Tensor(np.array([[1e4, -1e4, 0.0], [0.0, 0.0, 0.0]], dtype=np.float32), requires_grad=True)
    loss = F.cross_entropy(logits, [1, 0], label_smoothing=0.1)
    assert loss.dtype == tg.float32 and np.isfinite(loss.item())
    loss.backward()
    assert logits.grad.dtype == tg.float32 and np.isfinite(logits.grad.numpy()).all()


def test_cross_entropy_errors_speak_to_the_user():
    logits = tg.randn(3, 4)
    with pytest.raises(IndexError, match="target 4 is out of range for 4 classes"):
        F.cross_entropy(logits, [0, 4, 1])
    with pytest.raises(TypeError, match="integer class indices"):
        F.cross_entropy(logits, tg.Tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="target shape"):
        F.cross_entropy(logits, [0, 1])
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(logits, [0, 1, 2], reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(logits, [0, 1, 2], label_smoothing=1.5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(5, 3), (2, 4, 3)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_equals_composed_with_every_gradient_and_gradchecks(with_bias, shape, device):
    x, weight, bias = rng.standard_normal(shape), rng.standard_normal((4, 3)), rng.standard_normal(4)
    upstream = rng.standard_normal(shape[:-1] + (4,))
    results = []
    for fused in (True, False):
        leaves = [tensor64(a, device) for a in (x, weight, bias)]
        b = leaves[2] if with_bias else None
        out = F.linear(leaves[0], leaves[1], b) if fused else leaves[0] @ leaves[1].T + (b if with_bias else 0.0)
        out.backward(tg.Tensor(upstream, device=device))
        results.append([out.numpy()] + [leaf.grad.numpy() for leaf in leaves[:3 if with_bias else 2]])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)
    leaves = [tensor64(a) for a in (x, weight, bias)]
    tg.gradcheck(lambda x, w, b: F.linear(x, w, b if with_bias else None), leaves)
    with pytest.raises(ValueError, match="linear expects input"):
        F.linear(leaves[0], leaves[1].T)
    with pytest.raises(ValueError, match="bias should have shape"):
        F.linear(leaves[0], leaves[1], leaves[1][0])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("options", CASES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_linear_cross_entropy_equals_composed_with_every_gradient(options, with_bias, device):
    """The fused output layer + loss against ``cross_entropy(x @ W.T + b)`` and its composed twin, float64."""
    x, weight, bias = rng.standard_normal((7, 3)), rng.standard_normal((5, 3)), rng.standard_normal(5)
    target = np.array([0, 2, 4, 2, 1, 0, 3])
    upstream = rng.standard_normal(7) if options.get("reduction") == "none" else None
    results = []
    for way in ("fused", "cross_entropy", "composed"):
        leaves = [tensor64(a, device) for a in (x, weight, bias)]
        b = leaves[2] if with_bias else None
        if way == "fused":
            loss = F.linear_cross_entropy(leaves[0], leaves[1], b, target, **options)
        else:
            logits = leaves[0] @ leaves[1].T + (b if with_bias else 0.0)
            loss = (F.cross_entropy(logits, target, **options) if way == "cross_entropy"
                    else _composed_nll(F.log_softmax(logits, 1), target, **options))
        loss.backward(None if upstream is None else tg.Tensor(upstream, device=device))
        results.append([loss.numpy()] + [leaf.grad.numpy() for leaf in leaves[:3 if with_bias else 2]])
    for other in results[1:]:
        for ours, theirs in zip(results[0], other):
            np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(results[0][0], np_cross_entropy(x @ weight.T + (bias if with_bias else 0), target,
                                                               **options), rtol=1e-12)


@pytest.mark.parametrize("options", [dict(), dict(label_smoothing=0.2, ignore_index=2), dict(reduction="none")])
def test_linear_cross_entropy_gradcheck_and_retained_graph(options):
    x, weight, bias = (tensor64(rng.standard_normal(shape)) for shape in [(5, 3), (4, 3), (4,)])
    target = np.array([0, 2, 3, 2, 1])
    tg.gradcheck(lambda x, w, b: F.linear_cross_entropy(x, w, b, target, **options), [x, weight, bias])
    # backward works on its softmax buffer in place, unless the graph is kept for a second backward
    loss = F.linear_cross_entropy(x, weight, bias, target, **options).sum()
    x.grad = None
    loss.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first, rtol=1e-12)


def test_linear_cross_entropy_errors_speak_to_the_user():
    x, weight = tg.randn(3, 4), tg.randn(5, 4)
    with pytest.raises(IndexError, match="target 5 is out of range for 5 classes"):
        F.linear_cross_entropy(x, weight, None, [0, 5, 1])
    with pytest.raises(ValueError, match="expects input"):
        F.linear_cross_entropy(x, weight.T, None, [0, 1, 2])
    with pytest.raises(ValueError, match="bias should have shape"):
        F.linear_cross_entropy(x, weight, tg.randn(4), [0, 1, 2])
    with pytest.raises(ValueError, match="target should be"):
        F.linear_cross_entropy(x, weight, None, [0, 1])
    assert np.isnan(F.linear_cross_entropy(x, weight, None, [-100, -100, -100]).item())


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_matches_numpy_and_gradchecks(reduction):
    log_probs = np_log_softmax(rng.standard_normal((5, 3)), 1)
    target = np.array([2, -100, 0, 1, 1])
    expected = np_cross_entropy(log_probs, target, reduction=reduction)  # log_softmax is idempotent
    np.testing.assert_allclose(F.nll_loss(tensor64(log_probs), target, reduction=reduction).numpy(), expected,
                               rtol=1e-10)
    tg.gradcheck(lambda x: F.nll_loss(x, target, reduction=reduction), [tensor64(log_probs)])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_matches_numpy_and_gradchecks(reduction):
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    squared = (a - b) ** 2
    expected = {"mean": squared.mean(), "sum": squared.sum(), "none": squared}[reduction]
    np.testing.assert_allclose(F.mse_loss(tensor64(a), tensor64(b), reduction).numpy(), expected, rtol=1e-12)
    tg.gradcheck(lambda x, y: F.mse_loss(x, y, reduction), [tensor64(a), tensor64(b)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options", CASES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_fused_losses_in_row_blocks_equal_whole_arrays_bit_for_bit(options, dtype, monkeypatch):
    """On the CPU the softmax and its gradient go over blocks of rows: the same bits as whole-array passes."""
    x, weight, bias = (rng.standard_normal(shape).astype(dtype) for shape in [(37, 6), (11, 6), (11,)])
    target = np.random.default_rng(1).integers(0, 11, size=37)
    target[::5] = 2  # some ignored rows when ignore_index=2
    upstream = rng.standard_normal(37).astype(dtype) if options.get("reduction") == "none" else None
    results = []
    assert F.CPU_ROW_BLOCK < 37
    for block in (F.CPU_ROW_BLOCK, 10 ** 9):
        monkeypatch.setattr(F, "CPU_ROW_BLOCK", block)
        for fused in (True, False):
            leaves = [tg.Tensor(a.copy(), requires_grad=True) for a in (x, weight, bias)]
            loss = F.linear_cross_entropy(*leaves, target, **options) if fused else \
                F.cross_entropy(leaves[0] @ leaves[1].T + leaves[2], target, **options)
            loss.backward(None if upstream is None else tg.Tensor(upstream))
            results.append([loss.numpy()] + [leaf.grad.numpy() for leaf in leaves])
    for blocked, whole in zip(results[:2], results[2:]):
        for ours, reference in zip(blocked, whole):
            assert ours.dtype == reference.dtype == dtype and np.array_equal(ours, reference)
