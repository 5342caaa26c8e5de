"""Training and greedy-decoding speed of the translator's Seq2Seq at the reference size.

Reference (issue 4): bidirectional GRU-256 encoder, GRU-256 decoder, additive attention, input
feeding, batch 128, vocabularies of ~10k, sentences of ~10 tokens. Random data, so only speed is
meaningful. Usage::

    python bench/seq2seq_speed.py [--batch 128] [--length 10] [--vocab 10000] [--steps 5] [--profile]

Prints target tokens/second for forward + backward + clip + Adam (``Seq2Seq.loss``: the fused
cross-entropy on the target tokens) and sentences/second for batched greedy and beam decoding.
On a machine shared with other jobs, ``OPENBLAS_NUM_THREADS=1`` avoids BLAS threads fighting
over the cores (much faster under load; slower on an idle machine).
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import numpy as np

import tinygrad_rnn as tg
from tinygrad_rnn import nn, no_grad, optim
from translator.model import ModelConfig, Seq2Seq
from translator.search import beam_search, greedy_search


def random_batch(rng, batch, length, source_vocab, target_vocab):
    source_lengths = rng.integers(max(1, length - 3), length + 4, size=batch)
    target_lengths = rng.integers(max(1, length - 3), length + 4, size=batch)
    source = np.zeros((batch, source_lengths.max()), dtype=np.int64)
    target_in = np.zeros((batch, target_lengths.max() + 1), dtype=np.int64)
    target_out = np.zeros_like(target_in)
    for row in range(batch):
        source[row, :source_lengths[row]] = rng.integers(4, source_vocab, size=source_lengths[row])
        words = rng.integers(4, target_vocab, size=target_lengths[row])
        target_in[row, :target_lengths[row] + 1] = np.concatenate([[1], words])
        target_out[row, :target_lengths[row] + 1] = np.concatenate([words, [2]])
    return source, source_lengths, target_in, target_out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--length", type=int, default=10)
    parser.add_argument("--vocab", type=int, default=10000)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--cell", default="gru")
    parser.add_argument("--attention", default="additive")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    tg.manual_seed(0)
    rng = np.random.default_rng(0)
    config = ModelConfig(cell=args.cell, embedding_size=args.hidden, hidden_size=args.hidden,
                         attention=args.attention, input_feeding=args.attention != "none", dropout=0.2)
    model = Seq2Seq(config, args.vocab, args.vocab)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    batches = [random_batch(rng, args.batch, args.length, args.vocab, args.vocab) for _ in range(args.steps + 1)]

    def train_step(batch, timings):
        source, lengths, target_in, target_out = batch
        start = time.perf_counter()
        loss = model.loss(source, lengths, target_in, target_out, label_smoothing=0.1)
        forward = time.perf_counter()
        optimizer.zero_grad()
        loss.backward()
        backward = time.perf_counter()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        end = time.perf_counter()
        timings.append((forward - start, backward - forward, end - backward))
        return int((target_out != 0).sum())

    model.train()
    train_step(batches[0], [])  # warm-up
    timings, tokens = [], 0
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    start = time.perf_counter()
    for batch in batches[1:]:
        tokens += train_step(batch, timings)
    elapsed = time.perf_counter() - start
    if profiler:
        profiler.disable()
    mean = np.mean(timings, axis=0)
    print(f"training: {tokens / elapsed:8.0f} target tokens/s  (per batch: forward {mean[0] * 1e3:.0f} ms, "
          f"backward {mean[1] * 1e3:.0f} ms, clip+Adam {mean[2] * 1e3:.0f} ms)")

    # Decoding: a trained model stops at EOS after about as many tokens as the source has; with
    # random weights we make EOS impossible and stop every sentence after len(source) + 1 tokens.
    model.eval()
    model.decoder.output.bias.data[2] = -1e4
    for beam in (1, 5):
        sentences, encode_time, decode_times = 0, 0.0, []
        for source, lengths, _, _ in batches[1:]:
            start = time.perf_counter()
            with no_grad():
                encoded = model.encode(source, lengths)
            encoded_at = time.perf_counter()
            if beam == 1:
                greedy_search(model, encoded, max_length_ratio=1.0, max_length_offset=1)
            else:
                beam_search(model, encoded, beam, max_length_ratio=1.0, max_length_offset=1)
            encode_time += encoded_at - start
            decode_times.append(time.perf_counter() - start)
            sentences += len(source)
        name = "greedy:" if beam == 1 else f"beam {beam}:"
        print(f"{name:9s} {sentences / sum(decode_times):8.0f} sentences/s  (best batch "
              f"{len(source) / min(decode_times):.0f}/s; encoder {encode_time / sum(decode_times):.0%} of the time)")
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
