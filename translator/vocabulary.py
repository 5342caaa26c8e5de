"""Vocabulary: a bijection between tokens and integer ids, with four reserved specials.

Ids 0..3 are always the specials ``<pad>`` (PAD), ``<s>`` (BOS), ``</s>`` (EOS), ``<unk>`` (UNK);
corpus tokens follow, most frequent first, ties broken by the token string (so building is
deterministic whatever the order of the corpus). Saved as JSON, written atomically.

This module is the one owner of where the specials go in a sequence (no other module adds or
strips them; search only starts from BOS and stops at EOS):

- the encoder reads the words then EOS: :meth:`Vocabulary.encode` (ids, EOS appended by default)
  and :func:`encoder_tokens` (the same as strings, what attention is drawn over);
  :func:`source_words` gives the words back;
- the decoder reads ``BOS + words`` and must predict ``words + EOS``: :func:`decoder_sequences`.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
from typing import Iterable, Sequence

from tinygrad_rnn.serialization import atomic_open
from translator.errors import DataError, decode_utf8, read_user_file

PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN = "<pad>", "<s>", "</s>", "<unk>"
SPECIAL_TOKENS = (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN)
PAD, BOS, EOS, UNK = 0, 1, 2, 3

_FORMAT = "translator.vocabulary"
_VERSION = 1


def encoder_tokens(words: Sequence[str]) -> list[str]:
    """The tokens the encoder reads for ``words``: the words then ``</s>`` (``encode``'s ids, as strings)."""
    return [*words, EOS_TOKEN]


def source_words(tokens: Sequence[str]) -> list[str]:
    """The words of :func:`encoder_tokens` output: ``tokens`` without a trailing ``</s>``."""
    return list(tokens[:-1] if tokens and tokens[-1] == EOS_TOKEN else tokens)


def decoder_sequences(target: Sequence[int]) -> tuple[list[int], list[int]]:
    """What the decoder reads and what it must predict for the target ids ``target``.

    Args:
        target: the target sentence's ids, with or without a leading BOS and a trailing EOS
            (``encode`` appends EOS; either way gives the same result).
    Returns:
        ``(decoder_input, decoder_output)``: ``[BOS] + words`` (teacher forcing) and
        ``words + [EOS]``, of equal length ``len(words) + 1``.
    """
    start = 1 if len(target) and target[0] == BOS else 0
    end = len(target) - 1 if len(target) > start and target[-1] == EOS else len(target)
    words = list(target[start:end])
    return [BOS, *words], [*words, EOS]


class Vocabulary:
    """Token <-> id mapping. Build one with :meth:`build`, or load one with :meth:`load`.

    Args:
        tokens: the corpus tokens in id order, *without* the specials (they get ids 0..3).
            Must not repeat a token or contain a special.
    """

    def __init__(self, tokens: Iterable[str] = ()):
        self.itos: list[str] = list(SPECIAL_TOKENS)
        self.stoi: dict[str, int] = {token: index for index, token in enumerate(SPECIAL_TOKENS)}
        for token in tokens:
            if not isinstance(token, str) or not token:
                raise ValueError(f"vocabulary tokens must be non-empty strings, got {token!r}")
            if token in self.stoi:
                kind = "a special token" if token in SPECIAL_TOKENS else "a duplicate"
                raise ValueError(f"vocabulary token {token!r} is {kind}; each token may appear once")
            self.stoi[token] = len(self.itos)
            self.itos.append(token)

    @classmethod
    def build(
        cls, sentences: Iterable[Sequence[str]], min_freq: int = 1, max_size: int | None = None
    ) -> "Vocabulary":
        """Count tokens and keep the frequent ones.

        Args:
            sentences: token lists, e.g. ``[["¿", "Dónde", "está", "?"], ...]``.
            min_freq: keep tokens seen at least this many times (>= 1).
            max_size: cap on ``len(vocabulary)``, the four specials included (>= 4); ``None``: no cap.
                When the cap cuts through tokens of equal count, the alphabetically first are kept.
        Returns:
            a Vocabulary with ids ordered by (count descending, token ascending) after the specials.
            Special-token strings found in the corpus are not counted.
        """
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        if max_size is not None and max_size < len(SPECIAL_TOKENS):
            raise ValueError(f"max_size must be >= {len(SPECIAL_TOKENS)} (the special tokens), got {max_size}")
        if isinstance(sentences, str):
            raise TypeError("Vocabulary.build expects token lists, got a single string")
        counts: collections.Counter[str] = collections.Counter()
        for sentence in sentences:
            if isinstance(sentence, str):
                raise TypeError(f"Vocabulary.build expects token lists, got the string {sentence!r}; tokenize first")
            counts.update(sentence)
        for special in SPECIAL_TOKENS:
            counts.pop(special, None)
        ranked = sorted((token for token, count in counts.items() if count >= min_freq),
                        key=lambda token: (-counts[token], token))
        if max_size is not None:
            ranked = ranked[: max_size - len(SPECIAL_TOKENS)]
        return cls(ranked)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.itos == other.itos

    def __repr__(self) -> str:
        return f"Vocabulary(size={len(self)})"

    def token_to_id(self, token: str) -> int:
        """Id of ``token``; UNK for a token not in the vocabulary."""
        return self.stoi.get(token, UNK)

    def id_to_token(self, index: int) -> str:
        """Token with id ``index``; raises ValueError for an id outside ``0 .. len(self) - 1``."""
        if not 0 <= index < len(self.itos):
            raise ValueError(f"token id {index} is outside this vocabulary (ids 0..{len(self.itos) - 1})")
        return self.itos[index]

    def encode(self, tokens: Sequence[str], add_bos: bool = False, add_eos: bool = True) -> list[int]:
        """Map tokens to ids.

        Args:
            tokens: token strings, length L (not a raw string: tokenize first).
            add_bos: prepend BOS.
            add_eos: append EOS.
        Returns:
            ids, length L + add_bos + add_eos; unknown tokens become UNK.
        """
        if isinstance(tokens, str):
            raise TypeError(f"encode expects a list of tokens, got the string {tokens!r}; tokenize first")
        ids = [self.stoi.get(token, UNK) for token in tokens]
        if add_bos:
            ids.insert(0, BOS)
        if add_eos:
            ids.append(EOS)
        return ids

    def decode(self, ids: Iterable[int], strip_specials: bool = True) -> list[str]:
        """Map ids back to tokens.

        Args:
            ids: token ids (ints or a 1-D integer array).
            strip_specials: stop at the first EOS and drop PAD and BOS, as wanted for a model's
                output; UNK is kept (as ``"<unk>"``) because it marks a real word.
                With False every id maps to its token, specials included.
        Returns:
            token strings.
        """
        tokens = []
        for index in ids:
            index = int(index)
            if strip_specials:
                if index == EOS:
                    break
                if index in (PAD, BOS):
                    continue
            tokens.append(self.id_to_token(index))
        return tokens

    def to_dict(self) -> dict:
        """JSON-serialisable form; the inverse of :meth:`from_dict`."""
        return {"format": _FORMAT, "version": _VERSION, "tokens": self.itos}

    @classmethod
    def from_dict(cls, data: dict) -> "Vocabulary":
        """Rebuild a vocabulary from :meth:`to_dict` output; raises ValueError if it is not one."""
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f"not a vocabulary: expected a JSON object with \"format\": \"{_FORMAT}\"")
        if data.get("version") != _VERSION:
            raise ValueError(f"unsupported vocabulary version {data.get('version')!r} (this code reads {_VERSION})")
        tokens = data.get("tokens")
        if not isinstance(tokens, list) or tuple(tokens[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"vocabulary tokens must be a list starting with the specials {list(SPECIAL_TOKENS)}")
        return cls(tokens[len(SPECIAL_TOKENS):])

    def checksum(self) -> str:
        """Hex SHA-256 of the tokens in id order: equal vocabularies, equal checksum (a swap changes it)."""
        return hashlib.sha256(json.dumps(self.itos, ensure_ascii=False).encode("utf-8")).hexdigest()

    def to_json(self) -> str:
        """The vocabulary as a JSON string (one token per line, so diffs stay readable)."""
        body = ",\n".join(json.dumps(token, ensure_ascii=False) for token in self.itos)
        return f'{{"format": "{_FORMAT}", "version": {_VERSION}, "tokens": [\n{body}\n]}}\n'

    @classmethod
    def from_json(cls, text: str) -> "Vocabulary":
        """Inverse of :meth:`to_json`; raises ValueError for text that is not a vocabulary."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"not a vocabulary: invalid JSON ({error})") from None
        return cls.from_dict(data)

    def save(self, path: str | os.PathLike) -> None:
        """Write the vocabulary as JSON to ``path`` atomically (a reader never sees half a file)."""
        with atomic_open(path, "w") as handle:
            handle.write(self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocabulary":
        """Read a vocabulary written by :meth:`save`; raises DataError naming the file if it cannot."""
        text = decode_utf8(read_user_file(path, "vocabulary file"), f"vocabulary file {path}")
        try:
            return cls.from_json(text)
        except ValueError as error:
            raise DataError(f"{path} is not a valid vocabulary file: {error}") from None
