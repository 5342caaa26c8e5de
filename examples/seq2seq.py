"""A small GRU encoder-decoder, with or without attention, and the reverse-a-sequence toy task.

Shared by ``sequence_shapes.py`` (the many-to-many unaligned example) and
``attention_length.py`` (accuracy versus length with and without attention).

Tokens: ``0`` padding, ``1`` begin, ``2`` end, then ``symbols`` content tokens.
The decoder step is the one function used by teacher-forced training and by greedy
decoding. Each step reads a *context* vector of size ``hidden_size``:

- without attention it is the encoder's final state, the same at every step (the
  RNN encoder-decoder of Cho et al. 2014): everything about the source must pass
  through this one fixed-size vector;
- with attention it is a weighted sum of all encoder outputs, the weights recomputed
  at every step from the decoder's previous state (additive attention, Bahdanau et
  al. 2015).

Both variants have the same layers apart from the attention's own parameters.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.nn import functional as F

PAD, BEGIN, END = 0, 1, 2
SPECIAL_TOKENS = 3


# ------------------------------------------------------------------ task
def reverse_batch(rng: np.random.Generator, batch_size: int, min_length: int, max_length: int, symbols: int):
    """Random source sequences and their reversals.

    Returns ``source (S, B)`` int64 padded with ``PAD``, ``lengths (B,)`` and
    ``target (S + 1, B)``: the reversed source followed by ``END``, padded with ``PAD``.
    """
    lengths = rng.integers(min_length, max_length + 1, size=batch_size)
    longest = int(lengths.max())
    source = np.full((longest, batch_size), PAD, dtype=np.int64)
    target = np.full((longest + 1, batch_size), PAD, dtype=np.int64)
    for column, length in enumerate(lengths):
        tokens = rng.integers(SPECIAL_TOKENS, SPECIAL_TOKENS + symbols, size=length)
        source[:length, column] = tokens
        target[:length, column] = tokens[::-1]
        target[length, column] = END
    return source, lengths, target


def teacher_inputs(target: np.ndarray) -> np.ndarray:
    """Decoder inputs for teacher forcing: ``BEGIN`` then the target shifted right, ``(T, B)``."""
    inputs = np.empty_like(target)
    inputs[0] = BEGIN
    inputs[1:] = target[:-1]
    return inputs


# ------------------------------------------------------------------ model
@dataclass
class Memory:
    """What the decoder reads from the encoder: ``keys (B, S, H)``, ``final (B, H)``, ``mask (B, S)``."""
    keys: tg.Tensor
    final: tg.Tensor
    mask: np.ndarray
    projected_keys: tg.Tensor | None


class Seq2Seq(nn.Module):
    """GRU encoder, GRU-cell decoder, optional additive attention.

    ``Seq2Seq(vocab_size, embedding_size, hidden_size, attention)``;
    ``forward(source (S, B), lengths (B,), decoder_inputs (T, B)) -> logits (T, B, vocab_size)``.
    """

    def __init__(self, vocab_size: int, embedding_size: int, hidden_size: int, attention: bool):
        super().__init__()
        self.source_embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=PAD)
        self.target_embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=PAD)
        self.encoder = nn.GRU(embedding_size, hidden_size)
        self.attention = nn.AdditiveAttention(hidden_size, hidden_size, hidden_size) if attention else None
        self.decoder = nn.GRUCell(embedding_size + hidden_size, hidden_size)
        self.output = nn.Linear(2 * hidden_size, vocab_size)

    def encode(self, source: np.ndarray, lengths: np.ndarray) -> Memory:
        outputs, final = self.encoder(self.source_embedding(source), lengths=lengths)
        keys = outputs.transpose(0, 1)  # (B, S, H)
        mask = np.arange(source.shape[0])[None, :] < np.asarray(lengths)[:, None]
        projected = self.attention.project_keys(keys) if self.attention is not None else None
        return Memory(keys=keys, final=final[0], mask=mask, projected_keys=projected)

    def step(self, tokens: np.ndarray, state: tg.Tensor, memory: Memory):
        """One decoder step: ``tokens (B,)``, ``state (B, H)`` -> ``logits (B, V), state (B, H), weights``."""
        if self.attention is None:
            context, weights = memory.final, None
        else:
            context, weights = self.attention(state, memory.keys, mask=memory.mask,
                                              projected_keys=memory.projected_keys)
        state = self.decoder(tg.cat([self.target_embedding(tokens), context], dim=1), state)
        return self.output(tg.cat([state, context], dim=1)), state, weights

    def forward(self, source: np.ndarray, lengths: np.ndarray, decoder_inputs: np.ndarray) -> tg.Tensor:
        memory = self.encode(source, lengths)
        state, logits = memory.final, []
        for tokens in decoder_inputs:
            step_logits, state, _ = self.step(tokens, state, memory)
            logits.append(step_logits)
        return tg.stack(logits, dim=0)

    def greedy(self, source: np.ndarray, lengths: np.ndarray, steps: int) -> np.ndarray:
        """Greedy decoding for ``steps`` steps (no early stop): ``(steps, B)`` int64 tokens."""
        with tg.no_grad():
            memory = self.encode(source, lengths)
            state = memory.final
            tokens = np.full(source.shape[1], BEGIN, dtype=np.int64)
            decoded = []
            for _ in range(steps):
                logits, state, _ = self.step(tokens, state, memory)
                tokens = logits.argmax(dim=1).numpy()
                decoded.append(tokens)
        return np.stack(decoded)


def sequence_loss(logits: tg.Tensor, target: np.ndarray) -> tg.Tensor:
    """Mean cross-entropy over the real (non-``PAD``) target positions."""
    steps, batch, vocab = logits.shape
    return F.cross_entropy(logits.reshape(steps * batch, vocab), tg.Tensor(target.reshape(-1)), ignore_index=PAD)


def accuracy(decoded: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per sequence: fraction of target positions (``END`` included) decoded right, and exact match."""
    real = target != PAD
    correct = (decoded[:target.shape[0]] == target) & real
    token_accuracy = correct.sum(axis=0) / real.sum(axis=0)
    return token_accuracy, token_accuracy == 1.0
