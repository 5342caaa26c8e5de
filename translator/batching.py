"""Padded, length-bucketed minibatches of encoded sentence pairs.

An *example* is a pair ``(source_ids, target_ids)`` of token-id lists (see
:meth:`translator.vocabulary.Vocabulary.encode`). The source is used as given (``encode`` ends it
with EOS); the target becomes ``target_in`` (decoder input, teacher forcing) and ``target_out``
(what the decoder must predict) as :func:`translator.vocabulary.decoder_sequences` says:
``[BOS] + words`` and ``words + [EOS]``, whether the target ids already hold BOS/EOS or not.

Arrays are batch-first ``(B, length)`` int64, padded on the right with PAD; a model that wants
``(T, B)`` transposes. Every batch carries the indices of its examples so outputs can be put back
in corpus order.

Order: each epoch shuffles the examples with a generator seeded by ``(seed, epoch)``, cuts them into
chunks of ``bucket_batches`` batches, sorts each chunk by length (so sentences of similar length
share a batch and padding stays small), cuts it into batches and shuffles the batches. The order is
a pure function of ``(seed, epoch)``: resuming training at epoch k reproduces it exactly.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator, Sequence

import numpy as np

from translator.vocabulary import PAD, decoder_sequences

Example = tuple[Sequence[int], Sequence[int]]


@dataclasses.dataclass
class Batch:
    """One minibatch of B examples.

    Attributes:
        source: (B, S) int64, source ids padded with PAD; S = max source length (at least 1).
        source_lengths: (B,) int64, unpadded source lengths.
        target_in: (B, T) int64, ``BOS + words`` padded with PAD; T = max target words + 1.
        target_out: (B, T) int64, ``words + EOS`` padded with PAD.
        target_lengths: (B,) int64, unpadded lengths of target_in / target_out (target length + 1).
        indices: (B,) int64, positions of the examples in the sequence given to the batcher.
    """

    source: np.ndarray
    source_lengths: np.ndarray
    target_in: np.ndarray
    target_out: np.ndarray
    target_lengths: np.ndarray
    indices: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def num_target_tokens(self) -> int:
        """Number of non-PAD entries in ``target_out`` (what a per-token loss averages over)."""
        return int(self.target_lengths.sum())


def pad_sequences(sequences: Sequence[Sequence[int]], min_length: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad integer sequences with PAD.

    Args:
        sequences: B lists of ids.
        min_length: the padded width is at least this (so an all-empty batch is not zero-wide).
    Returns:
        ``(padded (B, L) int64, lengths (B,) int64)`` with L = max(max length, min_length).
    """
    lengths = np.array([len(sequence) for sequence in sequences], dtype=np.int64)
    width = max(int(lengths.max(initial=0)), min_length)
    padded = np.full((len(sequences), width), PAD, dtype=np.int64)
    for row, sequence in enumerate(sequences):
        padded[row, : len(sequence)] = sequence
    return padded, lengths


def make_batch(examples: Sequence[Example], indices: Sequence[int]) -> Batch:
    """Build the :class:`Batch` of ``examples[i] for i in indices`` (see the module docstring)."""
    if len(indices) == 0:
        raise ValueError("cannot make a batch of zero examples")
    source, source_lengths = pad_sequences([examples[i][0] for i in indices])
    decoder_inputs, decoder_outputs = zip(*(decoder_sequences(examples[i][1]) for i in indices))
    target_in, target_lengths = pad_sequences(decoder_inputs)
    target_out, _ = pad_sequences(decoder_outputs)
    return Batch(source, source_lengths, target_in, target_out, target_lengths, np.asarray(indices, dtype=np.int64))


def filter_by_length(examples: Sequence[Example], max_length: int, min_length: int = 1) -> list[int]:
    """Indices of the examples whose source and target both have ``min_length <= len <= max_length``.

    Lengths are those of the sequences as given: token lists (preparation drops long training
    pairs before encoding them) or id lists (count BOS/EOS if you encoded them). The result can be
    passed as ``indices`` to :class:`BatchIterator` so batches keep the original indices.
    """
    if max_length < min_length:
        raise ValueError(f"max_length ({max_length}) must be >= min_length ({min_length})")
    return [
        index for index, (source, target) in enumerate(examples)
        if min_length <= len(source) <= max_length and min_length <= len(target) <= max_length
    ]


def cut_by_tokens(widths: Sequence[int] | np.ndarray, batch_size: int, max_tokens: int | None = None) -> list[slice]:
    """Cut a run of examples, in the order given, into consecutive batches under a token budget.

    A batch takes the next example unless it already holds ``batch_size`` examples or, with
    ``max_tokens``, its padded size ``B * max(width)`` would then exceed ``max_tokens``. An example
    wider than ``max_tokens`` on its own still gets a batch (of one): callers drop or truncate such
    examples first. Sorting by width beforehand keeps padding small.

    Args:
        widths: (N,) the padded width each example needs (e.g. its longest side, in tokens).
        batch_size: at most this many examples per batch (>= 1).
        max_tokens: at most this many padded tokens per batch; None: no budget.
    Returns:
        slices of ``range(N)``, one per batch, covering it in order.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    batches, start, widest = [], 0, 0
    for position, width in enumerate(widths):
        count = position - start
        widest_if_added = max(widest, int(width))
        if count and (count == batch_size or (max_tokens is not None and (count + 1) * widest_if_added > max_tokens)):
            batches.append(slice(start, position))
            start, widest_if_added = position, int(width)
        widest = widest_if_added
    if start < len(widths):
        batches.append(slice(start, len(widths)))
    return batches


class BatchIterator:
    """Length-bucketed batches over ``examples``, reproducible per epoch.

    Args:
        examples: N ``(source_ids, target_ids)`` pairs.
        batch_size: examples per batch (the last batch of a chunk may be smaller).
        seed: with the epoch number, determines the order completely.
        shuffle: False: no randomness, all examples sorted by length in one pass (for evaluation;
            use ``batch.indices`` to restore corpus order).
        bucket_batches: how many batches' worth of examples are sorted by length together;
            larger means less padding but less randomness.
        max_tokens: if given, a batch also stops growing before ``B * max(padded lengths)`` would
            exceed it (batch by tokens); ``batch_size`` stays an upper bound on B.
        indices: restrict to these example positions (e.g. from :func:`filter_by_length`);
            ``batch.indices`` are still positions in ``examples``.
    """

    def __init__(
        self,
        examples: Sequence[Example],
        batch_size: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        bucket_batches: int = 100,
        max_tokens: int | None = None,
        indices: Sequence[int] | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if bucket_batches < 1:
            raise ValueError(f"bucket_batches must be >= 1, got {bucket_batches}")
        self.examples = examples
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.bucket_batches = bucket_batches
        self.max_tokens = max_tokens
        self.indices = np.arange(len(examples), dtype=np.int64) if indices is None else np.asarray(indices, dtype=np.int64)
        # Padded width of each example's batch rows: the source, and the decoder's input/output.
        self._source_lengths = np.array([len(source) for source, _ in examples], dtype=np.int64)
        self._target_lengths = np.array([len(decoder_sequences(target)[0]) for _, target in examples], dtype=np.int64)
        if max_tokens is not None:
            longest = int(np.maximum(self._source_lengths, self._target_lengths)[self.indices].max(initial=0))
            if max_tokens < longest:
                raise ValueError(f"max_tokens ({max_tokens}) is smaller than the longest example ({longest} tokens)")

    def plan(self, epoch: int = 0) -> list[np.ndarray]:
        """The batches of ``epoch`` as arrays of example indices, without building them."""
        order = self.indices
        if self.shuffle:
            rng = np.random.default_rng([self.seed, epoch])
            order = order[rng.permutation(len(order))]
        chunk_size = len(order) if not self.shuffle else self.batch_size * self.bucket_batches
        batches: list[np.ndarray] = []
        for start in range(0, len(order), chunk_size):
            chunk = order[start : start + chunk_size]
            # Stable sort by (source length, target length): ties keep the shuffled order.
            chunk = chunk[np.lexsort((self._target_lengths[chunk], self._source_lengths[chunk]))]
            batches.extend(self._cut(chunk))
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def _cut(self, sorted_chunk: np.ndarray) -> list[np.ndarray]:
        widths = np.maximum(self._source_lengths[sorted_chunk], self._target_lengths[sorted_chunk])
        return [sorted_chunk[piece] for piece in cut_by_tokens(widths, self.batch_size, self.max_tokens)]

    def num_batches(self, epoch: int = 0) -> int:
        """Number of batches in ``epoch`` (the same every epoch unless ``max_tokens`` is set)."""
        return len(self.plan(epoch))

    def epoch(self, epoch: int = 0, start_batch: int = 0, examples: Sequence[Example] | None = None) -> Iterator[Batch]:
        """Yield the batches of ``epoch``, from batch number ``start_batch`` (to resume mid-epoch).

        ``examples``, if given, replaces the iterator's examples for this epoch (same length and order,
        e.g. with noised sources); the plan stays the one of the original lengths.
        """
        if examples is not None and len(examples) != len(self.examples):
            raise ValueError(f"examples for this epoch must number {len(self.examples)}, got {len(examples)}")
        for batch_indices in self.plan(epoch)[start_batch:]:
            yield make_batch(self.examples if examples is None else examples, batch_indices)
