"""Word tokenizer for Spanish and English sentences, and its inverse.

``tokenize`` keeps case and accents and splits punctuation off words::

    tokenize("¿Dónde está?")      == ["¿", "Dónde", "está", "?"]
    tokenize("I'm here.")         == ["I'm", "here", "."]
    tokenize("Tom's 1,000 ¡wow!") == ["Tom's", "1,000", "¡", "wow", "!"]

What stays one token:

* words, with apostrophes and hyphens between letters: ``I'm``, ``don't``, ``Tom's``,
  ``thirty-four``, ``Coca-Cola``; a plural possessive keeps its apostrophe: ``parents'``;
* numbers with inner separators: ``3.5``, ``1,000``, ``86.400``, ``2:30``;
* dotted abbreviations: ``p.m.``, ``U.S.``, ``EE.UU.``;
* an ellipsis: ``...`` or ``…``.

Every other non-space character is a token of its own (``¿ ¡ , . ! ? ; : " ( ) « » $ %`` ...).

``detokenize`` joins tokens back into natural text by rules on the tokens alone: closing marks
(``. , ! ? ; : ) » ...``) attach to the word before, opening marks (``¿ ¡ ( « —``) to the word
after, straight quotes (``"`` and a lone ``'``) alternate between opening and closing, and a
currency sign attaches to a number that follows it (``$300``, but ``200 $`` stays apart). For
typical Tatoeba sentences ``detokenize(tokenize(s)) == normalize(s)``: on the whole spa-eng corpus,
all but 33 of its 231,928 sentences, and those 33 differ in spacing alone (spaced irregularly in the
corpus, ``cumpleaños .`` or ``!Qué``, or symbols the rules space apart, ``C++`` -> ``C + +``).

Input normalisation (:func:`normalize`): Unicode NFC, zero-width characters removed, any run of
whitespace (including no-break spaces) becomes one space, and a typographic apostrophe inside a
word (``It’s``, ``I‘m``) becomes the ASCII one (``It's``) so both spellings share one vocabulary entry.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Iterable

# Marks that attach to the token before them (no space before).
CLOSING = frozenset({".", ",", "!", "?", ";", ":", ")", "]", "}", "»", "’", "...", "…", "%"})
# Marks that attach to the token after them (no space after).
# The em dash opens a Spanish dialogue line or aside: "—Hablas demasiado —dijo él."
OPENING = frozenset({"¿", "¡", "(", "[", "{", "«", "‘", "—"})
# Symmetric quotes: odd occurrences open, even occurrences close.
QUOTES = frozenset({'"', "'", "¨"})
CURRENCY = frozenset({"$", "€", "£", "¥"})

_LETTER_OR_DIGIT = r"[^\W_]"
_TOKEN_PATTERN = re.compile(
    "|".join(
        [
            r"(?:[^\W\d_]\.){2,}|(?:[A-Z]{1,2}\.){2,}",  # dotted abbreviation: p.m., U.S., EE.UU.
            r"\d+(?:[.,:]\d+)+",  # number with separators: 3.5, 1,000, 2:30
            # word, with inner apostrophes/hyphens; plural possessive "parents'" keeps its apostrophe
            rf"{_LETTER_OR_DIGIT}+(?:[-'’]{_LETTER_OR_DIGIT}+)*(?:(?<=s)['’](?!{_LETTER_OR_DIGIT}))?",
            r"\.{2,}|…",  # ellipsis
            r"\S",  # any other single character
        ]
    )
)
_WHITESPACE = re.compile(r"\s+")
_NUMBER = re.compile(r"\d")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_INWORD_QUOTE = re.compile(rf"(?<={_LETTER_OR_DIGIT})[’‘](?={_LETTER_OR_DIGIT})")


def normalize(text: str) -> str:
    """Return ``text`` in the canonical form the tokenizer works on (see the module docstring).

    Args:
        text: any string.
    Returns:
        NFC-normalised text, zero-width (Unicode category Cf) characters removed, whitespace
        collapsed to single spaces and stripped at both ends, in-word ``’`` replaced by ``'``.
    """
    if not isinstance(text, str):
        raise TypeError(f"normalize expects a str, got {type(text).__name__}")
    text = unicodedata.normalize("NFC", text)
    if not text.isascii():  # ASCII has no format (Cf) character and no typographic apostrophe
        # the categories of the distinct non-ASCII characters only: a Python loop over every
        # character was most of the data preparation's tokenising time
        format_characters = {c for c in set(_NON_ASCII.findall(text)) if unicodedata.category(c) == "Cf"}
        if format_characters:
            text = "".join(character for character in text if character not in format_characters)
        text = _INWORD_QUOTE.sub("'", text)
    return _WHITESPACE.sub(" ", text).strip()


def tokenize(text: str) -> list[str]:
    """Split a sentence into word and punctuation tokens.

    Args:
        text: one sentence (any Unicode string; normalised with :func:`normalize` first).
    Returns:
        list of non-empty tokens without whitespace; ``[]`` for blank text.
    """
    # A word-final possessive apostrophe (``parents’``) is part of the word token: make it ASCII too.
    return [token if len(token) == 1 else token.replace("’", "'") for token in _TOKEN_PATTERN.findall(normalize(text))]


def detokenize(tokens: Iterable[str]) -> str:
    """Join tokens into natural text: the inverse of :func:`tokenize` for typical sentences.

    Args:
        tokens: token strings, e.g. ``["¿", "Dónde", "está", "?"]``.
    Returns:
        the sentence, e.g. ``"¿Dónde está?"``.
    """
    tokens = list(tokens)
    pieces: list[str] = []
    open_quotes: set[str] = set()
    previous_attaches_right = True  # nothing goes before the first token
    for position, token in enumerate(tokens):
        if token in QUOTES:
            closing = token in open_quotes
            open_quotes.symmetric_difference_update({token})
            attaches_left, attaches_right = closing, not closing
        elif token in CURRENCY:
            following = tokens[position + 1] if position + 1 < len(tokens) else ""
            attaches_left, attaches_right = False, bool(_NUMBER.match(following))
        else:
            attaches_left, attaches_right = token in CLOSING, token in OPENING
        if not (attaches_left or previous_attaches_right):
            pieces.append(" ")
        pieces.append(token)
        previous_attaches_right = attaches_right
    return "".join(pieces)
