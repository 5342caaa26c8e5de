"""From a :class:`TrainConfig` to encoded training data: read, split, tokenise, build vocabularies.

The steps, each a pure function of the configuration (so a resumed run rebuilds exactly the data it
was trained on, and checks that with a fingerprint):

1. read the pairs: a catalogue dataset (downloaded on first use), ``--data FILE``, or the built-in
   numbers corpus; malformed lines are reported by line number (fatal with ``--strict``);
2. split them into train/dev/test, grouped so that no sentence is in two splits (seeded);
3. learn the tokenizers from the training split (``--tokenizer``: words need nothing to learn,
   SentencePiece models are trained on the training pairs, :mod:`translator.subword`), or reuse the
   saved ones when resuming; the source tokenizer applies ``--source-normalization`` (``casefold``:
   lower case, no ``¿ ¡``) to every source it reads, here and in ``translate run``;
4. tokenise; drop *training* pairs longer than ``max_length`` tokens (words or subword pieces;
   dev and test keep every length, so their scores describe the natural distribution of sentences;
   only a dev or test pair longer than ``DEFAULT_MAX_SOURCE_LENGTH`` (256) tokens is treated as
   ``translate run`` treats such input: its source is truncated for dev/test BLEU, and a dev pair
   that long is left out of the dev loss; the log counts them);
5. build the vocabularies from the kept training pairs (words: ``min_freq``, ``max_vocab_size``;
   pieces: every piece seen), or reuse the saved ones when resuming;
6. encode: source and target token ids, each followed by EOS (``Vocabulary.encode``).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import gc
import hashlib
from typing import Callable, Iterator, Sequence

import numpy as np

from translator import catalogue, inference, noise, numbers_corpus
from translator.batching import filter_by_length
from translator.config import TrainConfig
from translator.corpus import read_pairs
from translator.errors import DataError
from translator.splits import split_pairs
from translator.subword import Tokenizers
from translator.vocabulary import SPECIAL_TOKENS, Vocabulary

Pair = tuple[str, str]
Example = tuple[list[int], list[int]]
NUMBERS_CORPUS_SIZE = 20_000
NUMBERS_CORPUS_MAX = 1_000_000  # every number below a million: what --max-pairs can ask of the numbers corpus


@dataclasses.dataclass
class PreparedData:
    """Everything training needs about the data.

    Attributes:
        train_pairs, dev_pairs, test_pairs: raw ``(source, target)`` text of each split.
        train_examples: encoded training pairs within ``max_length`` (source ids + EOS, target ids + EOS).
        dev_examples: encoded dev pairs (for the dev loss), all but those with a side longer than
            ``DEFAULT_MAX_SOURCE_LENGTH`` tokens.
        source_vocab, target_vocab: the vocabularies.
        tokenizers: the source and target tokenizers (words or SentencePiece).
        info: a JSON-able description (where from, fingerprint, counts) saved in config.json.
    """

    train_pairs: list[Pair]
    dev_pairs: list[Pair]
    test_pairs: list[Pair]
    train_examples: list[Example]
    dev_examples: list[Example]
    source_vocab: Vocabulary
    target_vocab: Vocabulary
    info: dict
    tokenizers: Tokenizers = dataclasses.field(default_factory=Tokenizers.word)


def fingerprint(pairs: Sequence[Pair]) -> str:
    """A short hash of the pairs' text and order: equal data, equal fingerprint."""
    digest = hashlib.sha256()
    for source, target in pairs:
        digest.update(source.encode("utf-8") + b"\t" + target.encode("utf-8") + b"\n")
    return digest.hexdigest()[:16]


def read_config_pairs(config: TrainConfig, log: Callable[[str], None]) -> tuple[list[Pair], str, list[int]]:
    """The sentence pairs named by ``config``: ``(pairs, description, skipped_line_numbers)``.

    Raises:
        DataError: unknown dataset, failed download, unreadable or malformed (strict) data.
    """
    if config.data is None and config.dataset == "numbers":
        count = min(config.max_pairs or NUMBERS_CORPUS_SIZE, NUMBERS_CORPUS_MAX)
        pairs = numbers_corpus.generate_pairs(count, seed=0)
        if config.reverse:
            pairs = [(target, source) for source, target in pairs]
        return pairs, f"built-in numbers corpus ({count} pairs)", []
    if config.data is not None:
        path, member = config.data, config.data_member
    else:
        info = catalogue.get_dataset(config.dataset)
        path, member = catalogue.fetch(config.dataset, config.data_dir), info.member
    result = read_pairs(path, source_column=config.source_column, target_column=config.target_column,
                        reverse=config.reverse, strict=config.strict, member=member, max_lines=config.max_pairs)
    log(result.summary())
    if not result.pairs:
        raise DataError(f"{result.source} holds no usable sentence pairs")
    return result.pairs, result.source, result.skipped_line_numbers


def _within(pair: Pair, max_tokens: int, tokenizers: Tokenizers) -> bool:
    """Neither side of ``pair`` would be truncated by ``translate run --max-source-length max_tokens``."""
    return not any(inference.truncated_tokens(text, max_tokens, tokenizer.tokenize)[1]
                   for text, tokenizer in zip(pair, (tokenizers.source, tokenizers.target)))


def encode_pairs(pairs: Sequence[Pair], source_vocab: Vocabulary, target_vocab: Vocabulary,
                 tokenizers: Tokenizers | None = None) -> list[Example]:
    """Token ids of each pair, source and target each followed by EOS (``tokenizers``: default words)."""
    tokenizers = tokenizers or Tokenizers.word()
    return [(source_vocab.encode(tokenizers.source.tokenize(source)),
             target_vocab.encode(tokenizers.target.tokenize(target))) for source, target in pairs]


def prepare(config: TrainConfig, log: Callable[[str], None],
            vocabularies: tuple[Vocabulary, Vocabulary] | None = None,
            tokenizers: Tokenizers | None = None) -> PreparedData:
    """Read, split, learn tokenizers, filter, build vocabularies (unless given) and encode; see the module docstring.

    Raises:
        DataError: bad data, or splits that do not fit in the data.
    """
    with _collector_paused():
        return _prepare(config, log, vocabularies, tokenizers)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off while the corpus becomes millions of small objects: its full passes over
    them, which free nothing (no cycles are made here), took 1.5 s of the spa-eng preparation's 28."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _prepare(config: TrainConfig, log: Callable[[str], None], vocabularies: tuple[Vocabulary, Vocabulary] | None,
             tokenizers: Tokenizers | None) -> PreparedData:
    pairs, description, skipped = read_config_pairs(config, log)
    if config.dev_size + config.test_size >= len(pairs):
        raise DataError(f"--dev-size {config.dev_size} + --test-size {config.test_size} leave no training pairs: "
                        f"the data has only {len(pairs)} pairs; lower them")
    splits = split_pairs(pairs, dev_size=config.dev_size, test_size=config.test_size, seed=config.seed)
    train_pairs, dev_pairs, test_pairs = splits.select(pairs)

    casual = noise.parse_spec("all")
    # the casually typed form of every training source: with --source-noise the subword model also
    # learns them, and the source vocabulary gets their pieces
    needed = (tokenizers is None and config.tokenizer != "word") or vocabularies is None
    casual_sources = ([noise.apply(source, casual) for source, _ in train_pairs]
                      if config.source_noise > 0 and needed else None)
    if tokenizers is None:
        extra = casual_sources if casual_sources is not None and config.tokenizer != "word" else []
        tokenizers = Tokenizers.train(train_pairs, config.tokenizer, config.vocab_size, config.joint_vocab,
                                      config.subword_type, config.seed, extra_sources=extra,
                                      source_normalization=config.source_normalization,
                                      target_vocab_size=config.target_vocab_size)
    tokenized_train = list(zip(tokenizers.source.tokenize_all([source for source, _ in train_pairs]),
                               tokenizers.target.tokenize_all([target for _, target in train_pairs])))
    kept = filter_by_length(tokenized_train, config.max_length)
    if not kept:
        raise DataError(f"no training pair has at most --max-length {config.max_length} tokens on both sides")
    if vocabularies is None:
        source_tokens = [tokenized_train[i][0] for i in kept]
        if casual_sources is not None:
            source_tokens += tokenizers.source.tokenize_all([casual_sources[i] for i in kept])
        # subword pieces are already a chosen inventory: keep every piece the training text uses
        min_freq, max_size = (config.min_freq, config.max_vocab_size) if tokenizers.kind == "word" else (1, None)
        source_vocab = Vocabulary.build(source_tokens, min_freq, max_size)
        target_vocab = Vocabulary.build((tokenized_train[i][1] for i in kept), min_freq, max_size)
        for side, vocabulary, column in (("source", source_vocab, 0), ("target", target_vocab, 1)):
            if len(vocabulary) <= len(SPECIAL_TOKENS):
                counts = collections.Counter(token for i in kept for token in tokenized_train[i][column])
                most = max(counts.values(), default=0)
                raise DataError(f"--min-freq {config.min_freq} leaves the {side} vocabulary without a single word: "
                                f"the most frequent {side} token appears {most} time(s) in the {len(kept)} training "
                                f"pairs; lower --min-freq (or use more data)")
    else:
        source_vocab, target_vocab = vocabularies
    train_examples = [(source_vocab.encode(tokenized_train[i][0]), target_vocab.encode(tokenized_train[i][1]))
                      for i in kept]
    limit = inference.DEFAULT_MAX_SOURCE_LENGTH
    dev_kept = [pair for pair in dev_pairs if _within(pair, limit, tokenizers)]
    test_over = sum(not _within(pair, limit, tokenizers) for pair in test_pairs)
    info = {
        "description": description,
        "fingerprint": fingerprint(pairs),
        "pairs": len(pairs),
        "skipped_lines": len(skipped),
        "train_pairs": len(train_pairs),
        "train_pairs_within_max_length": len(kept),
        "dev_pairs": len(dev_pairs),
        "dev_pairs_over_max_source_length": len(dev_pairs) - len(dev_kept),
        "test_pairs": len(test_pairs),
        "test_pairs_over_max_source_length": test_over,
        "source_vocab_size": len(source_vocab),
        "target_vocab_size": len(target_vocab),
        "tokenizer": tokenizers.kind,
    }
    log(f"split {len(pairs)} pairs: train {len(train_pairs)} ({len(kept)} within {config.max_length} tokens), "
        f"dev {len(dev_pairs)}, test {len(test_pairs)}; vocabularies: source {len(source_vocab)}, "
        f"target {len(target_vocab)}")
    if len(dev_kept) < len(dev_pairs) or test_over:
        log(f"over {limit} tokens: {len(dev_pairs) - len(dev_kept)} dev pair(s), left out of the "
            f"dev loss, and {test_over} test pair(s); their sources are truncated for dev and test BLEU")
    return PreparedData(
        train_pairs=[train_pairs[i] for i in kept], dev_pairs=dev_pairs, test_pairs=test_pairs,
        train_examples=train_examples, dev_examples=encode_pairs(dev_kept, source_vocab, target_vocab, tokenizers),
        source_vocab=source_vocab, target_vocab=target_vocab, info=info, tokenizers=tokenizers,
    )


def noised_examples(data: PreparedData, probability: float, seed: int, epoch: int) -> list[Example]:
    """The training examples of ``epoch`` with casually typed sources, each with ``probability``.

    A source that is drawn gets a random non-empty mix of the noise kinds that the tokenizers' source
    normalisation does not already remove (:func:`translator.noise.training_kinds`); the target never
    changes. Deterministic in ``(seed, epoch)``; ``probability`` 0 returns the examples unchanged.
    """
    if probability <= 0:
        return data.train_examples
    rng = np.random.default_rng([seed, epoch, 0x7E7])  # its own stream: the batch order's is (seed, epoch)
    drawn = rng.random(len(data.train_examples)) < probability
    examples = list(data.train_examples)
    kinds = noise.training_kinds(data.tokenizers.source_normalization)
    indices = np.flatnonzero(drawn)
    sources = [noise.random_variant(data.train_pairs[index][0], rng, kinds) for index in indices]
    for index, tokens in zip(indices, data.tokenizers.source.tokenize_all(sources)):
        examples[index] = (data.source_vocab.encode(tokens), examples[index][1])
    return examples
