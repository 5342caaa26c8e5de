"""The model directory: what training writes and what ``translate run``/``evaluate`` read back.

Layout of ``--model DIR`` (default ``models/default``)::

    config.json         format_version, the network (ModelConfig fields), vocabulary sizes,
                        the full training configuration and a description of the data
    source_vocab.json   target_vocab.json     (translator.vocabulary.Vocabulary.save)
    sentencepiece.model (or source.model + target.model)   the SentencePiece tokenizer of a subword
                        model (translator.subword); config.json's "tokenizer" entry names them, and a
                        directory without that entry is word-level
    dev.tsv  test.tsv   the held-out splits, "source<TAB>reference", raw text (evaluate's default data)
    best.npz            weights with the best dev BLEU so far (what translate run loads)
    last.npz            weights + optimiser + scheduler + RNG + data position, to --resume exactly
    (config.json's "decoding": the beam and alpha chosen by ``translate tune``, used by run/evaluate)
    log.jsonl           one JSON object per event (epoch results, stops, the final summary)
    epoch-NNN.npz       with --keep-epochs K: the weights after each of the last K epochs (best.npz's
                        format), for ``translate average`` (translator.averaging)
    curves.png          learning curves (train/dev loss, dev BLEU, learning rate) from log.jsonl, redrawn
                        after each epoch when matplotlib is installed (the plot extra)
    averaged.npz        written by ``translate average``; ``run``/``evaluate --weights averaged.npz``

``.npz`` files are written with the engine's atomic ``tinygrad_rnn.save`` and carry
``format_version``; every reader checks it, so an old or foreign file is refused with a clear
:class:`CheckpointError` instead of failing somewhere inside the model. Nothing read back is
trusted: weights must be finite arrays (a run that diverged is refused, not translated into
blank lines), ``config.json`` holds the SHA-256 of each vocabulary (a vocabulary file edited or
swapped after training is refused; directories written before it load as they always did), and
the resume state of ``last.npz`` (optimiser, scheduler, progress) is checked value by value
against what this version writes.

``config.json`` is written last, after the first ``last.npz``: it is what makes a directory hold
a model, so a run killed while creating the directory leaves one that a new ``translate train``
simply starts again in.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from tinygrad_rnn.serialization import atomic_open
from translator.errors import CheckpointError, ConfigError, DataError, decode_utf8, read_user_file
from translator.subword import Tokenizers
from translator.vocabulary import Vocabulary

if TYPE_CHECKING:  # annotations only: training builds on this module, not the reverse
    from translator.config import TrainConfig
    from translator.model_config import ModelConfig
    from translator.preparation import PreparedData

FORMAT_VERSION = 1
MAX_BEAM = 1000  # the widest beam an option or a stored setting may ask for (a translator uses 4-12)
# Sentences decoded together by default: greedy decoding of the 2,000 dev sentences of spa-eng took 7.7-8.1 s
# at 128 against 9.7-10.2 s at 64 (the same translations); a beam is bounded by max_tokens // beam anyway.
DECODE_BATCH_SIZE = 128
MAX_ALPHA = 10.0  # the largest length-penalty alpha likewise (GNMT tunes it in 0..1.5; more overflows lp)
DEFAULT_MODEL_DIR = "models/default"

CONFIG_FILE = "config.json"
SOURCE_VOCAB_FILE = "source_vocab.json"
TARGET_VOCAB_FILE = "target_vocab.json"
BEST_FILE = "best.npz"
LAST_FILE = "last.npz"
LOG_FILE = "log.jsonl"
CURVES_FILE = "curves.png"
DEV_FILE = "dev.tsv"
TEST_FILE = "test.tsv"
AVERAGED_FILE = "averaged.npz"
EPOCH_PATTERN = "epoch-[0-9][0-9][0-9].npz"


def epoch_file(epoch: int) -> str:
    """The file name of the weights after 1-based ``epoch`` (``epoch-004.npz``)."""
    return f"epoch-{epoch:03d}.npz"

T = TypeVar("T")


def _require_dir(model_dir: Path) -> None:
    if not model_dir.exists():
        raise CheckpointError(f"model directory {model_dir} does not exist; train one with "
                              f"'translate train --model {model_dir}' or pass the right --model")
    if not model_dir.is_dir():
        raise CheckpointError(f"--model {model_dir} is not a directory")


def _check_version(found: Any, what: str) -> None:
    if found != FORMAT_VERSION:
        raise CheckpointError(f"{what} has format version {found!r}, this translator reads version "
                              f"{FORMAT_VERSION}; retrain the model with this version")


# ---------------------------------------------------------------- config.json
def write_config(model_dir: str | os.PathLike, model_options: dict, source_vocab_size: int,
                 target_vocab_size: int, train_options: dict, data_info: dict,
                 tokenizer: dict | None = None, vocabularies: tuple[Vocabulary, Vocabulary] | None = None) -> None:
    """Write ``config.json`` atomically (see the module docstring for its fields).

    ``tokenizer``: the tokenizers' entry (None: words); ``vocabularies``: the source and target
    vocabularies, whose checksums are recorded.
    """
    document = {
        "format_version": FORMAT_VERSION,
        "model": model_options,
        "source_vocab_size": source_vocab_size,
        "target_vocab_size": target_vocab_size,
        "train": train_options,
        "data": data_info,
    }
    if tokenizer is not None:
        document["tokenizer"] = tokenizer
    if vocabularies is not None:
        document["source_vocab_sha256"] = vocabularies[0].checksum()
        document["target_vocab_sha256"] = vocabularies[1].checksum()
    with atomic_open(Path(model_dir) / CONFIG_FILE, "w") as handle:
        handle.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def read_config(model_dir: str | os.PathLike) -> dict:
    """The parsed ``config.json`` of ``model_dir``, with its format version checked.

    Raises:
        CheckpointError: no such directory, no config, invalid JSON, wrong version or missing keys.
    """
    model_dir = Path(model_dir)
    _require_dir(model_dir)
    path = model_dir / CONFIG_FILE
    data = read_user_file(path, "model configuration", CheckpointError,
                          missing=f"{model_dir} holds no trained model ({CONFIG_FILE} is missing); "
                                  f"train one with 'translate train --model {model_dir}'")
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is corrupt ({error}); retrain the model") from None
    if not isinstance(document, dict):
        raise CheckpointError(f"{path} is not a translator model configuration")
    _check_version(document.get("format_version"), str(path))
    missing = [key for key in ("model", "source_vocab_size", "target_vocab_size", "train")
               if key not in document]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}; it is corrupt, retrain the model")
    return document


def load_vocabularies(model_dir: str | os.PathLike) -> tuple[Vocabulary, Vocabulary]:
    """``(source_vocab, target_vocab)`` of a model directory; CheckpointError if unreadable."""
    model_dir = Path(model_dir)
    try:
        return (Vocabulary.load(model_dir / SOURCE_VOCAB_FILE), Vocabulary.load(model_dir / TARGET_VOCAB_FILE))
    except DataError as error:
        raise CheckpointError(str(error)) from None


def write_decoding(model_dir: str | os.PathLike, settings: dict) -> None:
    """Store tuned decoding settings (``{"beam", "alpha", ...}``) as ``config.json``'s ``decoding``, atomically."""
    document = read_config(model_dir)
    document["decoding"] = settings
    with atomic_open(Path(model_dir) / CONFIG_FILE, "w") as handle:
        handle.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def decoding_settings(document: dict) -> dict:
    """The tuned ``{"beam": int, "alpha": float}`` of a parsed config.json; ``{}`` if never tuned (or unusable)."""
    settings = document.get("decoding")
    if not isinstance(settings, dict):
        return {}
    beam, alpha = settings.get("beam"), settings.get("alpha")
    if not (isinstance(beam, int) and not isinstance(beam, bool) and 1 <= beam <= MAX_BEAM
            and isinstance(alpha, (int, float)) and not isinstance(alpha, bool) and 0 <= alpha <= MAX_ALPHA):
        return {}
    return {"beam": beam, "alpha": float(alpha)}


def load_tokenizers(model_dir: str | os.PathLike, document: dict | None = None) -> Tokenizers:
    """The tokenizers of a model directory (``document``: its parsed config.json, read if not given)."""
    document = read_config(model_dir) if document is None else document
    return Tokenizers.load(model_dir, document.get("tokenizer"))


def check_vocabularies(model_dir: str | os.PathLike, document: dict, source_vocab: Vocabulary,
                       target_vocab: Vocabulary) -> None:
    """CheckpointError unless the vocabularies are the ones ``config.json`` says the model was trained with.

    Sizes always; checksums when ``config.json`` has them (written since they were added).
    """
    model_dir = Path(model_dir)
    for side, vocabulary, name in (("source", source_vocab, SOURCE_VOCAB_FILE), ("target", target_vocab,
                                                                                 TARGET_VOCAB_FILE)):
        size = document.get(f"{side}_vocab_size")
        if len(vocabulary) != size:
            raise CheckpointError(f"{model_dir / name} has {len(vocabulary)} entries but the model was trained "
                                  f"with {size!r}; restore the vocabulary files of this model or retrain it")
        checksum = document.get(f"{side}_vocab_sha256")
        if checksum is not None and checksum != vocabulary.checksum():
            raise CheckpointError(f"{model_dir / name} is not the vocabulary the model was trained with (its "
                                  "checksum differs: tokens were changed or reordered); restore it or retrain")


def describe_load_error(error: BaseException, shown: int = 3) -> str:
    """``load_state_dict``'s error on one line, its first ``shown`` problems kept whole and the rest counted."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    head, separator, problems = text.partition(": ")
    parts = problems.split("; ") if separator else []
    if len(parts) <= shown:
        return text
    return f"{head}: {'; '.join(parts[:shown])}; and {len(parts) - shown} more"


# ---------------------------------------------------------------- .npz checkpoints
def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Write ``state`` (nested dicts of tensors, arrays and JSON values) atomically, versioned."""
    from tinygrad_rnn import save  # noqa: PLC0415 - the engine is imported where it is needed

    save({"format_version": FORMAT_VERSION, **state}, str(path))


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: missing, truncated/corrupt, or of another format version.
    """
    from tinygrad_rnn import load  # noqa: PLC0415

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        # onto the host whatever device it was saved from: a GPU-trained checkpoint loads on a
        # machine without one, and the model and optimizer move each value to their own device
        state = load(str(path), device="cpu")
    except Exception as error:  # noqa: BLE001 - any failure to parse a file is "corrupt" to the user
        raise CheckpointError(f"checkpoint {path} is corrupt or not a checkpoint "
                              f"({type(error).__name__}: {error}); retrain or restore it") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} is not a translator checkpoint")
    _check_version(state.get("format_version"), f"checkpoint {path}")
    if not isinstance(state.get("model"), dict) or not state["model"]:
        raise CheckpointError(f"checkpoint {path} holds no model weights")
    for name, value in state["model"].items():
        _check_array(value, f"checkpoint {path}: weight {name!r}")
    return state


def _check_array(value: Any, what: str) -> None:
    """CheckpointError unless ``value`` is a real-valued, finite array (or Tensor)."""
    import numpy as np  # noqa: PLC0415 - host-side check of what a file holds

    data = value if isinstance(value, np.ndarray) else getattr(value, "data", value)  # a Tensor's array
    if not isinstance(data, np.ndarray) or data.dtype.kind not in "fiub":
        raise CheckpointError(f"{what} is not an array of real numbers ({type(data).__name__}"
                              f"{' of ' + str(data.dtype) if isinstance(data, np.ndarray) else ''}); the file is "
                              "corrupt: retrain or restore it")
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        bad = "NaN" if np.isnan(data).any() else "infinite values"
        raise CheckpointError(f"{what} holds {bad}: the run that saved it had diverged; retrain with a lower --lr "
                              "(or resume from a copy saved before)")


# ---------------------------------------------------------------- the held-out splits
def write_pairs(path: str | os.PathLike, pairs: list[tuple[str, str]]) -> None:
    """Write ``source<TAB>target`` lines atomically (tabs/newlines inside a sentence become spaces)."""
    def clean(text: str) -> str:
        return " ".join(text.replace("\t", " ").split())

    with atomic_open(path, "w") as handle:
        handle.write("".join(f"{clean(source)}\t{clean(target)}\n" for source, target in pairs))


def read_pairs_file(path: str | os.PathLike) -> list[tuple[str, str]]:
    """Read a file written by :func:`write_pairs`; CheckpointError if missing or malformed."""
    data = read_user_file(path, "split file", CheckpointError,
                          missing=f"{path} does not exist; pass --data FILE to evaluate on other data")
    text = decode_utf8(data, str(path), CheckpointError)
    pairs = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        columns = line.split("\t")
        if len(columns) != 2:
            raise CheckpointError(f"{path}, line {line_number}: expected 'source<TAB>reference'; the file is corrupt")
        pairs.append((columns[0], columns[1]))
    return pairs


# ---------------------------------------------------------------- one training run's directory
class ModelDirectory:
    """The model directory of one training run: checked before it starts, written as it goes, restored on resume.

    ``ModelDirectory(path)``. :class:`translator.training.Trainer` touches its files only through
    this class; ``translate run``/``evaluate`` read them back with the functions above.

    - check: :meth:`check_fresh` (a new run may not overwrite a model by accident),
      :meth:`saved_config` and :meth:`check_data` (a resumed run continues the same options on the
      same data);
    - save: :meth:`create` (vocabularies, splits, ``config.json``), :meth:`save_last`,
      :meth:`save_best`, :meth:`log`;
    - restore: :meth:`vocabularies`, :meth:`load_last` and :meth:`restore`, the inverse of
      :meth:`save_last`.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    # ------------------------------------------------------------ check
    def check_fresh(self, overwrite: bool) -> None:
        """ConfigError unless a new run may start here (no model yet, or ``overwrite``)."""
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"--model {self.path} exists and is not a directory")
        if (self.path / CONFIG_FILE).exists() and not overwrite:
            raise ConfigError(f"{self.path} already holds a model: continue it with --resume, replace it "
                              "with --overwrite, or choose another --model directory")

    def saved_config(self, parse: Callable[[dict], T]) -> T:
        """``parse`` (e.g. ``TrainConfig.from_dict``) of the training options saved in ``config.json``.

        Raises:
            CheckpointError: no model here, or options that ``parse`` refuses (ValueError, TypeError).
        """
        saved = read_config(self.path)
        train = dict(saved["train"])
        if "tokenizer" not in saved:  # trained before subword models: words, whatever today's default
            train.setdefault("tokenizer", "word")
        # trained before these options: sources read as written, no noise, whatever today's defaults
        if "source_normalization" not in train:
            train["source_normalization"] = "none"
            train.setdefault("source_noise", 0.0)
        try:
            return parse(train)
        except (ValueError, TypeError) as error:
            raise CheckpointError(f"{self.path}/{CONFIG_FILE} holds an unusable training configuration "
                                  f"({error})") from None

    def check_data(self, fingerprint: str) -> None:
        """CheckpointError unless the data has the fingerprint of the data the model was trained on."""
        saved = read_config(self.path).get("data", {}).get("fingerprint")
        if saved != fingerprint:
            raise CheckpointError(f"the data differs from the data {self.path} was trained on (fingerprint "
                                  f"{fingerprint}, saved {saved}); resume with the same data")

    # ------------------------------------------------------------ save
    def create(self, data: PreparedData, model_config: ModelConfig, config: TrainConfig,
               first_checkpoint: Callable[[], None]) -> None:
        """Start the directory of a new run: vocabularies, dev/test splits, the first checkpoint, ``config.json``.

        ``first_checkpoint`` writes ``last.npz``; ``config.json`` comes after it, so a directory
        that has one always has something to resume, and a run killed before that left a directory
        a new run may take over. An existing model's checkpoints and log (``--overwrite``), and the
        temporary files of writes a kill interrupted, are removed first: nothing old may survive.
        """
        if self.path.exists():
            (self.path / CONFIG_FILE).unlink(missing_ok=True)  # first: until the end, no model is here
            for name in (BEST_FILE, LAST_FILE, LOG_FILE, AVERAGED_FILE, CURVES_FILE):
                (self.path / name).unlink(missing_ok=True)
            for path in self.path.glob(EPOCH_PATTERN):
                path.unlink()
            self.remove_temporaries()
        self.path.mkdir(parents=True, exist_ok=True)
        data.tokenizers.save(self.path)
        data.source_vocab.save(self.path / SOURCE_VOCAB_FILE)
        data.target_vocab.save(self.path / TARGET_VOCAB_FILE)
        write_pairs(self.path / DEV_FILE, data.dev_pairs)
        write_pairs(self.path / TEST_FILE, data.test_pairs)
        first_checkpoint()
        write_config(self.path, model_config.to_dict(), len(data.source_vocab), len(data.target_vocab),
                     config.to_dict(), data.info, tokenizer=data.tokenizers.to_dict(),
                     vocabularies=(data.source_vocab, data.target_vocab))

    def remove_temporaries(self) -> None:
        """Delete what killed atomic writes left (``.<file>.<random>.tmp``, the atomic writer's names)."""
        for leftover in self.path.glob(".*.tmp"):
            leftover.unlink(missing_ok=True)

    def save_last(self, model, optimizer, scheduler, progress: dict, rank_rng: list | None = None) -> None:
        """``last.npz``: everything :meth:`restore` needs to continue exactly (``progress``: JSON values).

        ``rank_rng``: in data-parallel training, every rank's generator state (``rng`` is rank 0's);
        see :mod:`translator.parallel`.
        """
        from tinygrad_rnn import get_rng_state  # noqa: PLC0415

        state = {
            "kind": "last",
            "model": dict(model.state_dict()),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": get_rng_state(),
            "progress": progress,
        }
        if rank_rng is not None:
            state["rank_rng"] = rank_rng
        save_checkpoint(self.path / LAST_FILE, state)

    def save_best(self, model, epoch: int, dev_bleu: float) -> None:
        """``best.npz``: the weights ``translate run`` loads, with the epoch and dev BLEU they reached."""
        save_checkpoint(self.path / BEST_FILE, {
            "kind": "best", "model": dict(model.state_dict()), "epoch": epoch, "dev_bleu": dev_bleu,
        })

    def save_epoch(self, model, epoch: int, dev_bleu: float, keep: int) -> None:
        """``epoch-NNN.npz`` after 1-based ``epoch``; epoch files older than the last ``keep`` are removed."""
        save_checkpoint(self.path / epoch_file(epoch), {
            "kind": "epoch", "model": dict(model.state_dict()), "epoch": epoch, "dev_bleu": dev_bleu,
        })
        for path in sorted(self.path.glob(EPOCH_PATTERN))[:-keep]:
            path.unlink()

    def has_best(self) -> bool:
        return (self.path / BEST_FILE).exists()

    def log(self, event: str, **fields) -> None:
        """Append one JSON line ``{"event": ..., "time": ..., **fields}`` to ``log.jsonl``."""
        record = {"event": event, "time": round(time.time(), 3), **fields}
        with open(self.path / LOG_FILE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")

    def draw_curves(self) -> bool:
        """Redraw ``curves.png`` from ``log.jsonl`` (atomically); False, drawing nothing, without matplotlib."""
        from translator.plot import epoch_records, plot_curves  # noqa: PLC0415
        from translator.errors import PlotUnavailable  # noqa: PLC0415

        log_path = self.path / LOG_FILE
        records = epoch_records(log_path.read_text(encoding="utf-8").splitlines()) if log_path.exists() else []
        try:
            with atomic_open(self.path / CURVES_FILE, "wb") as handle:
                plot_curves(records, handle)
        except PlotUnavailable:
            return False
        return True

    # ------------------------------------------------------------ restore
    def vocabularies(self) -> tuple[Vocabulary, Vocabulary]:
        """The saved vocabularies, checked against ``config.json`` (sizes, checksums)."""
        vocabularies = load_vocabularies(self.path)
        check_vocabularies(self.path, read_config(self.path), *vocabularies)
        return vocabularies

    def tokenizers(self) -> Tokenizers:
        return load_tokenizers(self.path)

    def load_last(self) -> dict:
        """The state :meth:`save_last` wrote (read before the model exists; :meth:`restore` applies it)."""
        return load_checkpoint(self.path / LAST_FILE)

    def load_best(self) -> dict:
        return load_checkpoint(self.path / BEST_FILE)

    def restore(self, state: dict, model, optimizer, scheduler, parse_progress: Callable[[Any], T]) -> T:
        """Put ``state`` (from :meth:`load_last`) back into the objects and the engine's RNG.

        Every value is checked first against what this version writes: the optimiser's and the
        scheduler's against the freshly built ones (same keys, types, lengths; finite numbers; a
        positive learning rate; moment arrays of each parameter's shape), the progress by
        ``parse_progress`` (e.g. ``Progress.from_saved``), which returns what it parsed.

        Raises:
            CheckpointError: the checkpoint does not fit this model (another architecture or
                vocabulary), or holds a value this version would never have written.
        """
        from tinygrad_rnn import set_rng_state  # noqa: PLC0415

        where = f"checkpoint {self.path / LAST_FILE}"
        try:
            for key in ("optimizer", "scheduler", "rng", "progress"):
                if not isinstance(state.get(key), dict):
                    raise ValueError(f"its {key!r} entry is missing or not a table")
            _check_like(state["scheduler"], scheduler.state_dict(), "scheduler")
            _check_optimizer(state["optimizer"], optimizer, model)
            progress = parse_progress(state["progress"])
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            set_rng_state(state["rng"])
            return progress
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError, OverflowError) as error:
            raise CheckpointError(f"{where} cannot be resumed ({describe_load_error(error)}); retrain without "
                                  "--resume") from None


def _check_like(value: Any, template: Any, where: str) -> None:
    """ValueError unless ``value`` has ``template``'s structure: keys, types, lengths; numbers not NaN.

    Strings must equal the template's (a mode), numbers have the template's kind (an int stays an
    int), infinity is allowed only where the template holds it (a scheduler's initial ``best``).
    """
    if isinstance(template, bool) or template is None:
        if not (value is template or isinstance(value, bool) and isinstance(template, bool)):
            raise ValueError(f"{where} is {value!r}, expected {'true or false' if template is not None else None}")
    elif isinstance(template, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                (isinstance(template, int) and not isinstance(value, int)):
            raise ValueError(f"{where} is {value!r}, expected {'an integer' if isinstance(template, int) else 'a number'}")
        if math.isnan(value) or (math.isinf(value) and not math.isinf(template) and where.split(".")[-1] != "best"):
            raise ValueError(f"{where} is {value!r}, expected a finite number")
    elif isinstance(template, str):
        if value != template:
            raise ValueError(f"{where} is {value!r}, expected {template!r}")
    elif isinstance(template, (list, tuple)):
        if not isinstance(value, (list, tuple)) or len(value) != len(template):
            raise ValueError(f"{where} is {value!r}, expected {len(template)} values")
        for index, (item, expected) in enumerate(zip(value, template)):
            _check_like(item, expected, f"{where}[{index}]")
    elif isinstance(template, dict):
        if not isinstance(value, dict) or set(value) != set(template):
            raise ValueError(f"{where} has keys {sorted(value) if isinstance(value, dict) else value!r}, "
                             f"expected {sorted(template)}")
        for key in template:
            _check_like(value[key], template[key], f"{where}.{key}")


def _check_optimizer(saved: dict, optimizer, model) -> None:
    """ValueError unless ``saved`` is a state of ``optimizer`` (over ``model``'s parameters) this version writes."""
    template = optimizer.state_dict()
    if set(saved) != {"state", "param_groups"} or not isinstance(saved["param_groups"], list) \
            or not isinstance(saved["state"], dict):
        raise ValueError("the optimizer entry is not an optimizer state")
    groups = [{key: value for key, value in group.items() if key != "params"} if isinstance(group, dict) else group
              for group in saved["param_groups"]]
    _check_like(groups, [{key: value for key, value in group.items() if key != "params"}
                         for group in template["param_groups"]], "optimizer.param_groups")
    for index, group in enumerate(groups):
        for key, value in group.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0 or \
                    key == "lr" and not value > 0:
                raise ValueError(f"optimizer.param_groups[{index}].{key} is {value!r}, expected a number > 0"
                                 if key == "lr" else f"optimizer.param_groups[{index}].{key} is {value!r}, "
                                 "expected a number >= 0")
    for index, group in enumerate(saved["param_groups"]):
        if group.get("params") != template["param_groups"][index]["params"]:
            raise ValueError(f"optimizer.param_groups[{index}].params do not list this model's parameters")
    shapes = [tuple(parameter.shape) for parameter in model.parameters()]
    for index, entries in saved["state"].items():
        if not str(index).isdigit() or int(index) >= len(shapes) or not isinstance(entries, dict):
            raise ValueError(f"optimizer.state has an entry {index!r} for no parameter of this model")
        for name, value in entries.items():
            where = f"optimizer.state[{index}].{name}"
            if hasattr(value, "shape") or hasattr(getattr(value, "data", None), "shape"):
                if tuple(getattr(value, "shape", ())) != shapes[int(index)]:
                    raise ValueError(f"{where} has shape {tuple(value.shape)}, the parameter "
                                     f"{shapes[int(index)]}")
                try:
                    _check_array(value, where)
                except CheckpointError as error:
                    raise ValueError(str(error)) from None
            else:
                _check_like(value, 0, where)
                if value < 0:
                    raise ValueError(f"{where} is {value!r}, expected a count >= 0")
