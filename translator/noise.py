"""Casual-input noise: the ways people type a sentence that Tatoeba writes carefully.

Three independent kinds of noise, each a pure function of the text::

    lowercase("¿Dónde está Tom?")          == "¿dónde está tom?"
    strip_punctuation("¿Dónde está Tom?")  == "Dónde está Tom"      # final . ! ? … and every ¿ ¡
    strip_accents("¿Dónde está Tom?")      == "¿Donde esta Tom?"    # á é í ó ú ü -> a e i o u u

``strip_accents`` keeps ``ñ``: in Spanish it is a letter of its own (``año`` and ``ano`` are different
words), not an accent, and keyboards without it are rarer than typists who skip accents.
``strip_punctuation`` removes only what casual typists drop: the sentence's final ``. ! ? …`` (a run of
them, with the spaces around) and the opening ``¿ ¡`` anywhere; commas and inner marks stay.

A *noise spec* names a combination, comma-separated (``"lower,nopunct"``); the named presets are in
:data:`PRESETS` (``casual`` is ``lower,nopunct``, what the casual-input issue measured). Used by

* ``translate evaluate --noise SPEC``: score a model on noised sources (references unchanged);
* training with ``--source-noise P``: each training source is replaced, with probability P per epoch,
  by a random non-empty combination of the three kinds (see :func:`random_variant`), so the model sees
  both the careful and the casual forms of its inputs.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Callable, Sequence

import numpy as np

# Combining marks that are accents to a Spanish typist: acute, grave, circumflex, diaeresis.
# The tilde (U+0303) is left alone: it makes ñ, a letter of its own.
_ACCENTS = frozenset({"\u0301", "\u0300", "\u0302", "\u0308"})
_OPENING_MARKS = re.compile(r"[¿¡]\s*")
_FINAL_MARKS = re.compile(r"\s*[.!?…]+\s*$")


def lowercase(text: str) -> str:
    """``text`` in lower case (Unicode-aware: ``ÉL`` -> ``él``)."""
    return text.lower()


def strip_punctuation(text: str) -> str:
    """``text`` without its final ``. ! ? …`` run and without any opening ``¿ ¡``."""
    return _FINAL_MARKS.sub("", _OPENING_MARKS.sub("", text)).strip()


def strip_accents(text: str) -> str:
    """``text`` with acute, grave, circumflex and diaeresis removed from every letter; ``ñ`` kept."""
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(char for char in decomposed if char not in _ACCENTS))


KINDS: dict[str, Callable[[str], str]] = {
    "lower": lowercase,
    "nopunct": strip_punctuation,
    "noaccents": strip_accents,
}
PRESETS: dict[str, tuple[str, ...]] = {
    "clean": (),
    "casual": ("lower", "nopunct"),
    "all": ("lower", "nopunct", "noaccents"),
}


def parse_spec(spec: str) -> tuple[str, ...]:
    """The kinds of noise that ``spec`` names, in :data:`KINDS` order.

    ``spec`` is a preset (``clean``, ``casual``, ``all``) or kinds joined by commas
    (``lower,noaccents``). Raises ValueError naming the unknown word and the choices.
    """
    words = [word.strip() for word in spec.split(",") if word.strip()]
    if not words:
        raise ValueError(f"empty noise spec {spec!r}: choose from {', '.join(choices())}")
    kinds: set[str] = set()
    for word in words:
        if word in PRESETS:
            kinds.update(PRESETS[word])
        elif word in KINDS:
            kinds.add(word)
        else:
            raise ValueError(f"unknown noise {word!r}: choose from {', '.join(choices())}, or kinds joined by commas")
    return tuple(kind for kind in KINDS if kind in kinds)


def choices() -> list[str]:
    """Every single word a noise spec may contain."""
    return [*PRESETS, *KINDS]


def apply(text: str, kinds: Sequence[str]) -> str:
    """``text`` with each noise of ``kinds`` applied (order does not matter: they commute)."""
    for kind in kinds:
        text = KINDS[kind](text)
    return text


def apply_spec(texts: Sequence[str], spec: str) -> list[str]:
    """Every text of ``texts`` noised as ``spec`` says."""
    kinds = parse_spec(spec)
    return [apply(text, kinds) for text in texts]


def random_variant(text: str, rng: np.random.Generator) -> str:
    """``text`` with a uniformly drawn non-empty combination of the three kinds applied.

    The seven combinations are equally likely, so each kind is applied with probability 4/7 and
    the fully casual form (lower case, no punctuation, no accents) is one draw in seven.
    """
    mask = int(rng.integers(1, 2 ** len(KINDS)))
    return apply(text, [kind for bit, kind in enumerate(KINDS) if mask >> bit & 1])
