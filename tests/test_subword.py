"""SentencePiece tokenizers: round trip, determinism, saved in the model directory, used by run/evaluate;
word-level model directories (without a tokenizer entry) keep working."""
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from translator import checkpoint
from translator.cli import cli
from translator.config import TrainConfig
from translator.corpus import read_pairs
from translator.errors import CheckpointError
from translator.inference import Translator
from translator.numbers_corpus import generate_pairs
from translator.preparation import prepare
from translator.subword import SentencePieceTokenizer, Tokenizers, WordTokenizer
from translator.tokenize import normalize
from translator.training import Trainer

from test_tokenize import NORMALISED

TINY = TrainConfig(dataset="numbers", max_pairs=600, dev_size=60, test_size=60, max_length=20, min_freq=1,
                   embedding_size=16, hidden_size=16, batch_size=32, lr=5e-3, epochs=1, seed=3)
SUBWORD = TINY.replace(tokenizer="sentencepiece", vocab_size=120, joint_vocab=True)
FIXTURES = Path(__file__).parent / "fixtures"


def quiet(*_):
    pass


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_round_trip_and_determinism_on_the_numbers_corpus(model_type):
    pairs = generate_pairs(400, seed=0)
    sentences = [text for pair in pairs for text in pair]
    tokenizer = SentencePieceTokenizer.train(sentences, 100, model_type)
    assert tokenizer == SentencePieceTokenizer.train(sentences, 100, model_type)  # same bytes
    assert len(tokenizer) <= 100
    pieces = [tokenizer.tokenize(sentence) for sentence in sentences]
    assert all(tokenizer.detokenize(tokens) == sentence for tokens, sentence in zip(pieces, sentences))
    # subwords: fewer distinct pieces than the corpus has words, and some word split in two or more
    words = {word for sentence in sentences for word in sentence.split()}
    assert len({piece for tokens in pieces for piece in tokens}) < len(words)
    assert sum(len(tokens) for tokens in pieces) > sum(len(sentence.split()) for sentence in sentences)


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_separate_models_learnt_in_two_threads_equal_each_learnt_alone(model_type):
    """Tokenizers.train learns the source and the target model at once (two threads); each has the bytes
    it has when learnt alone, and two runs agree."""
    pairs = generate_pairs(400, seed=2)
    first = Tokenizers.train(pairs, "sentencepiece", vocab_size=100, joint=False, subword_type=model_type,
                             target_vocab_size=80)
    again = Tokenizers.train(pairs, "sentencepiece", vocab_size=100, joint=False, subword_type=model_type,
                             target_vocab_size=80)
    alone_source = SentencePieceTokenizer.train([source for source, _ in pairs], 100, model_type)
    alone_target = SentencePieceTokenizer.train([target for _, target in pairs], 80, model_type)
    assert first.source == alone_source and first.target == alone_target
    assert again.source == first.source and again.target == first.target


@pytest.mark.parametrize("kind", ["word", "sentencepiece"])
@pytest.mark.parametrize("normalization", ["none", "casefold"])
def test_tokenize_all_equals_tokenize_one_by_one(kind, normalization):
    """The batch call data preparation makes (one call into SentencePiece) splits exactly as ``tokenize``:
    sentences with format characters, curly apostrophes, odd spaces, an empty one, and ``¿ ¡``."""
    pairs = generate_pairs(300, seed=1)
    tokenizers = Tokenizers.train(pairs, kind, vocab_size=90, joint=False, source_normalization=normalization)
    texts = [source for source, _ in pairs] + ["¿Dónde\u200b está?", "It’s  Tom’s\u00a0car.", "", "¡Hola!", "x\u00ady"]
    for tokenizer in (tokenizers.source, tokenizers.target):
        assert tokenizer.tokenize_all(texts) == [tokenizer.tokenize(text) for text in texts]


@pytest.fixture(scope="module")
def corpus(spa_eng_path):
    """``(the real corpus's pairs, the pairs with a sentence that normalize() changes)``, read once."""
    pairs = read_pairs(spa_eng_path).pairs
    return pairs, [pair for pair in pairs if NORMALISED.search(f"{pair[0]}\0{pair[1]}")]


@pytest.mark.parametrize("model_type, joint", [("unigram", True), ("bpe", False)])
def test_round_trip_on_the_real_corpus_is_exact_up_to_normalisation(corpus, model_type, joint):
    """detokenize(tokenize(s)) == normalize(s) for every sentence: the ones it was trained on, others from
    all over the corpus, and each sentence normalize() changes.

    Trained on every 40th pair (the corpus is sorted by length: spread out, short and long
    sentences), checked on those and on the pairs halfway between them. A character never seen in
    training comes back too (SentencePiece returns it as its own piece; only the model's vocabulary
    makes it <unk>). On all 231,928 sentences of spa-eng none differs (unigram and BPE, joint or not).
    """
    pairs, normalised = corpus
    train, held_out = pairs[::40], pairs[20::40]
    assert normalised and max(len(text) for pair in train for text in pair) > 200
    tokenizers = Tokenizers.train(train, "sentencepiece", vocab_size=1000, joint=joint, subword_type=model_type)
    assert tokenizers.joint == joint and len(tokenizers.source) <= 1000
    seen = {character for pair in train for text in pair for character in normalize(text)}
    unseen, pieces_in_all, characters_in_all = 0, 0, 0
    for source, target in train + held_out + normalised:
        for tokenizer, sentence in ((tokenizers.source, source), (tokenizers.target, target)):
            pieces, normal = tokenizer.tokenize(sentence), normalize(sentence)
            assert tokenizer.detokenize(pieces) == normal, (sentence, pieces)
            unseen += not set(normal) <= seen
            pieces_in_all, characters_in_all = pieces_in_all + len(pieces), characters_in_all + len(normal)
    assert unseen  # the held-out pairs hold characters the model never saw
    assert pieces_in_all < characters_in_all / 2  # subwords, not characters


def test_unknown_pieces_are_dropped_by_detokenize():
    tokenizer = SentencePieceTokenizer.train(["uno dos tres"] * 5, 20)
    assert tokenizer.detokenize(["▁uno", "<unk>", "▁dos"]) == "uno dos"


def test_joint_and_separate_models_and_max_length_counts_pieces():
    joint = prepare(SUBWORD, quiet)
    assert joint.tokenizers.joint and joint.tokenizers.source_model is joint.tokenizers.target
    separate = prepare(SUBWORD.replace(joint_vocab=False), quiet)
    assert not separate.tokenizers.joint and separate.tokenizers.source != separate.tokenizers.target
    smaller = prepare(SUBWORD.replace(joint_vocab=False, target_vocab_size=40), quiet)
    assert len(smaller.tokenizers.target) == 40 and smaller.tokenizers.source == separate.tokenizers.source
    assert len(smaller.target_vocab) < len(separate.target_vocab)
    english = separate.tokenizers.target.tokenize(separate.train_pairs[0][1])
    assert separate.target_vocab.encode(english) == separate.train_examples[0][1]
    pieces = max(len(joint.tokenizers.target.tokenize(target)) for _, target in joint.train_pairs)
    short = prepare(SUBWORD.replace(max_length=pieces - 1), quiet)
    assert len(short.train_examples) < len(joint.train_examples)
    assert all(len(target) <= pieces for _, target in short.train_examples)  # pieces + EOS


def test_sentencepiece_model_dir_saves_loads_translates_and_resumes(tmp_path):
    model_dir = tmp_path / "model"
    Trainer(SUBWORD, model_dir, progress=False, log=quiet).run()
    document = json.loads((model_dir / checkpoint.CONFIG_FILE).read_text())
    assert document["tokenizer"] == {"kind": "sentencepiece", "joint": True, "files": ["sentencepiece.model"],
                                     "source_normalization": "casefold"}
    translator = Translator.load(model_dir)
    assert translator.tokenizers.kind == "sentencepiece"
    outputs = translator.translate(["trescientos doce", "", "cuarenta y uno"], beam=2)
    assert len(outputs) == 3 and outputs[1] == ""
    assert all("▁" not in text and "<unk>" not in text for text in outputs)
    # the same tokenizer comes back on resume (not retrained), and training continues
    Trainer(SUBWORD.replace(epochs=2), model_dir, resume=True, explicit={"epochs"}, progress=False, log=quiet).run()
    assert checkpoint.load_tokenizers(model_dir) == Tokenizers.load(model_dir, document["tokenizer"])
    result = cli.main(["evaluate", "--model", str(model_dir), "--beam", "1", "--json"], standalone_mode=False)
    assert result is None
    (model_dir / "sentencepiece.model").write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="sentencepiece.model is corrupt"):
        Translator.load(model_dir)
    (model_dir / "sentencepiece.model").unlink()
    with pytest.raises(CheckpointError, match="sentencepiece.model is missing"):
        Translator.load(model_dir)


def test_word_level_dir_without_tokenizer_entry_still_loads_translates_and_resumes(tmp_path):
    model_dir = tmp_path / "model"
    Trainer(TINY.replace(tokenizer="word"), model_dir, progress=False, log=quiet).run()
    path = model_dir / checkpoint.CONFIG_FILE
    document = json.loads(path.read_text())
    assert document["tokenizer"]["kind"] == "word"
    # a directory written before subword models existed: no tokenizer entry, no tokenizer options
    del document["tokenizer"]
    for name in ("tokenizer", "vocab_size", "joint_vocab", "subword_type"):
        del document["train"][name]
    path.write_text(json.dumps(document))
    translator = Translator.load(model_dir)
    assert isinstance(translator.tokenizers.source, WordTokenizer)
    assert len(translator.translate(["trescientos doce"])) == 1
    trainer = Trainer(TINY.replace(epochs=2), model_dir, resume=True, explicit={"epochs"}, progress=False, log=quiet)
    assert trainer.config.tokenizer == "word"
    trainer.run()


def test_a_word_level_dir_written_before_subwords_loads_and_translates_as_it_did(tmp_path):
    """tests/fixtures/word_model: written by the translator of commit 845ac03 (before subword tokenizers, see
    make_word_model.sh), with what that version's ``translate run`` printed: today's prints the same."""
    expected = json.loads((FIXTURES / "word_model_outputs.json").read_text(encoding="utf-8"))
    model_dir = tmp_path / "word_model"
    shutil.copytree(FIXTURES / "word_model", model_dir)
    document = json.loads((model_dir / checkpoint.CONFIG_FILE).read_text(encoding="utf-8"))
    assert "tokenizer" not in document and "tokenizer" not in document["train"]  # truly from before
    before = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in model_dir.iterdir()}
    translator = Translator.load(model_dir)
    assert isinstance(translator.tokenizers.source, WordTokenizer) and translator.tokenizers.source.replaces_unknowns
    stdin = "\n".join(expected["sources"]) + "\n"
    for options, outputs in (([], expected["default"]), (["--beam", "1"], expected["greedy"])):
        result = CliRunner().invoke(cli, ["run", "--model", str(model_dir), *options], input=stdin)
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines() == outputs
    assert expected["default"][0] and len(set(expected["default"])) > 40  # real translations, not one string
    result = CliRunner().invoke(cli, ["evaluate", "--model", str(model_dir), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["bleu"] > 90  # its dev split, as it was trained to translate it
    assert {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in model_dir.iterdir()} == before
