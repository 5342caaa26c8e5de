"""Casual-input noise functions: each kind alone, specs, presets, and the training draw."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from translator import noise


@pytest.mark.parametrize("text, expected", [
    ("¿Dónde está la estación?", "¿dónde está la estación?"),
    ("ÉL ES TOM.", "él es tom."),
    ("hola", "hola"),
])
def test_lowercase(text, expected):
    assert noise.lowercase(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("¿Dónde está la estación?", "Dónde está la estación"),
    ("¡Hola!", "Hola"),
    ("Hola, ¿cómo estás?", "Hola, cómo estás"),
    ("Espera...", "Espera"),
    ("¿Qué?!  ", "Qué"),
    ("Tom, Mary y yo.", "Tom, Mary y yo"),       # inner commas stay
    ("Son las 2.30.", "Son las 2.30"),           # only the final run goes
    ("", ""),
    ("?!", ""),
])
def test_strip_punctuation(text, expected):
    assert noise.strip_punctuation(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("¿Dónde está la estación?", "¿Donde esta la estacion?"),
    ("Él tiene un año y pingüinos.", "El tiene un año y pinguinos."),   # ñ is a letter, kept
    ("ÁÉÍÓÚÜÑ àè ô", "AEIOUUÑ ae o"),
    ("Where is it?", "Where is it?"),
])
def test_strip_accents(text, expected):
    assert noise.strip_accents(text) == expected


def test_strip_accents_works_on_decomposed_input():
    decomposed = "esta\u0301"        # "está" written as a + combining acute
    assert noise.strip_accents(decomposed) == "esta"


def test_specs_and_presets():
    assert noise.parse_spec("casual") == ("lower", "nopunct")
    assert noise.parse_spec("noaccents, lower") == ("lower", "noaccents")
    assert noise.parse_spec("all") == ("lower", "nopunct", "noaccents")
    assert noise.parse_spec("clean") == ()
    assert noise.apply_spec(["¿Dónde está la estación?"], "casual") == ["dónde está la estación"]
    assert noise.apply_spec(["¿Dónde está la estación?"], "all") == ["donde esta la estacion"]


@pytest.mark.parametrize("spec", ["", " , ", "loud", "casual,shout"])
def test_bad_spec_names_the_word_and_the_choices(spec):
    with pytest.raises(ValueError, match="casual") as error:
        noise.parse_spec(spec)
    if "shout" in spec or "loud" in spec:
        assert ("shout" if "shout" in spec else "loud") in str(error.value)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.text(alphabet="abcñáéíóúüABCÁÉ¿¡?!., ", max_size=30))
def test_kinds_commute_and_are_idempotent(text):
    kinds = list(noise.KINDS)
    once = noise.apply(text, kinds)
    assert noise.apply(text, kinds[::-1]) == once
    assert noise.apply(once, kinds) == once


def test_random_variant_draws_every_combination_and_is_seeded():
    text = "¿Dónde está?"
    draws = [noise.random_variant(text, np.random.default_rng(seed)) for seed in range(200)]
    expected = {noise.apply(text, [k for bit, k in enumerate(noise.KINDS) if mask >> bit & 1])
                for mask in range(1, 8)}
    assert set(draws) == expected and text not in draws
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    assert [noise.random_variant(text, rng_a) for _ in range(20)] == [noise.random_variant(text, rng_b) for _ in range(20)]


# ---------------------------------------------------------------- source normalisation (casefold)
@pytest.mark.parametrize("text, expected", [
    ("¿Dónde está la estación?", "dónde está la estación?"),
    ("Hola, ¡qué bien!", "hola, qué bien!"),          # the closing ! stays, with the comma
    ("¡¿ÉL ES TOM?!", "él es tom?!"),
    ("hola¿qué tal?", "hola qué tal?"),                 # a mark between words leaves a space, not a fused word
    ("donde esta la estacion", "donde esta la estacion"),
    ("Son las 2.30.", "son las 2.30."),
    ("", ""),
])
def test_casefold_source(text, expected):
    assert noise.casefold_source(text) == expected
    assert noise.SOURCE_NORMALIZATIONS["casefold"](text) == expected
    assert noise.SOURCE_NORMALIZATIONS["none"](text) == text


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.text(alphabet="abcñáéíóúüABCÁÉ¿¡?!., ", max_size=30))
def test_casefold_is_idempotent_and_covers_lowercase(text):
    once = noise.casefold_source(text)
    assert noise.casefold_source(once) == once
    assert noise.lowercase(once) == once and "¿" not in once and "¡" not in once
    assert noise.casefold_source(noise.lowercase(text)) == once  # lower case adds nothing after it


def test_training_kinds_leave_out_what_the_normalisation_covers():
    assert noise.training_kinds("none") == ("lower", "nopunct", "noaccents")
    assert noise.training_kinds("casefold") == ("nopunct", "noaccents")
    with pytest.raises(ValueError, match="casefold"):
        noise.training_kinds("upper")


def test_random_variant_under_casefold_draws_only_the_remaining_kinds():
    text = "¿Dónde está Tom?"
    kinds = noise.training_kinds("casefold")
    draws = [noise.random_variant(text, np.random.default_rng(seed), kinds) for seed in range(100)]
    assert set(draws) == {"Dónde está Tom", "¿Donde esta Tom?", "Donde esta Tom"}  # never lower-cased
    again = [noise.random_variant(text, np.random.default_rng(seed), kinds) for seed in range(100)]
    assert draws == again
    with pytest.raises(ValueError, match="at least one kind"):
        noise.random_variant(text, np.random.default_rng(0), ())
