"""A built-in parallel corpus that needs no download: numbers written in Spanish and English words.

``to_spanish(21_000) == "veintiún mil"`` and ``to_english(21_000) == "twenty-one thousand"``.
Integers 0 .. 999,999,999 are supported; :func:`generate_pairs` defaults to 0 .. 999,999.

Spanish follows the RAE's standard forms, bare numbers in the masculine: ``dieciséis``, the fused
``veintiuno`` .. ``veintinueve`` (``veintidós``, ``veintitrés``, ``veintiséis`` with accents), ``treinta
y uno``, ``cien`` alone but ``ciento uno``, ``quinientos``, ``setecientos``, ``novecientos``, ``mil``
(never ``un mil``), ``dos mil``, ``un millón``, ``dos millones``. Before ``mil`` and ``millón``/
``millones`` the ``uno`` that ends a multiplier shortens: ``veintiún mil``, ``treinta y un mil``,
``ciento un millones``. No nouns are generated, so ``veintiún`` never appears elsewhere.

English is American style, without "and": ``five hundred three``, ``twenty-one``, ``one hundred``,
``one thousand``, ``two thousand one``, ``one million``.

The corpus is meant for smoke tests of the whole pipeline: it has a small vocabulary, a real
reordering-free mapping, and a few irregularities a model must learn.
"""

from __future__ import annotations

import numpy as np

MAX_SUPPORTED = 999_999_999

_SPANISH_UNITS = [
    "cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve",
    "diez", "once", "doce", "trece", "catorce", "quince", "dieciséis", "diecisiete", "dieciocho", "diecinueve",
    "veinte", "veintiuno", "veintidós", "veintitrés", "veinticuatro", "veinticinco", "veintiséis",
    "veintisiete", "veintiocho", "veintinueve",
]
_SPANISH_TENS = {3: "treinta", 4: "cuarenta", 5: "cincuenta", 6: "sesenta", 7: "setenta", 8: "ochenta", 9: "noventa"}
_SPANISH_HUNDREDS = {
    1: "ciento", 2: "doscientos", 3: "trescientos", 4: "cuatrocientos", 5: "quinientos",
    6: "seiscientos", 7: "setecientos", 8: "ochocientos", 9: "novecientos",
}
_ENGLISH_UNITS = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
]
_ENGLISH_TENS = {2: "twenty", 3: "thirty", 4: "forty", 5: "fifty", 6: "sixty", 7: "seventy", 8: "eighty", 9: "ninety"}


def _check_range(number: int) -> None:
    if isinstance(number, bool) or not isinstance(number, (int, np.integer)):
        raise TypeError(f"expected an integer, got {number!r}")
    if not 0 <= number <= MAX_SUPPORTED:
        raise ValueError(f"number {number} is outside the supported range 0..{MAX_SUPPORTED:,}")


def _spanish_below_thousand(number: int, before_noun: bool) -> str:
    """1..999 in Spanish; ``before_noun`` shortens a final ``uno`` (``un``, ``veintiún``) before mil/millón."""
    hundreds, rest = divmod(number, 100)
    words = []
    if hundreds:
        words.append("cien" if hundreds == 1 and rest == 0 else _SPANISH_HUNDREDS[hundreds])
    if rest:
        if rest < 30:
            word = _SPANISH_UNITS[rest]
        else:
            tens, units = divmod(rest, 10)
            word = _SPANISH_TENS[tens] + (f" y {_SPANISH_UNITS[units]}" if units else "")
        if before_noun:
            if word == "veintiuno":
                word = "veintiún"
            elif word.endswith("uno"):
                word = word[: -len("uno")] + "un"
        words.append(word)
    return " ".join(words)


def to_spanish(number: int) -> str:
    """Spanish words for ``number`` (0 .. 999,999,999), e.g. ``2001 -> "dos mil uno"``."""
    _check_range(number)
    if number == 0:
        return "cero"
    millions, rest = divmod(number, 1_000_000)
    thousands, units = divmod(rest, 1000)
    words = []
    if millions:
        words.append("un millón" if millions == 1 else f"{_spanish_below_thousand(millions, True)} millones")
    if thousands:
        words.append("mil" if thousands == 1 else f"{_spanish_below_thousand(thousands, True)} mil")
    if units:
        words.append(_spanish_below_thousand(units, False))
    return " ".join(words)


def _english_below_thousand(number: int) -> str:
    hundreds, rest = divmod(number, 100)
    words = []
    if hundreds:
        words.append(f"{_ENGLISH_UNITS[hundreds]} hundred")
    if rest:
        if rest < 20:
            words.append(_ENGLISH_UNITS[rest])
        else:
            tens, units = divmod(rest, 10)
            words.append(_ENGLISH_TENS[tens] + (f"-{_ENGLISH_UNITS[units]}" if units else ""))
    return " ".join(words)


def to_english(number: int) -> str:
    """English words for ``number`` (0 .. 999,999,999), e.g. ``2001 -> "two thousand one"``."""
    _check_range(number)
    if number == 0:
        return "zero"
    words = []
    for scale, name in ((1_000_000, "million"), (1000, "thousand"), (1, "")):
        group, number = divmod(number, scale)
        if group:
            words.append(f"{_english_below_thousand(group)} {name}".rstrip())
    return " ".join(words)


def sample_numbers(n: int, seed: int, max_value: int = 999_999, min_value: int = 0) -> list[int]:
    """``n`` distinct integers in ``[min_value, max_value]``, deterministic from ``seed``.

    Numbers are drawn digit-count first (uniform over the digit counts present in the range),
    then uniformly within that count, so small numbers appear as often as large ones instead
    of being drowned by the 900,000 six-digit numbers. If ``n`` exceeds half the range, a plain
    random subset is taken instead (the stratification would run dry).
    """
    _check_range(min_value)
    _check_range(max_value)
    if min_value > max_value:
        raise ValueError(f"min_value {min_value} is greater than max_value {max_value}")
    available = max_value - min_value + 1
    if not 0 <= n <= available:
        raise ValueError(f"cannot draw {n} distinct numbers from {min_value}..{max_value} ({available} numbers)")
    rng = np.random.default_rng(seed)
    if 2 * n > available:
        chosen = rng.choice(available, size=n, replace=False) + min_value
        return [int(number) for number in chosen]
    # Buckets [low, high] of equal digit count, clipped to the requested range.
    buckets = []
    for digits in range(1, len(str(max_value)) + 1):
        low, high = max(min_value, 0 if digits == 1 else 10 ** (digits - 1)), min(max_value, 10**digits - 1)
        if low <= high:
            buckets.append((low, high))
    seen: set[int] = set()
    numbers: list[int] = []
    bucket_lows = np.array([low for low, _ in buckets])
    bucket_highs = np.array([high for _, high in buckets])
    while len(numbers) < n:
        # Draws that repeat a number are rejected; once a small bucket (say the ten 1-digit numbers)
        # is used up, its draws are all rejected, and the other buckets fill the remaining slots.
        bucket_choice = rng.integers(len(buckets), size=2 * (n - len(numbers)))
        for number in rng.integers(bucket_lows[bucket_choice], bucket_highs[bucket_choice] + 1):
            number = int(number)
            if number not in seen:
                seen.add(number)
                numbers.append(number)
                if len(numbers) == n:
                    break
    return numbers


def generate_pairs(n: int, seed: int = 0, max_value: int = 999_999, min_value: int = 0) -> list[tuple[str, str]]:
    """``n`` distinct ``(spanish, english)`` pairs, e.g. ``("veintiún mil", "twenty-one thousand")``.

    Args:
        n: number of pairs (at most ``max_value - min_value + 1``).
        seed: the pairs are a function of (n, seed, max_value, min_value).
        max_value, min_value: range of the numbers (within 0 .. 999,999,999).
    Returns:
        list of n pairs of strings (lower case, no punctuation); see :func:`sample_numbers`
        for how the numbers are drawn.
    """
    return [(to_spanish(number), to_english(number)) for number in sample_numbers(n, seed, max_value, min_value)]
