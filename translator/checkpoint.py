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
:class:`CheckpointError` instead of failing somewhere inside the model.
"""

from __future__ import annotations

import json
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
                 tokenizer: dict | None = None) -> None:
    """Write ``config.json`` atomically (see the module docstring for its fields; ``tokenizer``: None = words)."""
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
    if not (isinstance(beam, int) and beam >= 1 and isinstance(alpha, (int, float)) and alpha >= 0):
        return {}
    return {"beam": beam, "alpha": float(alpha)}


def load_tokenizers(model_dir: str | os.PathLike, document: dict | None = None) -> Tokenizers:
    """The tokenizers of a model directory (``document``: its parsed config.json, read if not given)."""
    document = read_config(model_dir) if document is None else document
    return Tokenizers.load(model_dir, document.get("tokenizer"))


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
    if "model" not in state:
        raise CheckpointError(f"checkpoint {path} holds no model weights")
    return state


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
    def create(self, data: PreparedData, model_config: ModelConfig, config: TrainConfig) -> None:
        """Start the directory of a new run: vocabularies, dev/test splits, ``config.json``.

        An existing model's checkpoints and log are removed first (``--overwrite``): nothing of the
        old model may survive.
        """
        if self.path.exists():
            for name in (BEST_FILE, LAST_FILE, LOG_FILE, AVERAGED_FILE, CURVES_FILE):
                (self.path / name).unlink(missing_ok=True)
            for path in self.path.glob(EPOCH_PATTERN):
                path.unlink()
        self.path.mkdir(parents=True, exist_ok=True)
        data.tokenizers.save(self.path)
        data.source_vocab.save(self.path / SOURCE_VOCAB_FILE)
        data.target_vocab.save(self.path / TARGET_VOCAB_FILE)
        write_pairs(self.path / DEV_FILE, data.dev_pairs)
        write_pairs(self.path / TEST_FILE, data.test_pairs)
        write_config(self.path, model_config.to_dict(), len(data.source_vocab), len(data.target_vocab),
                     config.to_dict(), data.info, tokenizer=data.tokenizers.to_dict())

    def save_last(self, model, optimizer, scheduler, progress: dict) -> None:
        """``last.npz``: everything :meth:`restore` needs to continue exactly (``progress``: JSON values)."""
        from tinygrad_rnn import get_rng_state  # noqa: PLC0415

        save_checkpoint(self.path / LAST_FILE, {
            "kind": "last",
            "model": dict(model.state_dict()),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": get_rng_state(),
            "progress": progress,
        })

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
        return load_vocabularies(self.path)

    def tokenizers(self) -> Tokenizers:
        return load_tokenizers(self.path)

    def load_last(self) -> dict:
        """The state :meth:`save_last` wrote (read before the model exists; :meth:`restore` applies it)."""
        return load_checkpoint(self.path / LAST_FILE)

    def load_best(self) -> dict:
        return load_checkpoint(self.path / BEST_FILE)

    def restore(self, state: dict, model, optimizer, scheduler, progress_type: Callable[..., T]) -> T:
        """Put ``state`` (from :meth:`load_last`) back into the objects and the engine's RNG.

        Returns ``progress_type(**progress)`` of the saved progress.

        Raises:
            CheckpointError: the checkpoint does not fit this model (another architecture or vocabulary).
        """
        from tinygrad_rnn import set_rng_state  # noqa: PLC0415

        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            set_rng_state(state["rng"])
            return progress_type(**state["progress"])
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            raise CheckpointError(f"checkpoint {self.path / LAST_FILE} does not fit this model "
                                  f"({str(error).splitlines()[0]}); retrain without --resume") from None
