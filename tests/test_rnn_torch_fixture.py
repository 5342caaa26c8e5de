"""The fused kernels reproduce PyTorch's LSTM, GRU and RNN numbers, without PyTorch.

``tests/fixtures/rnn_torch.npz`` (made by ``make_rnn_fixture.py`` beside it, which
documents the keys) holds a two-layer bidirectional PyTorch run on a padded batch
with lengths ``[3, 5, 1]``: state dict, inputs, outputs, final states and the
gradients of a weighted sum of them. A small driver here stacks the kernels layer
by layer, both directions, feeding the concatenated directions to the next layer,
and must match every number to 1e-10. This also pins the gate order, which the
fused and composed paths could otherwise get wrong together.
"""
from pathlib import Path

import numpy as np
import pytest

from tinygrad_rnn.nn.recurrent import kernels as rnn_kernels

FIXTURE = Path(__file__).parent / "fixtures" / "rnn_torch.npz"
NUM_LAYERS = 2
TOLERANCE = dict(rtol=1e-10, atol=1e-10)


@pytest.fixture(scope="module")
def fixture():
    with np.load(FIXTURE) as data:
        return {key: data[key] for key in data.files}


def suffix(layer, direction):
    return f"l{layer}" + ("_reverse" if direction else "")


def run_stack(mode, data):
    """Forward and backward through the 2-layer bidirectional stack with the fixture's loss."""
    get = lambda name: data.get(f"{mode}.{name}")  # noqa: E731
    lengths = get("lengths")
    h0, c0 = get("h0"), get("c0")
    layer_input, saved, h_n, c_n = get("input"), {}, [], []
    for layer in range(NUM_LAYERS):
        outputs = []
        for direction in (0, 1):
            index, s = 2 * layer + direction, suffix(layer, direction)
            output, h, c, saved[index] = rnn_kernels.sequence_forward(
                mode, layer_input, h0[index], None if c0 is None else c0[index], get(f"weight_ih_{s}"),
                get(f"weight_hh_{s}"), get(f"bias_ih_{s}"), get(f"bias_hh_{s}"), lengths=lengths,
                reverse=bool(direction))
            outputs.append(output)
            h_n.append(h)
            c_n.append(c)
        layer_input = np.concatenate(outputs, axis=-1)
    result = {"output": layer_input, "h_n": np.stack(h_n)}
    if mode == "lstm":
        result["c_n"] = np.stack(c_n)

    grad_above = get("loss_output")
    grad_h0, grad_c0 = np.zeros_like(h0), None if c0 is None else np.zeros_like(c0)
    hidden = h0.shape[-1]
    for layer in reversed(range(NUM_LAYERS)):
        grad_below = 0
        for direction in (0, 1):
            index, s = 2 * layer + direction, suffix(layer, direction)
            grad_output = grad_above[..., direction * hidden:(direction + 1) * hidden]
            grads = rnn_kernels.sequence_backward(saved[index], grad_output, get("loss_h_n")[index],
                                                  None if c0 is None else get("loss_c_n")[index])
            grad_x, grad_h0[index], grad_c, *parameter_grads = grads
            if grad_c0 is not None:
                grad_c0[index] = grad_c
            for name, grad in zip(["weight_ih", "weight_hh", "bias_ih", "bias_hh"], parameter_grads):
                result[f"grad.{name}_{s}"] = grad
            grad_below = grad_below + grad_x
        grad_above = grad_below
    result.update({"grad.input": grad_above, "grad.h0": grad_h0})
    if grad_c0 is not None:
        result["grad.c0"] = grad_c0
    return result


@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh"])
def test_kernels_match_pytorch(fixture, mode):
    result = run_stack(mode, fixture)
    states = ["h", "c"] if mode == "lstm" else ["h"]
    parameters = [f"{kind}_{suffix(layer, direction)}" for layer in range(NUM_LAYERS) for direction in (0, 1)
                  for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    expected_keys = (["output"] + [f"{s}_n" for s in states] + ["grad.input"] + [f"grad.{s}0" for s in states]
                     + [f"grad.{name}" for name in parameters])
    assert all(f"{mode}.{key}" in fixture for key in expected_keys)
    for key in expected_keys:
        np.testing.assert_allclose(result[key], fixture[f"{mode}.{key}"], err_msg=f"{mode}.{key}", **TOLERANCE)


def test_padded_outputs_are_zero_in_fixture_and_kernels(fixture):
    lengths = fixture["lstm.lengths"]
    result = run_stack("lstm", fixture)
    for b, length in enumerate(lengths):
        assert np.all(fixture["lstm.output"][length:, b] == 0)
        assert np.all(result["output"][length:, b] == 0)
