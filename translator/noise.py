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
  by a random non-empty combination of the kinds its source normalisation does not already undo
  (see :func:`random_variant` and :func:`training_kinds`), so the model sees both the careful and the
  casual forms of its inputs.

Source normalisation (``--source-normalization``, :data:`SOURCE_NORMALIZATIONS`) is the other half:
a model trained with ``casefold`` reads every source through :func:`casefold_source` (lower case, no
opening ``¿ ¡``), at training and at translation time alike (:mod:`translator.subword` applies it
on the source side of the tokenizers), so ``Hola`` and ``hola`` are the same input to it and only
the kinds it does not cover (final punctuation, accents) are left for ``--source-noise`` to teach.
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
_OPENING_MARKS_ANYWHERE = re.compile(r"\s*[¿¡]+\s*")


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


def casefold_source(text: str) -> str:
    """``text`` as a ``casefold`` model reads its source: lower case, without the opening ``¿ ¡``::

        casefold_source("¿Dónde está Tom?")   == "dónde está tom?"
        casefold_source("Hola, ¡qué bien!")   == "hola, qué bien!"
        casefold_source("ÉL ES TOM.")         == "él es tom."
        casefold_source("donde esta tom")     == "donde esta tom"     # casual input: unchanged

    Both lose practically no meaning: ``¿`` always pairs with a closing ``?`` and ``¡`` with ``!``,
    which stay, and the English output's case comes from the model, not from the source. Each run
    of opening marks becomes one space (so ``hola¿qué`` does not fuse into one word), and the result
    is stripped; accents, inner and final punctuation are kept. Lower case is ``str.lower`` (as
    :func:`lowercase`), not ``str.casefold``, which would also rewrite ``ß`` as ``ss``. Idempotent.
    """
    return _OPENING_MARKS_ANYWHERE.sub(" ", text.lower()).strip()


def _unchanged(text: str) -> str:
    return text


# --source-normalization: what a model does to every source text, at training and translation time.
SOURCE_NORMALIZATIONS: dict[str, Callable[[str], str]] = {
    "none": _unchanged,
    "casefold": casefold_source,
}
# The noise kinds each normalisation makes a no-op (its output is already lower case: "lower").
_COVERED: dict[str, tuple[str, ...]] = {"none": (), "casefold": ("lower",)}


def training_kinds(normalization: str = "none") -> tuple[str, ...]:
    """The kinds of noise that ``--source-noise`` draws from under ``normalization``: those it does not cover.

    ``training_kinds("none") == ("lower", "nopunct", "noaccents")``;
    ``training_kinds("casefold") == ("nopunct", "noaccents")`` (lower case is already what the model reads).
    """
    if normalization not in SOURCE_NORMALIZATIONS:
        raise ValueError(f"unknown source normalization {normalization!r}: choose from "
                         f"{', '.join(SOURCE_NORMALIZATIONS)}")
    return tuple(kind for kind in KINDS if kind not in _COVERED[normalization])


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


def random_variant(text: str, rng: np.random.Generator, kinds: Sequence[str] = tuple(KINDS)) -> str:
    """``text`` with a uniformly drawn non-empty combination of ``kinds`` (default: all three) applied.

    One draw of ``rng`` picks the combination. With the three kinds the seven combinations are
    equally likely (each kind applied with probability 4/7; the fully casual form is one draw in
    seven); with ``training_kinds("casefold")`` (``nopunct``, ``noaccents``) the three combinations
    are (each kind with probability 2/3).
    """
    kinds = list(kinds)
    if not kinds:
        raise ValueError("random_variant needs at least one kind of noise to draw from")
    mask = int(rng.integers(1, 2 ** len(kinds)))
    return apply(text, [kind for bit, kind in enumerate(kinds) if mask >> bit & 1])
