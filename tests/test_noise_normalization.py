"""Source normalisation (--source-normalization casefold): the source tokenizer applies it everywhere,
the model directory records it, older directories read as ``none``, and --source-noise draws only the rest."""
import json

import pytest
from click.testing import CliRunner

from translator import checkpoint, noise, numbers_corpus
from translator.cli import cli
from translator.config import DEFAULT_SOURCE_NOISE, TrainConfig
from translator.errors import CheckpointError, ConfigError
from translator.inference import Translator
from translator.subword import NormalizingTokenizer, Tokenizers, WordTokenizer
from translator.training import Trainer

TOY = TrainConfig(dataset="numbers", max_pairs=300, dev_size=20, test_size=20, max_length=20, min_freq=1,
                  embedding_size=16, hidden_size=16, batch_size=32, lr=5e-3, epochs=1, seed=3, curves=False)


def quiet(*_):
    pass


def test_word_source_tokenizer_normalises_and_the_target_does_not():
    tokenizers = Tokenizers.word("casefold")
    assert isinstance(tokenizers.source, NormalizingTokenizer) and isinstance(tokenizers.target, WordTokenizer)
    assert tokenizers.source.tokenize("¿Dónde está Tom?") == tokenizers.source.tokenize("dónde está tom?") \
        == ["dónde", "está", "tom", "?"]
    assert tokenizers.target.tokenize("Where is Tom?") == ["Where", "is", "Tom", "?"]
    assert Tokenizers.word().source.tokenize("¿Dónde?") == ["¿", "Dónde", "?"]  # none: as written
    assert tokenizers.to_dict()["source_normalization"] == "casefold"


def test_typed_source_tokens_line_up_with_the_normalised_ones():
    tokenizers = Tokenizers.word("casefold")
    text = "¿Vio Tom a María en EE.UU. ayer?"
    tokens = tokenizers.source.tokenize(text)
    typed = tokenizers.typed_source_tokens(text, tokens)
    assert len(typed) == len(tokens)
    # up to EE.UU. (one token as typed, four lower-cased) the typed spelling; after it, the normalised tokens
    assert typed[:4] == ["Vio", "Tom", "a", "María"] and typed[4:] == tokens[4:]
    assert tokenizers.typed_source_tokens(text, tokens[:2]) == ["Vio", "Tom"]  # a truncated source
    assert Tokenizers.word().typed_source_tokens("Tom", ["Tom"]) == ["Tom"]


def test_sentencepiece_learns_and_reads_normalised_sources():
    pairs = [("¿" + spanish.capitalize() + "?", english.capitalize() + "?")
             for spanish, english in numbers_corpus.generate_pairs(300, seed=0)]
    tokenizers = Tokenizers.train(pairs, "sentencepiece", vocab_size=200, joint=False,
                                  source_normalization="casefold")
    source = tokenizers.source
    assert source.tokenize("¿Trescientos doce?") == source.tokenize("trescientos doce?")
    pieces = [source.inner.processor.id_to_piece(i) for i in range(len(source))]
    assert not any("¿" in piece or piece != piece.lower() for piece in pieces)  # trained on the normal form
    assert any(piece != piece.lower() for piece in (tokenizers.target.processor.id_to_piece(i)
                                                     for i in range(len(tokenizers.target))))


@pytest.fixture(scope="module")
def casefold_model(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("casefold") / "model"
    Trainer(TOY, model_dir, progress=False, log=quiet, evaluate_test=False).run()
    return model_dir


def test_a_casefold_model_saves_the_entry_and_reads_typed_input_like_written(casefold_model):
    document = json.loads((casefold_model / checkpoint.CONFIG_FILE).read_text())
    assert document["tokenizer"]["source_normalization"] == "casefold"
    assert document["train"]["source_normalization"] == "casefold"
    translator = Translator.load(casefold_model)

    def ids(text):
        return translator.source_vocab.encode(translator.tokenizers.source.tokenize(text))

    assert ids("¿Trescientos DOCE?") == ids("trescientos doce?") != ids("trescientos doce")
    assert ids("¡Cuarenta y Uno!") == ids("cuarenta y uno!")
    written = ["¿Trescientos doce?", "¡Cuarenta y Uno!"]
    typed = ["trescientos doce?", "cuarenta y uno!"]
    assert translator.translate(written, beam=2) == translator.translate(typed, beam=2)
    result = CliRunner().invoke(cli, ["run", "--model", str(casefold_model), "--beam", "1", "Cien mil",
                                      "cien MIL"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    first, second = result.stdout.splitlines()
    assert first == second


def test_a_directory_without_the_entry_reads_sources_as_written(tmp_path):
    """Models trained before source normalisation: no entry in config.json, so 'none', exactly as before."""
    model_dir = tmp_path / "model"
    Trainer(TOY.replace(tokenizer="word", source_normalization="none", source_noise=0.0), model_dir, progress=False, log=quiet,
            evaluate_test=False).run()
    inputs = ["Trescientos doce", "trescientos doce", "¿cuarenta y uno?"]
    before = Translator.load(model_dir).translate(inputs, beam=2)
    path = model_dir / checkpoint.CONFIG_FILE
    document = json.loads(path.read_text())
    assert document["tokenizer"]["source_normalization"] == "none"
    del document["tokenizer"]["source_normalization"]
    for name in ("source_normalization", "source_noise"):
        del document["train"][name]
    path.write_text(json.dumps(document))
    translator = Translator.load(model_dir)
    assert translator.tokenizers.source_normalization == "none"
    assert isinstance(translator.tokenizers.source, WordTokenizer)
    assert translator.tokenizers.source.tokenize("¿Cien?") == ["¿", "Cien", "?"]
    assert translator.translate(inputs, beam=2) == before
    resumed = Trainer(TOY.replace(epochs=2), model_dir, resume=True, explicit={"epochs"}, progress=False, log=quiet,
                      evaluate_test=False)
    assert (resumed.config.source_normalization, resumed.config.source_noise) == ("none", 0.0)
    # an unknown normalisation is a one-line error, not a silent "none"
    document["tokenizer"]["source_normalization"] = "shout"
    path.write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="unknown source normalization 'shout'"):
        Translator.load(model_dir)


def test_config_defaults_round_trip_and_checks():
    config = TrainConfig()
    assert (config.source_normalization, config.source_noise) == ("casefold", DEFAULT_SOURCE_NOISE)
    assert DEFAULT_SOURCE_NOISE == 0.2
    for normalization in noise.SOURCE_NORMALIZATIONS:
        changed = config.replace(source_normalization=normalization)
        assert TrainConfig.from_dict(json.loads(json.dumps(changed.to_dict()))) == changed
    with pytest.raises(ConfigError, match="--source-normalization must be one of none, casefold, got 'upper'"):
        TrainConfig(source_normalization="upper").validate()


def test_noised_examples_draw_only_the_kinds_casefold_leaves(monkeypatch):
    from translator import preparation

    seen = []
    original = noise.random_variant

    def recording(text, rng, kinds=tuple(noise.KINDS)):
        seen.append(tuple(kinds))
        return original(text, rng, kinds)

    monkeypatch.setattr(noise, "random_variant", recording)
    for normalization, expected in (("casefold", ("nopunct", "noaccents")), ("none", tuple(noise.KINDS))):
        data = preparation.prepare(TOY.replace(source_normalization=normalization), quiet)
        seen.clear()
        preparation.noised_examples(data, 1.0, seed=3, epoch=0)
        assert seen and set(seen) == {expected}


def test_help_describes_normalisation_and_noise():
    text = " ".join(CliRunner().invoke(cli, ["train", "--help"]).output.split())
    assert "--source-normalization [none|casefold]" in text
    assert "lower case and no opening ¿ ¡" in text
    assert "does not already remove (casefold: no final . ! ? … and no accents" in text
