"""The translator's hot paths, counted by ``tinygrad_rnn.profiler``: engine ops per decoder time
step, host syncs per training step and per decoding step.

The counts are deterministic and the same on the CPU and on CUDA (the profiler counts a NumPy
array as device data), so they are pinned here. Before the fused attention step and output layer
(issue 11) a decoder time step of training took 29 engine ops and 6 uploads, a greedy step 30 ops,
3 syncs and 6 uploads, a beam step 36 ops, 6 syncs and 9 uploads, and a training step 11 syncs
(12 with the Trainer's loss read).
"""
import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import nn, optim, profiler
from translator.model import ModelConfig, Seq2Seq
from translator.search import FINISHED_CHECK_EVERY, beam_search, greedy_search
from translator.vocabulary import BOS, EOS, PAD

VOCAB = 30


def model_and_batch(**changes):
    values = dict(embedding_size=8, hidden_size=8, dropout=0.2)
    values.update(changes)
    tg.manual_seed(0)
    model = Seq2Seq(ModelConfig(**values), VOCAB, VOCAB)
    rng = np.random.default_rng(0)
    lengths = np.array([5, 3, 4, 1])
    source = np.full((4, 5), PAD)
    for row, length in enumerate(lengths):
        source[row, :length] = rng.integers(4, VOCAB, size=length)
    return model, source, lengths


def targets(steps: int, batch: int = 4):
    """(B, T) teacher-forcing input and output, every row ``steps`` long (EOS last)."""
    words = np.random.default_rng(steps).integers(4, VOCAB, size=(batch, steps - 1))
    bos, eos = np.full((batch, 1), BOS), np.full((batch, 1), EOS)
    return np.concatenate([bos, words], axis=1), np.concatenate([words, eos], axis=1)


def training_step(model, optimizer, source, lengths, steps):
    """One step as the Trainer takes it, counted; the loss is not read."""
    target_in, target_out = targets(steps)
    with profiler.record() as counts:
        loss = model.loss(source, lengths, target_in, target_out, label_smoothing=0.1)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
    return counts


@pytest.mark.parametrize("changes, per_step", [
    (dict(), 4),                                                  # cat, GRU cell, attention step, dropout
    (dict(attention="general"), 4),
    (dict(cell="lstm", attention="dot", bidirectional=False), 4),
    (dict(dropout=0.0), 3),
])
def test_a_decoder_time_step_of_training_is_a_handful_of_ops(changes, per_step):
    model, source, lengths = model_and_batch(**changes)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    training_step(model, optimizer, source, lengths, 4)  # optimizer state exists from here on
    short, long = (training_step(model, optimizer, source, lengths, steps) for steps in (4, 12))
    assert (long.ops - short.ops) / 8 == per_step


def test_a_training_step_does_not_wait_for_the_device():
    """Forward, backward, clipping and Adam: the loss and the gradient norm stay on the device.

    (The Trainer reads the summed loss once per ``LOSS_READ_EVERY`` steps: tests/test_training.py.)
    """
    model, source, lengths = model_and_batch()
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    training_step(model, optimizer, source, lengths, 6)
    counts = training_step(model, optimizer, source, lengths, 6)
    assert counts.syncs == 0


def decode(search, model, source, lengths, max_length):
    with tg.no_grad():
        encoded = model.encode(source, lengths)
    with profiler.record() as counts:
        search(model, encoded, max_length, max_length_ratio=100.0)
    return counts


@pytest.mark.parametrize("every", [1, 4])  # the CPU's and a GPU's finished-check interval
@pytest.mark.parametrize("search", [greedy_search, lambda *args, **kwargs: beam_search(
    args[0], args[1], 3, args[2], include_greedy=False, **kwargs)], ids=["greedy", "beam"])
def test_decoding_steps_wait_for_the_device_only_at_the_finished_check(search, every, monkeypatch):
    """Without EOS every sentence runs to ``max_length``: more steps add only the periodic checks."""
    monkeypatch.setitem(FINISHED_CHECK_EVERY, "cpu", every)
    model, source, lengths = model_and_batch(dropout=0.0)
    model.eval()
    model.decoder.output.bias.data[EOS] = -1e4
    short, long = (decode(search, model, source, lengths, steps) for steps in (5, 17))
    checks = (17 - 1) // every - (5 - 1) // every
    assert long.syncs - short.syncs == checks
    assert long.uploads == short.uploads  # nothing is copied to the device per step either
    assert (long.ops - short.ops) / 12 <= 7  # embedding, cat, cell, attention step, output layer (+ beam's reorder)
