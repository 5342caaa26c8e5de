"""Claim 5, attention: the fixed-size context vector is the bottleneck on long sequences.

The encoder-decoder of ``seq2seq.py`` learns to reverse sequences of random symbols
whose lengths are drawn uniformly from ``[min_length, max_length]``; it is then scored,
with greedy decoding, on held-out sequences of each fixed length. Without attention
the decoder sees the source only through the encoder's final state (``hidden_size``
numbers); with additive attention it can look back at every encoder output. Same
task, data, optimiser and number of steps for every model. A third model, without
attention but with twice the hidden size (the table gives every parameter count),
checks whether a bigger vector is enough.

Metrics per length: token accuracy (fraction of output positions right, the end token
included; chance is about 1/symbols) and exact-match rate (whole sequence right).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, replace

import numpy as np

import common
import seq2seq
from tinygrad_rnn import nn, optim


@dataclass(frozen=True)
class Config:
    seeds: tuple[int, ...]
    symbols: int
    min_length: int
    max_length: int
    eval_lengths: tuple[int, ...]
    embedding_size: int
    variants: tuple[tuple[bool, int], ...]   # (attention, hidden size) per model
    steps: int
    batch_size: int
    learning_rate: float
    eval_size: int

    def __post_init__(self):
        if not 1 <= self.min_length <= self.max_length:
            raise ValueError(f"need 1 <= min_length <= max_length, got {self.min_length}, {self.max_length}")


FULL = Config(seeds=(0, 1, 2), symbols=10, min_length=2, max_length=30, eval_lengths=(5, 10, 15, 20, 25, 30),
              embedding_size=16, variants=((False, 32), (True, 32), (False, 64)), steps=1200, batch_size=64,
              learning_rate=5e-3, eval_size=200)
QUICK = replace(FULL, seeds=(0,), max_length=16, eval_lengths=(4, 16), variants=((False, 32), (True, 32)), steps=200,
                eval_size=100)


def variant_name(attention: bool, hidden_size: int) -> str:
    return f"{'with' if attention else 'without'} attention, hidden {hidden_size}"


def train(attention: bool, hidden_size: int, seed: int, config: Config) -> seq2seq.Seq2Seq:
    rng = common.seed_everything(seed)
    model = seq2seq.Seq2Seq(seq2seq.SPECIAL_TOKENS + config.symbols, config.embedding_size, hidden_size, attention)
    optimizer = optim.Adam(model.parameters(), lr=config.learning_rate)
    for _ in range(config.steps):
        source, lengths, target = seq2seq.reverse_batch(rng, config.batch_size, config.min_length,
                                                        config.max_length, config.symbols)
        loss = seq2seq.sequence_loss(model(source, lengths, seq2seq.teacher_inputs(target)), target)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return model


def evaluate(model: seq2seq.Seq2Seq, length: int, config: Config) -> tuple[float, float]:
    """Token accuracy and exact-match rate on held-out sequences of exactly ``length`` symbols."""
    rng = np.random.default_rng(1000 + length)
    source, lengths, target = seq2seq.reverse_batch(rng, config.eval_size, length, length, config.symbols)
    decoded = model.greedy(source, lengths, steps=target.shape[0])
    token_accuracy, exact = seq2seq.accuracy(decoded, target)
    return float(token_accuracy.mean()), float(exact.mean())


def run(config: Config = FULL, out: str | None = None, verbose: bool = True) -> dict:
    """``{"results": {variant name: {length: [(token accuracy, exact match) per seed]}}, "sizes": ...}``."""
    results, sizes = {}, {}
    for attention, hidden_size in config.variants:
        name = variant_name(attention, hidden_size)
        results[name] = {length: [] for length in config.eval_lengths}
        for seed in config.seeds:
            watch = common.Stopwatch()
            model = train(attention, hidden_size, seed, config)
            sizes[name] = common.count_parameters(model)
            for length in config.eval_lengths:
                results[name][length].append(evaluate(model, length, config))
            if verbose:
                print(f"  {name}, seed {seed}: token accuracy by length "
                      + ", ".join(f"{length}: {results[name][length][-1][0]:.2f}" for length in config.eval_lengths)
                      + f" ({watch.seconds():.1f} s)", flush=True)
    report = {"results": results, "sizes": sizes}
    if verbose:
        print_tables(report, config)
    plot(report, config, out)
    return report


def print_tables(report: dict, config: Config) -> None:
    for index, metric in enumerate(("token accuracy", "exact-match rate")):
        print(f"\nreversal, {metric} by source length (trained on lengths {config.min_length}-{config.max_length}, "
              f"{config.steps} steps; mean ± std over seeds {list(config.seeds)})")
        rows = [[f"{name} ({report['sizes'][name]} parameters)"]
                + [common.mean_std([run[index] for run in by_length[length]], 2) for length in config.eval_lengths]
                for name, by_length in report["results"].items()]
        print(common.markdown_table(["model"] + [f"length {length}" for length in config.eval_lengths], rows))


def plot(report: dict, config: Config, out: str | None) -> None:
    path = common.figure_path(out, "attention_length.png")
    if path is None:
        return
    plt = common.pyplot()
    figure, axis = plt.subplots(figsize=(6, 4))
    for name, by_length in report["results"].items():
        means = [np.mean([run[0] for run in by_length[length]]) for length in config.eval_lengths]
        axis.plot(config.eval_lengths, means, marker="o", label=name)
    axis.axhline(1 / config.symbols, color="gray", linestyle="--", label="chance")
    axis.set_xlabel("source length")
    axis.set_ylabel("token accuracy (greedy)")
    axis.set_ylim(0, 1.02)
    axis.set_title("reverse a sequence")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    print(f"figure: {path}")


def main(argv=None) -> dict:
    parser = common.base_parser(__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=None, help="training steps per model")
    args = parser.parse_args(argv)
    return common.timed_run(run, common.configure(args, QUICK, FULL, steps=args.steps), args.out)


if __name__ == "__main__":
    main(sys.argv[1:])
