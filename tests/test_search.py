"""Greedy and beam search: the invariants (beam 1 == greedy, beam >= greedy, batched == alone,
padding changes nothing), the length limit, n-best lists, and a tiny model that learns to reverse."""
import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import optim
from translator.model import ModelConfig, Seq2Seq
from translator import search
from translator.search import (_lexsort_rows, _top_k_by_keys, beam_search, greedy_search, length_penalty, max_lengths,
                              top_k)
from translator.vocabulary import BOS, EOS, PAD

from helpers import DEVICES

VOCAB = 12  # 4 specials + 8 words


def random_sources(seed, count, max_length=6):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, max_length + 1, size=count)
    source = np.full((count, max_length), PAD, dtype=np.int64)
    for row, length in enumerate(lengths):
        source[row, :length] = rng.integers(4, VOCAB, size=length)
    return source, lengths


def make_model(seed=0, **changes):
    values = dict(embedding_size=8, hidden_size=8, dropout=0.0)
    values.update(changes)
    tg.manual_seed(seed)
    return Seq2Seq(ModelConfig(**values), VOCAB, VOCAB).eval()


def forced_log_prob(model, source, length, hypothesis) -> float:
    """The model's log-probability of ``hypothesis`` (tokens, and EOS if finished), by teacher forcing."""
    targets = list(hypothesis.tokens) + ([EOS] if hypothesis.finished else [])
    target_in = np.array([[BOS] + targets[:-1]])
    with tg.no_grad():
        logits = model(source[None, :length], np.array([length]), target_in).numpy()[0].astype(np.float64)
    log_p = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True)) \
        - logits.max(1, keepdims=True)
    return float(log_p[np.arange(len(targets)), targets].sum())


@pytest.fixture(scope="module")
def reverser():
    """A model trained for a few seconds to reverse sequences of 1..5 words (it gets most right)."""
    tg.manual_seed(0)
    rng = np.random.default_rng(0)
    model = Seq2Seq(ModelConfig(embedding_size=16, hidden_size=32, dropout=0.0), VOCAB, VOCAB)
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    for _ in range(60):
        source, lengths = random_sources(rng.integers(1 << 30), 64, max_length=5)
        target_in = np.full((64, 6), PAD)
        target_out = np.full((64, 6), PAD)
        for row, length in enumerate(lengths):
            reverse = source[row, :length][::-1]
            target_in[row, :length + 1] = [BOS, *reverse]
            target_out[row, :length + 1] = [*reverse, EOS]
        optimizer.zero_grad()
        model.loss(source[:, :lengths.max()], lengths, target_in, target_out).backward()
        optimizer.step()
    return model.eval()


# ---------------------------------------------------------------- beam 1 == greedy
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("changes", [dict(), dict(cell="lstm", decoder_layers=2), dict(attention="general"),
                                     dict(attention="none", input_feeding=False)], ids=str)
def test_beam_of_width_one_is_greedy(changes, device):
    model = make_model(**changes).to(device)
    source, lengths = random_sources(1, 25)
    encoded = model.encode(source, lengths)
    greedy = greedy_search(model, encoded, length_penalty_alpha=0.7)
    beam = beam_search(model, encoded, 1, length_penalty_alpha=0.7)
    for g, (b,) in zip(greedy, beam):
        assert g.tokens == b.tokens and g.finished == b.finished
        assert g.log_prob == pytest.approx(b.log_prob, abs=1e-9)
        assert g.score == pytest.approx(b.score, abs=1e-9)
        if g.attention is None:
            assert b.attention is None
        else:
            np.testing.assert_allclose(g.attention, b.attention, rtol=1e-6)


def test_beam_one_equals_greedy_on_a_trained_model(reverser):
    source, lengths = random_sources(2, 50, max_length=5)
    encoded = reverser.encode(source, lengths)
    greedy = greedy_search(reverser, encoded)
    beam = beam_search(reverser, encoded, 1)
    assert [g.tokens for g in greedy] == [b[0].tokens for b in beam]
    assert [g.log_prob for g in greedy] == pytest.approx([b[0].log_prob for b in beam], abs=1e-9)


# ---------------------------------------------------------------- a wider beam is never worse
@pytest.mark.parametrize("alpha", [0.0, 1.0])
@pytest.mark.parametrize("width", [2, 5])
def test_wider_beam_never_scores_below_greedy(alpha, width, reverser):
    for model in (reverser, make_model(seed=3, cell="lstm")):
        source, lengths = random_sources(4, 40, max_length=5)
        encoded = model.encode(source, lengths)
        greedy = greedy_search(model, encoded, length_penalty_alpha=alpha)
        beam = beam_search(model, encoded, width, length_penalty_alpha=alpha)
        for row, (g, (b,)) in enumerate(zip(greedy, beam)):
            # Scores recomputed independently, by teacher forcing the outputs through the model.
            g_log_prob = forced_log_prob(model, source[row], lengths[row], g)
            b_log_prob = forced_log_prob(model, source[row], lengths[row], b)
            assert b.log_prob == pytest.approx(b_log_prob, abs=1e-4)
            assert b_log_prob / length_penalty(b.length, alpha) >= \
                g_log_prob / length_penalty(g.length, alpha) - 1e-4


def test_beam_finds_better_than_greedy_somewhere():
    """Not a guarantee, but on 100 sentences a beam of 5 should improve at least one greedy output."""
    model = make_model(seed=5)
    source, lengths = random_sources(5, 100)
    encoded = model.encode(source, lengths)
    greedy = greedy_search(model, encoded, length_penalty_alpha=0.0)
    beam = beam_search(model, encoded, 5, length_penalty_alpha=0.0, include_greedy=False)
    assert any(b.score > g.score + 1e-6 for g, (b,) in zip(greedy, beam))


@pytest.mark.parametrize("every", [2, 4])
def test_checking_for_finished_rows_less_often_changes_no_token(every, reverser, monkeypatch):
    """A GPU asks which rows are done only every few steps; done rows decode on meanwhile, unrecorded.

    Same tokens and attention rows as asking every step (the CPU's way); log-probabilities equal up to
    float32 rounding (a matrix product's last bits can depend on its number of rows); beam search of
    width 1 keeps following greedy's batches, so it stays greedy to the last bit.
    """
    source, lengths = random_sources(3, 40, max_length=5)
    encoded = reverser.encode(source, lengths)
    every_step = greedy_search(reverser, encoded), beam_search(reverser, encoded, 3, nbest=3)
    monkeypatch.setitem(search.FINISHED_CHECK_EVERY, "cpu", every)
    greedy, beam = greedy_search(reverser, encoded), beam_search(reverser, encoded, 3, nbest=3)
    for ours, theirs in zip(greedy + sum(beam, []), every_step[0] + sum(every_step[1], [])):
        assert (ours.tokens, ours.finished) == (theirs.tokens, theirs.finished)
        assert ours.log_prob == pytest.approx(theirs.log_prob, rel=1e-5, abs=1e-5)
        np.testing.assert_allclose(ours.attention, theirs.attention, rtol=1e-4, atol=1e-6)
    width_one = beam_search(reverser, encoded, 1)
    assert [(g.tokens, g.log_prob) for g in greedy] == [(b.tokens, b.log_prob) for (b,) in width_one]


# ---------------------------------------------------------------- batching and padding change nothing
@pytest.mark.parametrize("width", [1, 3])
def test_batched_search_equals_one_sentence_at_a_time(width, reverser):
    source, lengths = random_sources(6, 12, max_length=5)
    batched = beam_search(reverser, reverser.encode(source, lengths), width, nbest=width)
    greedy = greedy_search(reverser, reverser.encode(source, lengths))
    for row, length in enumerate(lengths):
        encoded = reverser.encode(source[row:row + 1, :length], lengths[row:row + 1])
        alone = beam_search(reverser, encoded, width, nbest=width)[0]
        assert [h.tokens for h in alone] == [h.tokens for h in batched[row]]
        assert [h.score for h in alone] == pytest.approx([h.score for h in batched[row]], abs=1e-4)
        assert greedy_search(reverser, encoded)[0].tokens == greedy[row].tokens


def test_extra_padding_does_not_change_the_translation(reverser):
    source, lengths = random_sources(7, 10, max_length=5)
    padded = np.concatenate([source, np.full((10, 7), PAD)], axis=1)
    for width in (1, 4):
        plain = beam_search(reverser, reverser.encode(source, lengths), width)
        wide = beam_search(reverser, reverser.encode(padded, lengths), width)
        assert [h[0].tokens for h in plain] == [h[0].tokens for h in wide]
        for p, w in zip(plain, wide):
            assert p[0].score == pytest.approx(w[0].score, abs=1e-5)
            assert p[0].attention.shape == w[0].attention.shape  # cut to the sentence's own length


# ---------------------------------------------------------------- outputs
def test_reverser_learned_and_hypotheses_are_well_formed(reverser):
    source, lengths = random_sources(8, 50, max_length=5)
    encoded = reverser.encode(source, lengths)
    greedy = greedy_search(reverser, encoded)
    correct = sum(g.tokens == source[row, :lengths[row]][::-1].tolist() for row, g in enumerate(greedy))
    assert correct >= 25  # a few seconds of training: well above chance, not perfect
    for row, g in enumerate(greedy):
        assert g.finished and PAD not in g.tokens and BOS not in g.tokens and EOS not in g.tokens
        assert g.attention.shape == (len(g.tokens), lengths[row])
        np.testing.assert_allclose(g.attention.sum(axis=1), 1.0, rtol=1e-5)


def test_nbest_lists_are_distinct_and_sorted(reverser):
    source, lengths = random_sources(9, 8, max_length=5)
    results = beam_search(reverser, reverser.encode(source, lengths), 4, nbest=4)
    for hypotheses in results:
        assert len(hypotheses) == 4
        scores = [h.score for h in hypotheses]
        assert scores == sorted(scores, reverse=True)
        assert len({(tuple(h.tokens), h.finished) for h in hypotheses}) == 4
    with pytest.raises(ValueError, match="nbest"):
        beam_search(reverser, reverser.encode(source, lengths), 2, nbest=3)
    with pytest.raises(ValueError, match="beam size"):
        beam_search(reverser, reverser.encode(source, lengths), 0)


def test_length_limit_is_relative_to_the_source_and_capped():
    np.testing.assert_array_equal(max_lengths(np.array([1, 4]), ratio=2.0, offset=3), [5, 11])
    np.testing.assert_array_equal(max_lengths(np.array([1, 4]), max_length=6, ratio=2.0, offset=3), [5, 6])
    model = make_model(seed=11)  # random: rarely says EOS, so it runs into the limit
    source, lengths = random_sources(10, 6)
    encoded = model.encode(source, lengths)
    for hypotheses in [[[h] for h in greedy_search(model, encoded, max_length=4)],
                       beam_search(model, encoded, 3, max_length=4)]:
        for (h,) in hypotheses:
            assert h.length <= 4
            assert h.finished or len(h.tokens) == 4
    limited = greedy_search(model, encoded, max_length_ratio=0.0, max_length_offset=2)
    assert all(h.length <= 2 for h in limited)


@pytest.mark.parametrize("shape, k", [((6, 10000), 10), ((5, 12), 4), ((3, 7), 7), ((4, 130), 20), ((3, 128), 5),
                                      ((2, 300), 1)])
def test_top_k_equals_a_stable_sort(shape, k):
    rng = np.random.default_rng(k)
    values = rng.standard_normal(shape).astype(np.float32)
    values[:, :2] = -np.inf
    values[0, 5] = values[0, 6] = values.max() + 1  # a tie: the lower index first
    values[-1, -1] = values.max() + 2  # the best entry in the last, partial block
    if shape[1] > 9:  # the best three are equal: the lower index first, whatever the sign bit
        values[1] = -np.abs(values[1]) - 1
        values[1, 3], values[1, 8], values[1, 9] = -0.0, 0.0, -0.0
    expected = np.argsort(-values, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(top_k(values, k), expected)
    # the fixed-shape way a GPU takes (int64 keys), run here on NumPy, and its way for other dtypes
    np.testing.assert_array_equal(_top_k_by_keys(values, k), expected)
    np.testing.assert_array_equal(_top_k_by_keys(values.astype(np.float64), k), expected)


def test_lexsort_rows_equals_numpy_lexsort():
    rng = np.random.default_rng(0)
    keys = [rng.integers(0, 3, size=(4, 9)) for _ in range(3)]
    np.testing.assert_array_equal(_lexsort_rows(keys), np.lexsort(keys, axis=1))


def _whole_array_scores(logits):
    """The per-step arithmetic of search over the whole (N, V) array at once: the reference of the blocked CPU path."""
    top = logits.max(axis=1, keepdims=True)
    log_z = (np.log(np.exp(logits - top).sum(axis=1, keepdims=True)) + top)[:, 0]
    masked = logits.copy()
    masked[:, PAD] = masked[:, BOS] = -np.inf
    best = masked.argmax(axis=1)
    return masked, log_z, best, np.take_along_axis(masked, best[:, None], axis=1)[:, 0] - log_z


@pytest.mark.parametrize("rows", [1, 15, 16, 37])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocked_step_scores_equal_the_whole_array_bit_for_bit(rows, dtype):
    rng = np.random.default_rng(rows)
    logits = (rng.standard_normal((rows, 300)) * 4).astype(dtype)
    logits[0, PAD] = logits[0].max() + 5           # PAD the largest: counts in log_z, never chosen
    logits[-1, 7] = logits[-1, 9] = logits[-1].max() + 1  # a tie: the lower index
    masked, log_z, best, best_log_p = _whole_array_scores(logits)
    got_masked, got_log_z = search._next_token_scores(logits.copy())
    np.testing.assert_array_equal(got_masked, masked)
    assert got_log_z.dtype == log_z.dtype and np.array_equal(got_log_z, log_z)
    got_best, got_log_p = search._greedy_choice(logits.copy())
    np.testing.assert_array_equal(got_best, best)
    assert best[-1] == 7 and got_log_p.dtype == best_log_p.dtype and np.array_equal(got_log_p, best_log_p)
