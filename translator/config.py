"""``TrainConfig``: every option of ``translate train``, built once and validated in one place.

The options are declared once, as the fields of :class:`TrainConfig`; their metadata gives the
help text and, for the CLI, the flag (``hidden_size`` -> ``--hidden-size``). The same names are the
keys of a ``--config FILE`` (TOML, with ``-`` or ``_``), so a file and the command line speak the
same language::

    # spa-eng.toml
    epochs = 8
    hidden-size = 256
    attention = "general"

Precedence: command-line flags, then the file, then the defaults below. :func:`build_config`
turns both sources into a frozen, validated :class:`TrainConfig`; every mistake is a one-line
:class:`ConfigError` naming the option, the bad value and what is allowed.

Defaults are the spa->eng recipe, sized for about 30 minutes on a 2-core CPU with a fixed number
of epochs (so the default run is reproducible; no time budget cuts it short):

- the usual architecture: a bidirectional GRU-256 encoder, a GRU-256 decoder with additive
  attention and input feeding, 256-wide embeddings, dropout 0.2;
- training pairs capped at 12 tokens a side: 94% of the pairs, 832k target tokens an epoch; dev
  and test keep every length (only 4.5% of them are longer), so their scores describe real input;
- vocabularies of the tokens seen at least twice (about 15k Spanish, 9k English entries); rarer
  words become ``<unk>``, which ``translate run`` replaces by the attended source word (names);
- Adam at 3e-3 with batch 64: with only 4 passes over the data, more and smaller updates win.
  In one-epoch trials on a 30k-pair sample, batch 64 reached a dev loss of 2.86 against 3.33 for
  batch 128 at about 25% fewer tokens/s, and lr 3e-3 with dropout 0.2 lowered it to 2.73;
- label smoothing 0.1, gradient norm clipped at 5, early stopping after 3 epochs without a better
  dev BLEU;
- the learning rate halved at the start of every epoch from the second on (3e-3, 1.5e-3, 7.5e-4,
  3.75e-4). With a constant 3e-3 (halved only on a dev-loss plateau, which never came) the dev
  BLEU stalled at 29 after epoch 2 of the first full run, with the training loss flat.
"""

from __future__ import annotations

import dataclasses
import math
import os
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from pathlib import Path
from typing import Any, Mapping

from translator.errors import ConfigError, decode_utf8, read_user_file
from translator.model_config import ATTENTIONS, CELLS, ModelConfig

PLATEAU_METRICS = ("loss", "bleu")
BUILTIN_DATASETS = ("numbers",)  # generated in memory, no download (translator.numbers_corpus)

# Options that may differ from the saved configuration when resuming: they change when or where
# training runs, not what it computes.
RESUME_OVERRIDABLE = ("epochs", "max_time", "device")

# The beam width of `translate run`/`evaluate` by default, also used for the test BLEU that ends
# training, so that number is what a user gets.
DEFAULT_BEAM = 5


def _option(default, help: str, group: str, *, choices: tuple | None = None, metavar: str | None = None):  # noqa: A002
    return dataclasses.field(default=default, metadata={"help": help, "group": group, "choices": choices,
                                                        "metavar": metavar})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """All options of a training run. Build it with :func:`build_config` (or directly, in tests).

    Every field is also a CLI flag (``--field-name``) and a TOML key of ``--config FILE``.
    """

    # ---------------------------------------------------------------- data
    dataset: str = _option("spa-eng", "catalogue dataset to train on (downloaded on first use), or 'numbers' "
                           "for the built-in Spanish<->English numbers corpus", "data", metavar="NAME")
    data: str | None = _option(None, "train on this TSV/zip of 'english<TAB>other' pairs instead of a "
                               "catalogue dataset", "data", metavar="PATH")
    data_dir: str | None = _option(None, "where datasets are cached/downloaded (default: $TRANSLATE_DATA_DIR, "
                                   "else datasets/)", "data", metavar="DIR")
    reverse: bool = _option(False, "translate English -> other (the file's first column becomes the source)", "data")
    source_column: int = _option(1, "0-based column of the source sentence in the data file", "data")
    target_column: int = _option(0, "0-based column of the target sentence in the data file", "data")
    max_pairs: int | None = _option(None, "use only the first N lines of the data (quick experiments)", "data")
    max_length: int = _option(12, "drop TRAINING pairs whose source or target has more tokens than this "
                              "(dev and test keep every length)", "data")
    min_freq: int = _option(2, "vocabulary: keep tokens seen at least this often in the training split", "data")
    max_vocab_size: int | None = _option(None, "vocabulary: at most this many entries per language "
                                         "(specials included)", "data")
    dev_size: int = _option(2000, "pairs held out for dev loss/BLEU each epoch", "data")
    test_size: int = _option(2000, "pairs held out for the final test BLEU (saved as test.tsv)", "data")
    strict: bool = _option(False, "stop at the first malformed data line instead of skipping it", "data")

    # ---------------------------------------------------------------- model
    cell: str = _option("gru", "recurrent cell of encoder and decoder", "model", choices=CELLS)
    embedding_size: int = _option(256, "word embedding size", "model")
    hidden_size: int = _option(256, "recurrent state size (per direction)", "model")
    encoder_layers: int = _option(1, "stacked encoder layers", "model")
    decoder_layers: int = _option(1, "stacked decoder layers", "model")
    bidirectional: bool = _option(True, "bidirectional encoder", "model")
    attention: str = _option("additive", "attention over encoder outputs: additive (Bahdanau), dot or general "
                             "(Luong), none (plain encoder-decoder)", "model", choices=ATTENTIONS)
    input_feeding: bool = _option(True, "feed the previous attentional vector into the decoder (needs attention)",
                                  "model")
    dropout: float = _option(0.2, "dropout probability", "model")
    tie_embeddings: bool = _option(False, "share the target embedding with the output projection", "model")

    # ---------------------------------------------------------------- training
    epochs: int = _option(4, "training epochs (fixed, so the default run is reproducible)", "training")
    batch_size: int = _option(64, "sentence pairs per batch", "training")
    lr: float = _option(3e-3, "Adam learning rate", "training")
    clip: float = _option(5.0, "clip the global gradient norm to this (0: no clipping)", "training")
    label_smoothing: float = _option(0.1, "label smoothing of the training loss", "training")
    teacher_forcing: float = _option(1.0, "probability of feeding the reference (not the model's prediction) "
                                     "as the next decoder input", "training")
    lr_decay: float = _option(0.5, "multiply the learning rate by this when the dev metric stops improving "
                              "(1: never)", "training")
    lr_patience: int = _option(0, "epochs without dev improvement before the learning rate decays", "training")
    lr_decay_start: int = _option(2, "from this epoch on, multiply the learning rate by --lr-decay at the start of "
                                  "every epoch, whatever the dev metric (0: decay only on a plateau)", "training")
    plateau_metric: str = _option("loss", "dev metric watched for learning-rate decay", "training",
                                  choices=PLATEAU_METRICS)
    early_stopping: int = _option(3, "stop after this many epochs without a better dev BLEU (0: never)", "training")
    max_time: float | None = _option(None, "stop (and save) after this many seconds of training", "training")
    seed: int = _option(1, "random seed: the same seed gives the same model", "training")
    device: str = _option("cpu", "cpu or cuda", "training", metavar="DEVICE")

    def __post_init__(self) -> None:
        validate(self)

    # ---------------------------------------------------------------- conversions
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable values, keyed by field name; inverse of :meth:`from_dict`."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrainConfig":
        """Rebuild a config saved with :meth:`to_dict`; unknown keys raise ConfigError."""
        unknown = sorted(set(values) - set(FIELDS))
        if unknown:
            raise ConfigError(f"unknown option(s) {', '.join(unknown)} in a saved configuration")
        return cls(**values)

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def model_options(self) -> dict[str, Any]:
        """The fields that define the network (the keyword arguments of ``ModelConfig``)."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)
                if field.metadata["group"] == "model"}


FIELDS: dict[str, dataclasses.Field] = {field.name: field for field in dataclasses.fields(TrainConfig)}


def flag_name(field_name: str) -> str:
    """The CLI flag of a field: ``hidden_size`` -> ``--hidden-size``."""
    return "--" + field_name.replace("_", "-")


def _check(condition: bool, name: str, value: Any, requirement: str) -> None:
    if not condition:
        raise ConfigError(f"{flag_name(name)} must be {requirement}, got {value!r}")


def validate(config: TrainConfig) -> None:
    """Raise ConfigError for the first bad value or impossible combination (one line each)."""
    for name, field in FIELDS.items():
        value = getattr(config, name)
        expected = _python_type(field)
        if value is None and _optional(field):
            continue
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            object.__setattr__(config, name, float(value))  # 3 in a TOML file means 3.0
            value = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(f"{flag_name(name)} must be {_type_words(field)}, got {value!r}")
        if expected is float and not math.isfinite(value):
            raise ConfigError(f"{flag_name(name)} must be a finite number, got {value!r}")
        choices = field.metadata["choices"]
        if choices and value not in choices:
            raise ConfigError(f"{flag_name(name)} must be one of {', '.join(choices)}, got {value!r}")

    _check(config.source_column >= 0, "source_column", config.source_column, ">= 0")
    _check(config.target_column >= 0, "target_column", config.target_column, ">= 0")
    if config.source_column == config.target_column:
        raise ConfigError(f"--source-column and --target-column must differ, both are {config.source_column}")
    _check(config.max_pairs is None or config.max_pairs >= 1, "max_pairs", config.max_pairs, ">= 1")
    _check(config.max_length >= 1, "max_length", config.max_length, ">= 1")
    _check(config.min_freq >= 1, "min_freq", config.min_freq, ">= 1")
    _check(config.max_vocab_size is None or config.max_vocab_size >= 5, "max_vocab_size",
           config.max_vocab_size, ">= 5 (4 special tokens and at least one word)")
    _check(config.dev_size >= 1, "dev_size", config.dev_size, ">= 1 (dev BLEU drives early stopping)")
    _check(config.test_size >= 1, "test_size", config.test_size, ">= 1")

    for name in ("embedding_size", "hidden_size", "encoder_layers", "decoder_layers"):
        _check(getattr(config, name) >= 1, name, getattr(config, name), ">= 1")
    _check(0.0 <= config.dropout < 1.0, "dropout", config.dropout, "in [0, 1)")
    if config.input_feeding and config.attention == "none":
        raise ConfigError("--input-feeding needs attention: use --no-input-feeding with --attention none")

    _check(config.epochs >= 1, "epochs", config.epochs, ">= 1")
    _check(config.batch_size >= 1, "batch_size", config.batch_size, ">= 1")
    _check(config.lr > 0.0, "lr", config.lr, "> 0")
    _check(config.clip >= 0.0, "clip", config.clip, ">= 0 (0 turns clipping off)")
    _check(0.0 <= config.label_smoothing < 1.0, "label_smoothing", config.label_smoothing, "in [0, 1)")
    _check(0.0 <= config.teacher_forcing <= 1.0, "teacher_forcing", config.teacher_forcing, "in [0, 1]")
    _check(0.0 < config.lr_decay <= 1.0, "lr_decay", config.lr_decay, "in (0, 1]")
    _check(config.lr_patience >= 0, "lr_patience", config.lr_patience, ">= 0")
    _check(config.lr_decay_start >= 0, "lr_decay_start", config.lr_decay_start, ">= 0 (0: only on a plateau)")
    _check(config.early_stopping >= 0, "early_stopping", config.early_stopping, ">= 0 (0 turns it off)")
    _check(config.max_time is None or config.max_time > 0, "max_time", config.max_time, "> 0 seconds")
    _check(config.seed >= 0, "seed", config.seed, ">= 0")
    device = config.device.lower()
    _check(device == "cpu" or device == "cuda" or device.startswith("cuda:"), "device", config.device,
           "cpu or cuda")
    try:  # the network's own rules (e.g. dot attention needs equal encoder and decoder sizes)
        ModelConfig(**config.model_options()).validate()
    except ValueError as error:
        raise ConfigError(f"model options: {error}") from None
    if config.data is not None and config.dataset != FIELDS["dataset"].default:
        raise ConfigError(f"--data and --dataset both given ({config.data!r}, {config.dataset!r}): choose one")


def _optional(field: dataclasses.Field) -> bool:
    return "None" in str(field.type)


def _python_type(field: dataclasses.Field) -> type:
    text = str(field.type)
    for name, python_type in (("bool", bool), ("int", int), ("float", float), ("str", str)):
        if text.startswith(name):
            return python_type
    raise TypeError(f"unsupported option type {text} for {field.name}")


def _type_words(field: dataclasses.Field) -> str:
    words = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[_python_type(field)]
    return words + (" (or unset)" if _optional(field) else "")


def option_type(name: str) -> type:
    """The Python type of option ``name`` (bool, int, float or str), for building CLI options."""
    return _python_type(FIELDS[name])


def is_optional(name: str) -> bool:
    """True when option ``name`` may be left unset (``None``)."""
    return _optional(FIELDS[name])


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a TOML options file into ``{field_name: value}``.

    Keys are the option names, with ``-`` or ``_`` (``hidden-size`` or ``hidden_size``); a
    ``[train]`` table may hold them instead of the top level.
    Raises:
        ConfigError: unreadable file, invalid TOML, unknown key or a nested table.
    """
    path = Path(path)
    text = decode_utf8(read_user_file(path, "config file", ConfigError), f"config file {path}", ConfigError)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    if set(document) == {"train"} and isinstance(document["train"], dict):
        document = document["train"]
    values: dict[str, Any] = {}
    for key, value in document.items():
        name = key.replace("-", "_")
        if name not in FIELDS:
            raise ConfigError(f"config file {path}: unknown option {key!r}; options are the flags of "
                              "'translate train --help' without the leading dashes")
        if isinstance(value, (dict, list)):
            raise ConfigError(f"config file {path}: option {key!r} must be a single value, got {value!r}")
        if name in values:
            raise ConfigError(f"config file {path}: option {key!r} is given twice")
        values[name] = value
    return values


def build_config(file_values: Mapping[str, Any] | None = None, flag_values: Mapping[str, Any] | None = None,
                 base: TrainConfig | None = None) -> TrainConfig:
    """The one place a TrainConfig is assembled: defaults (or ``base``) <- file <- flags.

    Args:
        file_values: from :func:`read_config_file`.
        flag_values: only the flags the user actually gave (so a default never hides a file value).
        base: start from this config instead of the defaults (resume).
    Returns:
        a validated TrainConfig.
    Raises:
        ConfigError: a bad value or combination.
    """
    values = (base or TrainConfig()).to_dict()
    for source in (file_values or {}, flag_values or {}):
        for name, value in source.items():
            if name not in FIELDS:
                raise ConfigError(f"unknown option {name!r}")
            values[name] = value
    try:
        return TrainConfig(**values)
    except TypeError as error:  # pragma: no cover - FIELDS guards the keys
        raise ConfigError(str(error)) from None
