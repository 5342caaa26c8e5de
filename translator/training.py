"""The training loop of ``translate train``.

One epoch: length-bucketed batches in an order fixed by ``(seed, epoch)``; per batch a
teacher-forced forward pass, label-smoothed cross-entropy averaged over target tokens (EOS
included, padding excluded), backward, global gradient-norm clipping and an Adam step. After each
epoch: dev loss (plain cross-entropy) and dev BLEU (greedy decoding, sacreBLEU on detokenised text),
learning-rate decay on a plateau of the dev loss (or BLEU), early stopping on dev BLEU, and the
checkpoints ``best.npz`` (best dev BLEU) and ``last.npz`` (everything needed to resume), with
``--keep-epochs K`` the last K epochs' weights (for ``translate average``), and ``curves.png`` redrawn
from ``log.jsonl`` when matplotlib is installed. At the
end the best weights are scored on the test split.

Resuming is exact: ``last.npz`` holds the weights, the optimiser and scheduler state, the engine's
RNG state and the position in the data (epoch, batch), and the batch order is a pure function of
``(seed, epoch)``, so 2 epochs equal 1 epoch + ``--resume`` + 1 epoch bit for bit.

Stopping early keeps everything: ``--max-time`` and Ctrl-C stop between two batches and save
``last.npz`` (a second Ctrl-C quits at once without saving); ``last.npz`` is also written before the
first batch and every few minutes within an epoch, so even a killed run can be resumed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from tqdm import tqdm

import tinygrad_rnn as tg
from tinygrad_rnn import optim
from translator import checkpoint, footprint, parallel
from translator.batching import Batch, BatchIterator
from translator.config import DEFAULT_BEAM, RESUME_OVERRIDABLE, TrainConfig
from translator.errors import CheckpointError, ConfigError
from translator.evaluate import EvaluationResult, evaluate_pairs
from translator.inference import Translator
from translator.model import Seq2Seq
from translator.preparation import PreparedData, noised_examples, prepare

EVAL_BATCH_SIZE = 256
LOSS_READ_EVERY = 20  # training steps between two reads of the summed training loss from the device
EVAL_MAX_TOKENS = 4096  # dev-loss batches: at most this many padded tokens a side (logits are tokens x vocabulary)
CHECKPOINT_SECONDS = 300.0  # also save last.npz this often within an epoch, so a crash loses little


class StopReason(str, enum.Enum):
    """Why training stopped (the value is what ``log.jsonl`` and ``last.npz`` record)."""

    COMPLETED = "completed"            # every epoch done
    EARLY_STOPPING = "early_stopping"  # --early-stopping epochs without a better dev BLEU
    MAX_TIME = "max_time"              # --max-time reached (between two batches)
    INTERRUPTED = "interrupted"        # Ctrl-C (between two batches)

    def __str__(self) -> str:
        return self.value


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclasses.dataclass
class Progress:
    """Where training stands; saved in ``last.npz`` (JSON values only).

    Attributes:
        epoch: epochs completed (the current epoch's index, 0-based).
        batch: batches completed in the current epoch.
        step: optimiser steps so far.
        epoch_loss_sum, epoch_tokens, epoch_seconds: the current epoch's summed training loss, target
            tokens and seconds spent in training steps.
        best_dev_bleu: best dev BLEU at an epoch end (drives early stopping).
        best_saved_bleu: dev BLEU of the weights in ``best.npz`` (-1: none saved yet).
        epochs_without_improvement: epoch ends since best_dev_bleu last improved.
        stop_reason: set once training has finished (completed or early stopping).
        train_seconds, train_tokens: time spent in training steps and target tokens they saw.
    """

    epoch: int = 0
    batch: int = 0
    step: int = 0
    epoch_loss_sum: float = 0.0
    epoch_tokens: int = 0
    epoch_seconds: float = 0.0
    best_dev_bleu: float = -1.0
    best_saved_bleu: float = -1.0
    epochs_without_improvement: int = 0
    stop_reason: StopReason | None = None
    train_seconds: float = 0.0
    train_tokens: int = 0

    def __post_init__(self) -> None:
        if self.stop_reason is not None:  # read back from last.npz as its string value
            self.stop_reason = StopReason(self.stop_reason)

    @classmethod
    def from_saved(cls, values: Any) -> "Progress":
        """The Progress saved in ``last.npz``, each value checked; ValueError naming the first bad one.

        Counts are integers >= 0, sums and seconds finite numbers >= 0, BLEU scores in [-1, 100]
        (-1: none yet), the stop reason one of :class:`StopReason` or none.
        """
        fields = dataclasses.fields(cls)
        if not isinstance(values, dict) or set(values) != {field.name for field in fields}:
            raise ValueError(f"progress has keys {sorted(values) if isinstance(values, dict) else values!r}, "
                             f"expected {sorted(field.name for field in fields)}")
        for field in fields:
            value, where = values[field.name], f"progress.{field.name}"
            if field.name == "stop_reason":
                if value is not None and value not in {reason.value for reason in StopReason}:
                    raise ValueError(f"{where} is {value!r}, expected one of {', '.join(r.value for r in StopReason)}")
            elif isinstance(value, bool) or not isinstance(value, type(field.default)) and \
                    not (isinstance(field.default, float) and isinstance(value, int)):
                kind = "an integer" if isinstance(field.default, int) else "a number"
                raise ValueError(f"{where} is {value!r}, expected {kind}")
            elif not math.isfinite(value) or not (-1 <= value <= 100 if "bleu" in field.name else value >= 0):
                kind = "a BLEU score (-1 for none)" if "bleu" in field.name else "a finite number >= 0"
                raise ValueError(f"{where} is {value!r}, expected {kind}")
        return cls(**values)


class LossSum:
    """Losses weighted by their token counts, summed where they were computed (on the device).

    A training step leaves its loss on the device: reading it would make the host wait for the
    device every step. ``read()`` is the one device->host read, once per ``LOSS_READ_EVERY``
    steps (and when an epoch ends or the run stops or saves).
    """

    def __init__(self):
        self.total, self.steps = None, 0

    def add(self, loss: tg.Tensor, tokens: int) -> None:
        """Add ``loss * tokens`` (``loss`` a 0-d Tensor; float64 from here on)."""
        term = loss.data.astype("float64") * tokens
        self.total = term if self.total is None else self.total + term
        self.steps += 1

    def read(self) -> tuple[float, int]:
        """The sum since the last read, and the number of steps in it; starts a new sum."""
        total = 0.0 if self.total is None else float(tg.backend.as_numpy(self.total))
        steps, self.total, self.steps = self.steps, None, 0
        return total, steps


@dataclasses.dataclass
class TrainResult:
    """What a call to :meth:`Trainer.run` did (``best_dev_bleu``: of ``best.npz``; -1 if never scored)."""

    model_dir: Path
    stop_reason: StopReason
    epochs_completed: int
    best_dev_bleu: float
    test: EvaluationResult | None
    tokens_per_second: float
    seconds: float


class Trainer:
    """Trains (or resumes) the model in ``model_dir`` as ``config`` says.

    Args:
        config: the options; on ``resume`` only its ``RESUME_OVERRIDABLE`` fields named in
            ``explicit`` override the saved configuration.
        model_dir: the model directory (see :mod:`translator.checkpoint`).
        resume: continue from ``last.npz`` instead of starting afresh.
        overwrite: allow starting afresh in a directory that already holds a model.
        explicit: names of the options the user gave (flags or file), to check them on resume.
        log: where progress lines go (default stderr).
        progress: show the tqdm bar.
        after_step: called with the Progress after every optimiser step (tests use it to interrupt).
        evaluate_test: score the best model on the test split at the end.

    Under ``mpiexec -n N`` the N ranks train one model data-parallel (:mod:`translator.parallel`):
    rank 0 alone logs, shows the bar and writes the model directory.
    """

    def __init__(self, config: TrainConfig, model_dir: str | Path, *, resume: bool = False, overwrite: bool = False,
                 explicit: set[str] | frozenset[str] = frozenset(), log: Callable[[str], None] = _stderr,
                 progress: bool = True, after_step: Callable[[Progress], None] | None = None,
                 evaluate_test: bool = True):
        self.model_dir = Path(model_dir)
        self.directory = parallel.directory_for(checkpoint.ModelDirectory(model_dir))
        self.resume = resume
        leader = parallel.launched_rank() == 0
        self.log = log if leader else (lambda message: None)
        self.show_progress = progress and leader
        self.after_step = after_step
        self.evaluate_test = evaluate_test
        self.stop_requested = False
        self.stop_signal: int | None = None  # signal.SIGINT or SIGTERM, once one asked training to stop
        self.began = False  # training proper started (data prepared, directory written)
        self._in_step = False
        self._last_saved = time.perf_counter()
        if resume:
            self.config = self._resumed_config(config, explicit)
        else:
            self.directory.check_fresh(overwrite)
            self.config = config

    # ---------------------------------------------------------------- setting up
    def _resumed_config(self, config: TrainConfig, explicit) -> TrainConfig:
        saved_config = self.directory.saved_config(TrainConfig.from_dict)
        conflicts = [name for name in sorted(explicit)
                     if name not in RESUME_OVERRIDABLE and getattr(config, name) != getattr(saved_config, name)]
        if conflicts:
            shown = ", ".join(f"--{name.replace('_', '-')} {getattr(config, name)!r} (saved: "
                              f"{getattr(saved_config, name)!r})" for name in conflicts)
            raise ConfigError(f"--resume continues the saved run, which differs in {shown}; only "
                              f"{', '.join('--' + n.replace('_', '-') for n in RESUME_OVERRIDABLE)} may change")
        return saved_config.replace(**{name: getattr(config, name) for name in RESUME_OVERRIDABLE
                                       if name in explicit})

    def _build(self) -> None:
        """Data, model, optimiser and scheduler, fresh or restored from ``last.npz``."""
        config = self.config
        self.world = parallel.world_for(config.device)  # under mpiexec: MPI (and NCCL) before any tensor
        self.device = tg.backend.normalize_device(config.device)
        if self.resume:
            self.directory.remove_temporaries()  # of writes a kill interrupted
        vocabularies = self.directory.vocabularies() if self.resume else None
        tokenizers = self.directory.tokenizers() if self.resume else None
        state = self.directory.load_last() if self.resume else None
        if self.resume and self.directory.has_best():
            self.directory.load_best()  # a damaged best.npz is refused now, before anything is written
        self.model_config = config.model_config()
        footprint.check_fits(self.model_config, 5, 5, training=True)  # absurd sizes: before reading any data
        self.data: PreparedData = prepare(config, self.log, vocabularies, tokenizers)
        if self.resume:
            self.directory.check_data(self.data.info["fingerprint"])
        footprint.check_fits(self.model_config, len(self.data.source_vocab), len(self.data.target_vocab), training=True)

        tg.manual_seed(config.seed)  # the same model on every rank
        self.model = Seq2Seq(self.model_config, len(self.data.source_vocab), len(self.data.target_vocab))
        self.model.to(self.device)
        self.optimizer = self.world.optimizer(self.model.parameters(), config.lr, config.shard_optimizer)
        mode = "min" if config.plateau_metric == "loss" else "max"
        self.scheduler = optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, mode=mode, factor=config.lr_decay,
                                                              patience=config.lr_patience)
        self.batches = BatchIterator(self.data.train_examples, config.batch_size, seed=config.seed,
                                     max_tokens=config.max_tokens)
        self.progress = Progress()
        if state is not None:
            self.progress = self.directory.restore(state, self.model, self.optimizer, self.scheduler,
                                                   Progress.from_saved)
            batches = len(self.batches.plan(self.progress.epoch))
            if self.progress.batch > batches:
                raise CheckpointError(f"checkpoint {self.model_dir / checkpoint.LAST_FILE} says batch "
                                      f"{self.progress.batch} of epoch {self.progress.epoch + 1}, which has only "
                                      f"{batches} batches; it does not belong to this run: retrain without --resume")
        self.world.start(self.model, config.seed, state, self.progress.step)
        if state is None:
            # last.npz is written before config.json: from the first batch on, --resume has something to continue
            self.directory.create(self.data, self.model_config, config, first_checkpoint=self._save_last)

    # ---------------------------------------------------------------- checkpoints
    def _save_last(self) -> None:
        self._last_saved = time.perf_counter()
        self.world.consolidate(self.optimizer)  # a sharded optimizer's state: gathered on rank 0 (every rank calls)
        self.directory.save_last(self.model, self.optimizer, self.scheduler, dataclasses.asdict(self.progress),
                                 self.world.rng_states())

    def _save_best(self, dev_bleu: float) -> None:
        self.directory.save_best(self.model, self.progress.epoch, dev_bleu)
        self.progress.best_saved_bleu = dev_bleu

    # ---------------------------------------------------------------- one batch
    def _tensor(self, array: np.ndarray) -> tg.Tensor:
        return tg.Tensor(array, device=self.device)

    def _loss(self, batch: Batch, label_smoothing: float, teacher_forcing: float = 1.0) -> tg.Tensor:
        """Mean cross-entropy over the batch's target tokens (EOS included, PAD excluded)."""
        return self.model.loss(self._tensor(batch.source), batch.source_lengths, batch.target_in, batch.target_out,
                               label_smoothing=label_smoothing, teacher_forcing_ratio=teacher_forcing)

    def _train_step(self, batch: Batch) -> tg.Tensor:
        """One optimiser step on the global ``batch``; returns this rank's part of its mean loss per target
        token, a 0-d Tensor left on the device (not read; the parts of all ranks add up to the batch's).

        A rank's part is its share's summed loss divided by the whole batch's target tokens (its mean
        times ``share tokens / batch tokens``, exactly the mean in a world of one), so the gradients of
        all ranks add up to the gradient of the batch's mean loss.
        """
        config = self.config
        share, tokens = self.world.share(batch, self._epoch_examples)
        self.optimizer.zero_grad()
        if share is None:  # a global batch smaller than the world leaves some ranks without rows
            loss = tg.zeros((), device=self.device)
        else:
            loss = self._loss(share, config.label_smoothing, config.teacher_forcing)
            if share.num_target_tokens != tokens:
                loss = loss * (share.num_target_tokens / tokens)
            loss.backward()
        self.world.reduce_gradients(self.model.parameters(), self.optimizer)
        if config.clip > 0:
            self.world.clip_grad_norm_(self.model.parameters(), self.optimizer, config.clip)
        self.optimizer.step()
        return loss.detach()

    # ---------------------------------------------------------------- evaluation
    def dev_loss(self) -> float:
        """Plain (unsmoothed) cross-entropy per target token on the dev split (read from the device once).

        Each rank of a data-parallel run takes every N-th dev batch; the sums are added over the ranks.
        """
        self.model.eval()
        total, tokens = LossSum(), 0
        with tg.no_grad():
            for batch in self.world.mine(BatchIterator(self.data.dev_examples, EVAL_BATCH_SIZE, shuffle=False,
                                                       max_tokens=EVAL_MAX_TOKENS).epoch()):
                total.add(self._loss(batch, 0.0), batch.num_target_tokens)
                tokens += batch.num_target_tokens
        self.model.train()
        total_loss, tokens = self.world.sum(total.read()[0], tokens)
        return total_loss / max(tokens, 1)

    def translator(self) -> Translator:
        """A Translator over the model being trained (shares its weights)."""
        return Translator(self.model, self.data.source_vocab, self.data.target_vocab, device=self.device,
                          tokenizers=self.data.tokenizers)

    def _score(self, pairs, beam: int = 1) -> EvaluationResult:
        self.model.eval()
        translator = self.translator()
        try:
            return evaluate_pairs(self.world.sharded(lambda sentences: translator.translate(sentences, beam=beam)),
                                  pairs)
        finally:
            self.model.train()

    # ---------------------------------------------------------------- the loop
    def _out_of_time(self, started: float) -> bool:
        return self.config.max_time is not None and time.perf_counter() - started >= self.config.max_time

    def _run_epoch(self, started: float) -> StopReason | None:
        """Train the rest of the current epoch; a stop reason if it stopped before its end."""
        progress, config = self.progress, self.config
        total = len(self.batches.plan(progress.epoch))
        bar = tqdm(total=total, initial=progress.batch, desc=f"epoch {progress.epoch + 1}/{config.epochs}",
                   unit="batch", file=sys.stderr, disable=not self.show_progress, leave=False, dynamic_ncols=True)
        window_tokens, window_seconds = 0, 0.0
        losses = LossSum()  # summed on the device; progress.epoch_loss_sum catches up at each read
        postfix = {}  # the bar's loss changes at each read, its speed every step
        stop = None
        try:
            examples = noised_examples(self.data, config.source_noise, config.seed, progress.epoch)
            self._epoch_examples = examples  # what this epoch's batches are made of (a rank rebuilds its share)
            for batch in self.batches.epoch(progress.epoch, start_batch=progress.batch, examples=examples):
                # every rank stops (and saves) after the same batch: the flags of all ranks are OR-ed
                interrupted, out_of_time, saving = self.world.any(
                    self.stop_requested, self._out_of_time(started),
                    time.perf_counter() - self._last_saved >= CHECKPOINT_SECONDS)
                if saving and progress.batch > 0:
                    self._read_losses(losses, check=True)
                    self._save_last()
                if interrupted:
                    stop = StopReason.INTERRUPTED
                    break
                if out_of_time:
                    stop = StopReason.MAX_TIME
                    break
                step_started = time.perf_counter()
                self._in_step = True  # a KeyboardInterrupt now would leave a half-updated model
                loss = self._train_step(batch)
                seconds = time.perf_counter() - step_started
                tokens = batch.num_target_tokens
                progress.batch += 1
                progress.step += 1
                losses.add(loss, tokens)
                progress.epoch_tokens += tokens
                progress.epoch_seconds += seconds
                progress.train_seconds += seconds
                progress.train_tokens += tokens
                self._in_step = False
                window_tokens += tokens
                window_seconds += seconds
                bar.update(1)
                if losses.steps >= LOSS_READ_EVERY:
                    window_seconds += self._read_losses(losses, check=True)
                    postfix["loss"] = f"{progress.epoch_loss_sum / progress.epoch_tokens:.3f}"
                postfix["target tok/s"] = f"{window_tokens / max(window_seconds, 1e-9):.0f}"
                bar.set_postfix(postfix, refresh=False)
                if self.after_step is not None:
                    self.after_step(progress)
        except BaseException:
            self._read_losses(losses, check=False)  # progress stays whole for whoever saves it
            raise
        finally:
            bar.close()
        self._read_losses(losses, check=True)
        return stop

    def _read_losses(self, losses: "LossSum", check: bool) -> float:
        """Add the losses summed on the device since the last read to the progress (one device->host read).

        ``check``: also add the other ranks' parts (every rank reads at the same steps) and stop on a
        non-finite loss. Without it (an exception is on its way) only this rank's part is added.
        Returns the seconds the read took, which count as training time: a GPU may still have
        been running the steps the host had queued.
        """
        started = time.perf_counter()
        total, steps = losses.read()
        seconds = time.perf_counter() - started
        if check:
            total = self.world.sum(total)[0]
        progress = self.progress
        progress.epoch_loss_sum += total
        progress.epoch_seconds += seconds
        progress.train_seconds += seconds
        if check and not math.isfinite(total):
            first = progress.step - steps + 1
            raise FloatingPointError(f"the training loss became {total} in steps {first}..{progress.step}; "
                                     "lower --lr or set --clip")
        return seconds

    def _end_epoch(self) -> None:
        """Dev evaluation, LR schedule, early stopping and checkpoints after a complete epoch."""
        progress, config = self.progress, self.config
        eval_started = time.perf_counter()
        dev_loss = self.dev_loss()
        dev = self._score(self.data.dev_pairs)
        eval_seconds = time.perf_counter() - eval_started
        train_loss = progress.epoch_loss_sum / max(progress.epoch_tokens, 1)
        tokens_per_second = progress.epoch_tokens / max(progress.epoch_seconds, 1e-9)
        lr = self.optimizer.param_groups[0]["lr"]
        upcoming_epoch = progress.epoch + 2  # 1-based number of the epoch about to start
        if config.lr_decay_start and upcoming_epoch >= config.lr_decay_start:
            for group in self.optimizer.param_groups:  # a fixed decay replaces the plateau rule
                group["lr"] *= config.lr_decay
        else:
            self.scheduler.step(dev_loss if config.plateau_metric == "loss" else dev.bleu)
        improved = dev.bleu > progress.best_dev_bleu
        if improved:
            progress.best_dev_bleu = dev.bleu
            progress.epochs_without_improvement = 0
        else:
            progress.epochs_without_improvement += 1
        if dev.bleu > progress.best_saved_bleu:
            self._save_best(dev.bleu)
        if config.keep_epochs:
            self.directory.save_epoch(self.model, progress.epoch + 1, dev.bleu, config.keep_epochs)
        self.directory.log("epoch", epoch=progress.epoch + 1, step=progress.step, train_loss=train_loss,
                        dev_loss=dev_loss, dev_bleu=dev.bleu, dev_chrf=dev.chrf,
                        dev_exact_matches=dev.exact_matches, lr=lr, tokens_per_second=tokens_per_second,
                        train_seconds=progress.epoch_seconds, eval_seconds=eval_seconds, best=improved)
        if config.curves:
            self.directory.draw_curves()
        self.log(f"epoch {progress.epoch + 1}/{config.epochs}: train loss {train_loss:.3f}, dev loss {dev_loss:.3f}, "
                 f"dev BLEU {dev.bleu:.2f}{' (best)' if improved else ''}, lr {lr:.2g}, "
                 f"{tokens_per_second:.0f} target tokens/s, {progress.epoch_seconds:.0f} s training + "
                 f"{eval_seconds:.0f} s dev evaluation")
        progress.epoch += 1
        progress.batch = 0
        progress.epoch_loss_sum, progress.epoch_tokens, progress.epoch_seconds = 0.0, 0, 0.0
        if progress.epoch >= config.epochs:
            progress.stop_reason = StopReason.COMPLETED
        elif config.early_stopping and progress.epochs_without_improvement >= config.early_stopping:
            progress.stop_reason = StopReason.EARLY_STOPPING
            self.log(f"early stopping: no better dev BLEU for {progress.epochs_without_improvement} epochs")
        self._save_last()

    def _stop_midway(self, reason: StopReason) -> None:
        """At a stop between batches: save ``last``, and keep a usable ``best``.

        Out of time, the partly trained epoch is scored on dev and kept as ``best`` if better (the
        scheduler and early stopping only ever see complete epochs, so resuming stays exact).
        Interrupted, no time is spent scoring; the weights become ``best`` only if there is none.
        """
        progress = self.progress
        if reason == StopReason.MAX_TIME and progress.batch > 0:
            dev = self._score(self.data.dev_pairs)
            self.log(f"out of time in epoch {progress.epoch + 1} (batch {progress.batch}): dev BLEU {dev.bleu:.2f}")
            if dev.bleu > progress.best_saved_bleu:
                self._save_best(dev.bleu)
        if not self.directory.has_best():
            self._save_best(-1.0)  # nothing scored yet: keep these weights so translate run works
        self._save_last()
        self.directory.log("stop", reason=reason, epoch=progress.epoch, batch=progress.batch, step=progress.step)

    def run(self) -> TrainResult:
        """Train until the epochs are done, early stopping, ``--max-time`` or Ctrl-C.

        Raises:
            KeyboardInterrupt: a Ctrl-C while the data is prepared (``began`` is False: nothing was
                written yet), a second Ctrl-C, or one that arrived in the middle of an optimiser
                step: nothing is saved then (``last.npz`` keeps the previous checkpoint).
        """
        started = time.perf_counter()
        self._build()
        progress, config = self.progress, self.config
        if progress.stop_reason == StopReason.EARLY_STOPPING or progress.epoch >= config.epochs:
            raise ConfigError(f"the training in {self.model_dir} already finished ({progress.stop_reason} after "
                              f"epoch {progress.epoch}); raise --epochs to train longer")
        progress.stop_reason = None
        self.directory.log("resume" if self.resume else "start", config=config.to_dict(), data=self.data.info,
                        epoch=progress.epoch, batch=progress.batch)
        where = f", resuming at epoch {progress.epoch + 1} batch {progress.batch}" if self.resume else ""
        parameters = sum(int(np.prod(parameter.shape)) for parameter in self.model.parameters())
        self.log(f"training {self.model_config} ({parameters:,} parameters) into {self.model_dir}{where}")
        self.model.train()
        stop = None
        self._in_step = False
        with self._deferred_interrupt():
            try:
                while stop is None and progress.stop_reason is None:
                    stop = self._run_epoch(started)
                    if stop is None:
                        self._end_epoch()
                        if progress.stop_reason is None:  # agreed by every rank, like the checks between batches
                            interrupted, out_of_time = self.world.any(self.stop_requested, self._out_of_time(started))
                            if interrupted:
                                stop = StopReason.INTERRUPTED
                            elif out_of_time:
                                stop = StopReason.MAX_TIME
            except KeyboardInterrupt:
                # Raised between two batches (e.g. by after_step, or with no signal handler) the state
                # is consistent and is saved; inside a step or on a second Ctrl-C it is not. With
                # several ranks only the agreed stop is safe: the others are in the next step.
                if self._in_step or self.stop_requested or self.world.size > 1:
                    raise
                stop = StopReason.INTERRUPTED
            if stop is not None:
                self._stop_midway(stop)
        reason = stop or progress.stop_reason
        test = self._test_best() if self.evaluate_test and reason != StopReason.INTERRUPTED else None
        seconds = time.perf_counter() - started
        tokens_per_second = progress.train_tokens / max(progress.train_seconds, 1e-9)
        summary = {"stop_reason": reason, "epochs_completed": progress.epoch, "steps": progress.step,
                   "best_dev_bleu": progress.best_saved_bleu, "tokens_per_second": tokens_per_second,
                   "train_seconds": progress.train_seconds, "seconds": seconds}
        if test is not None:
            summary.update(test_bleu=test.bleu, test_chrf=test.chrf, test_exact_matches=test.exact_matches,
                           test_bleu_signature=test.bleu_signature,
                           test_sentences_per_second=test.sentences_per_second)
        self.directory.log("summary", **summary)
        return TrainResult(self.model_dir, reason, progress.epoch, progress.best_saved_bleu, test,
                           tokens_per_second, seconds)

    def _test_best(self) -> EvaluationResult:
        """Score the best checkpoint on the test split with the default ``translate run`` settings (beam)."""
        best = self.directory.load_best()
        current = {name: tensor.clone() for name, tensor in self.model.state_dict().items()}
        self.model.load_state_dict(best["model"])
        try:
            return self._score(self.data.test_pairs, beam=DEFAULT_BEAM)
        finally:
            self.model.load_state_dict(current)

    @contextlib.contextmanager
    def _deferred_interrupt(self) -> Iterator[None]:
        """The first Ctrl-C or SIGTERM asks training to stop after the current batch; a second one quits at once.

        SIGTERM is what a scheduler, ``kill`` or ``docker stop`` sends before killing: it gets the
        same grace as Ctrl-C (finish the step, save ``last.npz``), and ``stop_signal`` says which came.
        """
        self.began = True
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self.stop_requested:
                raise KeyboardInterrupt
            self.stop_requested = True
            self.stop_signal = signum
            what = "terminated" if signum == signal.SIGTERM else "interrupted"
            self.log(f"\n{what}: stopping after this batch and saving (Ctrl-C again to quit without saving)")

        previous = {number: signal.signal(number, handler) for number in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for number, action in previous.items():
                signal.signal(number, action)
