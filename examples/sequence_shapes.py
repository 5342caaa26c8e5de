"""Claim 3: the four shapes of sequence problems, each a small runnable example.

1. **one-to-many**: generate a sequence from one vector. A vector ``(frequency, sin phase,
   cos phase)`` sets a GRU's initial state (through a linear layer); the GRU unrolls for
   24 steps with no further input and a linear head reads a sine wave off every step.
   Trivial baseline: predicting 0 everywhere (MSE 0.5).
2. **many-to-one**: classify a sequence. Noisy waveforms (sine, square, triangle,
   sawtooth) of random frequency, phase and *length* (a padded batch with ``lengths=``);
   an LSTM's final state ``h_n`` (each sequence's own last real step) feeds a linear
   classifier. Chance: 0.25.
3. **many-to-many, aligned**: a label per step. Bracket strings; the label of each step is
   the nesting depth after reading that bracket. A GRU's output at every step feeds a
   linear tagger; padded steps are left out of the loss with ``ignore_index``. Baselines:
   the most frequent depth, and the best guess from the current bracket alone.
4. **many-to-many, unaligned**: an encoder-decoder (``seq2seq.py``) reverses a sequence of
   3-8 symbols; greedy decoding until the end token. Chance: 10^-length.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, replace

import numpy as np

import common
import seq2seq
import tinygrad_rnn as tg
from tinygrad_rnn import nn, optim
from tinygrad_rnn.nn import functional as F

WAVEFORMS = ("sine", "square", "triangle", "sawtooth")
MAX_DEPTH = 4
OPEN, CLOSE, PAD_TOKEN = 0, 1, 2


@dataclass(frozen=True)
class Config:
    seeds: tuple[int, ...]
    steps: int            # training steps (batches) for examples 1-3
    seq2seq_steps: int    # example 4 trains longer: it learns a whole decoder
    batch_size: int
    hidden_size: int
    learning_rate: float
    eval_size: int


FULL = Config(seeds=(0, 1, 2), steps=800, seq2seq_steps=2000, batch_size=64, hidden_size=48,
              learning_rate=1e-2, eval_size=1000)
QUICK = replace(FULL, seeds=(0,), steps=150, seq2seq_steps=300, eval_size=300)


def fit(model: nn.Module, loss_of_batch, steps: int, learning_rate: float) -> float:
    """Adam with gradient clipping; ``loss_of_batch()`` draws a batch and returns its loss. Returns the last loss."""
    optimizer = optim.Adam(model.parameters(), lr=learning_rate)
    for _ in range(steps):
        loss = loss_of_batch()
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return float(loss.item())


# ------------------------------------------------------------------ 1. one-to-many
def sine_batch(rng, batch_size: int, steps: int = 24):
    """``vectors (B, 3)`` = (frequency, sin phase, cos phase), ``waves (T, B, 1)`` = sin(frequency t + phase)."""
    frequency = rng.uniform(0.2, 0.6, size=batch_size)
    phase = rng.uniform(0, 2 * np.pi, size=batch_size)
    vectors = np.stack([frequency, np.sin(phase), np.cos(phase)], axis=1).astype(np.float32)
    time = np.arange(steps)[:, None]
    return vectors, np.sin(frequency * time + phase)[..., None].astype(np.float32)


class SequenceGenerator(nn.Module):
    """``forward(vectors (B, 3), steps) -> (steps, B, 1)``: the vector is the GRU's initial state."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.to_state = nn.Linear(3, hidden_size)
        self.gru = nn.GRU(1, hidden_size)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, vectors: tg.Tensor, steps: int) -> tg.Tensor:
        initial = self.to_state(vectors).tanh().unsqueeze(0)  # (1, B, H): one layer, one direction
        no_input = tg.zeros(steps, vectors.shape[0], 1)
        outputs, _ = self.gru(no_input, initial)
        return self.head(outputs)


def one_to_many(config: Config, seed: int) -> dict:
    rng = common.seed_everything(seed)
    model = SequenceGenerator(config.hidden_size)

    def loss_of_batch():
        vectors, waves = sine_batch(rng, config.batch_size)
        return F.mse_loss(model(common.tensor(vectors), waves.shape[0]), common.tensor(waves))

    fit(model, loss_of_batch, config.steps, config.learning_rate)
    vectors, waves = sine_batch(np.random.default_rng(99), config.eval_size)
    with tg.no_grad():
        mse = float(F.mse_loss(model(common.tensor(vectors), waves.shape[0]), common.tensor(waves)).item())
    return {"metric": mse, "baseline": float((waves ** 2).mean())}


# ------------------------------------------------------------------ 2. many-to-one
def waveform_batch(rng, batch_size: int, min_length: int = 20, max_length: int = 40):
    """``x (T, B, 1)`` zero-padded noisy waveforms, ``lengths (B,)``, ``labels (B,)`` indices into WAVEFORMS."""
    labels = rng.integers(0, len(WAVEFORMS), size=batch_size)
    lengths = rng.integers(min_length, max_length + 1, size=batch_size)
    x = np.zeros((max_length, batch_size, 1), dtype=np.float32)
    for column in range(batch_size):
        period = rng.uniform(6, 16)
        cycles = np.arange(lengths[column]) / period + rng.uniform(0, 1)
        fraction = cycles % 1.0
        wave = {"sine": np.sin(2 * np.pi * cycles),
                "square": np.where(fraction < 0.5, 1.0, -1.0),
                "triangle": 4 * np.abs(fraction - 0.5) - 1,
                "sawtooth": 2 * fraction - 1}[WAVEFORMS[labels[column]]]
        x[:lengths[column], column, 0] = wave + rng.normal(0, 0.3, size=lengths[column])
    return x, lengths, labels


class SequenceClassifier(nn.Module):
    """``forward(x (T, B, 1), lengths (B,)) -> logits (B, classes)`` from the LSTM's ``h_n``."""

    def __init__(self, hidden_size: int, classes: int):
        super().__init__()
        self.lstm = nn.LSTM(1, hidden_size)
        self.head = nn.Linear(hidden_size, classes)

    def forward(self, x: tg.Tensor, lengths) -> tg.Tensor:
        _, (h_n, _) = self.lstm(x, lengths=lengths)
        return self.head(h_n[-1])


def many_to_one(config: Config, seed: int) -> dict:
    rng = common.seed_everything(seed)
    model = SequenceClassifier(config.hidden_size, len(WAVEFORMS))

    def loss_of_batch():
        x, lengths, labels = waveform_batch(rng, config.batch_size)
        return F.cross_entropy(model(common.tensor(x), lengths), tg.Tensor(labels))

    fit(model, loss_of_batch, config.steps, config.learning_rate)
    x, lengths, labels = waveform_batch(np.random.default_rng(99), config.eval_size)
    with tg.no_grad():
        predicted = model(common.tensor(x), lengths).argmax(dim=1).numpy()
    return {"metric": float((predicted == labels).mean()), "baseline": 1 / len(WAVEFORMS)}


# ------------------------------------------------------------------ 3. many-to-many aligned
def bracket_batch(rng, batch_size: int, min_length: int = 10, max_length: int = 30):
    """``tokens (T, B)`` (OPEN/CLOSE, PAD_TOKEN after the end), ``lengths (B,)``, ``depths (T, B)`` (-100 = padding).

    A random walk on the depth 0..MAX_DEPTH: at 0 it must open, at MAX_DEPTH close,
    otherwise either with equal probability.
    """
    lengths = rng.integers(min_length, max_length + 1, size=batch_size)
    tokens = np.full((max_length, batch_size), PAD_TOKEN, dtype=np.int64)
    depths = np.full((max_length, batch_size), -100, dtype=np.int64)
    for column, length in enumerate(lengths):
        depth = 0
        for t in range(length):
            opening = depth == 0 or (depth < MAX_DEPTH and rng.random() < 0.5)
            depth += 1 if opening else -1
            tokens[t, column] = OPEN if opening else CLOSE
            depths[t, column] = depth
    return tokens, lengths, depths


class SequenceTagger(nn.Module):
    """``forward(tokens (T, B), lengths (B,)) -> logits (T, B, MAX_DEPTH + 1)``, one label per step."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.embedding = nn.Embedding(3, 8, padding_idx=PAD_TOKEN)
        self.gru = nn.GRU(8, hidden_size)
        self.head = nn.Linear(hidden_size, MAX_DEPTH + 1)

    def forward(self, tokens: np.ndarray, lengths) -> tg.Tensor:
        outputs, _ = self.gru(self.embedding(tokens), lengths=lengths)
        return self.head(outputs)


def tagging_baselines(tokens: np.ndarray, depths: np.ndarray) -> tuple[float, float]:
    """Accuracy of the most frequent depth, and of the best depth given the current bracket only."""
    real = depths >= 0
    counts = np.bincount(depths[real], minlength=MAX_DEPTH + 1)
    majority = counts.max() / real.sum()
    best_per_token = sum(np.bincount(depths[real & (tokens == token)], minlength=MAX_DEPTH + 1).max()
                         for token in (OPEN, CLOSE))
    return float(majority), float(best_per_token / real.sum())


def many_to_many_aligned(config: Config, seed: int) -> dict:
    rng = common.seed_everything(seed)
    model = SequenceTagger(config.hidden_size)

    def loss_of_batch():
        tokens, lengths, depths = bracket_batch(rng, config.batch_size)
        logits = model(tokens, lengths)
        return F.cross_entropy(logits.reshape(-1, MAX_DEPTH + 1), tg.Tensor(depths.reshape(-1)), ignore_index=-100)

    fit(model, loss_of_batch, config.steps, config.learning_rate)
    tokens, lengths, depths = bracket_batch(np.random.default_rng(99), config.eval_size)
    with tg.no_grad():
        predicted = model(tokens, lengths).argmax(dim=2).numpy()
    real = depths >= 0
    majority, current_token_only = tagging_baselines(tokens, depths)
    return {"metric": float((predicted == depths)[real].mean()), "baseline": majority,
            "baseline_current_token": current_token_only}


# ------------------------------------------------------------------ 4. many-to-many unaligned
SYMBOLS = 10


def many_to_many_unaligned(config: Config, seed: int, min_length: int = 3, max_length: int = 8) -> dict:
    rng = common.seed_everything(seed)
    model = seq2seq.Seq2Seq(seq2seq.SPECIAL_TOKENS + SYMBOLS, 16, config.hidden_size, attention=False)

    def loss_of_batch():
        source, lengths, target = seq2seq.reverse_batch(rng, config.batch_size, min_length, max_length, SYMBOLS)
        return seq2seq.sequence_loss(model(source, lengths, seq2seq.teacher_inputs(target)), target)

    fit(model, loss_of_batch, config.seq2seq_steps, config.learning_rate)
    source, lengths, target = seq2seq.reverse_batch(np.random.default_rng(99), config.eval_size, min_length,
                                                    max_length, SYMBOLS)
    decoded = model.greedy(source, lengths, steps=target.shape[0])
    token_accuracy, exact = seq2seq.accuracy(decoded, target)
    example = [int(t) - seq2seq.SPECIAL_TOKENS for t in source[:lengths[0], 0]]
    output = []
    for token in decoded[:, 0]:
        if token == seq2seq.END:
            break
        output.append(int(token) - seq2seq.SPECIAL_TOKENS)
    return {"metric": float(exact.mean()), "token_accuracy": float(token_accuracy.mean()),
            "baseline": float(np.mean(SYMBOLS ** -lengths.astype(float))), "example": (example, output)}


# ------------------------------------------------------------------ experiment
EXAMPLES = (
    ("one-to-many", "generate a sine wave from (frequency, phase)", "held-out MSE (lower is better)",
     one_to_many),
    ("many-to-one", "classify noisy waveforms of length 20-40", "held-out accuracy", many_to_one),
    ("many-to-many aligned", "bracket depth at every step, length 10-30", "held-out per-step accuracy",
     many_to_many_aligned),
    ("many-to-many unaligned", "reverse 3-8 symbols (encoder-decoder)", "held-out exact-match rate",
     many_to_many_unaligned),
)


def run(config: Config = FULL, out: str | None = None, verbose: bool = True) -> dict:
    """``{shape: [result dict per seed]}``; each result has ``metric`` and ``baseline``."""
    results = {}
    for shape, _, _, function in EXAMPLES:
        watch = common.Stopwatch()
        results[shape] = [function(config, seed) for seed in config.seeds]
        if verbose:
            print(f"  {shape}: {common.mean_std([r['metric'] for r in results[shape]])} ({watch.seconds():.1f} s)",
                  flush=True)
    if verbose:
        print_table(results, config)
    return results


def print_table(results: dict, config: Config) -> None:
    print(f"\nthe four shapes, mean ± std over seeds {list(config.seeds)}, hidden size {config.hidden_size}")
    rows = []
    for shape, task, metric, _ in EXAMPLES:
        runs = results[shape]
        baseline = f"{np.mean([r['baseline'] for r in runs]):.3g}"
        if "baseline_current_token" in runs[0]:
            baseline += f" (current bracket only: {np.mean([r['baseline_current_token'] for r in runs]):.3f})"
        rows.append([shape, task, metric, common.mean_std([r["metric"] for r in runs]), baseline])
    print(common.markdown_table(["shape", "task", "metric", "result", "trivial baseline"], rows))
    unaligned = results["many-to-many unaligned"][0]
    print(f"many-to-many unaligned, token accuracy {unaligned['token_accuracy']:.3f}; example: "
          f"{unaligned['example'][0]} -> {unaligned['example'][1]}")


def main(argv=None) -> dict:
    parser = common.base_parser(__doc__.split("\n")[0])
    args = parser.parse_args(argv)
    config = QUICK if args.quick else FULL
    if args.seeds:
        config = replace(config, seeds=args.seeds)
    if args.out is not None:
        print("sequence_shapes.py draws no figures: the table says it all")
    watch = common.Stopwatch()
    results = run(config)
    print(f"\ntotal runtime {watch.seconds():.0f} s")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
