"""``Translator``: a trained model with its vocabularies, turning sentences into sentences.

    translator = Translator.load("models/default")
    translator.translate(["¿Dónde está la estación?"])           # -> ["Where is the station?"]
    translator.translate(sentences, beam=5, nbest=3, return_details=True)

Pipeline per sentence: tokenize (the model's tokenizer: words or SentencePiece pieces,
:mod:`translator.subword`) -> source ids (``Vocabulary.encode``: + EOS, as in training) -> encode -> greedy or beam
search -> target tokens, with a word tokenizer each ``<unk>`` replaced by the source word it attended to most (so
names like "Tom" that the target vocabulary lacks pass through, spelt as typed even when the model reads its
source lower-cased: ``Tokenizers.typed_source_tokens``) -> detokenize. The source tokenizer applies the
model's source normalisation (``casefold``: lower case, no ``¿ ¡``; :mod:`translator.subword`) itself. Sentences are
sorted by length and translated in batches, so padding stays small; results come back in input
order. An empty (or blank) input line gives an empty output without running the model.

Memory is bounded whatever the input: a batch holds at most ``batch_size`` sentences and at most
``max_tokens`` source tokens counting padding, times the beam width
(:func:`translator.batching.cut_by_tokens`), and a
sentence longer than ``max_source_length`` tokens (or ``max_source_length * 64`` characters) is
truncated to its start, marked ``Translation.truncated`` (``translate run`` warns on stderr). Every
input still gets its output.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from tinygrad_rnn import backend, no_grad

from translator import checkpoint, footprint
from translator.batching import cut_by_tokens, pad_sequences
from translator.errors import CheckpointError
from translator.model import ModelConfig, Seq2Seq
from translator.search import (DEFAULT_LENGTH_PENALTY, DEFAULT_MAX_LENGTH_OFFSET, DEFAULT_MAX_LENGTH_RATIO,
                               Hypothesis, beam_search, greedy_search)
from translator.subword import Tokenizers
from translator.tokenize import tokenize
from translator.vocabulary import UNK_TOKEN, Vocabulary, encoder_tokens, source_words

DEFAULT_MAX_SOURCE_LENGTH = 256  # tokens of one input that are translated; the rest is cut (and reported)
DEFAULT_MAX_TOKENS = 8192  # source tokens, padding included, decoded together: 64 sentences of up to 128 tokens
DEFAULT_BATCH_SIZE = checkpoint.DECODE_BATCH_SIZE  # sentences decoded together (see there)
_CHARACTERS_PER_TOKEN = 64  # a line is cut to max_source_length * this many characters before tokenizing


@dataclasses.dataclass
class Translation:
    """One translation of one input sentence (what ``translate(..., return_details=True)`` gives).

    Attributes:
        text: the detokenised translation ("" for an empty input).
        target_tokens: its tokens, after ``<unk>`` replacement.
        source_tokens: the tokens the encoder read: the input's tokens then ``</s>``.
        score: the search's ranking score (log-probability / GNMT length penalty).
        log_prob: the model's log-probability of the output (EOS included when finished).
        attention: (len(target_tokens), len(source_tokens)) float32 weights, or None
            (a model without attention, or an empty input).
        truncated: the input was longer than ``max_source_length`` tokens: only its start was read.
    """

    text: str
    target_tokens: list[str]
    source_tokens: list[str]
    score: float
    log_prob: float
    attention: np.ndarray | None
    truncated: bool = False


def truncated_tokens(sentence: str, max_source_length: int | None = None,
                     tokenize: Callable[[str], list[str]] = tokenize) -> tuple[list[str], bool]:
    """The tokens of ``sentence`` that are translated, and whether it was truncated to get them.

    At most ``max_source_length`` tokens (default :data:`DEFAULT_MAX_SOURCE_LENGTH`) of
    ``tokenize`` (default: words); a line longer than ``max_source_length * 64`` characters is cut
    to that many before tokenizing, so a huge line costs no more than a long sentence.
    """
    if max_source_length is None:
        max_source_length = DEFAULT_MAX_SOURCE_LENGTH
    limit = max_source_length * _CHARACTERS_PER_TOKEN
    cut = len(sentence) > limit
    tokens = tokenize(sentence[:limit] if cut else sentence)
    return tokens[:max_source_length], cut or len(tokens) > max_source_length


def replace_unknowns(target_tokens: Sequence[str], attention: np.ndarray | None,
                     source_tokens: Sequence[str]) -> list[str]:
    """Replace each ``<unk>`` by the source word with the highest attention weight at that step.

    Args:
        target_tokens: output tokens; row i of ``attention`` belongs to token i.
        attention: (len(target_tokens), len(source_tokens)) weights, or None (nothing is replaced).
        source_tokens: the encoder's tokens; a trailing ``</s>`` is never copied.
    Returns:
        the tokens with ``<unk>`` replaced.
    """
    words = len(source_words(source_tokens))
    if attention is None or words == 0:
        return list(target_tokens)
    return [source_tokens[int(np.argmax(attention[i, :words]))] if token == UNK_TOKEN else token
            for i, token in enumerate(target_tokens)]


class Translator:
    """``Translator(model, source_vocab, target_vocab, device=None, tokenizers=None)``; usually built with :meth:`load`.

    ``tokenizers``: the model's :class:`translator.subword.Tokenizers` (default: words).

    The model is put in eval mode on ``device`` (default: where its weights are). Search options
    (``max_length_ratio``, ``max_length_offset``, ``length_penalty``) are attributes; see
    :mod:`translator.search`.
    """

    def __init__(self, model: Seq2Seq, source_vocab: Vocabulary, target_vocab: Vocabulary, device: str | None = None,
                 *, max_length_ratio: float = DEFAULT_MAX_LENGTH_RATIO,
                 max_length_offset: int = DEFAULT_MAX_LENGTH_OFFSET,
                 length_penalty: float = DEFAULT_LENGTH_PENALTY, tokenizers: Tokenizers | None = None):
        if len(source_vocab) != model.source_vocab_size or len(target_vocab) != model.target_vocab_size:
            raise ValueError(f"vocabulary sizes {len(source_vocab)}/{len(target_vocab)} do not match the model's "
                             f"{model.source_vocab_size}/{model.target_vocab_size}")
        self.model = model if device is None else model.to(device)
        self.source_vocab, self.target_vocab = source_vocab, target_vocab
        self.max_length_ratio, self.max_length_offset = max_length_ratio, max_length_offset
        self.length_penalty = length_penalty
        self.tokenizers = tokenizers or Tokenizers.word()

    @classmethod
    def load(cls, model_dir: str | os.PathLike, device: str = "cpu", weights: str | None = None) -> "Translator":
        """Load a model directory written by ``translate train`` (layout: :mod:`translator.checkpoint`).

        Args:
            model_dir: the ``--model`` directory.
            device: ``"cpu"`` or ``"cuda"``.
            weights: checkpoint file name inside ``model_dir``; default ``best.npz``, or ``last.npz``
                when training stopped before it wrote a best one.
        The length penalty is the one stored by ``translate tune`` (``config.json``'s ``decoding``),
        else :data:`translator.search.DEFAULT_LENGTH_PENALTY`.

        Raises:
            CheckpointError: missing directory or files, a corrupt or incompatible checkpoint (one line).
        """
        model_dir = Path(model_dir)
        document = checkpoint.read_config(model_dir)
        try:
            config = ModelConfig.from_dict(document["model"])
        except (TypeError, ValueError) as error:
            raise CheckpointError(f"{model_dir / checkpoint.CONFIG_FILE} describes an unusable model ({error}); "
                                  "retrain it with this version") from None
        source_vocab, target_vocab = checkpoint.load_vocabularies(model_dir)
        tokenizers = checkpoint.load_tokenizers(model_dir, document)
        checkpoint.check_vocabularies(model_dir, document, source_vocab, target_vocab)
        footprint.check_fits(config, len(source_vocab), len(target_vocab), training=False,
                             what=f"the model in {model_dir}")
        if weights is None:
            weights = checkpoint.BEST_FILE
            if not (model_dir / weights).exists() and (model_dir / checkpoint.LAST_FILE).exists():
                weights = checkpoint.LAST_FILE
        state = checkpoint.load_checkpoint(model_dir / weights)
        model = Seq2Seq(config, len(source_vocab), len(target_vocab))
        try:
            model.load_state_dict(state["model"])
        except (RuntimeError, TypeError, ValueError, AttributeError) as error:
            raise CheckpointError(f"{model_dir / weights} does not fit the model in {checkpoint.CONFIG_FILE} "
                                  f"({checkpoint.describe_load_error(error)}); retrain the model") from None
        model.eval()
        tuned = checkpoint.decoding_settings(document)  # the length penalty chosen by `translate tune`
        return cls(model, source_vocab, target_vocab, device=device, tokenizers=tokenizers,
                   length_penalty=tuned.get("alpha", DEFAULT_LENGTH_PENALTY))

    # ------------------------------------------------------------ translating
    def translate(self, sentences: Sequence[str], beam: int = 1, nbest: int = 1, replace_unk: bool = True,
                  batch_size: int = DEFAULT_BATCH_SIZE, return_details: bool = False, max_length: int | None = None,
                  max_tokens: int = DEFAULT_MAX_TOKENS, max_source_length: int | None = None):
        """Translate raw sentences.

        Args:
            sentences: N raw source sentences.
            beam: beam width; 1 is greedy search.
            nbest: translations per sentence (1 <= nbest <= beam).
            replace_unk: replace ``<unk>`` by the most-attended source word (word tokenizer only; a
                SentencePiece model's detokenisation drops ``<unk>``).
            batch_size: at most this many sentences decoded together.
            return_details: return :class:`Translation` lists instead of strings.
            max_length: absolute cap on output tokens (besides the limit relative to the source).
            max_tokens: at most this many source tokens (padding and EOS included) times ``beam``
                decoded together (a beam decodes ``beam`` rows per sentence); a longer sentence is
                decoded alone.
            max_source_length: translate only the first this many tokens of a sentence (default
                :data:`DEFAULT_MAX_SOURCE_LENGTH`; ``Translation.truncated`` tells which were cut; see
                :func:`truncated_tokens`).
        Returns:
            ``return_details=False``: N strings (the best translation of each sentence);
            ``True``: N lists of ``nbest`` Translations, best first (an empty input: ``nbest``
            empty Translations; a search can find fewer than ``nbest`` only when the target
            vocabulary is smaller than the beam).
        """
        if isinstance(sentences, str):
            raise TypeError("translate() takes a list of sentences; wrap a single sentence in a list")
        if beam < 1 or not 1 <= nbest <= beam:
            raise ValueError(f"need beam >= 1 and 1 <= nbest <= beam, got beam={beam}, nbest={nbest}")
        if max_source_length is None:
            max_source_length = DEFAULT_MAX_SOURCE_LENGTH
        for name, value in (("batch_size", batch_size), ("max_tokens", max_tokens),
                            ("max_source_length", max_source_length)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        prepared = [truncated_tokens(sentence, max_source_length, self.tokenizers.source.tokenize)
                    for sentence in sentences]
        tokenized = [tokens for tokens, _ in prepared]
        results: list[list[Translation] | None] = [None] * len(sentences)
        for index, tokens in enumerate(tokenized):
            if not tokens:
                results[index] = [Translation("", [], [], 0.0, 0.0, None, prepared[index][1]) for _ in range(nbest)]
        # Longest first, so the first batch shows memory problems early; similar lengths share a batch.
        order = sorted((i for i, tokens in enumerate(tokenized) if tokens), key=lambda i: -len(tokenized[i]))
        widths = [len(tokenized[i]) + 1 for i in order]  # + EOS
        was_training = self.model.training
        self.model.eval()
        try:
            for piece in cut_by_tokens(widths, batch_size, max(max_tokens // beam, 1)):
                chunk = order[piece]
                for index, hypotheses in zip(chunk, self._search([tokenized[i] for i in chunk], beam, nbest,
                                                                 max_length)):
                    results[index] = [self._finish(hypothesis, tokenized[index], replace_unk, prepared[index][1],
                                                   sentences[index]) for hypothesis in hypotheses]
        finally:
            self.model.train(was_training)
        if return_details:
            return results
        return [translations[0].text for translations in results]

    @no_grad()
    def _search(self, token_lists: list[list[str]], beam: int, nbest: int, max_length: int | None):
        source, lengths = pad_sequences([self.source_vocab.encode(tokens) for tokens in token_lists])
        encoded = self.model.encode(source, lengths)
        options = dict(max_length_ratio=self.max_length_ratio, max_length_offset=self.max_length_offset,
                       length_penalty_alpha=self.length_penalty)
        if beam == 1:
            return [[hypothesis] for hypothesis in greedy_search(self.model, encoded, max_length, **options)]
        return beam_search(self.model, encoded, beam, max_length, nbest=nbest, **options)

    def _finish(self, hypothesis: Hypothesis, words: list[str], replace_unk: bool, truncated: bool,
                sentence: str) -> Translation:
        source_tokens = encoder_tokens(words)
        target_tokens = [self.target_vocab.id_to_token(index) for index in hypothesis.tokens]
        if replace_unk and self.tokenizers.target.replaces_unknowns:
            # copy the source word as typed ("Tom"), not as the normalised source read it ("tom")
            typed = encoder_tokens(self.tokenizers.typed_source_tokens(sentence, words))
            target_tokens = replace_unknowns(target_tokens, hypothesis.attention, typed)
        return Translation(self.tokenizers.target.detokenize(target_tokens), target_tokens, source_tokens,
                           hypothesis.score, hypothesis.log_prob, hypothesis.attention, truncated)

    @property
    def device(self) -> str:
        return backend.device_of(next(self.model.parameters()).data)
