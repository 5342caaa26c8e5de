"""Scoring: sacreBLEU on detokenised text vs raw references, signatures, speed, evaluation data."""
import pytest
import sacrebleu

from translator import checkpoint
from translator.evaluate import EvaluationResult, evaluate_pairs, load_evaluation_pairs, score, write_output


def test_perfect_and_wrong_translations():
    references = ["Where is the station?", "I'm here.", "Tom didn't go."]
    perfect = score(references, references)
    assert perfect.bleu == pytest.approx(100.0) and perfect.chrf == pytest.approx(100.0)
    assert perfect.exact_matches == 1.0
    wrong = score(["The cat sleeps.", "No.", "Yes."], references)
    assert wrong.bleu < 10 and wrong.exact_matches == 0.0


def test_scores_equal_sacrebleu_on_natural_text_not_tokens():
    hypotheses = ["Where's the station?", "I am here.", "Tom did not go."]
    references = ["Where is the station?", "I'm here.", "Tom didn't go."]
    result = score(hypotheses, references)
    assert result.bleu == pytest.approx(sacrebleu.corpus_bleu(hypotheses, [references]).score)
    assert result.chrf == pytest.approx(sacrebleu.corpus_chrf(hypotheses, [references]).score)
    assert result.bleu_signature.startswith("nrefs:1|case:mixed") and "tok:13a" in result.bleu_signature
    # Cased: a lower-cased hypothesis loses points.
    assert score([h.lower() for h in references], references).bleu < 100.0


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        score(["a", "b"], ["a"])


def test_evaluate_pairs_times_the_translation_and_keeps_order():
    pairs = [("uno", "one"), ("dos", "two"), ("tres", "three")]
    lookup = {"uno": "one", "dos": "two", "tres": "four"}
    result = evaluate_pairs(lambda sentences: [lookup[s] for s in sentences], pairs)
    assert result.hypotheses == ["one", "two", "four"]
    assert result.sentences == 3 and result.seconds >= 0.0 and result.sentences_per_second > 0
    assert result.exact_matches == pytest.approx(2 / 3)
    report = result.to_dict()
    assert set(report) >= {"bleu", "chrf", "bleu_signature", "chrf_signature", "sentences_per_second"}
    assert "hypotheses" not in report and result.to_dict(include_hypotheses=True)["hypotheses"][2] == "four"
    assert "BLEU = " in result.summary() and "sentences/s" in result.summary()


def test_default_data_is_the_models_test_split(tmp_path):
    pairs = [("¿Dónde está?", "Where is it?"), ("Hola.", "Hello.")]
    checkpoint.write_pairs(tmp_path / checkpoint.TEST_FILE, pairs)
    loaded, description = load_evaluation_pairs(tmp_path, None, {})
    assert loaded == pairs and description.endswith(checkpoint.TEST_FILE)


def test_other_data_is_read_in_the_models_direction(tmp_path):
    data = tmp_path / "pairs.tsv"
    data.write_text("Hello.\tHola.\tattribution\nno tab\nBye.\tAdiós.\n", encoding="utf-8")
    messages = []
    spanish_to_english, _ = load_evaluation_pairs(tmp_path, data, {"reverse": False}, log=messages.append)
    assert spanish_to_english == [("Hola.", "Hello."), ("Adiós.", "Bye.")]
    assert "skipped 1 malformed lines (2)" in messages[0]
    english_to_spanish, _ = load_evaluation_pairs(tmp_path, data, {"reverse": True})
    assert english_to_spanish == [("Hello.", "Hola."), ("Bye.", "Adiós.")]


def test_missing_test_split_is_a_checkpoint_error(tmp_path):
    with pytest.raises(checkpoint.CheckpointError, match="--data"):
        load_evaluation_pairs(tmp_path, None, {})


def test_write_output_one_line_per_translation(tmp_path):
    path = tmp_path / "out.txt"
    write_output(path, ["one", "", "two\nlines"])
    assert path.read_text(encoding="utf-8") == "one\n\ntwo lines\n"


def test_result_is_a_dataclass_with_speed():
    result = EvaluationResult(1.0, 2.0, "b", "c", sentences=10, seconds=2.0, hypotheses=[], exact_matches=0.0)
    assert result.sentences_per_second == 5.0
