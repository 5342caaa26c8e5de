"""Tests for translator.vocabulary: building, encoding, decoding, serialisation."""

import json
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from translator.errors import DataError
from translator.vocabulary import BOS, EOS, PAD, SPECIAL_TOKENS, UNK, Vocabulary

SENTENCES = [
    ["¿", "Dónde", "está", "?"],
    ["Está", "aquí", "."],
    ["¿", "Qué", "es", "?"],
    ["Es", "aquí", "."],
]


def test_special_ids():
    assert (PAD, BOS, EOS, UNK) == (0, 1, 2, 3)
    vocabulary = Vocabulary()
    assert len(vocabulary) == 4
    assert [vocabulary.id_to_token(index) for index in range(4)] == list(SPECIAL_TOKENS)
    assert [vocabulary.token_to_id(token) for token in ("<pad>", "<s>", "</s>", "<unk>")] == [0, 1, 2, 3]


def test_build_orders_by_count_then_token():
    vocabulary = Vocabulary.build(SENTENCES)
    # counts: ¿ 2, ? 2, aquí 2, . 2, then singletons, alphabetically (code point order)
    assert vocabulary.itos[4:8] == [".", "?", "aquí", "¿"]
    assert vocabulary.itos[8:] == sorted(["Dónde", "está", "Está", "Qué", "es", "Es"])
    assert len(vocabulary) == 4 + 10


def test_build_is_independent_of_corpus_order():
    shuffled = SENTENCES[:]
    random.Random(0).shuffle(shuffled)
    assert Vocabulary.build(shuffled, max_size=7) == Vocabulary.build(SENTENCES, max_size=7)


def test_min_freq_and_max_size():
    assert Vocabulary.build(SENTENCES, min_freq=2).itos[4:] == [".", "?", "aquí", "¿"]
    capped = Vocabulary.build(SENTENCES, max_size=6)
    assert len(capped) == 6 and capped.itos[4:] == [".", "?"]
    assert len(Vocabulary.build(SENTENCES, max_size=4)) == 4
    with pytest.raises(ValueError, match="max_size"):
        Vocabulary.build(SENTENCES, max_size=3)
    with pytest.raises(ValueError, match="min_freq"):
        Vocabulary.build(SENTENCES, min_freq=0)


def test_build_ignores_special_strings_and_rejects_raw_strings():
    vocabulary = Vocabulary.build([["<unk>", "<s>", "hola"]])
    assert vocabulary.itos == list(SPECIAL_TOKENS) + ["hola"]
    with pytest.raises(TypeError, match="tokenize first"):
        Vocabulary.build(["una frase sin tokenizar"])


def test_constructor_rejects_duplicates_and_specials():
    with pytest.raises(ValueError, match="duplicate"):
        Vocabulary(["a", "b", "a"])
    with pytest.raises(ValueError, match="special"):
        Vocabulary(["a", "</s>"])


def test_encode():
    vocabulary = Vocabulary.build(SENTENCES)
    ids = vocabulary.encode(["¿", "Dónde", "está", "?"])
    assert ids[-1] == EOS and len(ids) == 5
    assert vocabulary.encode(["aquí"], add_bos=True, add_eos=False) == [BOS, vocabulary.token_to_id("aquí")]
    assert vocabulary.encode(["nunca-visto"], add_eos=False) == [UNK]
    assert vocabulary.encode([]) == [EOS]
    with pytest.raises(TypeError, match="tokenize first"):
        vocabulary.encode("aquí")


def test_decode():
    vocabulary = Vocabulary.build(SENTENCES)
    here = vocabulary.token_to_id("aquí")
    ids = [BOS, here, UNK, EOS, here, PAD]
    assert vocabulary.decode(ids) == ["aquí", "<unk>"]
    assert vocabulary.decode(ids, strip_specials=False) == ["<s>", "aquí", "<unk>", "</s>", "aquí", "<pad>"]
    assert vocabulary.decode([PAD, here, PAD]) == ["aquí"]
    with pytest.raises(ValueError, match="outside this vocabulary"):
        vocabulary.decode([len(vocabulary)])
    with pytest.raises(ValueError, match="outside this vocabulary"):
        vocabulary.decode([-1])


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.lists(st.lists(st.text(min_size=1, max_size=4), max_size=6), max_size=6))
def test_encode_decode_round_trip(sentences):
    vocabulary = Vocabulary.build(sentences)
    for sentence in sentences:
        expected = [token if token in vocabulary else "<unk>" for token in sentence]
        expected = [token for token in expected if token not in ("<pad>", "<s>")]
        if "</s>" in expected:
            expected = expected[: expected.index("</s>")]
        assert vocabulary.decode(vocabulary.encode(sentence, add_bos=True)) == expected


def test_dict_and_json_round_trip():
    vocabulary = Vocabulary.build(SENTENCES)
    assert Vocabulary.from_dict(vocabulary.to_dict()) == vocabulary
    text = vocabulary.to_json()
    assert json.loads(text)["tokens"][:4] == list(SPECIAL_TOKENS)
    assert Vocabulary.from_json(text) == vocabulary
    with pytest.raises(ValueError, match="not a vocabulary"):
        Vocabulary.from_json('{"tokens": []}')
    with pytest.raises(ValueError, match="specials"):
        Vocabulary.from_dict({"format": "translator.vocabulary", "version": 1, "tokens": ["a"]})
    with pytest.raises(ValueError, match="version"):
        Vocabulary.from_dict({"format": "translator.vocabulary", "version": 99, "tokens": list(SPECIAL_TOKENS)})


def test_save_and_load(tmp_path):
    vocabulary = Vocabulary.build(SENTENCES)
    path = tmp_path / "vocab.json"
    vocabulary.save(path)
    loaded = Vocabulary.load(path)
    assert loaded == vocabulary
    assert loaded.encode(["¿", "Dónde", "está", "?"]) == vocabulary.encode(["¿", "Dónde", "está", "?"])
    assert os.listdir(tmp_path) == ["vocab.json"]  # no temporary file left over


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "vocab.json"
    Vocabulary(["viejo"]).save(path)
    before = path.read_text(encoding="utf-8")

    def crash(source, destination):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        Vocabulary(["nuevo"]).save(path)
    assert path.read_text(encoding="utf-8") == before
    assert os.listdir(tmp_path) == ["vocab.json"]


def test_load_errors_name_the_file(tmp_path):
    missing = tmp_path / "missing.json"
    with pytest.raises(DataError, match="missing.json"):
        Vocabulary.load(missing)
    garbage = tmp_path / "garbage.json"
    garbage.write_text("not json", encoding="utf-8")
    with pytest.raises(DataError, match="garbage.json.*not a valid vocabulary"):
        Vocabulary.load(garbage)


def test_the_special_tokens_have_one_owner():
    from translator.vocabulary import decoder_sequences, encoder_tokens, source_words

    assert encoder_tokens(["Tom", "llega"]) == ["Tom", "llega", "</s>"]
    assert source_words(encoder_tokens(["Tom", "llega"])) == ["Tom", "llega"] == source_words(["Tom", "llega"])
    vocabulary = Vocabulary(["Tom", "llega"])
    assert vocabulary.decode(vocabulary.encode(["Tom", "llega"]), strip_specials=False) == encoder_tokens(["Tom", "llega"])
    for target in ([5, 6], [5, 6, EOS], [BOS, 5, 6, EOS]):
        assert decoder_sequences(target) == ([BOS, 5, 6], [5, 6, EOS])
    assert decoder_sequences([]) == ([BOS], [EOS])
