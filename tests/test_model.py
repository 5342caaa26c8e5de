"""Seq2Seq: config validation, shapes for every cell and attention, the shared decoder step,
masking, tied embeddings, teacher forcing, and gradients against finite differences."""
import dataclasses

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from translator.model import ModelConfig, Seq2Seq
from translator.vocabulary import BOS, EOS, PAD

from helpers import DEVICES

SOURCE_VOCAB, TARGET_VOCAB = 13, 11


def tiny_config(**changes) -> ModelConfig:
    values = dict(cell="gru", embedding_size=6, hidden_size=5, encoder_layers=1, decoder_layers=1,
                  bidirectional=True, attention="additive", input_feeding=True, dropout=0.0, tie_embeddings=False)
    values.update(changes)
    return ModelConfig(**values)


def tiny_model(seed=0, **changes) -> Seq2Seq:
    tg.manual_seed(seed)
    return Seq2Seq(tiny_config(**changes), SOURCE_VOCAB, TARGET_VOCAB)


def toy_batch(seed=0, batch=3, source_length=5, target_length=4):
    """Random source (PAD-padded, lengths 1..S) and targets (BOS-first in, EOS-last out, PAD-padded)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, source_length + 1, size=batch)
    lengths[0] = source_length
    source = np.full((batch, source_length), PAD, dtype=np.int64)
    target_lengths = rng.integers(1, target_length + 1, size=batch)
    target_lengths[0] = target_length
    target_in = np.full((batch, target_length), PAD, dtype=np.int64)
    target_out = np.full((batch, target_length), PAD, dtype=np.int64)
    for row in range(batch):
        source[row, :lengths[row]] = rng.integers(4, SOURCE_VOCAB, size=lengths[row])
        words = rng.integers(4, TARGET_VOCAB, size=target_lengths[row] - 1)
        target_in[row, :target_lengths[row]] = [BOS, *words]
        target_out[row, :target_lengths[row]] = [*words, EOS]
    return source, lengths, target_in, target_out


VARIANTS = [dict(cell=cell, attention=attention, bidirectional=attention != "dot",
                 input_feeding=attention != "none")
            for cell in ("gru", "lstm", "rnn") for attention in ("additive", "dot", "general", "none")]


# ---------------------------------------------------------------- config
class TestModelConfig:
    def test_defaults_are_the_reference_architecture(self):
        config = ModelConfig().validate()
        assert (config.cell, config.hidden_size, config.bidirectional, config.attention, config.input_feeding) == \
            ("gru", 256, True, "additive", True)

    def test_round_trip(self):
        config = tiny_config(cell="lstm", decoder_layers=2, tie_embeddings=False)
        assert ModelConfig.from_dict(config.to_dict()) == config

    @pytest.mark.parametrize("changes, words", [
        (dict(cell="transformer"), "cell must be one of"),
        (dict(attention="multihead"), "attention must be one of"),
        (dict(hidden_size=0), "hidden_size must be an integer in 1..65536"),
        (dict(embedding_size=10**12), "embedding_size must be an integer in 1..65536"),
        (dict(decoder_layers=1_000_000), "decoder_layers must be an integer in 1..64"),
        (dict(dropout=1.0), "dropout must be a number in [0, 1)"),
        (dict(attention="none", input_feeding=True), "input_feeding needs attention"),
        (dict(attention="dot", bidirectional=True), "attention 'dot'"),
        (dict(tie_embeddings=True, embedding_size=6, hidden_size=5), "tie_embeddings needs embedding_size"),
    ])
    def test_impossible_combinations_say_what_to_change(self, changes, words):
        with pytest.raises(ValueError, match=None) as error:
            tiny_config(**changes).validate()
        message = str(error.value)
        assert words in message and "\n" not in message

    def test_unknown_key(self):
        with pytest.raises(ValueError, match="unknown model option"):
            ModelConfig.from_dict({"hidden": 3})

    def test_model_refuses_invalid_config(self):
        with pytest.raises(ValueError, match="input_feeding"):
            Seq2Seq(tiny_config(attention="none"), SOURCE_VOCAB, TARGET_VOCAB)


# ---------------------------------------------------------------- shapes, gradients reach every parameter
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"{v['cell']}-{v['attention']}")
def test_forward_backward_shapes(variant, device):
    model = tiny_model(encoder_layers=2, decoder_layers=2, dropout=0.1, **variant).to(device)
    source, lengths, target_in, target_out = toy_batch()
    logits = model(source, lengths, target_in)
    assert logits.shape == (3, 4, TARGET_VOCAB)
    loss = nn.functional.cross_entropy(logits.reshape(-1, TARGET_VOCAB), target_out.reshape(-1), ignore_index=PAD)
    loss.backward()
    missing = [name for name, param in model.named_parameters() if param.grad is None]
    assert not missing
    encoded = model.encode(source, lengths)
    assert encoded.outputs.shape == (3, 5, model.config.encoder_output_size)
    assert len(encoded.final.hidden) == 2 and encoded.final.hidden[0].shape == (3, 5)
    assert (encoded.final.cell is not None) == (variant["cell"] == "lstm")
    logits, state, weights = model.step(np.full(3, BOS), encoded.final, encoded)
    assert logits.shape == (3, TARGET_VOCAB)
    if variant["attention"] == "none":
        assert weights is None
    else:
        assert weights.shape == (3, 5)
        np.testing.assert_allclose(tg.backend.as_numpy(weights).sum(axis=1), 1.0, rtol=1e-5)


def test_loss_equals_cross_entropy_of_forward():
    model = tiny_model()
    source, lengths, target_in, target_out = toy_batch(seed=3)
    expected = nn.functional.cross_entropy(model(source, lengths, target_in).reshape(-1, TARGET_VOCAB),
                                           target_out.reshape(-1), ignore_index=PAD, label_smoothing=0.1)
    loss = model.loss(source, lengths, target_in, target_out, label_smoothing=0.1)
    np.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-6)
    total = model.loss(source, lengths, target_in, target_out, reduction="sum")
    tokens = (target_out != PAD).sum()
    np.testing.assert_allclose(total.item() / tokens, model.loss(source, lengths, target_in, target_out).item(),
                               rtol=1e-6)


# ---------------------------------------------------------------- one step shared by training and search
@pytest.mark.parametrize("variant", VARIANTS[:4] + [VARIANTS[4], VARIANTS[8]],
                         ids=lambda v: f"{v['cell']}-{v['attention']}")
def test_step_by_step_equals_forward(variant):
    """Search's ``step`` fed the reference gives the training pass's logits."""
    model = tiny_model(decoder_layers=2, **variant).eval()
    source, lengths, target_in, _ = toy_batch(seed=1)
    with tg.no_grad():
        expected = model(source, lengths, target_in).numpy()
        encoded = model.encode(source, lengths)
        state = encoded.final
        for t in range(target_in.shape[1]):
            logits, state, _ = model.step(target_in[:, t], state, encoded)
            np.testing.assert_allclose(logits.numpy(), expected[:, t], rtol=1e-5, atol=1e-6)


def test_attention_ignores_padding_and_padding_changes_nothing():
    model = tiny_model(encoder_layers=2).eval()
    source, lengths, target_in, _ = toy_batch(seed=2)
    padded = np.concatenate([source, np.full((3, 4), PAD)], axis=1)
    with tg.no_grad():
        np.testing.assert_allclose(model(padded, lengths, target_in).numpy(),
                                   model(source, lengths, target_in).numpy(), rtol=1e-5, atol=1e-6)
        encoded = model.encode(padded, lengths)
        _, _, weights = model.step(np.full(3, BOS), encoded.final, encoded)
    real = np.arange(padded.shape[1])[None, :] < lengths[:, None]
    assert (tg.backend.as_numpy(weights)[~real] == 0).all()


def test_sentence_alone_equals_sentence_in_batch():
    model = tiny_model(cell="lstm").eval()
    source, lengths, target_in, _ = toy_batch(seed=4)
    with tg.no_grad():
        batched = model(source, lengths, target_in).numpy()
        for row in range(3):
            alone = model(source[row:row + 1, :lengths[row]], lengths[row:row + 1], target_in[row:row + 1]).numpy()
            np.testing.assert_allclose(alone[0], batched[row], rtol=1e-5, atol=1e-6)


def test_tied_embeddings_share_one_parameter():
    model = tiny_model(embedding_size=5, hidden_size=5, tie_embeddings=True)
    assert model.decoder.output.weight is model.decoder.embedding.weight
    untied = tiny_model(embedding_size=5, hidden_size=5)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(untied) - count(model) == TARGET_VOCAB * 5
    source, lengths, target_in, target_out = toy_batch()
    model.loss(source, lengths, target_in, target_out).backward()
    assert model.decoder.embedding.weight.grad is not None


def test_bridge_gives_every_layer_its_own_initial_state():
    model = tiny_model(cell="lstm", encoder_layers=2, decoder_layers=3)
    encoded = model.encode(*toy_batch()[:2])
    states = encoded.final.hidden + encoded.final.cell
    assert len(states) == 6
    assert all(not np.allclose(a.numpy(), b.numpy()) for a, b in zip(states, states[1:]))
    assert all(np.abs(s.numpy()).max() < 1 for s in states)  # tanh


# ---------------------------------------------------------------- teacher forcing
def test_teacher_forcing_ratio_is_seeded_and_zero_ratio_feeds_predictions():
    model = tiny_model().eval()
    source, lengths, target_in, _ = toy_batch(seed=5)
    with tg.no_grad():
        tg.manual_seed(7)
        first = model(source, lengths, target_in, teacher_forcing_ratio=0.5).numpy()
        tg.manual_seed(7)
        again = model(source, lengths, target_in, teacher_forcing_ratio=0.5).numpy()
        np.testing.assert_array_equal(first, again)
        free = model(source, lengths, target_in, teacher_forcing_ratio=0.0).numpy()
        # Ratio 0: every step after the first reads the argmax of the step before (where the
        # reference is not padding), which is what step-by-step greedy decoding does.
        encoded = model.encode(source, lengths)
        state, previous = encoded.final, target_in[:, 0]
        for t in range(target_in.shape[1]):
            logits, state, _ = model.step(previous, state, encoded)
            np.testing.assert_allclose(logits.numpy(), free[:, t], rtol=1e-5, atol=1e-6)
            previous = np.where(target_in[:, t + 1] == PAD, PAD, logits.numpy().argmax(1)) \
                if t + 1 < target_in.shape[1] else None
    with pytest.raises(ValueError, match="teacher_forcing_ratio"):
        model(source, lengths, target_in, teacher_forcing_ratio=1.5)


# ---------------------------------------------------------------- gradients, float64
@pytest.mark.parametrize("variant", [VARIANTS[0], VARIANTS[6], VARIANTS[9]],
                         ids=lambda v: f"{v['cell']}-{v['attention']}")
def test_loss_gradient_matches_finite_differences(variant):
    """d loss / d (a few parameters of every part) against central differences, in float64."""
    model = tiny_model(encoder_layers=2, decoder_layers=2, hidden_size=3, embedding_size=4, **variant).double()
    source, lengths, target_in, target_out = toy_batch(seed=6, batch=2, source_length=3, target_length=3)
    params = dict(model.named_parameters())
    names = ["encoder.rnn.weight_hh_l1", "encoder.rnn.weight_ih_l0", "bridge.linear.weight",
             "decoder.cells.0.weight_ih", "decoder.output.bias", "decoder.embedding.weight"]
    names += [name for name in params if name.startswith(("decoder.attention", "decoder.combine"))][:2]
    names += [name for name in ("encoder.rnn.weight_hh_l1_reverse",) if name in params]
    model.loss(source, lengths, target_in, target_out, label_smoothing=0.1).backward()
    rng = np.random.default_rng(0)
    for name in names:
        param = params[name]
        analytic = param.grad.numpy()
        for index in [tuple(rng.integers(0, n) for n in param.shape) for _ in range(3)]:
            original = param.data[index]
            values = []
            for sign in (1, -1):
                param.data[index] = original + sign * 1e-6
                with tg.no_grad():
                    values.append(model.loss(source, lengths, target_in, target_out, label_smoothing=0.1).item())
            param.data[index] = original
            numeric = (values[0] - values[1]) / 2e-6
            assert abs(numeric - analytic[index]) <= 1e-6 + 1e-4 * abs(numeric), (name, index, numeric,
                                                                                   analytic[index])


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        tiny_config().cell = "lstm"
