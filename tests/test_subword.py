"""SentencePiece tokenizers: round trip, determinism, saved in the model directory, used by run/evaluate;
word-level model directories (without a tokenizer entry) keep working."""
import json

import pytest

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

TINY = TrainConfig(dataset="numbers", max_pairs=600, dev_size=60, test_size=60, max_length=20, min_freq=1,
                   embedding_size=16, hidden_size=16, batch_size=32, lr=5e-3, epochs=1, seed=3)
SUBWORD = TINY.replace(tokenizer="sentencepiece", vocab_size=120)


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


def test_round_trip_on_real_sentences_up_to_normalisation(spa_eng_path):
    pairs = read_pairs(spa_eng_path, max_lines=3000).pairs
    train, held_out = pairs[:2500], pairs[2500:]
    tokenizers = Tokenizers.train(train, "sentencepiece", vocab_size=600, joint=True)
    tokenizer = tokenizers.source
    for source, target in train:
        for sentence in (source, target):
            assert tokenizer.detokenize(tokenizer.tokenize(sentence)) == normalize(sentence)
    # unseen sentences: exact unless a character never seen in training (it becomes <unk>, dropped)
    seen = {character for pair in train for text in pair for character in text}
    for source, _ in held_out:
        if set(source) <= seen:
            assert tokenizer.detokenize(tokenizer.tokenize(source)) == normalize(source)


def test_unknown_pieces_are_dropped_by_detokenize():
    tokenizer = SentencePieceTokenizer.train(["uno dos tres"] * 5, 20)
    assert tokenizer.detokenize(["▁uno", "<unk>", "▁dos"]) == "uno dos"


def test_joint_and_separate_models_and_max_length_counts_pieces():
    joint = prepare(SUBWORD, quiet)
    assert joint.tokenizers.joint and joint.tokenizers.source_model is joint.tokenizers.target
    separate = prepare(SUBWORD.replace(joint_vocab=False), quiet)
    assert not separate.tokenizers.joint and separate.tokenizers.source != separate.tokenizers.target
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
    Trainer(TINY, model_dir, progress=False, log=quiet).run()
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
