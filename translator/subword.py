"""Tokenizers: the word tokenizer or SentencePiece subwords, behind one small interface.

A tokenizer turns raw text into token strings and back: ``tokenize(text) -> list[str]`` and
``detokenize(tokens) -> str``. Two kinds (``--tokenizer``):

- ``word`` (:class:`WordTokenizer`): :mod:`translator.tokenize`'s rule-based words and punctuation;
  rare words become ``<unk>``, which ``translate run`` replaces by the attended source word
  (``replaces_unknowns``);
- ``sentencepiece`` (:class:`SentencePieceTokenizer`): a SentencePiece unigram (default) or BPE
  model of ``--vocab-size`` pieces, trained on the TRAINING split only, in memory, single-threaded
  and seeded, so the same data and options give the same model byte for byte (a resumed run reads
  the saved one). Its detokenisation (SentencePiece's decoding: ``▁`` marks a space) restores the spaces exactly.

Normalisation: text goes through :func:`translator.tokenize.normalize` first (NFC, zero-width
characters removed, whitespace runs collapsed to one space and stripped, in-word ``’`` -> ``'``);
SentencePiece's own normaliser is off (``identity``), so ``detokenize(tokenize(s)) == normalize(s)``
for every sentence (all 231,928 of spa-eng, with a model trained on 1/40 of them): a character never
seen in training comes back as a piece of its own, which only the model's vocabulary turns into
``<unk>``. A ``<unk>`` the model writes is dropped by :meth:`SentencePieceTokenizer.detokenize`
(SentencePiece would print ``⁇``).

:class:`Tokenizers` is the pair a model uses (source, target; one model when the vocabulary is
joint), with how it is saved in a model directory: ``sentencepiece.model`` (joint)
or ``source.model`` + ``target.model``, written atomically, described by the ``tokenizer`` entry of
``config.json``. A directory without that entry is word-level (models trained before subwords).

Source normalisation (``--source-normalization``): with ``casefold`` the SOURCE tokenizer is a
:class:`NormalizingTokenizer` that puts every text through :func:`translator.noise.casefold_source`
(lower case, no ``¿ ¡``) before tokenizing, so every path that tokenizes a source (training data,
dev and test, ``translate run``/``evaluate``/``tune``, the SentencePiece training text) reads the
same normal form; the target side is never normalised. The entry's ``source_normalization`` records
it; an entry without one (models trained before it) means ``none``: sources read as they are.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import io
import os
from pathlib import Path
from typing import Iterable, Sequence

from tinygrad_rnn.serialization import atomic_open
from translator import noise
from translator.errors import CheckpointError, DataError
from translator.tokenize import detokenize, normalize, tokenize
from translator.vocabulary import UNK_TOKEN

TOKENIZER_KINDS = ("word", "sentencepiece")
SUBWORD_TYPES = ("unigram", "bpe")
JOINT_FILE = "sentencepiece.model"
SOURCE_FILE = "source.model"
TARGET_FILE = "target.model"
SPACE = "\u2581"  # "▁", SentencePiece's word-boundary mark


class WordTokenizer:
    """The rule-based word tokenizer (:mod:`translator.tokenize`)."""

    kind = "word"
    replaces_unknowns = True

    def tokenize(self, text: str) -> list[str]:
        return tokenize(text)

    def tokenize_all(self, texts: Sequence[str]) -> list[list[str]]:
        """``[tokenize(text) for text in texts]``."""
        return [tokenize(text) for text in texts]

    def detokenize(self, tokens: Iterable[str]) -> str:
        return detokenize(tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WordTokenizer)


class SentencePieceTokenizer:
    """A trained SentencePiece model: ``SentencePieceTokenizer(model_bytes)``; build one with :meth:`train`."""

    kind = "sentencepiece"
    replaces_unknowns = False  # a subword <unk> is a character never seen in training, not a name

    def __init__(self, model: bytes):
        import sentencepiece  # noqa: PLC0415 - only subword models need it

        self.model = bytes(model)
        self.processor = sentencepiece.SentencePieceProcessor()
        try:
            self.processor.LoadFromSerializedProto(self.model)
        except (RuntimeError, OSError) as error:
            raise ValueError(f"not a SentencePiece model ({error})") from None

    @classmethod
    def train(cls, sentences: Iterable[str], vocab_size: int, model_type: str = "unigram",
              seed: int = 1) -> "SentencePieceTokenizer":
        """Train on ``sentences`` (raw text, normalised here) in memory; deterministic in its arguments.

        ``vocab_size`` is an upper bound: on small data the model keeps fewer pieces
        (``hard_vocab_limit=False``) instead of failing.
        """
        import sentencepiece  # noqa: PLC0415

        if model_type not in SUBWORD_TYPES:
            raise ValueError(f"subword type must be one of {', '.join(SUBWORD_TYPES)}, got {model_type!r}")
        texts = [text for text in map(normalize, sentences) if text]
        if not texts:
            raise DataError("no training text to learn a SentencePiece model from")
        sentencepiece.set_random_generator_seed(seed % 2 ** 32)  # its seed is a uint32; --seed may be larger
        writer = io.BytesIO()
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(texts), model_writer=writer, vocab_size=vocab_size, model_type=model_type,
            character_coverage=1.0, num_threads=1, hard_vocab_limit=False, normalization_rule_name="identity",
            unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1, unk_piece=UNK_TOKEN, minloglevel=2,
            input_sentence_size=0, shuffle_input_sentence=False)
        return cls(writer.getvalue())

    def tokenize(self, text: str) -> list[str]:
        return self.processor.encode(normalize(text), out_type=str)

    def tokenize_all(self, texts: Sequence[str]) -> list[list[str]]:
        """``[tokenize(text) for text in texts]`` in one call into SentencePiece (no Python call per sentence).

        One thread, so the call costs the same wherever it runs (the pieces do not depend on it).
        """
        return self.processor.encode([normalize(text) for text in texts], out_type=str, num_threads=1)

    def detokenize(self, tokens: Iterable[str]) -> str:
        # SentencePiece's decoding rule for these settings (identity normalisation, a dummy prefix):
        # "▁" marks a space; written out so pieces outside the model (an unseen character) decode too
        text = "".join(token for token in tokens if token != UNK_TOKEN).replace(SPACE, " ")
        return " ".join(text.split())

    def __len__(self) -> int:
        return self.processor.get_piece_size()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SentencePieceTokenizer) and self.model == other.model


class NormalizingTokenizer:
    """A source tokenizer that normalises the text first: ``NormalizingTokenizer(inner, "casefold")``.

    ``tokenize(text) == inner.tokenize(normalize(text))`` with ``normalize`` the function
    :data:`translator.noise.SOURCE_NORMALIZATIONS` names; everything else is ``inner``'s.
    """

    def __init__(self, inner: "WordTokenizer | SentencePieceTokenizer", normalization: str):
        if normalization not in noise.SOURCE_NORMALIZATIONS:
            raise ValueError(f"source normalization must be one of {', '.join(noise.SOURCE_NORMALIZATIONS)}, "
                             f"got {normalization!r}")
        self.inner, self.normalization = inner, normalization
        self.normalize = noise.SOURCE_NORMALIZATIONS[normalization]

    @property
    def kind(self) -> str:
        return self.inner.kind

    @property
    def replaces_unknowns(self) -> bool:
        return self.inner.replaces_unknowns

    def tokenize(self, text: str) -> list[str]:
        return self.inner.tokenize(self.normalize(text))

    def tokenize_all(self, texts: Sequence[str]) -> list[list[str]]:
        """``[tokenize(text) for text in texts]``."""
        return self.inner.tokenize_all([self.normalize(text) for text in texts])

    def detokenize(self, tokens: Iterable[str]) -> str:
        return self.inner.detokenize(tokens)

    def typed_tokens(self, text: str, tokens: Sequence[str]) -> list[str]:
        """``tokens`` (``tokenize(text)``, or its start) spelt as ``text`` has them: what ``<unk>`` replacement copies.

        ``casefold`` only lowercases and drops ``¿ ¡`` (always tokens of their own for the word
        tokenizer), so ``inner``'s tokens of the text as typed, without ``¿ ¡``, line up one to one
        with ``tokens``: ``typed_tokens("¿Vio a Tom?", ["vio", "a", "tom", "?"]) == ["Vio", "a", "Tom", "?"]``.
        From the first token where they do not (lowercasing that changes the tokenization, e.g. ``EE.UU.``
        is one token but ``ee.uu.`` four), ``tokens`` themselves come back.
        """
        typed = [token for token in self.inner.tokenize(text) if token not in _OPENING_TOKENS]
        aligned = 0
        while aligned < min(len(typed), len(tokens)) and self.normalize(typed[aligned]) == tokens[aligned]:
            aligned += 1
        return typed[:aligned] + list(tokens[aligned:])

    def __len__(self) -> int:
        return len(self.inner)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, NormalizingTokenizer) and self.normalization == other.normalization
                and self.inner == other.inner)


_OPENING_TOKENS = frozenset({"¿", "¡"})
Tokenizer = WordTokenizer | SentencePieceTokenizer | NormalizingTokenizer


def _model_of(tokenizer: Tokenizer) -> Tokenizer:
    """The tokenizer itself, or the one a :class:`NormalizingTokenizer` wraps (what is saved)."""
    return tokenizer.inner if isinstance(tokenizer, NormalizingTokenizer) else tokenizer


@dataclasses.dataclass
class Tokenizers:
    """The source and target tokenizers of one model (one model when ``joint``).

    ``source_normalization`` (a name of :data:`translator.noise.SOURCE_NORMALIZATIONS`): other than
    ``none``, ``source`` is wrapped in a :class:`NormalizingTokenizer` on construction (give the
    plain tokenizer); ``target`` is never normalised.
    """

    source: Tokenizer
    target: Tokenizer
    joint: bool = False
    source_normalization: str = "none"

    def __post_init__(self):
        plain = _model_of(self.source)
        self.source = (plain if self.source_normalization == "none"
                       else NormalizingTokenizer(plain, self.source_normalization))

    @classmethod
    def word(cls, source_normalization: str = "none") -> "Tokenizers":
        tokenizer = WordTokenizer()
        return cls(tokenizer, tokenizer, joint=True, source_normalization=source_normalization)

    @property
    def source_model(self) -> Tokenizer:
        """The source tokenizer without its normalisation (what is saved; ``target`` itself when joint)."""
        return _model_of(self.source)

    def typed_source_tokens(self, text: str, tokens: Sequence[str]) -> list[str]:
        """The source ``tokens`` of ``text`` as typed, for ``<unk>`` replacement (see :meth:`NormalizingTokenizer.typed_tokens`)."""
        if isinstance(self.source, NormalizingTokenizer):
            return self.source.typed_tokens(text, tokens)
        return list(tokens)

    @property
    def kind(self) -> str:
        return self.source.kind

    @classmethod
    def train(cls, pairs: Sequence[tuple[str, str]], kind: str = "word", vocab_size: int = 8000,
              joint: bool = True, subword_type: str = "unigram", seed: int = 1,
              extra_sources: Sequence[str] = (), source_normalization: str = "none",
              target_vocab_size: int | None = None) -> "Tokenizers":
        """The tokenizers of a new run, learnt from the training ``pairs`` (``extra_sources``: more source text).

        ``vocab_size`` pieces for the joint model, or for each of the separate ones
        (``target_vocab_size``, when given, for the target model).

        A SentencePiece model learns the sources in their normal form (``source_normalization``), as
        the model will read them.
        """
        if kind not in TOKENIZER_KINDS:
            raise ValueError(f"tokenizer must be one of {', '.join(TOKENIZER_KINDS)}, got {kind!r}")
        if source_normalization not in noise.SOURCE_NORMALIZATIONS:
            raise ValueError(f"source normalization must be one of {', '.join(noise.SOURCE_NORMALIZATIONS)}, "
                             f"got {source_normalization!r}")
        if kind == "word":
            return cls.word(source_normalization)
        normalize = noise.SOURCE_NORMALIZATIONS[source_normalization]
        sources = [normalize(source) for source, _ in pairs] + [normalize(source) for source in extra_sources]
        targets = [target for _, target in pairs]
        if joint:
            if target_vocab_size is not None:
                raise ValueError("target_vocab_size sizes a separate target model; the joint model has vocab_size")
            model = SentencePieceTokenizer.train(sources + targets, vocab_size, subword_type, seed)
            return cls(model, model, joint=True, source_normalization=source_normalization)
        # The two models learn at once, in two threads: SentencePiece's trainer releases the GIL, and
        # each run is deterministic (one trainer thread), so the bytes are those of one after the other
        # (spa-eng: 5.6 s against 10.5 s on 2 cores).
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            target_model = pool.submit(SentencePieceTokenizer.train, targets, target_vocab_size or vocab_size,
                                       subword_type, seed)
            source_model = SentencePieceTokenizer.train(sources, vocab_size, subword_type, seed)
            return cls(source_model, target_model.result(), joint=False, source_normalization=source_normalization)

    # ------------------------------------------------------------ in a model directory
    def files(self) -> dict[str, Tokenizer]:
        if self.kind == "word":
            return {}
        source = self.source_model
        return {JOINT_FILE: source} if self.joint else {SOURCE_FILE: source, TARGET_FILE: self.target}

    def to_dict(self) -> dict:
        """The ``tokenizer`` entry of ``config.json``."""
        return {"kind": self.kind, "joint": self.joint, "files": sorted(self.files()),
                "source_normalization": self.source_normalization}

    def save(self, model_dir: str | os.PathLike) -> None:
        """Write the model files (none for words) into ``model_dir``, atomically, removing stale ones."""
        model_dir = Path(model_dir)
        for name in (JOINT_FILE, SOURCE_FILE, TARGET_FILE):
            if name not in self.files():
                (model_dir / name).unlink(missing_ok=True)
        for name, tokenizer in self.files().items():
            with atomic_open(model_dir / name, "wb") as handle:
                handle.write(tokenizer.model)

    @classmethod
    def load(cls, model_dir: str | os.PathLike, entry: dict | None) -> "Tokenizers":
        """The tokenizers described by ``entry`` (``config.json``'s ``tokenizer``; None: word-level).

        An entry without ``source_normalization`` (and no entry) reads sources as they are (``none``).

        Raises:
            CheckpointError: an unknown kind or normalisation, or a missing or corrupt model file.
        """
        if entry is None:
            return cls.word()
        kind = entry.get("kind") if isinstance(entry, dict) else None
        normalization = entry.get("source_normalization", "none") if isinstance(entry, dict) else "none"
        if normalization not in noise.SOURCE_NORMALIZATIONS:
            raise CheckpointError(f"{model_dir}: unknown source normalization {normalization!r} in config.json (this "
                                  f"version reads {', '.join(noise.SOURCE_NORMALIZATIONS)}); retrain the model")
        if kind == "word":
            return cls.word(normalization)
        if kind != "sentencepiece":
            raise CheckpointError(f"{model_dir}: unknown tokenizer {kind!r} in config.json (this version reads "
                                  f"{', '.join(TOKENIZER_KINDS)}); retrain the model")
        model_dir = Path(model_dir)

        def read(name: str) -> SentencePieceTokenizer:
            path = model_dir / name
            try:
                return SentencePieceTokenizer(path.read_bytes())
            except FileNotFoundError:
                raise CheckpointError(f"{path} is missing: the model's tokenizer is gone; retrain the model") from None
            except ValueError as error:
                raise CheckpointError(f"{path} is corrupt ({error}); retrain the model") from None

        if entry.get("joint", True):
            model = read(JOINT_FILE)
            return cls(model, model, joint=True, source_normalization=normalization)
        return cls(read(SOURCE_FILE), read(TARGET_FILE), joint=False, source_normalization=normalization)
