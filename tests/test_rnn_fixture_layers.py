"""``nn.LSTM/GRU/RNN`` against PyTorch's numbers, from the committed fixture (no PyTorch needed).

``tests/fixtures/rnn_torch.npz`` (made by ``tests/fixtures/make_rnn_fixture.py``, see its
docstring for the keys) holds, per cell type, a PyTorch state dict of a 2-layer
bidirectional layer, a padded batch with unsorted lengths, an initial state, the outputs
and every gradient of a weighted loss. Loading that state dict unchanged and getting the
same numbers proves the parameter names, shapes, gate order and lengths semantics are
PyTorch's; the fused and the composed path are both checked (a gate-order mistake they
shared would pass ``fused == composed`` but not this).
"""
from pathlib import Path

import numpy as np
import pytest

import tinygrad_rnn as tg
from helpers import DEVICES
from tinygrad_rnn import nn

FIXTURE = Path(__file__).parent / "fixtures" / "rnn_torch.npz"
pytestmark = pytest.mark.skipif(not FIXTURE.is_file(),
                                reason=f"PyTorch fixture {FIXTURE} is absent: make it with "
                                       "tests/fixtures/make_rnn_fixture.py (needs PyTorch)")
INPUT_SIZE, HIDDEN_SIZE, NUM_LAYERS = 3, 4, 2
LAYERS = {
    "lstm": lambda **kw: nn.LSTM(INPUT_SIZE, HIDDEN_SIZE, NUM_LAYERS, bidirectional=True, **kw),
    "gru": lambda **kw: nn.GRU(INPUT_SIZE, HIDDEN_SIZE, NUM_LAYERS, bidirectional=True, **kw),
    "rnn_tanh": lambda **kw: nn.RNN(INPUT_SIZE, HIDDEN_SIZE, NUM_LAYERS, bidirectional=True, **kw),
}


def load(cell):
    """``(state_dict, everything else)`` of one cell type, prefixes stripped, in the file's order."""
    with np.load(FIXTURE) as archive:
        arrays = {key[len(cell) + 1:]: archive[key] for key in archive.files if key.startswith(cell + ".")}
    names = [key for key in arrays if key.startswith(("weight_", "bias_"))]
    return {name: arrays.pop(name) for name in names}, arrays


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("batch_first", [False, True], ids=["time-major", "batch-first"])
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
@pytest.mark.parametrize("cell", list(LAYERS))
def test_layer_reproduces_pytorch(cell, fused, batch_first, device):
    state_dict, data = load(cell)
    layer = LAYERS[cell](fused=fused, batch_first=batch_first).double()
    assert list(layer.state_dict()) == list(state_dict)  # PyTorch's names, in PyTorch's order
    layer.load_state_dict(state_dict)
    layer.to(device)

    def tensor(array):
        return tg.Tensor(array, device=device, requires_grad=True)

    time_major = data["input"]
    x = tensor(time_major.transpose(1, 0, 2) if batch_first else time_major)
    h0 = tensor(data["h0"])
    c0 = tensor(data["c0"]) if cell == "lstm" else None
    output, state = layer(x, (h0, c0) if cell == "lstm" else h0, lengths=data["lengths"])
    h_n, c_n = state if cell == "lstm" else (state, None)
    output_time_major = output.transpose(0, 1) if batch_first else output

    loss = (output_time_major * tg.Tensor(data["loss_output"], device=device)).sum() \
        + (h_n * tg.Tensor(data["loss_h_n"], device=device)).sum()
    if cell == "lstm":
        loss = loss + (c_n * tg.Tensor(data["loss_c_n"], device=device)).sum()
    loss.backward()

    def check(name, actual, expected):
        np.testing.assert_allclose(actual.numpy(), expected, rtol=1e-9, atol=1e-12, err_msg=name)

    check("output", output_time_major, data["output"])
    check("h_n", h_n, data["h_n"])
    grad_x = x.grad.numpy()
    np.testing.assert_allclose(grad_x.transpose(1, 0, 2) if batch_first else grad_x, data["grad.input"],
                               rtol=1e-9, atol=1e-12, err_msg="grad.input")
    check("grad.h0", h0.grad, data["grad.h0"])
    if cell == "lstm":
        check("c_n", c_n, data["c_n"])
        check("grad.c0", c0.grad, data["grad.c0"])
    for name, param in layer.named_parameters():
        check(f"grad.{name}", param.grad, data[f"grad.{name}"])


def test_fixture_pads_with_random_values_and_unsorted_lengths():
    """The fixture exercises what it claims to: padding must be ignored and lengths are unsorted."""
    _, data = load("lstm")
    lengths = data["lengths"]
    assert list(lengths) != sorted(lengths) and lengths.min() < data["input"].shape[0]
    padded = np.arange(data["input"].shape[0])[:, None] >= lengths[None, :]
    assert (data["input"][padded] != 0).all() and (data["output"][padded] == 0).all()
