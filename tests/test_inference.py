"""Translator: unknown-word replacement, batching and order, empty lines, save-then-load bit for bit,
clear errors for broken model directories, and the attention plot."""
import json
import tracemalloc

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import backend, optim
from translator import checkpoint
from translator.checkpoint import CheckpointError
from translator.model import ModelConfig, Seq2Seq
from translator.plot import PlotUnavailable, plot_attention
from translator.inference import Translation, Translator, replace_unknowns
from translator.subword import Tokenizers
from translator.vocabulary import BOS, EOS, PAD, UNK, Vocabulary

WORDS = ["uno", "dos", "tres", "cuatro", "cinco", "seis"]
SOURCE_VOCAB = Vocabulary(WORDS + ["Tom"])
TARGET_VOCAB = Vocabulary(WORDS)  # no "Tom": the model must say <unk> for it


@pytest.fixture(scope="module")
def copier():
    """A Translator whose model copies its input (a few seconds of training); "Tom" comes out as <unk>."""
    tg.manual_seed(0)
    rng = np.random.default_rng(0)
    config = ModelConfig(embedding_size=16, hidden_size=24, dropout=0.0)
    model = Seq2Seq(config, len(SOURCE_VOCAB), len(TARGET_VOCAB))
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    for _ in range(70):
        lengths = rng.integers(1, 6, size=64)
        source = np.full((64, 6), PAD)
        target_in, target_out = np.full((64, 6), PAD), np.full((64, 6), PAD)
        for row, length in enumerate(lengths):
            words = [str(w) for w in rng.choice(WORDS + ["Tom"], size=length)]
            ids = SOURCE_VOCAB.encode(words)  # + EOS, as the translator encodes
            source[row, :len(ids)] = ids
            target = TARGET_VOCAB.encode(words, add_eos=False)
            target_in[row, :length + 1] = [BOS, *target]
            target_out[row, :length + 1] = [*target, EOS]
        optimizer.zero_grad()
        model.loss(source, lengths + 1, target_in, target_out).backward()
        optimizer.step()
    return Translator(model.eval(), SOURCE_VOCAB, TARGET_VOCAB)


def save_model_dir(translator, directory, weights=checkpoint.BEST_FILE):
    model = translator.model
    checkpoint.write_config(directory, model.config.to_dict(), model.source_vocab_size, model.target_vocab_size,
                            train_options={}, data_info={})
    SOURCE_VOCAB.save(directory / checkpoint.SOURCE_VOCAB_FILE)
    TARGET_VOCAB.save(directory / checkpoint.TARGET_VOCAB_FILE)
    checkpoint.save_checkpoint(directory / weights, {"kind": "best", "model": dict(model.state_dict())})
    return directory


SENTENCES = ["uno dos tres", "Tom", "", "seis cinco cuatro tres dos", "   ", "dos Tom uno", "cinco"]


# ---------------------------------------------------------------- unknown words
def test_replace_unknowns_copies_the_most_attended_source_word():
    attention = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.1, 0.05, 0.85]])
    # The last row looks hardest at </s>, which is never copied: the best real word wins.
    assert replace_unknowns(["I", "<unk>", "<unk>"], attention, ["yo", "Tom", "</s>"]) == ["I", "Tom", "yo"]
    assert replace_unknowns(["<unk>"], None, ["Tom", "</s>"]) == ["<unk>"]


def test_names_pass_through(copier):
    outputs = copier.translate(["dos Tom uno", "Tom"])
    assert outputs == ["dos Tom uno", "Tom"]
    raw = copier.translate(["dos Tom uno"], replace_unk=False)
    assert raw == ["dos <unk> uno"]


def test_a_casefold_model_copies_the_source_word_as_typed(copier):
    """The model reads "¡Dos TOM uno" as "dos tom uno", but the <unk> it writes becomes "TOM", not "tom"."""
    lower_vocab = Vocabulary(WORDS + ["tom"])  # the same ids as SOURCE_VOCAB, as a casefold model's vocabulary
    casefold = Translator(copier.model, lower_vocab, TARGET_VOCAB, tokenizers=Tokenizers.word("casefold"))
    assert casefold.translate(["¡Dos TOM uno", "dos tom uno", "Tom"]) == ["dos TOM uno", "dos tom uno", "Tom"]
    details = casefold.translate(["¿Dos Tom uno"], return_details=True)[0][0]
    assert details.source_tokens == ["dos", "tom", "uno", "</s>"]  # what the encoder read: normalised


# ---------------------------------------------------------------- batching, order, empty lines
def test_order_batching_and_empty_lines(copier):
    one_batch = copier.translate(SENTENCES, batch_size=64)
    small_batches = copier.translate(SENTENCES, batch_size=2)
    assert one_batch == small_batches
    assert one_batch[2] == "" and one_batch[4] == ""
    assert one_batch[0] == "uno dos tres" and one_batch[6] == "cinco"
    assert copier.translate([]) == []


def test_details_and_nbest(copier):
    (details,) = copier.translate(["uno Tom"], beam=3, nbest=3, return_details=True)
    assert len(details) == 3 and all(isinstance(d, Translation) for d in details)
    assert [d.score for d in details] == sorted((d.score for d in details), reverse=True)
    best = details[0]
    assert best.text == "uno Tom" and best.source_tokens == ["uno", "Tom", "</s>"]
    assert best.attention.shape == (len(best.target_tokens), 3)
    with pytest.raises(ValueError, match="nbest"):
        copier.translate(["uno"], beam=2, nbest=3)
    with pytest.raises(TypeError, match="list of sentences"):
        copier.translate("uno")


def test_batches_keep_to_the_token_budget_and_long_inputs_are_truncated(copier, monkeypatch):
    searched = []
    original = Translator._search

    def recording(self, token_lists, *args):
        searched.append([len(tokens) + 1 for tokens in token_lists])  # + EOS: the encoder's width
        return original(self, token_lists, *args)

    monkeypatch.setattr(Translator, "_search", recording)
    long_line = " ".join(["dos"] * 5000)
    sentences = [long_line, "uno", "", *(" ".join(WORDS[:n]) for n in range(1, 7)), long_line + " tres"]
    details = copier.translate(sentences, batch_size=4, max_tokens=24, max_source_length=10, return_details=True)
    assert len(details) == len(sentences)
    assert [d[0].truncated for d in details] == [True] + [False] * 8 + [True]
    assert details[0][0].source_tokens == ["dos"] * 10 + ["</s>"]
    assert sorted(width for batch in searched for width in batch) == sorted([11, 11, 2, 2, 3, 4, 5, 6, 7])
    for widths in searched:
        assert len(widths) <= 4 and (len(widths) == 1 or len(widths) * max(widths) <= 24), searched
    plain = copier.translate(sentences[1:-1], batch_size=64)  # the budget does not change results
    assert [d[0].text for d in details[1:-1]] == plain


def test_a_huge_input_costs_what_a_long_sentence_costs(copier):
    """Four lines of 20,000 words: bounded memory, four outputs (they are cut to 256 tokens by default)."""
    from translator.inference import DEFAULT_MAX_SOURCE_LENGTH, truncated_tokens

    line = " ".join(["uno dos"] * 10_000)
    tokens, truncated = truncated_tokens(line)
    assert truncated and len(tokens) == DEFAULT_MAX_SOURCE_LENGTH
    tracemalloc.start()
    try:
        outputs = copier.translate([line] * 4, max_source_length=64)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(outputs) == 4 and all(outputs)
    assert peak < 64 << 20, peak


# ---------------------------------------------------------------- save, load
def test_save_then_load_reproduces_outputs_bit_for_bit(copier, tmp_path):
    loaded = Translator.load(save_model_dir(copier, tmp_path))
    for beam in (1, 3):
        before = copier.translate(SENTENCES, beam=beam, return_details=True)
        after = loaded.translate(SENTENCES, beam=beam, return_details=True)
        for b, a in zip(before, after):
            assert [t.text for t in b] == [t.text for t in a]
            assert [t.log_prob for t in b] == [t.log_prob for t in a]  # exactly
            for tb, ta in zip(b, a):
                if tb.attention is not None:
                    np.testing.assert_array_equal(tb.attention, ta.attention)


def _mark_as_saved_from_cuda(path):
    """Rewrite a checkpoint so that every tensor says it was saved from a GPU (the file format's only trace)."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    text = bytes(arrays["__structure__"]).decode("utf-8")
    assert '"device": "cpu"' in text
    arrays["__structure__"] = np.frombuffer(text.replace('"device": "cpu"', '"device": "cuda"').encode(), np.uint8)
    with open(path, "wb") as file:
        np.savez(file, **arrays)


def test_a_checkpoint_saved_on_a_gpu_loads_on_the_cpu(copier, tmp_path):
    directory = save_model_dir(copier, tmp_path)
    _mark_as_saved_from_cuda(directory / checkpoint.BEST_FILE)
    if not backend.cuda_available():      # the edit took: read as saved, it asks for a GPU
        with pytest.raises(RuntimeError, match="cuda"):
            tg.load(directory / checkpoint.BEST_FILE)
    loaded = Translator.load(directory, device="cpu")
    assert loaded.translate(SENTENCES, beam=3) == copier.translate(SENTENCES, beam=3)


def test_load_falls_back_to_last_checkpoint(copier, tmp_path):
    loaded = Translator.load(save_model_dir(copier, tmp_path, weights=checkpoint.LAST_FILE))
    assert loaded.translate(["uno dos"]) == copier.translate(["uno dos"])


def test_broken_model_directories_give_one_line_errors(copier, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        Translator.load(tmp_path / "nowhere")
    directory = save_model_dir(copier, tmp_path)
    config_path = directory / checkpoint.CONFIG_FILE
    document = json.loads(config_path.read_text())
    document["model"]["attention"] = "psychic"
    config_path.write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="unusable model") as error:
        Translator.load(directory)
    assert "\n" not in str(error.value)

    document["model"]["attention"] = "additive"
    document["model"]["hidden_size"] = 7
    config_path.write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="does not fit") as error:
        Translator.load(directory)
    assert "\n" not in str(error.value)

    document["model"]["hidden_size"] = 24
    document["format_version"] = 999
    config_path.write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="format version"):
        Translator.load(directory)


# ---------------------------------------------------------------- plot
def test_plot_needs_matplotlib_or_draws(copier, tmp_path):
    (details,) = copier.translate(["uno Tom"], return_details=True)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.raises(PlotUnavailable, match=r"pip install 'tinygrad-rnn\[plot\]'"):
            plot_attention(details[0], tmp_path / "a.png")
    else:
        plot_attention(details[0], tmp_path / "a.png")
        assert (tmp_path / "a.png").stat().st_size > 0
    with pytest.raises(ValueError, match="no attention"):
        plot_attention(Translation("", [], [], 0.0, 0.0, None), tmp_path / "b.png")


def test_unk_id_is_in_the_target_vocabulary():
    assert TARGET_VOCAB.token_to_id("Tom") == UNK
