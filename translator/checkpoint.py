"""The model directory: what training writes and what ``translate run``/``evaluate`` read back.

Layout of ``--model DIR`` (default ``models/default``)::

    config.json         format_version, the network (ModelConfig fields), vocabulary sizes,
                        the full training configuration and a description of the data
    source_vocab.json   target_vocab.json     (translator.vocabulary.Vocabulary.save)
    dev.tsv  test.tsv   the held-out splits, "source<TAB>reference", raw text (evaluate's default data)
    best.npz            weights with the best dev BLEU so far (what translate run loads)
    last.npz            weights + optimiser + scheduler + RNG + data position, to --resume exactly
    log.jsonl           one JSON object per event (epoch results, stops, the final summary)

``.npz`` files are written with the engine's atomic ``tinygrad_rnn.save`` and carry
``format_version``; every reader checks it, so an old or foreign file is refused with a clear
:class:`CheckpointError` instead of failing somewhere inside the model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tinygrad_rnn.serialization import atomic_open
from translator.errors import CheckpointError, DataError, decode_utf8, read_user_file
from translator.vocabulary import Vocabulary

FORMAT_VERSION = 1
DEFAULT_MODEL_DIR = "models/default"

CONFIG_FILE = "config.json"
SOURCE_VOCAB_FILE = "source_vocab.json"
TARGET_VOCAB_FILE = "target_vocab.json"
BEST_FILE = "best.npz"
LAST_FILE = "last.npz"
LOG_FILE = "log.jsonl"
DEV_FILE = "dev.tsv"
TEST_FILE = "test.tsv"


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
                 target_vocab_size: int, train_options: dict, data_info: dict) -> None:
    """Write ``config.json`` atomically (see the module docstring for its fields)."""
    document = {
        "format_version": FORMAT_VERSION,
        "model": model_options,
        "source_vocab_size": source_vocab_size,
        "target_vocab_size": target_vocab_size,
        "train": train_options,
        "data": data_info,
    }
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
