"""nn.utils.clip_grad_norm_: PyTorch's total norm and scaling."""
import numpy as np
import pytest

import tinygrad_rnn as tg
from helpers import DEVICES
from tinygrad_rnn import nn
from tinygrad_rnn.nn.utils import clip_grad_norm_


def params_with_grads(grads, device="cpu"):
    params = []
    for grad in grads:
        param = nn.Parameter(tg.zeros(np.shape(grad), device=device))
        param.grad = tg.Tensor(np.asarray(grad, dtype=np.float32), device=device)
        params.append(param)
    return params


@pytest.mark.parametrize("device", DEVICES)
def test_clips_to_max_norm_and_returns_the_total_before_clipping(device):
    grads = [np.array([3.0, 0.0]), np.array([[4.0]]), np.array([0.0, 12.0])]
    params = params_with_grads(grads, device) + [nn.Parameter(tg.ones(2, device=device))]  # the last has no grad
    total = clip_grad_norm_(params, max_norm=1.3)
    assert isinstance(total, tg.Tensor) and total.shape == () and total.device == device
    assert float(total) == pytest.approx(13.0)
    scale = 1.3 / (13.0 + 1e-6)
    for param, grad in zip(params, grads):
        np.testing.assert_allclose(param.grad.numpy(), grad * scale, rtol=1e-6)
    clipped = np.sqrt(sum((p.grad.numpy() ** 2).sum() for p in params[:3]))
    assert clipped == pytest.approx(1.3, rel=1e-5)


def test_small_norms_are_left_alone():
    params = params_with_grads([np.array([0.3, 0.4])])
    assert float(clip_grad_norm_(params, 1.0)) == pytest.approx(0.5)
    np.testing.assert_array_equal(params[0].grad.numpy(), np.array([0.3, 0.4], dtype=np.float32))


@pytest.mark.parametrize("norm_type, expected", [(1.0, 9.0), (3.0, (2 ** 3 + 3 ** 3 + 4 ** 3) ** (1 / 3)),
                                                 (float("inf"), 4.0)])
def test_other_norm_types(norm_type, expected):
    params = params_with_grads([np.array([2.0, -3.0]), np.array([-4.0])])
    assert float(clip_grad_norm_(params, 0.5, norm_type=norm_type)) == pytest.approx(expected, rel=1e-6)
    assert np.abs(params[1].grad.numpy()).max() == pytest.approx(4.0 * 0.5 / (expected + 1e-6), rel=1e-5)


def test_single_tensor_no_grads_and_nonfinite():
    single = params_with_grads([np.array([6.0, 8.0])])[0]
    assert float(clip_grad_norm_(single, 5.0)) == pytest.approx(10.0)
    assert float(clip_grad_norm_([nn.Parameter(tg.ones(2))], 1.0)) == 0.0
    with pytest.raises(RuntimeError, match="error_if_nonfinite"):
        clip_grad_norm_(params_with_grads([np.array([np.inf])]), 1.0, error_if_nonfinite=True)


def test_clipping_does_not_touch_a_gradient_shared_elsewhere():
    # Autograd stores a private copy of each leaf gradient, so in-place scaling is safe.
    weight = nn.Parameter(tg.Tensor([3.0, 4.0]))
    upstream = np.array([3.0, 4.0], dtype=np.float32)
    (weight + 0).backward(upstream)  # Add's backward passes the very upstream array on
    clip_grad_norm_([weight], 1.0)
    assert upstream.tolist() == [3.0, 4.0]
    np.testing.assert_allclose(weight.grad.numpy(), [0.6, 0.8], rtol=1e-5)
