"""``translate``: the command line (Click) for training, running and evaluating a translator.

    translate train [--data FILE.zip] [options]     # trains into --model (default models/default)
    translate run "¿Dónde está la estación?"        # prints the translation
    translate evaluate                               # BLEU/chrF on the model's own test split
    translate tune                                   # choose --beam/--alpha on dev, stored with the model
    translate average --last 3                       # average the last epochs (train --keep-epochs 3)

Every mistake a user can make (a missing model, a corrupt checkpoint, bad data, an impossible
option combination, input that is not UTF-8) ends with ONE line on stderr and exit status 2;
an interrupted command exits with 130 (143 for a training stopped by SIGTERM, which, like
Ctrl-C, finishes the step and saves). Programming errors are not caught: they show a traceback.
Results go to stdout, progress and logs to stderr, so ``translate run < in.txt > out.txt`` keeps
exactly one output line per input line. A reader that closes the pipe early (``| head -1``) ends
the command quietly, by SIGPIPE, as it ends ``cat``.

The device: ``--device`` if given, else ``$TINYGRAD_RNN_DEVICE``, else cpu; the choice is made the
engine's default device, so nothing falls back to the environment afterwards. BLAS threads on the
CPU: ``--threads N``, else the count ``OPENBLAS_NUM_THREADS`` (or ``OMP_``/``MKL_NUM_THREADS``) sets,
else ``auto`` (``tinygrad_rnn.threads.auto_num_threads``: the idle cores, shared among the ranks).
"""

from __future__ import annotations

import functools
import json
import math
import os
import signal
import sys
from pathlib import Path
from typing import Callable

import click
from click.core import ParameterSource

from translator import checkpoint, launch, noise
from translator.config import DEFAULT_BEAM, FIELDS, MAX_THREADS, build_config, read_config_file
from translator.errors import PlotUnavailable, TranslatorError, UserError, decode_utf8, read_user_file
from translator.options import flag_name, python_type
from translator.parallel import launched_rank, launched_world_size, on_every_rank, start_mpi, under_launcher

INTERRUPTED_EXIT = 130  # 128 + SIGINT, as a shell reports a program Ctrl-C ended
TERMINATED_EXIT = 143  # 128 + SIGTERM
DEVICE_ENV = "TINYGRAD_RNN_DEVICE"
MAX_BEAM, MAX_ALPHA = checkpoint.MAX_BEAM, checkpoint.MAX_ALPHA
MAX_BATCH_SIZE = 1 << 16
MAX_TOKENS_LIMIT = 1 << 20
TRUNCATED_SHOWN = 10  # line numbers listed in the warning about truncated inputs

def _say(message: str) -> None:
    """Print on stderr, once per job: under ``mpiexec`` rank 0 speaks for every rank (translator.parallel)."""
    if launched_rank() == 0:
        click.echo(message, err=True)


def _one_line(message: str) -> str:
    return "; ".join(part.strip() for part in str(message).splitlines() if part.strip())


def _version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

        return version("tinygrad-rnn")
    except PackageNotFoundError:
        from tinygrad_rnn import __version__  # noqa: PLC0415

        return __version__


def user_errors(command: Callable) -> Callable:
    """Turn the project's error types (and a few well-understood ones) into one-line UserErrors."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except TranslatorError as error:
            raise UserError(str(error)) from None
        except FloatingPointError as error:  # the training diverged: a hyperparameter problem
            raise UserError(str(error)) from None
        except BrokenPipeError:  # the reader went away (| head): not a mistake
            _end_by_sigpipe()
        except OSError as error:  # a path the user gave: unwritable output, full disk, ...
            where = f" {error.filename}" if error.filename else ""
            raise UserError(f"cannot access{where}: {error.strerror or error}") from None
    return wrapper


class TranslateGroup(click.Group):
    """The ``translate`` group: click's own usage errors also become one line (and exit 2)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        # what a run that starts its own ranks passes on to them (translator.launch)
        self.invocation_args = list(sys.argv[1:] if args is None else args)
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            result = super().main(args, prog_name or "translate", complete_var, standalone_mode=False, **extra)
        except click.ClickException as error:
            hint = ""
            if isinstance(error, click.UsageError) and error.ctx is not None:
                hint = f" (see '{error.ctx.command_path} --help')"
            _say(f"translate: error: {_one_line(error.format_message())}{hint}")
            sys.exit(error.exit_code)
        except (KeyboardInterrupt, click.Abort):
            _say("translate: interrupted")
            sys.exit(INTERRUPTED_EXIT)
        sys.exit(result if isinstance(result, int) else 0)


def _end_by_sigpipe() -> None:
    """End as ``cat`` does when its reader closes the pipe: killed by SIGPIPE, nothing printed.

    Python ignores SIGPIPE and raises BrokenPipeError instead; restoring the default action and
    sending the signal gives the exit status a shell expects (141) without a message, and without
    the "Exception ignored" that flushing the dead stdout at exit would print.
    """
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGPIPE)
    os._exit(1)  # noqa: SLF001 - a platform without SIGPIPE: exit without flushing the dead pipe


class SectionedCommand(click.Command):
    """A command whose --help lists its options in sections (data, model, training, other)."""

    sections: dict[str, str] = {}

    def format_options(self, ctx, formatter):
        groups: dict[str, list] = {}
        for parameter in self.get_params(ctx):
            record = parameter.get_help_record(ctx)
            if record is not None:
                groups.setdefault(self.sections.get(parameter.name, "Options"), []).append(record)
        for title in ("Options", "Data options", "Model options", "Training options"):
            if title in groups:
                with formatter.section(title):
                    formatter.write_dl(groups[title])


@click.group(cls=TranslateGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), "--version", prog_name="translate", message="%(prog)s %(version)s")
def cli() -> None:
    """Train, run and evaluate a neural machine translator (Spanish -> English by default)."""


def main() -> None:
    """Console-script entry point (``translate``)."""
    cli.main(prog_name="translate")


def model_option(function: Callable) -> Callable:
    return click.option("--model", "model_dir", default=checkpoint.DEFAULT_MODEL_DIR, show_default=True,
                        type=click.Path(file_okay=False, path_type=Path),
                        help="model directory (written by train, read by run and evaluate)")(function)


def device_option(function: Callable) -> Callable:
    return click.option("--device", default=None,
                        help=f"cpu or cuda [default: ${DEVICE_ENV}, else cpu]")(function)


def _environment_device() -> str | None:
    """``$TINYGRAD_RNN_DEVICE`` if set, checked (UserError naming the variable if unusable)."""
    value = os.environ.get(DEVICE_ENV)
    if not value:
        return None
    from tinygrad_rnn import backend  # noqa: PLC0415

    try:
        backend.normalize_device(value)
    except (ValueError, RuntimeError) as error:
        raise UserError(f"{DEVICE_ENV}={value}: {error}; unset it or pass --device") from None
    return value


def _use_device(device: str | None) -> str:
    """The device to run on (``--device``, else the environment, else cpu), made the engine's default."""
    from tinygrad_rnn import backend  # noqa: PLC0415

    if device is None:
        device = _environment_device() or "cpu"
    try:
        backend.set_default_device(device)  # normalises and checks it; the environment is not read again
    except (ValueError, RuntimeError) as error:
        raise UserError(f"--device {device}: {error}") from None
    return backend.get_default_device()


class ThreadsType(click.ParamType):
    """``--threads``: a positive integer or ``auto``."""

    name = "threads"

    def convert(self, value, param, ctx):
        if value == "auto":
            return value
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = 0
        if not 1 <= number <= MAX_THREADS:
            self.fail(f"{value!r} is not a number of threads: give 1 to {MAX_THREADS} or auto", param, ctx)
        return number


def threads_option(function: Callable) -> Callable:
    return click.option("--threads", type=ThreadsType(), default=None, metavar="N|auto",
                        help="BLAS threads for CPU work [default: $OPENBLAS_NUM_THREADS if set, else auto: "
                             "the idle cores]")(function)


def _use_threads(threads: int | str | None) -> tuple[int | None, str]:
    """Set the engine's BLAS threads (``--threads``, else the environment, else auto): ``(count, why)``.

    The count is ``None`` where no BLAS library can be controlled (``tinygrad_rnn.threads``).
    """
    from tinygrad_rnn import threads as engine_threads  # noqa: PLC0415

    if threads is None and engine_threads.environment_chose():
        chosen, why = engine_threads.get_num_threads(), "from the environment"
    else:
        chosen, why = threads, "--threads"
        if threads in (None, "auto"):
            chosen, why = engine_threads.auto_num_threads(launched_world_size()), "auto"
        engine_threads.set_num_threads(chosen)
        if engine_threads.get_num_threads() is None:
            chosen = None
    return chosen, why


def _start_ranks_if_asked(ctx: click.Context, requested: int | None, device: str) -> None:
    """A ``translate train`` started alone that should run as N > 1 processes starts them and exits with
    their status (:mod:`translator.launch`); under ``mpiexec`` the launcher's world is the run."""
    if under_launcher():
        if requested is not None and requested != launched_world_size():
            raise UserError(f"--processes {requested}, but mpiexec started {launched_world_size()} rank(s): "
                            f"leave --processes out under mpiexec (its -n decides)")
        return
    processes, why = launch.processes_to_start(requested, device)
    if processes > 1:
        _say(f"translate: {processes} processes ({why}), started with mpiexec (--processes 1: one process)")
        sys.exit(launch.run_ranks(processes, getattr(ctx.find_root().command, "invocation_args", sys.argv[1:])))


# ---------------------------------------------------------------- train
def _train_options(function: Callable) -> Callable:
    """One click option per TrainConfig field, in reverse so they list in declaration order."""
    for name, field in reversed(FIELDS.items()):
        value_type = python_type(field)
        help_text = field.metadata["help"]
        if value_type is bool:
            flag = flag_name(name)
            negative = "--no-" + flag[2:]
            decl = f"{flag}/{negative}"
            function = click.option(decl, name, default=None, help=f"{help_text} [default: "
                                    f"{'on' if field.default else 'off'}]")(function)
            continue
        click_type = click.Choice(field.metadata["choices"]) if field.metadata["choices"] else value_type
        default_text = "none" if field.default is None else field.default
        function = click.option(flag_name(name), name, type=click_type, default=None,
                                metavar=None if field.metadata["choices"] else
                                field.metadata["metavar"] or {int: "N", float: "X", str: "TEXT"}[value_type],
                                help=f"{help_text} [default: {default_text}]")(function)
    return function


class TrainCommand(SectionedCommand):
    sections = {name: f"{field.metadata['group'].capitalize()} options" for name, field in FIELDS.items()}


@cli.command(cls=TrainCommand)
@model_option
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML file of options (keys are the option names, e.g. hidden-size = 256); flags win")
@click.option("--resume", is_flag=True, help="continue the training saved in --model (last.npz) exactly")
@click.option("--overwrite", is_flag=True, help="replace a model that already exists in --model")
@click.option("--progress/--no-progress", default=True, help="show the progress bar [default: on]")
@_train_options
@click.pass_context
@on_every_rank
@user_errors
def train(ctx: click.Context, model_dir: Path, config_file: Path | None, resume: bool, overwrite: bool,
          progress: bool, **options) -> None:
    """Train a translator into --model (default data: spa-eng, Spanish -> English).

    Prints a progress bar (loss, target tokens/s), dev loss and dev BLEU after every epoch, and a
    final summary with the test BLEU. Ctrl-C stops after the current batch and saves: continue
    with --resume. --processes N (auto: 2 on an idle CPU machine with the mpi extra) or
    'mpiexec -n N translate train ...' trains on N processes (data-parallel; --batch-size stays
    the global batch); rank 0 prints and writes.
    """
    start_mpi()
    if resume and overwrite:
        raise UserError("--resume continues the model in --model and --overwrite replaces it: choose one")
    given = {name: value for name, value in options.items()
             if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None) and value is not None}
    file_values = read_config_file(config_file) if config_file is not None else {}
    if "device" not in given and "device" not in file_values and (environment := _environment_device()):
        file_values = {**file_values, "device": environment}  # flags, then the file, then the environment
    config = build_config(file_values, given)
    _use_device(config.device)
    _start_ranks_if_asked(ctx, config.processes, config.device)
    from translator.training import StopReason, Trainer  # noqa: PLC0415 - keeps --help fast

    explicit = set(given) | set(file_values)
    trainer = Trainer(config, model_dir, resume=resume, overwrite=overwrite, explicit=explicit, progress=progress)
    _use_device(trainer.config.device)  # on --resume, the saved device unless one was given
    saved_threads = resume and "threads" not in explicit and trainer.config.threads is not None
    threads, why = _use_threads(trainer.config.threads)  # on --resume, the saved count unless one was given
    # saved in config.json: --resume reuses the threads; the processes are a record (auto decides again)
    trainer.config = trainer.config.replace(threads=threads, processes=launched_world_size())
    if threads is not None:
        _say(f"translate: {threads} BLAS thread{'' if threads == 1 else 's'} "
             f"({'as the run saved' if saved_threads else why})")
    last = model_dir / checkpoint.LAST_FILE
    try:
        result = trainer.run()
    except KeyboardInterrupt:
        if not trainer.began:
            kept = f"{last} is unchanged" if resume else "nothing was saved"
            _say(f"translate: interrupted before training began: {kept}")
        else:
            kept = f"{last} keeps the last checkpoint" if last.exists() else "no checkpoint was saved"
            _say(f"translate: interrupted again: quit without saving ({kept})")
        sys.exit(INTERRUPTED_EXIT)
    if result.stop_reason == StopReason.INTERRUPTED:
        terminated = trainer.stop_signal == signal.SIGTERM
        _say(f"translate: {'terminated' if terminated else 'interrupted'}: saved {last}; continue with "
             f"'translate train --model {model_dir} --resume'")
        sys.exit(TERMINATED_EXIT if terminated else INTERRUPTED_EXIT)
    lines = [f"training stopped: {str(result.stop_reason).replace('_', ' ')} after {result.epochs_completed} epoch(s) "
             f"in {result.seconds:.0f} s, {result.tokens_per_second:.0f} target tokens/s",
             (f"best dev BLEU {result.best_dev_bleu:.2f}" if result.best_dev_bleu >= 0 else "dev BLEU not measured")
             + f"; model saved in {model_dir}"]
    if result.test is not None:
        lines.append(f"test BLEU {result.test.bleu:.2f}, chrF {result.test.chrf:.2f} "
                     f"({result.test.sentences} sentences, beam {DEFAULT_BEAM}, "
                     f"{result.test.sentences_per_second:.0f} sentences/s)  [{result.test.bleu_signature}]")
    if launched_rank() == 0:
        click.echo("\n".join(lines))


# ---------------------------------------------------------------- run
def read_lines(name: str, data: bytes) -> list[str]:
    """Decode input bytes as UTF-8 lines; UserError naming the input and byte offset otherwise."""
    lines = decode_utf8(data, name, UserError).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def _load_translator(model_dir: Path, device: str | None, weights: str | None = None, alpha: float | None = None):
    from translator.inference import Translator  # noqa: PLC0415

    translator = Translator.load(model_dir, device=_use_device(device), weights=weights)
    if alpha is not None:
        translator.length_penalty = alpha
    return translator


def _tuned_beam(model_dir: Path) -> int:
    """The beam stored by ``translate tune``, else DEFAULT_BEAM."""
    return checkpoint.decoding_settings(checkpoint.read_config(model_dir)).get("beam", DEFAULT_BEAM)


def alpha_option(function: Callable) -> Callable:
    return click.option("--alpha", type=click.FloatRange(0.0, MAX_ALPHA), default=None,
                        help="beam length penalty alpha (GNMT; 0: none) [default: the one stored by "
                             "'translate tune', else 1.0]")(function)


def weights_option(function: Callable) -> Callable:
    return click.option("--weights", default=None, metavar="FILE",
                        help=f"weights file in --model to use, e.g. {checkpoint.AVERAGED_FILE} "
                             f"[default: {checkpoint.BEST_FILE}]")(function)


def max_tokens_option(function: Callable) -> Callable:
    from translator.inference import DEFAULT_MAX_TOKENS  # noqa: PLC0415

    return click.option("--max-tokens", type=click.IntRange(1, MAX_TOKENS_LIMIT), default=DEFAULT_MAX_TOKENS,
                        show_default=True,
                        help="at most this many source tokens (padding included, times the beam width) "
                             "translated together; bounds memory whatever the input")(function)


def max_source_length_option(function: Callable) -> Callable:
    from translator.inference import DEFAULT_MAX_SOURCE_LENGTH  # noqa: PLC0415

    return click.option("--max-source-length", type=click.IntRange(1, MAX_TOKENS_LIMIT),
                        default=DEFAULT_MAX_SOURCE_LENGTH, show_default=True,
                        help="translate only the first N tokens of a longer input (a warning names the "
                             "lines cut)")(function)


def warn_truncated(results, max_source_length: int, what: str = "input line") -> None:
    """One warning line on stderr naming the inputs that were longer than --max-source-length."""
    lines = [number for number, translations in enumerate(results, start=1) if translations[0].truncated]
    if lines:
        shown = ", ".join(str(number) for number in lines[:TRUNCATED_SHOWN])
        more = ", ..." if len(lines) > TRUNCATED_SHOWN else ""
        click.echo(f"translate: warning: {len(lines)} {what}(s) longer than {max_source_length} tokens "
                   f"({shown}{more}): translated only their first {max_source_length} tokens; "
                   "raise --max-source-length to read more", err=True)


@cli.command()
@model_option
@click.argument("texts", nargs=-1)
@click.option("--input", "input_file", type=click.Path(dir_okay=False, path_type=Path),
              help="translate the lines of this file ('-': stdin); default: TEXTS, else stdin")
@click.option("--beam", type=click.IntRange(1, MAX_BEAM), default=None,
              help=f"beam width (1: greedy search) [default: the one stored by 'translate tune', else "
                   f"{DEFAULT_BEAM}; at least --nbest]")
@click.option("--nbest", type=click.IntRange(1, MAX_BEAM), default=1, show_default=True,
              help="print the N best translations of each input, N rows each: "
                   "input number<TAB>rank<TAB>score<TAB>translation (numbers from 1)")
@click.option("--replace-unk/--no-replace-unk", default=True,
              help="replace <unk> in the output by the most-attended source word [default: on]")
@click.option("--show-attention", type=click.Path(dir_okay=False, path_type=Path),
              help="draw the attention matrix of the (single) input sentence to this PNG file")
@click.option("--batch-size", type=click.IntRange(1, MAX_BATCH_SIZE), default=checkpoint.DECODE_BATCH_SIZE,
              show_default=True,
              help="sentences translated together")
@alpha_option
@weights_option
@max_tokens_option
@max_source_length_option
@device_option
@threads_option
@user_errors
def run(model_dir: Path, texts: tuple[str, ...], input_file: Path | None, beam: int | None, nbest: int,
        replace_unk: bool, show_attention: Path | None, batch_size: int, alpha: float | None, weights: str | None,
        max_tokens: int, max_source_length: int, device: str | None, threads: int | str | None) -> None:
    """Translate TEXTS, or the lines of --input FILE / stdin (one output line per input line)."""
    _use_threads(threads)
    if texts and input_file is not None:
        raise UserError("give sentences as arguments or with --input, not both")
    if beam is None:
        beam = max(_tuned_beam(model_dir), nbest)
    if nbest > beam:
        raise UserError(f"--nbest {nbest} needs --beam of at least {nbest} (got --beam {beam})")
    if texts:
        sentences = list(texts)
    elif input_file is not None and str(input_file) != "-":
        sentences = read_lines(str(input_file), read_user_file(input_file, "input file", UserError))
    else:
        stdin = getattr(sys.stdin, "buffer", sys.stdin)  # bytes: undecodable input is reported, not guessed
        if stdin.isatty():
            raise UserError("nothing to translate: give sentences as arguments, --input FILE, or pipe lines in")
        sentences = read_lines("standard input", stdin.read())
    if show_attention is not None and len(sentences) != 1:
        raise UserError(f"--show-attention draws one sentence, got {len(sentences)}; translate one at a time")
    if show_attention is not None:
        _require_matplotlib()

    translator = _load_translator(model_dir, device, weights, alpha)
    results = translator.translate(sentences, beam=beam, nbest=nbest, replace_unk=replace_unk,
                                   batch_size=batch_size, return_details=True, max_tokens=max_tokens,
                                   max_source_length=max_source_length)
    warn_truncated(results, max_source_length)
    out = sys.stdout
    for number, hypotheses in enumerate(results, start=1):
        if nbest == 1:
            out.write(hypotheses[0].text + "\n")
        else:
            for rank, hypothesis in enumerate(hypotheses, start=1):
                out.write(f"{number}\t{rank}\t{hypothesis.score:.4f}\t{hypothesis.text}\n")
    out.flush()
    if show_attention is not None:
        _draw_attention(show_attention, results[0][0])
        click.echo(f"attention drawn to {show_attention}", err=True)


def _require_matplotlib() -> None:
    from translator.plot import require_matplotlib  # noqa: PLC0415

    try:
        require_matplotlib()
    except PlotUnavailable as error:
        raise UserError(f"--show-attention: {error}") from None


def _draw_attention(path: Path, translation) -> None:
    from translator.plot import plot_attention  # noqa: PLC0415

    try:
        plot_attention(translation, path)
    except ValueError as error:
        raise UserError(f"--show-attention: {error}") from None


# ---------------------------------------------------------------- evaluate
@cli.command()
@model_option
@click.option("--data", "data_file", type=click.Path(dir_okay=False, path_type=Path),
              help="TSV/zip of pairs in the training data's layout [default: the model's test split]")
@click.option("--data-member", metavar="NAME", help="the member of a --data zip to read "
              "[default: its only .txt besides _about.txt]")
@click.option("--beam", type=click.IntRange(1, MAX_BEAM), default=None,
              help=f"beam width (1: greedy search) [default: the one stored by 'translate tune', else {DEFAULT_BEAM}]")
@click.option("--replace-unk/--no-replace-unk", default=True, help="replace <unk> by source words [default: on]")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="write the translations to this file, one per line")
@click.option("--json", "as_json", is_flag=True, help="print the results as one JSON object")
@click.option("--strict", is_flag=True, help="stop at the first malformed line of --data")
@click.option("--batch-size", type=click.IntRange(1, MAX_BATCH_SIZE), default=checkpoint.DECODE_BATCH_SIZE,
              show_default=True,
              help="sentences translated together")
@click.option("--noise", "noise_spec", default="clean", show_default=True, metavar="SPEC",
              help="score on casually typed sources: clean, casual (= lower,nopunct), all, or kinds "
                   "joined by commas from lower, nopunct, noaccents (references stay as written; the model's own "
                   "source normalisation still applies, so for a casefold model 'lower' changes nothing)")
@alpha_option
@weights_option
@max_tokens_option
@max_source_length_option
@device_option
@threads_option
@user_errors
def evaluate(model_dir: Path, data_file: Path | None, data_member: str | None, beam: int | None, replace_unk: bool,
             output: Path | None, as_json: bool, strict: bool, batch_size: int, noise_spec: str, alpha: float | None,
             weights: str | None, max_tokens: int, max_source_length: int, device: str | None, threads: int | str | None) -> None:
    """Score the model with sacreBLEU (BLEU, chrF) and measure its decoding speed."""
    _use_threads(threads)
    from translator.evaluate import evaluate_pairs, load_evaluation_pairs, write_output  # noqa: PLC0415

    try:
        noise_kinds = noise.parse_spec(noise_spec)
    except ValueError as error:
        raise UserError(f"--noise: {error}") from None
    saved = checkpoint.read_config(model_dir)
    if beam is None:
        beam = checkpoint.decoding_settings(saved).get("beam", DEFAULT_BEAM)
    if data_member is not None and data_file is None:
        raise UserError("--data-member names a member of the --data zip: give --data too")
    pairs, description = load_evaluation_pairs(model_dir, data_file, saved.get("train", {}), strict=strict,
                                               log=lambda message: click.echo(message, err=True), member=data_member)
    if not pairs:
        raise UserError(f"{description} holds no sentence pairs to evaluate")
    pairs = [(noise.apply(source, noise_kinds), target) for source, target in pairs]
    translator = _load_translator(model_dir, device, weights, alpha)

    def translate(sentences):
        results = translator.translate(sentences, beam=beam, replace_unk=replace_unk, batch_size=batch_size,
                                       return_details=True, max_tokens=max_tokens,
                                       max_source_length=max_source_length)
        warn_truncated(results, max_source_length, what="source sentence")
        return [translations[0].text for translations in results]

    result = evaluate_pairs(translate, pairs)
    if output is not None:
        write_output(output, result.hypotheses)
    if as_json:
        click.echo(json.dumps({"model": str(model_dir), "data": description, "beam": beam,
                               "alpha": translator.length_penalty,
                               "noise": ",".join(noise_kinds) or "clean", **result.to_dict()}))
    else:
        sources = f", sources noised: {','.join(noise_kinds)}" if noise_kinds else ""
        click.echo(f"{description}: {len(pairs)} sentences, beam {beam}, alpha {translator.length_penalty:g}{sources}")
        click.echo(result.summary())


# ---------------------------------------------------------------- average
@cli.command()
@model_option
@click.option("--last", type=click.IntRange(min=1), required=True,
              help="average the weights of the last K epochs (kept by 'translate train --keep-epochs K')")
@click.option("--output", default=checkpoint.AVERAGED_FILE, show_default=True, metavar="FILE",
              help="file name inside --model; best.npz, last.npz and epoch-NNN.npz are never replaced")
@click.option("--score/--no-score", default=True,
              help="compare the dev BLEU (greedy) of best.npz and the average [default: on]")
@device_option
@threads_option
@user_errors
def average(model_dir: Path, last: int, output: str, score: bool, device: str, threads: int | str | None) -> None:
    """Average the last K epoch checkpoints into one weights file (use it with run/evaluate --weights)."""
    _use_threads(threads)
    from translator.averaging import average_last  # noqa: PLC0415
    from translator.evaluate import evaluate_pairs  # noqa: PLC0415

    path, epochs = average_last(model_dir, last, output)
    click.echo(f"averaged epochs {', '.join(map(str, epochs))} into {path}")
    if score:
        pairs = checkpoint.read_pairs_file(model_dir / checkpoint.DEV_FILE)
        for weights in (checkpoint.BEST_FILE, path.name):
            translator = _load_translator(model_dir, device, weights)
            result = evaluate_pairs(lambda sentences: translator.translate(sentences, beam=1), pairs)
            click.echo(f"dev BLEU (greedy) of {weights}: {result.bleu:.2f}")
    click.echo(f"use it with 'translate run/evaluate --model {model_dir} --weights {path.name}'")


# ---------------------------------------------------------------- tune
def _numbers(kind: Callable[[str], float | int], name: str, low: float, high: float = math.inf) -> Callable:
    """A click callback parsing "a,b,c" into finite numbers of ``kind`` in ``[low, high]``."""
    def parse(ctx, parameter, value: str | None):
        if value is None:
            return None
        try:
            numbers = tuple(kind(part) for part in value.split(",") if part.strip())
        except ValueError:
            raise click.BadParameter(f"expected numbers joined by commas, got {value!r}", param_hint=name) from None
        for number in numbers:
            if not (math.isfinite(number) and low <= number <= high):
                bounds = f"in {low:g}..{high:g}" if math.isfinite(high) else f">= {low:g}"
                raise click.BadParameter(f"each must be a number {bounds}, got {number!r}", param_hint=name)
        return numbers
    return parse


@cli.command()
@model_option
@click.option("--beams", callback=_numbers(int, "--beams", 1, MAX_BEAM), metavar="LIST",
              help="beam widths to try, joined by commas [default: 1,3,5,8]")
@click.option("--alphas", callback=_numbers(float, "--alphas", 0, MAX_ALPHA), metavar="LIST",
              help="length-penalty alphas to try, joined by commas [default: 0,0.4,0.6,0.8,1,1.2,1.5]")
@click.option("--max-sentences", type=click.IntRange(min=1), default=None,
              help="tune on the first N dev pairs only (faster) [default: all]")
@click.option("--batch-size", type=click.IntRange(1, MAX_BATCH_SIZE), default=checkpoint.DECODE_BATCH_SIZE,
              show_default=True,
              help="sentences translated together")
@weights_option
@device_option
@threads_option
@user_errors
def tune(model_dir: Path, beams: tuple[int, ...] | None, alphas: tuple[float, ...] | None,
         max_sentences: int | None, batch_size: int, weights: str | None, device: str | None,
         threads: int | str | None) -> None:
    """Choose the beam width and length penalty by dev BLEU and store them with the model."""
    _use_threads(threads)
    from translator.tuning import DEFAULT_ALPHAS, DEFAULT_BEAMS  # noqa: PLC0415
    from translator.tuning import tune as tune_decoding  # noqa: PLC0415

    beams, alphas = beams or DEFAULT_BEAMS, alphas or DEFAULT_ALPHAS
    if min(beams) < 1 or min(alphas) < 0:
        raise UserError(f"--beams must be >= 1 and --alphas >= 0, got {','.join(map(str, beams))} and "
                        f"{','.join(map(str, alphas))}")
    pairs = checkpoint.read_pairs_file(model_dir / checkpoint.DEV_FILE)[:max_sentences]
    if not pairs:
        raise UserError(f"{model_dir / checkpoint.DEV_FILE} holds no pairs to tune on")
    translator = _load_translator(model_dir, device, weights)
    result = tune_decoding(translator, pairs, beams, alphas, batch_size,
                           log=lambda message: click.echo(message, err=True))
    checkpoint.write_decoding(model_dir, result.to_dict())
    click.echo(f"best on {result.sentences} dev sentences: beam {result.beam}, alpha {result.alpha:g} "
               f"(dev BLEU {result.dev_bleu:.2f}); stored in {model_dir / checkpoint.CONFIG_FILE}, used by run "
               "and evaluate unless --beam/--alpha say otherwise")


if __name__ == "__main__":  # pragma: no cover
    main()
