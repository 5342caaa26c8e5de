"""Translator speed, ours against a PyTorch twin of the same network, side by side in one run.

The network is ``translator.model.Seq2Seq`` with the default ``ModelConfig`` (bidirectional
GRU-256 encoder, GRU-256 decoder, additive attention, input feeding, dropout 0.25); the twin is
``bench/torch_seq2seq.py`` (eager PyTorch, in its own process: ``bench/torch_worker.py --mode
seq2seq``). Both start from the same weights (ours, sent over an npz) and get the same random
batches (``random_batch``, seeded), so only speed differs; a check first compares the eval-mode
loss, the gradient norm and the greedy tokens of the two. Then rounds alternate between the
twin and us (the harness of ``bench/rnn.py``: ``bench/timing.py``, one warm-up call each):

- training: one step per batch, as ``translator.training.Trainer`` does (``Seq2Seq.loss`` with
  label smoothing 0.1, backward, gradient-norm clipping at 5, Adam): target tokens/s;
- greedy decoding, batched, of sentences whose EOS is made impossible, so every sentence runs to
  its length limit (source length + 1) on both sides: sentences/s;
- beam search (``--beam K``): sentences/s; the check then compares the best hypotheses too
  (beam search breaks ties its own way on each side, so a few differing tokens are not an error).

Usage::

    python bench/seq2seq_speed.py                              # 2 BLAS threads, wall clock
    python bench/seq2seq_speed.py --threads 1 --clock cpu      # one core each, CPU time: a busy machine
    python bench/seq2seq_speed.py --device cuda                # both on the GPU (cuDNN), synchronised
    python bench/seq2seq_speed.py --count                      # + the engine's op/sync/upload/launch counts

Ratios are speeds, ours/PyTorch: above 1 we are faster. Random data, so only speed means anything.
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rnn_kernels as harness  # noqa: E402  (sets the BLAS thread count before NumPy loads)

import numpy as np  # noqa: E402

import tinygrad_rnn as tg  # noqa: E402
from tinygrad_rnn import backend, nn, no_grad, optim  # noqa: E402
from timing import time_methods  # noqa: E402
from translator.model import ModelConfig, Seq2Seq  # noqa: E402
from translator.search import beam_search, greedy_search  # noqa: E402

try:
    from tinygrad_rnn import profiler
except ImportError:  # the engine's counters are newer than this benchmark in some checkouts
    profiler = None

EOS = 2
LABEL_SMOOTHING, LEARNING_RATE, CLIP = 0.1, 3e-3, 5.0  # the Trainer's defaults
MAX_LENGTH_RATIO, MAX_LENGTH_OFFSET = 1.0, 1           # decoding: source length + 1 tokens


def random_batch(rng, batch, length, source_vocab, target_vocab):
    """One random padded batch, lengths in ``length-3 .. length+3``.

    Returns source (B, S) int64, source_lengths (B,), target_in (B, T) (BOS first) and
    target_out (B, T) (EOS last), PAD-padded; ids of words are >= 4.
    """
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


def make_batches(seed, count, batch, length, vocab):
    rng = np.random.default_rng(seed)
    return [random_batch(rng, batch, length, vocab, vocab) for _ in range(count)]


def as_matrix(hypotheses):
    """(B, longest) int64 tokens of the hypotheses, PAD-padded."""
    tokens = np.zeros((len(hypotheses), max(len(h.tokens) for h in hypotheses)), dtype=np.int64)
    for row, hypothesis in enumerate(hypotheses):
        tokens[row, :len(hypothesis.tokens)] = hypothesis.tokens
    return tokens


class OurSeq2Seq:
    """Our side; the timed methods mirror ``torch_seq2seq.Seq2SeqProblem`` (same batches, same steps)."""

    def __init__(self, config, vocab, train_batches, decode_batches, device, beam):
        self.device, self.beam_size = device, beam
        tg.manual_seed(0)
        self.model = Seq2Seq(config, vocab, vocab).to(device)
        # Decoding uses its own copy, never trained, with EOS impossible (see the module docstring).
        self.decode_model = Seq2Seq(config, vocab, vocab).to(device)
        self.decode_model.load_state_dict(self.model.state_dict())
        self.decode_model.decoder.output.bias.data[EOS] = -1e4
        self.decode_model.eval()
        self.optimizer = optim.Adam(self.model.parameters(), lr=LEARNING_RATE)
        self.train_batches, self.decode_batches = train_batches, decode_batches
        self.timed = ("train", "greedy") + (("beam",) if beam > 1 else ())

    def sync(self):
        """Wait for the device (CUDA) to finish; nothing on the CPU."""
        if self.device != "cpu":
            backend.xp_for(self.device).cuda.Device().synchronize()

    def _loss(self, source, lengths, target_in, target_out):
        # As Trainer._loss: the source as a Tensor on the device, the rest as host arrays.
        return self.model.loss(tg.Tensor(source, device=self.device), lengths, target_in, target_out,
                               label_smoothing=LABEL_SMOOTHING)

    def train_step(self, batch):
        self.optimizer.zero_grad()
        loss = self._loss(*batch)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), CLIP)
        self.optimizer.step()
        return loss

    def train(self):
        """One training step per batch (forward, backward, clip, Adam)."""
        self.model.train()
        for batch in self.train_batches:
            self.train_step(batch)
        self.sync()

    def greedy_batch(self, source, lengths):
        with no_grad():
            encoded = self.decode_model.encode(source, lengths)
        return greedy_search(self.decode_model, encoded, max_length_ratio=MAX_LENGTH_RATIO,
                             max_length_offset=MAX_LENGTH_OFFSET)

    def greedy(self):
        """Greedy decoding of every decode batch (hypotheses back on the host)."""
        for source, lengths, _, _ in self.decode_batches:
            self.greedy_batch(source, lengths)
        self.sync()

    def beam(self):
        for source, lengths, _, _ in self.decode_batches:
            with no_grad():
                encoded = self.decode_model.encode(source, lengths)
            beam_search(self.decode_model, encoded, self.beam_size, max_length_ratio=MAX_LENGTH_RATIO,
                        max_length_offset=MAX_LENGTH_OFFSET)
        self.sync()

    def time(self, repeats, clock=time.perf_counter):
        return time_methods(self, self.timed, repeats, clock)

    def results(self):
        """As ``Seq2SeqProblem.results``: eval-mode loss and gradient norm, greedy tokens; weights unchanged."""
        self.model.eval()
        self.optimizer.zero_grad()
        loss = self._loss(*self.train_batches[0])
        loss.backward()
        grads = [backend.as_numpy(p.grad.data).astype(np.float64) for p in self.model.parameters()
                 if p.grad is not None]
        grad_norm = float(np.sqrt(sum(float((g * g).sum()) for g in grads)))
        self.optimizer.zero_grad()
        source, lengths, _, _ = self.decode_batches[0]
        hypotheses = self.greedy_batch(source, lengths)
        results = {"loss": float(loss.item()), "grad_norm": grad_norm, "greedy_tokens": as_matrix(hypotheses),
                   "greedy_log_probs": np.array([h.log_prob for h in hypotheses]),
                   "parameters": sum(int(p.data.size) for p in self.model.parameters())}
        if self.beam_size > 1:
            with no_grad():
                encoded = self.decode_model.encode(source, lengths)
            best = beam_search(self.decode_model, encoded, self.beam_size, max_length_ratio=MAX_LENGTH_RATIO,
                               max_length_offset=MAX_LENGTH_OFFSET)
            results["beam_tokens"] = as_matrix([nbest[0] for nbest in best])
        return results

    def memory(self):
        """Peak bytes of the CuPy pool over one training step, over its use before; None on the CPU."""
        if self.device == "cpu":
            return None
        from gpu_memory import pool_peak
        self.model.train()
        with pool_peak() as peak:
            self.train_step(self.train_batches[0])
        return peak["bytes"]


def write_problem(path, ours, config, vocab):
    """The npz ``torch_seq2seq.Seq2SeqProblem`` reads: config, our initial weights, the batches."""
    arrays = {"config": np.array(json.dumps({
        "source_vocab_size": vocab, "target_vocab_size": vocab, "embedding_size": config.embedding_size,
        "hidden_size": config.hidden_size, "dropout": config.dropout, "label_smoothing": LABEL_SMOOTHING,
        "lr": LEARNING_RATE, "clip": CLIP, "max_length_ratio": MAX_LENGTH_RATIO,
        "max_length_offset": MAX_LENGTH_OFFSET, "beam": ours.beam_size}))}
    for name, value in ours.model.state_dict().items():
        arrays[f"weight.{name}"] = backend.as_numpy(value.data)
    for kind, batches, parts in (("train", ours.train_batches, 4), ("decode", ours.decode_batches, 2)):
        for index, batch in enumerate(batches):
            for part, value in zip(("source", "lengths", "target_in", "target_out")[:parts], batch):
                arrays[f"{kind}_{index}_{part}"] = value
    np.savez(path, **arrays)


def check(ours, theirs):
    """One line comparing our results with the twin's (same weights, eval mode)."""
    loss_error = abs(ours["loss"] - float(theirs["loss"])) / abs(float(theirs["loss"]))
    norm_error = abs(ours["grad_norm"] - float(theirs["grad_norm"])) / float(theirs["grad_norm"])
    agree = {name: token_agreement(ours[f"{name}_tokens"], theirs[f"{name}_tokens"])
             for name in ("greedy", "beam") if f"{name}_tokens" in theirs}
    verdict = "ok" if loss_error < 1e-4 and norm_error < 1e-3 and agree["greedy"] > 0.99 else "MISMATCH"
    return (f"check (same weights, eval mode): loss {ours['loss']:.5f} vs {float(theirs['loss']):.5f} "
            f"(rel {loss_error:.1e}), gradient norm rel {norm_error:.1e}, "
            + ", ".join(f"{name} tokens equal {value:.1%}" for name, value in agree.items()) + f": {verdict}")


def token_agreement(ours, theirs):
    """Fraction of our non-PAD tokens that the twin's (B, steps) matrix has at the same place."""
    width = min(ours.shape[1], theirs.shape[1])
    real = ours != 0
    same = np.zeros_like(real)
    same[:, :width] = ours[:, :width] == theirs[:, :width]
    return float(same[real].mean())


def print_counts(ours):
    """The engine's counters per training step, per decoding step and per decoded token."""
    if profiler is None:
        print("counts: tinygrad_rnn.profiler is not in this checkout; nothing to count")
        return
    fields = ("ops", "syncs", "uploads", "launches")
    source, lengths, _, _ = ours.decode_batches[0]
    steps = int(np.floor(MAX_LENGTH_RATIO * lengths.max() + MAX_LENGTH_OFFSET))
    tokens = int(np.floor(MAX_LENGTH_RATIO * lengths + MAX_LENGTH_OFFSET).sum())
    ours.model.train()
    with profiler.record() as counts:
        with profiler.region("train_step"):
            ours.train_step(ours.train_batches[0])
        with profiler.region("encode"), no_grad():
            encoded = ours.decode_model.encode(source, lengths)
        with profiler.region("greedy"):
            greedy_search(ours.decode_model, encoded, max_length_ratio=MAX_LENGTH_RATIO,
                          max_length_offset=MAX_LENGTH_OFFSET)
    rows = [("training step", counts.regions["train_step"], 1),
            ("greedy, per decoding step", counts.regions["greedy"], steps),
            ("greedy, per decoded token", counts.regions["greedy"], tokens),
            ("encoder, per decode batch", counts.regions["encode"], 1)]
    print(f"counts ({ours.device}; greedy: batch of {len(lengths)}, {steps} steps, {tokens} tokens; "
          f"launches are counted on CUDA only):")
    print(f"  {'':28s}" + "".join(f"{name:>10s}" for name in fields))
    for title, region, per in rows:
        print(f"  {title:28s}" + "".join(f"{getattr(region, name) / per:10.1f}" for name in fields))


def summarize(name, ours_seconds, torch_seconds, amount, unit):
    our_median = float(np.median(ours_seconds))
    line = f"{name:9s} ours {amount / our_median:9.0f} {unit} ±{harness.summarize(ours_seconds)[1]:3.0f}%"
    if torch_seconds:
        their_median = float(np.median(torch_seconds))
        line += (f" | PyTorch {amount / their_median:9.0f} {unit} ±{harness.summarize(torch_seconds)[1]:3.0f}%"
                 f" | ours/PyTorch {their_median / our_median:5.2f}x"
                 f" (best {min(torch_seconds) / min(ours_seconds):4.2f}x)")
    print(line, flush=True)


def start_twin(torch_python, ours, config, vocab, device, clock_name, tmpdir):
    """Start the twin from our initial weights, print its size and the check; return the worker."""
    our_results = ours.results()
    if torch_python is None:
        print(f"parameters: ours {our_results['parameters']:,}")
        return None
    data_path = os.path.join(tmpdir, "seq2seq.npz")
    write_problem(data_path, ours, config, vocab)
    worker = harness.TorchWorker(torch_python, "seq2seq", data_path, clock_name, device)
    ready = worker.ready
    same = our_results["parameters"] == ready["parameters"]
    print(f"parameters: ours {our_results['parameters']:,}, PyTorch twin {ready['parameters']:,}"
          f"{'' if same else '  !!! NOT THE SAME SIZE'}; torch {ready['torch']}"
          + (f", cuDNN {ready['cudnn']}" if ready.get("cudnn") else ""))
    result_path = os.path.join(tmpdir, "torch_result.npz")
    worker.ask(f"check {result_path}")
    with np.load(result_path) as theirs:
        print(check(our_results, {k: theirs[k] for k in theirs.files}), flush=True)
    return worker


def time_rounds(ours, worker, rounds, clock):
    """One warm-up call each, then ``rounds`` alternations (PyTorch, then ours): seconds per timed call."""
    if worker:
        worker.ask("time 1")
    ours.time(1, clock)
    times = {"ours": {name: [] for name in ours.timed}, "torch": {name: [] for name in ours.timed}}
    for _ in range(rounds):
        if worker:
            for name, seconds in worker.ask("time 1").items():
                times["torch"][name].extend(seconds)
            time.sleep(0.2)                                   # let PyTorch's OpenMP threads go idle
        for name, seconds in ours.time(1, clock).items():
            times["ours"][name].extend(seconds)
    return times


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda: ours and the twin both there")
    parser.add_argument("--threads", default="2", help="threads for OpenBLAS and PyTorch alike (default 2)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: process CPU time, for a busy machine; needs --threads 1 to mean anything")
    parser.add_argument("--batch", type=int, default=64, help="training batch (the Trainer's default)")
    parser.add_argument("--steps", type=int, default=4, help="training batches per timed call")
    parser.add_argument("--decode-batch", type=int, default=128)
    parser.add_argument("--decode-batches", type=int, default=2, help="decode batches per timed call")
    parser.add_argument("--length", type=int, default=10, help="mean sentence length (lengths +-3)")
    parser.add_argument("--vocab", type=int, default=10000)
    parser.add_argument("--hidden", type=int, default=256, help="hidden and embedding size")
    parser.add_argument("--rounds", type=int, default=3, help="alternations between PyTorch and ours")
    parser.add_argument("--beam", type=int, default=0, help="also time beam search of this width")
    parser.add_argument("--torch-python", help="a Python interpreter with PyTorch installed")
    parser.add_argument("--no-torch", action="store_true", help="ours only")
    parser.add_argument("--check-only", action="store_true", help="compare ours with the twin, time nothing")
    parser.add_argument("--count", action="store_true", help="print the engine's counts (tinygrad_rnn.profiler)")
    parser.add_argument("--profile", action="store_true", help="cProfile one timed training call of ours")
    args = parser.parse_args(argv)
    if args.clock == "cpu" and harness.THREADS != "1":
        parser.error("--clock cpu adds up the CPU time of every thread (spinning ones too): use it with --threads 1")
    try:
        args.device = backend.normalize_device(args.device)
    except (RuntimeError, ValueError) as error:
        parser.error(f"--device {args.device}: {error}")
    if args.device != "cpu" and args.clock == "cpu":
        parser.error("--clock cpu cannot see GPU work: use the wall clock (the default) with --device cuda")
    return args


def main(argv=None):
    args = parse_args(argv)
    device, clock = args.device, harness.CLOCKS[args.clock]
    config = ModelConfig(embedding_size=args.hidden, hidden_size=args.hidden)
    train_batches = make_batches(0, args.steps, args.batch, args.length, args.vocab)
    decode_batches = make_batches(1, args.decode_batches, args.decode_batch, args.length, args.vocab)
    ours = OurSeq2Seq(config, args.vocab, train_batches, decode_batches, device, args.beam)
    tokens = sum(int((batch[3] != 0).sum()) for batch in train_batches)
    sentences = sum(len(batch[1]) for batch in decode_batches)

    torch_python = None if args.no_torch else harness.find_torch_python(args.torch_python)
    if torch_python is None and not args.no_torch:
        print("!" * 78 + "\n!!! PyTorch NOT FOUND: the reference is MISSING, only our timings are shown.\n"
              "!!! Give --torch-python or BENCH_TORCH_PYTHON (a venv with torch==2.13.0).\n" + "!" * 78)
    print(f"seq2seq {config}, vocabularies {args.vocab}; "
          f"{device}; {harness.THREADS} thread(s), {args.clock} clock; load average {os.getloadavg()[0]:.1f}")
    print(f"training: {args.steps} batches of {args.batch} per call ({tokens} target tokens); greedy: "
          f"{args.decode_batches} batches of {args.decode_batch} ({sentences} sentences, EOS impossible)")

    with tempfile.TemporaryDirectory() as tmpdir, contextlib.ExitStack() as stack:
        worker = start_twin(torch_python, ours, config, args.vocab, device, args.clock, tmpdir)
        if worker:
            stack.callback(worker.close)
        if args.check_only:
            return
        times = time_rounds(ours, worker, args.rounds, clock)
        summarize("training", times["ours"]["train"], times["torch"]["train"], tokens, "target tok/s")
        summarize("greedy", times["ours"]["greedy"], times["torch"]["greedy"], sentences, "sentences/s")
        if args.beam > 1:
            summarize(f"beam {args.beam}", times["ours"]["beam"], times["torch"]["beam"], sentences, "sentences/s")
        if device != "cpu":
            their_peak = worker.ask("memory")["peak_bytes"] if worker else None
            line = f"memory, one training step: ours {ours.memory() / 1e6:.1f} MB (CuPy pool peak)"
            if their_peak is not None:
                line += f", PyTorch {their_peak / 1e6:.1f} MB (max_memory_allocated), both over the step's baseline"
            print(line)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    if args.count:
        print_counts(ours)
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(ours.train)
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
