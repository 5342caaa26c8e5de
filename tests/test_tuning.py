"""Decoding settings tuned on dev: the best (beam, alpha) is chosen, stored in config.json and used."""
import json
import re

import pytest

from translator import checkpoint
from translator.cli import cli
from translator.config import TrainConfig
from translator.evaluate import evaluate_pairs
from translator.inference import Translator
from translator.training import Trainer
from translator.tuning import tune

PAIRS = [("uno", "one thing"), ("dos", "two things here"), ("tres", "three of them now")]


class FakeTranslator:
    """Translates perfectly only with beam 3 and alpha 0.6; word salad otherwise."""

    def __init__(self):
        self.length_penalty = 1.0
        self.calls = []

    def translate(self, sentences, beam, batch_size):
        self.calls.append((beam, self.length_penalty))
        right = beam == 3 and self.length_penalty == 0.6
        return [dict(PAIRS)[source] if right else "zzz" for source in sentences]


def test_tune_picks_the_best_setting_tries_greedy_once_and_restores_alpha():
    translator = FakeTranslator()
    result = tune(translator, PAIRS, beams=[3, 1], alphas=[1.0, 0.6, 0.0])
    assert (result.beam, result.alpha) == (3, 0.6) and result.dev_bleu == pytest.approx(100.0)
    assert translator.calls == [(1, 1.0), (3, 1.0), (3, 0.6), (3, 0.0)]
    assert translator.length_penalty == 1.0
    assert result.to_dict() == {"beam": 3, "alpha": 0.6, "dev_bleu": 100.0, "sentences": 3}
    with pytest.raises(ValueError):
        tune(translator, [], beams=[1], alphas=[1.0])


def test_tuned_settings_are_saved_and_used_unless_overridden(tmp_path, capsys, monkeypatch):
    model_dir = tmp_path / "model"
    config = TrainConfig(dataset="numbers", max_pairs=400, dev_size=30, test_size=30, max_length=20, min_freq=1,
                         embedding_size=16, hidden_size=16, batch_size=32, lr=5e-3, epochs=1, seed=3)
    Trainer(config, model_dir, progress=False, log=lambda *_: None, evaluate_test=False).run()
    capsys.readouterr()
    cli.main(["tune", "--model", str(model_dir), "--beams", "1,2", "--alphas", "0.5,1.5", "--max-sentences", "10"],
             standalone_mode=False)
    stored = json.loads((model_dir / checkpoint.CONFIG_FILE).read_text())["decoding"]
    assert stored["beam"] in (1, 2) and stored["alpha"] in (0.5, 1.5) and stored["sentences"] == 10
    # what is stored is a best trial of those tune printed (to 2 decimals; the tie rule is tested above)
    trials = [(int(beam), float(alpha), float(bleu)) for beam, alpha, bleu
              in re.findall(r"beam (\d+), alpha ([\d.]+): dev BLEU ([\d.]+)", capsys.readouterr().err)]
    assert [trial[:2] for trial in trials] == [(1, 0.5), (2, 0.5), (2, 1.5)]  # greedy once: alpha is moot
    best = max(bleu for _, _, bleu in trials)
    assert (stored["beam"], stored["alpha"]) in [trial[:2] for trial in trials if trial[2] == best]
    assert stored["dev_bleu"] == pytest.approx(best, abs=0.006)
    # and it reproduces: the loaded model (the stored alpha) with the stored beam scores that BLEU again
    translator = Translator.load(model_dir)
    assert translator.length_penalty == stored["alpha"]
    dev = checkpoint.read_pairs_file(model_dir / checkpoint.DEV_FILE)[:10]
    again = evaluate_pairs(lambda sentences: translator.translate(sentences, beam=stored["beam"]), dev)
    assert again.bleu == pytest.approx(stored["dev_bleu"], abs=0.006)
    # pin a setting no default would give, then check evaluate uses it and flags override it
    checkpoint.write_decoding(model_dir, {"beam": 2, "alpha": 0.25})
    capsys.readouterr()
    cli.main(["evaluate", "--model", str(model_dir), "--json"], standalone_mode=False)
    used = json.loads(capsys.readouterr().out)
    assert (used["beam"], used["alpha"]) == (2, 0.25)
    cli.main(["evaluate", "--model", str(model_dir), "--json", "--beam", "1", "--alpha", "1.0"], standalone_mode=False)
    used = json.loads(capsys.readouterr().out)
    assert (used["beam"], used["alpha"]) == (1, 1.0)
    # translate run prints, without flags, what it prints with the stored settings given as flags
    sources = [source for source, _ in dev]
    cli.main(["run", "--model", str(model_dir), *sources], standalone_mode=False)
    tuned_output = capsys.readouterr().out
    cli.main(["run", "--model", str(model_dir), "--beam", "2", "--alpha", "0.25", *sources], standalone_mode=False)
    assert tuned_output == capsys.readouterr().out and len(tuned_output.splitlines()) == len(sources)
    # translate run: the stored beam and alpha, unless --beam/--alpha
    seen = []
    original = Translator.translate

    def recording(self, sentences, beam=1, **kwargs):
        seen.append((beam, self.length_penalty))
        return original(self, sentences, beam=beam, **kwargs)

    monkeypatch.setattr(Translator, "translate", recording)
    cli.main(["run", "--model", str(model_dir), "doce"], standalone_mode=False)
    cli.main(["run", "--model", str(model_dir), "--beam", "3", "--alpha", "0.7", "doce"], standalone_mode=False)
    assert seen == [(2, 0.25), (3, 0.7)]
    assert checkpoint.decoding_settings({"decoding": {"beam": 0, "alpha": 1.0}}) == {}
    assert checkpoint.decoding_settings({}) == {}
