"""Learning curves: curves.png drawn after each epoch from log.jsonl (needs matplotlib, the plot extra)."""
import json

import pytest

from translator import checkpoint
from translator.config import TrainConfig
from translator.plot import epoch_records
from translator.training import Trainer

TINY = TrainConfig(dataset="numbers", max_pairs=400, dev_size=30, test_size=30, max_length=20, min_freq=1,
                   embedding_size=16, hidden_size=16, batch_size=32, lr=5e-3, epochs=2, seed=3)


def test_epoch_records_keep_the_latest_record_of_each_epoch_and_skip_broken_lines():
    lines = [json.dumps({"event": "start"}), json.dumps({"event": "epoch", "epoch": 2, "dev_bleu": 1.0}),
             json.dumps({"event": "epoch", "epoch": 1, "dev_bleu": 0.5}),
             json.dumps({"event": "epoch", "epoch": 2, "dev_bleu": 3.0}), '{"event": "epo']
    assert [(record["epoch"], record["dev_bleu"]) for record in epoch_records(lines)] == [(1, 0.5), (2, 3.0)]


def test_training_draws_curves_png_after_each_epoch(tmp_path):
    pytest.importorskip("matplotlib")
    drawn = []
    model_dir = tmp_path / "model"

    def watch(progress):
        drawn.append((progress.epoch, (model_dir / checkpoint.CURVES_FILE).exists()))

    Trainer(TINY, model_dir, progress=False, log=lambda *_: None, evaluate_test=False, after_step=watch).run()
    assert (False in [exists for epoch, exists in drawn if epoch == 0])  # not before the first epoch ended
    assert all(exists for epoch, exists in drawn if epoch == 1)  # drawn after it
    assert (model_dir / checkpoint.CURVES_FILE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    quiet_dir = tmp_path / "no-curves"
    Trainer(TINY.replace(epochs=1, curves=False), quiet_dir, progress=False, log=lambda *_: None,
            evaluate_test=False).run()
    assert not (quiet_dir / checkpoint.CURVES_FILE).exists()
