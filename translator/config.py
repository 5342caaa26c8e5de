"""``TrainConfig``: every option of ``translate train``, built once and validated in one place.

The options are declared once, as dataclass fields (:mod:`translator.options`) in three groups:
:class:`DataOptions`, :class:`translator.model_config.ModelConfig` (the network: its fields, defaults
and checks live there alone) and :class:`TrainingOptions`; :class:`TrainConfig` inherits all three.
Their metadata gives the help text and, for the CLI, the flag (``hidden_size`` -> ``--hidden-size``).
The same names are the keys of a ``--config FILE`` (TOML, with ``-`` or ``_``), so a file and the
command line speak the same language::

    # spa-eng.toml
    epochs = 8
    hidden-size = 256
    attention = "general"

Precedence: command-line flags, then the file, then the defaults below. :func:`build_config`
turns both sources into a frozen, validated :class:`TrainConfig`; every mistake is a one-line
:class:`ConfigError` naming the option, the bad value and what is allowed.

Defaults are the spa->eng recipe, sized for 30 minutes on a 2-core CPU (22:43 measured as two processes,
what ``translate train`` starts there with the mpi extra; 30:54-31:50 as one process of two BLAS threads)
with a fixed number of epochs (so the default run is reproducible; no time budget cuts it short):

- the usual architecture: a bidirectional GRU-256 encoder, a GRU-256 decoder with additive
  attention and input feeding, 256-wide embeddings, dropout 0.2;
- SentencePiece pieces (``--tokenizer sentencepiece``): one unigram model of 8,000 pieces per
  language (``--no-joint-vocab``), learnt on the training split. Pieces reached test BLEU 42.8 against
  40.8 for word-level vocabularies; separate models beat one joint model of 8,000 (which gives
  English only ~3,500 pieces: dev BLEU 38.5, and 38.7 / 39.2 / 39.5 with separate target models of
  4,000 / 6,000 / 8,000 pieces; see the README's ablation table); ``--tokenizer word`` keeps the
  rule-based words, whose rare ones become ``<unk>``, replaced by the attended source word (names);
- training pairs capped at 16 pieces a side (95% of the pairs; 12 words kept 94% with words); dev
  and test keep every length, so their scores describe real input;
- sources read lower-cased without ``¿ ¡`` (``--source-normalization casefold``) and, with probability
  0.2 per epoch, in a casually typed form (``--source-noise``: no final punctuation, no accents), so
  typed input translates like written (:mod:`translator.noise`);
- Adam at 3e-3 with batch 96: with separate models it reached test BLEU 44.38 and 43.86 in two runs
  (one and two BLAS threads) against 44.08 for batch 64, and a better dev BLEU after epochs 1-3;
  batch 128 (lr 4e-3) was worse (dev 34.13 against 35.81 after epoch 2). An epoch took as long as
  at batch 64 (465-472 s against 466-481 s, two threads), although the benchmark's products gain
  from it. Earlier, in one-epoch trials of word models on a 30k-pair sample, batch 64 had
  reached a dev loss of 2.86 against 3.33 for batch 128, and lr 3e-3 with dropout 0.2 lowered it to 2.73;
- label smoothing 0.1, gradient norm clipped at 5, early stopping after 3 epochs without a better
  dev BLEU;
- the learning rate halved at the start of every epoch from the second on (3e-3, 1.5e-3, 7.5e-4,
  3.75e-4). With a constant 3e-3 (halved only on a dev-loss plateau, which never came) the dev
  BLEU stalled at 29 after epoch 2 of the first full run, with the training loss flat.
"""

from __future__ import annotations

import dataclasses
import os
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from pathlib import Path
from typing import Any, Mapping

from translator.errors import ConfigError, decode_utf8, read_user_file
from translator.launch import MAX_PROCESSES
from translator.noise import SOURCE_NORMALIZATIONS
from translator.model_config import ModelConfig
from translator.subword import SUBWORD_TYPES, TOKENIZER_KINDS
from translator.options import Spell, check_types, flag_name, option, python_type, require

PLATEAU_METRICS = ("loss", "bleu")
BUILTIN_DATASETS = ("numbers",)  # generated in memory, no download (translator.numbers_corpus)

# Options that may differ from the saved configuration when resuming: they change when or where
# training runs, not what it computes.
RESUME_OVERRIDABLE = ("epochs", "max_time", "device", "keep_epochs", "curves", "shard_optimizer", "threads",
                      "processes")
MAX_THREADS = 1024

# --source-noise of a new run: the share of training sources replaced each epoch by a casually typed form.
DEFAULT_SOURCE_NOISE = 0.2

# The beam width of `translate run`/`evaluate` by default, also used for the test BLEU that ends
# training, so that number is what a user gets.
DEFAULT_BEAM = 5


@dataclasses.dataclass(frozen=True)
class DataOptions:
    """The data group of :class:`TrainConfig`: where the pairs come from, how they are split and filtered."""

    dataset: str = option("spa-eng", "catalogue dataset to train on (downloaded on first use), or 'numbers' "
                          "for the built-in Spanish<->English numbers corpus", "data", metavar="NAME")
    data: str | None = option(None, "train on this TSV/zip of 'english<TAB>other' pairs instead of a "
                              "catalogue dataset", "data", metavar="PATH")
    data_member: str | None = option(None, "the member of a --data zip to read (default: its only .txt besides "
                                     "_about.txt)", "data", metavar="NAME")
    data_dir: str | None = option(None, "where datasets are cached/downloaded (default: $TRANSLATE_DATA_DIR, "
                                  "else datasets/)", "data", metavar="DIR")
    reverse: bool = option(False, "translate English -> other (the file's first column becomes the source)", "data")
    source_column: int = option(1, "0-based column of the source sentence in the data file", "data")
    target_column: int = option(0, "0-based column of the target sentence in the data file", "data")
    max_pairs: int | None = option(None, "use only the first N lines of the data (quick experiments)", "data")
    max_length: int = option(16, "drop TRAINING pairs whose source or target has more tokens than this "
                             "(dev and test keep every length)", "data")
    min_freq: int = option(2, "vocabulary: keep tokens seen at least this often in the training split", "data")
    max_vocab_size: int | None = option(None, "vocabulary: at most this many entries per language "
                                        "(specials included)", "data")
    dev_size: int = option(2000, "pairs held out for dev loss/BLEU each epoch", "data")
    test_size: int = option(2000, "pairs held out for the final test BLEU (saved as test.tsv)", "data")
    strict: bool = option(False, "stop at the first malformed data line instead of skipping it", "data")
    tokenizer: str = option("sentencepiece", "word: rule-based words (rare ones become <unk>); sentencepiece: subword "
                            "pieces learnt on the training split (see translator/subword.py)", "data",
                            choices=TOKENIZER_KINDS)
    vocab_size: int = option(8000, "sentencepiece: pieces per model (an upper bound on small data); --min-freq and "
                             "--max-vocab-size apply to the word tokenizer only", "data")
    joint_vocab: bool = option(False, "sentencepiece: one model for source and target text (off: one each)", "data")
    target_vocab_size: int | None = option(None, "sentencepiece with --no-joint-vocab: pieces of the target model "
                                           "(unset: --vocab-size; set: --vocab-size sizes the source model only). "
                                           "The target vocabulary sets the output layer, the largest product of a "
                                           "step",
                                           "data")
    subword_type: str = option("unigram", "sentencepiece: the subword algorithm", "data", choices=SUBWORD_TYPES)
    source_normalization: str = option("casefold", "what the model does to every source text, in training and in "
                                       "translate run/evaluate/tune alike: casefold: lower case and no opening ¿ ¡ "
                                       "(practically no meaning is lost), so 'Hola' and 'hola' are one input; "
                                       "none: read sources as written. The English output keeps its case either way",
                                       "data", choices=tuple(SOURCE_NORMALIZATIONS))
    source_noise: float = option(DEFAULT_SOURCE_NOISE, "each epoch, train on a casually typed form of each source "
                                 "with this probability: a uniformly random non-empty mix of the noise kinds that "
                                 "--source-normalization does not already remove (casefold: no final . ! ? … and "
                                 "no accents; none: also lower case, and no ¿ ¡ with the final marks); see "
                                 "translator/noise.py. So typed input translates like written (0: off)", "data")


@dataclasses.dataclass(frozen=True)
class TrainingOptions:
    """The training group of :class:`TrainConfig`: the optimiser, its schedule, when to stop, where to run."""

    epochs: int = option(4, "training epochs (fixed, so the default run is reproducible)", "training")
    batch_size: int = option(96, "sentence pairs per batch", "training")
    max_tokens: int = option(4096, "at most this many tokens a side per batch, padding included: batches of long "
                             "pairs hold fewer pairs (bounds memory; must exceed --max-length)", "training")
    lr: float = option(3e-3, "Adam learning rate", "training")
    clip: float = option(5.0, "clip the global gradient norm to this (0: no clipping)", "training")
    label_smoothing: float = option(0.1, "label smoothing of the training loss", "training")
    teacher_forcing: float = option(1.0, "probability of feeding the reference (not the model's prediction) "
                                    "as the next decoder input", "training")
    lr_decay: float = option(0.5, "multiply the learning rate by this when the dev metric stops improving "
                             "(1: never)", "training")
    lr_patience: int = option(0, "epochs without dev improvement before the learning rate decays", "training")
    lr_decay_start: int = option(2, "from this epoch on, multiply the learning rate by --lr-decay at the start of "
                                 "every epoch, whatever the dev metric (0: decay only on a plateau)", "training")
    plateau_metric: str = option("loss", "dev metric watched for learning-rate decay", "training",
                                 choices=PLATEAU_METRICS)
    early_stopping: int = option(3, "stop after this many epochs without a better dev BLEU (0: never)", "training")
    keep_epochs: int = option(0, "keep the weights of the last K epochs (epoch-NNN.npz) for 'translate average' "
                              "(0: none)", "training")
    curves: bool = option(True, "after each epoch draw curves.png (losses, dev BLEU, learning rate) in --model "
                          "when matplotlib is installed", "training")
    max_time: float | None = option(None, "stop (and save) after this many seconds of training", "training")
    seed: int = option(1, "random seed: the same seed gives the same model", "training")
    device: str = option("cpu", "cpu or cuda", "training", metavar="DEVICE")
    threads: int | None = option(None, "BLAS threads for CPU work; unset: $OPENBLAS_NUM_THREADS if set, else auto "
                                 "(the idle cores). The count used is saved with the run and --resume reuses it: "
                                 "results depend on it in the last bits", "training")
    processes: int | None = option(None, "train as this many data-parallel processes (MPI ranks that train starts "
                                   "with mpiexec; needs the mpi extra); unset: $TRANSLATE_PROCESSES if set, else auto: "
                                   "2 on the CPU where two cores are idle and MPI is installed, else 1. Under "
                                   "'mpiexec -n N' the launcher's N decides", "training")
    shard_optimizer: bool = option(True, "under 'mpiexec -n N' on the CPU: each rank clips and updates only its 1/N "
                                   "of the parameters (reduce-scatter, Adam, all-gather) instead of all of them "
                                   "after an all-reduce; the same result (off: the unsharded step)", "training")


@dataclasses.dataclass(frozen=True)
class TrainConfig(TrainingOptions, ModelConfig, DataOptions):
    """All options of a training run: the data, model and training groups, in that order.

    The model group IS :class:`ModelConfig` (inherited: its fields, defaults and checks are declared
    once, there). Build a TrainConfig with :func:`build_config` (or directly, in tests); it is
    validated on construction. Every field is also a CLI flag (``--field-name``) and a TOML key of
    ``--config FILE``.
    """

    def validate(self, spell: Spell = flag_name) -> "TrainConfig":
        """Raise ConfigError for the first bad value or impossible combination (one line, names the flag)."""
        check_types(self, dataclasses.fields(DataOptions) + dataclasses.fields(TrainingOptions), spell)
        require(self.source_column >= 0, "source_column", self.source_column, ">= 0", spell)
        require(self.target_column >= 0, "target_column", self.target_column, ">= 0", spell)
        if self.source_column == self.target_column:
            raise ConfigError(f"{spell('source_column')} and {spell('target_column')} must differ, both are "
                              f"{self.source_column}")
        require(self.max_pairs is None or self.max_pairs >= 1, "max_pairs", self.max_pairs, ">= 1", spell)
        require(self.max_length >= 1, "max_length", self.max_length, ">= 1", spell)
        require(self.min_freq >= 1, "min_freq", self.min_freq, ">= 1", spell)
        require(self.max_vocab_size is None or self.max_vocab_size >= 5, "max_vocab_size", self.max_vocab_size,
                ">= 5 (4 special tokens and at least one word)", spell)
        require(self.dev_size >= 1, "dev_size", self.dev_size, ">= 1 (dev BLEU drives early stopping)", spell)
        require(self.test_size >= 1, "test_size", self.test_size, ">= 1", spell)
        require(self.vocab_size >= 8, "vocab_size", self.vocab_size, ">= 8", spell)
        require(self.target_vocab_size is None or self.target_vocab_size >= 8, "target_vocab_size",
                self.target_vocab_size, ">= 8", spell)
        if self.target_vocab_size is not None and (self.joint_vocab or self.tokenizer != "sentencepiece"):
            raise ConfigError(f"{spell('target_vocab_size')} sizes a separate target model: turn "
                              f"{spell('joint_vocab')} off (--no-joint-vocab) with {spell('tokenizer')} "
                              f"sentencepiece, or drop it")
        require(0.0 <= self.source_noise <= 1.0, "source_noise", self.source_noise, "in [0, 1]", spell)
        if self.data is not None and self.dataset != FIELDS["dataset"].default:
            raise ConfigError(f"{spell('data')} and {spell('dataset')} both given ({self.data!r}, "
                              f"{self.dataset!r}): choose one")
        if self.data_member is not None and self.data is None:
            raise ConfigError(f"{spell('data_member')} names a member of the {spell('data')} zip: give "
                              f"{spell('data')} too")

        super().validate(spell)  # the model group

        require(self.epochs >= 1, "epochs", self.epochs, ">= 1", spell)
        require(self.batch_size >= 1, "batch_size", self.batch_size, ">= 1", spell)
        require(self.max_tokens > self.max_length, "max_tokens", self.max_tokens,
                f"> {spell('max_length')} ({self.max_length}): a pair that long, with its end token, fills a batch",
                spell)
        require(self.lr > 0.0, "lr", self.lr, "> 0", spell)
        require(self.clip >= 0.0, "clip", self.clip, ">= 0 (0 turns clipping off)", spell)
        require(0.0 <= self.label_smoothing < 1.0, "label_smoothing", self.label_smoothing, "in [0, 1)", spell)
        require(0.0 <= self.teacher_forcing <= 1.0, "teacher_forcing", self.teacher_forcing, "in [0, 1]", spell)
        require(0.0 < self.lr_decay <= 1.0, "lr_decay", self.lr_decay, "in (0, 1]", spell)
        require(self.lr_patience >= 0, "lr_patience", self.lr_patience, ">= 0", spell)
        require(self.lr_decay_start >= 0, "lr_decay_start", self.lr_decay_start, ">= 0 (0: only on a plateau)",
                spell)
        require(self.early_stopping >= 0, "early_stopping", self.early_stopping, ">= 0 (0 turns it off)", spell)
        require(self.keep_epochs >= 0, "keep_epochs", self.keep_epochs, ">= 0 (0 keeps none)", spell)
        require(self.max_time is None or self.max_time > 0, "max_time", self.max_time, "> 0 seconds", spell)
        require(self.seed >= 0, "seed", self.seed, ">= 0", spell)
        require(self.threads is None or 1 <= self.threads <= MAX_THREADS, "threads", self.threads,
                f"from 1 to {MAX_THREADS} (unset: auto)", spell)
        require(self.processes is None or 1 <= self.processes <= MAX_PROCESSES, "processes", self.processes,
                f"from 1 to {MAX_PROCESSES} (unset: auto)", spell)
        device = self.device.lower()
        require(device == "cpu" or device == "cuda" or device.startswith("cuda:"), "device", self.device,
                "cpu or cuda", spell)
        return self

    # ---------------------------------------------------------------- conversions
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
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(ModelConfig)}

    def model_config(self) -> ModelConfig:
        """The network part of this config, as the ModelConfig the model is built from and saved with."""
        return ModelConfig(**self.model_options())


FIELDS: dict[str, dataclasses.Field] = {field.name: field for field in dataclasses.fields(TrainConfig)}


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
            if python_type(FIELDS[name]) is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)  # 3 in a TOML file means 3.0
            values[name] = value
    try:
        return TrainConfig(**values)
    except TypeError as error:  # pragma: no cover - FIELDS guards the keys
        raise ConfigError(str(error)) from None
