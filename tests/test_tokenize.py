"""Tests for translator.tokenize: splitting, joining, normalisation, round trip on real data."""

import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from translator.corpus import read_pairs
from translator.tokenize import detokenize, normalize, tokenize


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("¿Dónde está?", ["¿", "Dónde", "está", "?"]),
        ("I'm here.", ["I'm", "here", "."]),
        ("¡Hola!", ["¡", "Hola", "!"]),
        ("Sí, claro.", ["Sí", ",", "claro", "."]),
        ("I don't know Tom's sister.", ["I", "don't", "know", "Tom's", "sister", "."]),
        ("It costs 3.5 dollars.", ["It", "costs", "3.5", "dollars", "."]),
        ("I owe you 1,000 yen.", ["I", "owe", "you", "1,000", "yen", "."]),
        ("Te debo 3.000 yenes.", ["Te", "debo", "3.000", "yenes", "."]),
        ("It's 2:30 p.m.", ["It's", "2:30", "p.m."]),
        ("I'm 19.", ["I'm", "19", "."]),
        ("I'm thirty-four.", ["I'm", "thirty-four", "."]),
        ("My parents' house.", ["My", "parents'", "house", "."]),
        ('"Look," she said.', ['"', "Look", ",", '"', "she", "said", "."]),
        ("Dijo: «Hola».", ["Dijo", ":", "«", "Hola", "»", "."]),
        ("Gracias (en coche).", ["Gracias", "(", "en", "coche", ")", "."]),
        ("Uno; dos.", ["Uno", ";", "dos", "."]),
        ("Es tan triste...", ["Es", "tan", "triste", "..."]),
        ("I have $300.", ["I", "have", "$", "300", "."]),
        ("", []),
        ("   ", []),
    ],
)
def test_tokenize_examples(text, tokens):
    assert tokenize(text) == tokens


@pytest.mark.parametrize(
    "tokens, text",
    [
        (["¿", "Dónde", "está", "?"], "¿Dónde está?"),
        (["I'm", "here", "."], "I'm here."),
        (["¡", "Hola", "!"], "¡Hola!"),
        (["Sí", ",", "claro", "."], "Sí, claro."),
        (["Tom", "dice", '"', "hola", '"', "."], 'Tom dice "hola".'),
        (["Dijo", ":", '"', "Confía", "en", "mí", '"', "."], 'Dijo: "Confía en mí".'),
        (["«", "¡", "Protesto", "!", "»", "«", "Se", "admite", ".", "»"], "«¡Protesto!» «Se admite.»"),
        (["I", "have", "$", "300", "."], "I have $300."),
        (["Pagué", "200", "$", "en", "impuestos", "."], "Pagué 200 $ en impuestos."),
        (["Un", "momento", "..."], "Un momento..."),
        ([], ""),
    ],
)
def test_detokenize_examples(tokens, text):
    assert detokenize(tokens) == text


@pytest.mark.parametrize(
    "sentence",
    [
        "¿Dónde está?", "I'm here.", "¡Hola!", "Sí, claro.", "¿Quién escribió \"Hamlet\"?",
        "\"Trust me,\" he said.", "«¿Cómo estás?» «No me puedo quejar.»", "It's 2:00 p.m.",
        "He gave me 10,000 yen.", "Un día tiene 86.400 segundos.", "I'm at my parents' house.",
        "—Hablas demasiado —dijo él.", "Hemos recibido muchos pedidos de EE.UU.",
        "The words 'small' and 'little' are synonyms.", "Nosotros estamos casi en banca rota (quebrados).",
    ],
)
def test_round_trip_typical_sentences(sentence):
    assert detokenize(tokenize(sentence)) == sentence


def test_input_is_nfc_normalised():
    decomposed = unicodedata.normalize("NFD", "¿Dónde está el niño?")
    assert decomposed != "¿Dónde está el niño?"
    assert tokenize(decomposed) == ["¿", "Dónde", "está", "el", "niño", "?"]
    assert all(unicodedata.is_normalized("NFC", token) for token in tokenize(decomposed))


def test_normalize_whitespace_zero_width_and_apostrophes():
    assert normalize("  a\u00a0 b\t\nc  ") == "a b c"
    assert normalize("los acusados \u200b\u200bfue") == "los acusados fue"
    assert normalize("It’s Tom’s") == "It's Tom's"
    assert tokenize("I don’t know.") == ["I", "don't", "know", "."]
    assert tokenize("My parents’ car.") == ["My", "parents'", "car", "."]


def test_tokenize_rejects_non_strings():
    with pytest.raises(TypeError, match="str"):
        tokenize(["already", "tokens"])


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(alphabet=st.sampled_from(list("aZé ñ'’-.,;:!?¿¡\"()«»$%3 0\u00a0\u200b\t")), max_size=40))
def test_tokenize_loses_only_whitespace(text):
    tokens = tokenize(text)
    assert all(token and not any(character.isspace() for character in token) for token in tokens)
    joined = "".join(tokens).replace("’", "'")
    assert joined == normalize(text).replace(" ", "").replace("’", "'")
    rejoined = detokenize(tokens)
    assert rejoined == rejoined.strip() and "  " not in rejoined


# What normalize() changes (a typographic apostrophe, a zero-width or no-break space, doubled spaces):
# each corpus sentence holding one joins the sampled sentences, so the normalisations are exercised.
NORMALISED = re.compile(r"[’‘\u00ad\u200b-\u200f\u2060\ufeff]|[^\S ]|  ")


def test_round_trip_on_a_sample_of_the_whole_real_corpus(spa_eng_path):
    """detokenize(tokenize(s)) is normalize(s) up to spacing for every sentence, exactly for all but a few.

    Every 20th pair of the whole corpus (it is sorted by length: its first lines are all short) plus
    every sentence normalize() changes. On all 231,928 sentences of spa-eng 33 come back otherwise
    than exactly, all in spacing alone: the corpus spaces them irregularly (``cumpleaños .``,
    ``!Qué``) or the rules space symbols (``C + +``, ``20 / 20``).
    """
    pairs = read_pairs(spa_eng_path).pairs
    sentences = [text for pair in pairs[::20] for text in pair]
    normalised = [text for pair in pairs for text in pair if NORMALISED.search(text)]
    assert normalised and all(normalize(text) != text for text in normalised)
    assert max(map(len, sentences)) > 200  # long sentences too, not just the corpus's first lines
    inexact = []
    for sentence in sentences + normalised:
        rejoined = detokenize(tokenize(sentence))
        if rejoined != normalize(sentence):
            assert "".join(rejoined.split()) == "".join(normalize(sentence).split()), (sentence, rejoined)
            inexact.append(sentence)
    assert len(inexact) <= len(sentences) // 1000, inexact[:20]  # 99.9% exact (all 11,633 here)
