"""Tests for translator.batching: padding, bucketing, per-epoch reproducible order."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from translator.batching import BatchIterator, cut_by_tokens, filter_by_length, make_batch, pad_sequences
from translator.vocabulary import BOS, EOS, PAD


def random_examples(count=1000, seed=0, max_length=30):
    rng = np.random.default_rng(seed)
    return [
        (list(rng.integers(4, 50, size=rng.integers(1, max_length + 1))),
         list(rng.integers(4, 50, size=rng.integers(1, max_length + 1))) + [EOS])
        for _ in range(count)
    ]


def test_pad_sequences():
    padded, lengths = pad_sequences([[5, 6, 7], [8], []])
    assert padded.dtype == np.int64 and lengths.dtype == np.int64
    assert padded.tolist() == [[5, 6, 7], [8, PAD, PAD], [PAD, PAD, PAD]]
    assert lengths.tolist() == [3, 1, 0]
    assert pad_sequences([[], []])[0].shape == (2, 1)


def test_make_batch_contents():
    examples = [([5, 6, 7, EOS], [8, 9, EOS]), ([10, EOS], [11, 12, 13, 14, EOS]), ([15, 16, EOS], [17])]
    batch = make_batch(examples, [2, 0, 1])
    assert batch.indices.tolist() == [2, 0, 1]
    assert batch.source.tolist() == [[15, 16, EOS, PAD], [5, 6, 7, EOS], [10, EOS, PAD, PAD]]
    assert batch.source_lengths.tolist() == [3, 4, 2]
    assert batch.target_in.tolist() == [
        [BOS, 17, PAD, PAD, PAD], [BOS, 8, 9, PAD, PAD], [BOS, 11, 12, 13, 14]]
    assert batch.target_out.tolist() == [
        [17, EOS, PAD, PAD, PAD], [8, 9, EOS, PAD, PAD], [11, 12, 13, 14, EOS]]
    assert batch.target_lengths.tolist() == [2, 3, 5]
    assert batch.num_target_tokens == 10 and len(batch) == 3
    for array in (batch.source, batch.source_lengths, batch.target_in, batch.target_out, batch.indices):
        assert array.dtype == np.int64
    # target_out is target_in shifted left by one
    assert (batch.target_in[:, 1:] == np.where(batch.target_out[:, :-1] == EOS, PAD, batch.target_out[:, :-1])).all()


def test_targets_with_or_without_bos_and_eos_give_the_same_batch():
    plain = make_batch([([5], [8, 9])], [0])
    for target in ([8, 9, EOS], [BOS, 8, 9], [BOS, 8, 9, EOS]):
        other = make_batch([([5], target)], [0])
        assert (other.target_in == plain.target_in).all() and (other.target_out == plain.target_out).all()
    with pytest.raises(ValueError, match="zero examples"):
        make_batch([([5], [8])], [])


def epoch_indices(iterator, epoch):
    return [batch.indices.tolist() for batch in iterator.epoch(epoch)]


def test_each_epoch_covers_every_example_once():
    examples = random_examples()
    iterator = BatchIterator(examples, batch_size=32, seed=0, bucket_batches=4)
    for epoch in range(3):
        batches = epoch_indices(iterator, epoch)
        assert sorted(index for batch in batches for index in batch) == list(range(len(examples)))
        assert all(1 <= len(batch) <= 32 for batch in batches)
        assert len(batches) == iterator.num_batches(epoch)


def test_order_is_a_function_of_seed_and_epoch():
    examples = random_examples()
    first = BatchIterator(examples, batch_size=32, seed=5)
    resumed = BatchIterator(examples, batch_size=32, seed=5)  # e.g. after restarting training
    assert epoch_indices(resumed, 3) == epoch_indices(first, 3)
    assert epoch_indices(first, 3) != epoch_indices(first, 4)
    assert epoch_indices(first, 3) != epoch_indices(BatchIterator(examples, batch_size=32, seed=6), 3)
    assert epoch_indices(first, 3)[7:] == [batch.indices.tolist() for batch in first.epoch(3, start_batch=7)]


def source_padding_fraction(iterator):
    padded = real = 0
    for batch in iterator.epoch(0):
        padded += batch.source.size
        real += int(batch.source_lengths.sum())
    return 1 - real / padded


def test_bucketing_reduces_padding():
    examples = random_examples(2000)
    bucketed = source_padding_fraction(BatchIterator(examples, batch_size=32, bucket_batches=50))
    unbucketed = source_padding_fraction(BatchIterator(examples, batch_size=32, bucket_batches=1))
    assert bucketed < unbucketed / 4
    # within a batch, sources are sorted by length
    for batch in BatchIterator(examples, batch_size=32).epoch(0):
        assert (np.diff(batch.source_lengths) >= 0).all()


def test_no_shuffle_is_sorted_and_deterministic():
    examples = random_examples(300)
    iterator = BatchIterator(examples, batch_size=16, shuffle=False)
    batches = list(iterator.epoch(0))
    lengths = np.concatenate([batch.source_lengths for batch in batches])
    assert (np.diff(lengths) >= 0).all()
    assert epoch_indices(iterator, 0) == epoch_indices(iterator, 1)


def test_batch_by_tokens():
    examples = random_examples(1000)
    iterator = BatchIterator(examples, batch_size=64, max_tokens=400, seed=1)
    covered = []
    for batch in iterator.epoch(0):
        assert len(batch) <= 64
        assert len(batch) * max(batch.source.shape[1], batch.target_in.shape[1]) <= 400
        covered.extend(batch.indices.tolist())
    assert sorted(covered) == list(range(len(examples)))
    with pytest.raises(ValueError, match="max_tokens"):
        BatchIterator(examples, batch_size=8, max_tokens=10)


def test_filter_by_length_and_restricted_indices():
    examples = [([5] * 3, [6] * 3), ([5] * 9, [6] * 2), ([5] * 2, [6] * 12), ([], [6]), ([5] * 8, [6] * 8)]
    kept = filter_by_length(examples, max_length=8)
    assert kept == [0, 4]
    assert filter_by_length(examples, max_length=20, min_length=0) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="max_length"):
        filter_by_length(examples, max_length=0)
    iterator = BatchIterator(examples, batch_size=10, indices=kept)
    (batch,) = list(iterator.epoch(0))
    assert sorted(batch.indices.tolist()) == kept


def test_invalid_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        BatchIterator(random_examples(10), batch_size=0)
    with pytest.raises(ValueError, match="bucket_batches"):
        BatchIterator(random_examples(10), batch_size=2, bucket_batches=0)


@given(widths=st.lists(st.integers(1, 60), max_size=40), batch_size=st.integers(1, 9),
       max_tokens=st.one_of(st.none(), st.integers(1, 120)))
@settings(max_examples=150, deadline=None, derandomize=True)
def test_cut_by_tokens_covers_in_order_within_both_limits(widths, batch_size, max_tokens):
    pieces = cut_by_tokens(widths, batch_size, max_tokens)
    assert [index for piece in pieces for index in range(len(widths))[piece]] == list(range(len(widths)))
    for piece in pieces:
        batch = widths[piece]
        assert 1 <= len(batch) <= batch_size
        if max_tokens is not None and len(batch) > 1:
            assert len(batch) * max(batch) <= max_tokens  # only an example too wide alone exceeds it
