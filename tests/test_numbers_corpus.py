"""Tests for translator.numbers_corpus: number words in Spanish and English, pair generation."""

import pytest

from translator.numbers_corpus import MAX_SUPPORTED, generate_pairs, sample_numbers, to_english, to_spanish

KNOWN = [
    (0, "cero", "zero"),
    (1, "uno", "one"),
    (15, "quince", "fifteen"),
    (16, "dieciséis", "sixteen"),
    (21, "veintiuno", "twenty-one"),
    (22, "veintidós", "twenty-two"),
    (23, "veintitrés", "twenty-three"),
    (26, "veintiséis", "twenty-six"),
    (30, "treinta", "thirty"),
    (31, "treinta y uno", "thirty-one"),
    (100, "cien", "one hundred"),
    (101, "ciento uno", "one hundred one"),
    (121, "ciento veintiuno", "one hundred twenty-one"),
    (500, "quinientos", "five hundred"),
    (503, "quinientos tres", "five hundred three"),
    (555, "quinientos cincuenta y cinco", "five hundred fifty-five"),
    (700, "setecientos", "seven hundred"),
    (900, "novecientos", "nine hundred"),
    (999, "novecientos noventa y nueve", "nine hundred ninety-nine"),
    (1000, "mil", "one thousand"),
    (1001, "mil uno", "one thousand one"),
    (2001, "dos mil uno", "two thousand one"),
    (21000, "veintiún mil", "twenty-one thousand"),
    (21021, "veintiún mil veintiuno", "twenty-one thousand twenty-one"),
    (31000, "treinta y un mil", "thirty-one thousand"),
    (100000, "cien mil", "one hundred thousand"),
    (101000, "ciento un mil", "one hundred one thousand"),
    (500500, "quinientos mil quinientos", "five hundred thousand five hundred"),
    (999999, "novecientos noventa y nueve mil novecientos noventa y nueve",
     "nine hundred ninety-nine thousand nine hundred ninety-nine"),
    (1000000, "un millón", "one million"),
    (2000000, "dos millones", "two million"),
    (21000000, "veintiún millones", "twenty-one million"),
    (1001000, "un millón mil", "one million one thousand"),
]


@pytest.mark.parametrize("number, spanish, english", KNOWN)
def test_known_values(number, spanish, english):
    assert to_spanish(number) == spanish
    assert to_english(number) == english


SPANISH_VALUES = {
    "cero": 0, "un": 1, "uno": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6, "siete": 7,
    "ocho": 8, "nueve": 9, "diez": 10, "once": 11, "doce": 12, "trece": 13, "catorce": 14, "quince": 15,
    "dieciséis": 16, "diecisiete": 17, "dieciocho": 18, "diecinueve": 19, "veinte": 20, "veintiún": 21,
    "veintiuno": 21, "veintidós": 22, "veintitrés": 23, "veinticuatro": 24, "veinticinco": 25,
    "veintiséis": 26, "veintisiete": 27, "veintiocho": 28, "veintinueve": 29, "treinta": 30, "cuarenta": 40,
    "cincuenta": 50, "sesenta": 60, "setenta": 70, "ochenta": 80, "noventa": 90, "cien": 100, "ciento": 100,
    "doscientos": 200, "trescientos": 300, "cuatrocientos": 400, "quinientos": 500, "seiscientos": 600,
    "setecientos": 700, "ochocientos": 800, "novecientos": 900,
}
ENGLISH_VALUES = {
    word: value for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen".split())
} | {word: 10 * tens for tens, word in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)}


def parse_spanish(text: str) -> int:
    """Independent reference: the value of Spanish number words (group values times mil/millón)."""
    total, group = 0, 0
    for word in text.split():
        if word == "y":
            continue
        if word in ("millón", "millones"):
            total, group = total + group * 1_000_000, 0
        elif word == "mil":
            total, group = total + max(group, 1) * 1000, 0
        else:
            group += SPANISH_VALUES[word]
    return total + group


def parse_english(text: str) -> int:
    total, group = 0, 0
    for word in text.replace("-", " ").split():
        if word == "hundred":
            group *= 100
        elif word in ("thousand", "million"):
            total, group = total + group * (1000 if word == "thousand" else 1_000_000), 0
        else:
            group += ENGLISH_VALUES[word]
    return total + group


def test_words_parse_back_to_the_number():
    numbers = list(range(0, 2100)) + list(range(0, MAX_SUPPORTED, 9_876_541)) + sample_numbers(3000, seed=1)
    for number in numbers:
        assert parse_spanish(to_spanish(number)) == number, to_spanish(number)
        assert parse_english(to_english(number)) == number, to_english(number)


def test_shortened_forms_only_before_mil_and_millones():
    for number in sample_numbers(3000, seed=2, max_value=MAX_SUPPORTED):
        words = to_spanish(number).split()
        for position, word in enumerate(words):
            following = words[position + 1] if position + 1 < len(words) else None
            if word in ("un", "veintiún"):
                assert following in ("mil", "millón", "millones"), words
            if word in ("uno", "veintiuno"):
                assert following is None, words
            if word == "cien":
                assert following in (None, "mil", "millones"), words
        assert words[:2] != ["un", "mil"], words  # a thousand is "mil"; "un mil" only inside "ciento un mil"


def test_words_are_distinct_for_distinct_numbers():
    numbers = range(0, 30000)
    assert len({to_spanish(number) for number in numbers}) == len(numbers)
    assert len({to_english(number) for number in numbers}) == len(numbers)


def test_range_and_type_errors():
    with pytest.raises(ValueError, match="outside the supported range"):
        to_spanish(-1)
    with pytest.raises(ValueError, match="outside the supported range"):
        to_english(MAX_SUPPORTED + 1)
    with pytest.raises(TypeError, match="integer"):
        to_spanish(2.5)


def test_generate_pairs_is_deterministic_and_distinct():
    pairs = generate_pairs(500, seed=3)
    assert pairs == generate_pairs(500, seed=3)
    assert pairs != generate_pairs(500, seed=4)
    assert len(set(pairs)) == 500
    assert all(isinstance(spanish, str) and isinstance(english, str) for spanish, english in pairs)


def test_sampling_covers_all_digit_counts():
    numbers = sample_numbers(600, seed=0, max_value=999_999)
    assert all(0 <= number <= 999_999 for number in numbers)
    digit_counts = [len(str(number)) for number in numbers]
    # about 100 per digit count, except 1 digit where only ten numbers exist
    assert digit_counts.count(1) == 10
    assert min(digit_counts.count(digits) for digits in range(2, 7)) > 60


def test_sampling_small_ranges():
    assert sorted(sample_numbers(11, seed=0, min_value=10, max_value=20)) == list(range(10, 21))
    assert len(set(sample_numbers(5, seed=0, min_value=10, max_value=20))) == 5
    with pytest.raises(ValueError, match="cannot draw 12 distinct numbers"):
        sample_numbers(12, seed=0, min_value=10, max_value=20)
    with pytest.raises(ValueError, match="greater than max_value"):
        sample_numbers(1, seed=0, min_value=5, max_value=4)
