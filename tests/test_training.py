"""The training loop: exact resume, seed reproducibility, stops (time, Ctrl-C, early stopping), checkpoints."""
import json

import numpy as np
import pytest

from translator import checkpoint, noise
from translator.config import ConfigError, TrainConfig
from translator.training import StopReason, Trainer

# A tiny model on a tiny slice of the built-in numbers corpus: about a second per epoch.
TINY = TrainConfig(dataset="numbers", max_pairs=600, dev_size=60, test_size=60, max_length=20, min_freq=1,
                   embedding_size=16, hidden_size=16, batch_size=32, lr=5e-3, epochs=2, seed=3)


def quiet(*_):
    pass


def train(config, model_dir, **kwargs):
    return Trainer(config, model_dir, progress=False, log=quiet, **kwargs).run()


def weights(path):
    state = checkpoint.load_checkpoint(path)
    return {name: np.asarray(getattr(value, "data", value)) for name, value in state["model"].items()}


def optimizer_arrays(path):
    state = checkpoint.load_checkpoint(path)["optimizer"]["state"]
    return {(int(index), name): np.asarray(getattr(value, "data", value))
            for index, entries in state.items() for name, value in entries.items() if hasattr(value, "shape")
            or hasattr(getattr(value, "data", None), "shape")}


def assert_same_arrays(first, second):
    assert first.keys() == second.keys()
    for key in first:
        assert np.array_equal(first[key], second[key]), key


def log_events(model_dir, event):
    lines = (model_dir / checkpoint.LOG_FILE).read_text(encoding="utf-8").splitlines()
    return [record for record in map(json.loads, lines) if record["event"] == event]


def test_resume_after_interrupt_equals_uninterrupted_run(tmp_path):
    # Dropout and scheduled sampling draw random numbers: the RNG state must be restored too.
    config = TINY.replace(dropout=0.3, teacher_forcing=0.7)
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert train(config, straight, evaluate_test=False).stop_reason == StopReason.COMPLETED

    def interrupt_mid_first_epoch(progress):
        if progress.epoch == 0 and progress.batch == 5:
            raise KeyboardInterrupt

    first = train(config.replace(epochs=1), resumed, after_step=interrupt_mid_first_epoch, evaluate_test=False)
    assert first.stop_reason == StopReason.INTERRUPTED
    saved = checkpoint.load_checkpoint(resumed / checkpoint.LAST_FILE)["progress"]
    assert (saved["epoch"], saved["batch"]) == (0, 5)
    assert train(config.replace(epochs=1), resumed, resume=True, explicit={"epochs"},
                 evaluate_test=False).epochs_completed == 1
    assert train(config, resumed, resume=True, explicit={"epochs"}, evaluate_test=False).epochs_completed == 2

    assert_same_arrays(weights(straight / checkpoint.LAST_FILE), weights(resumed / checkpoint.LAST_FILE))
    assert_same_arrays(optimizer_arrays(straight / checkpoint.LAST_FILE),
                       optimizer_arrays(resumed / checkpoint.LAST_FILE))
    straight_epochs, resumed_epochs = log_events(straight, "epoch"), log_events(resumed, "epoch")
    assert [e["dev_loss"] for e in straight_epochs] == [e["dev_loss"] for e in resumed_epochs]
    assert [e["train_loss"] for e in straight_epochs] == pytest.approx([e["train_loss"] for e in resumed_epochs])


def test_same_seed_same_model_and_other_seed_another(tmp_path):
    config = TINY.replace(epochs=1, dropout=0.2)
    train(config, tmp_path / "a", evaluate_test=False)
    train(config, tmp_path / "b", evaluate_test=False)
    train(config.replace(seed=4), tmp_path / "c", evaluate_test=False)
    a, b, c = (weights(tmp_path / name / checkpoint.LAST_FILE) for name in "abc")
    assert_same_arrays(a, b)
    assert any(not np.array_equal(a[name], c[name]) for name in a)


def test_model_dir_contents_and_test_split_saved(tmp_path):
    result = train(TINY.replace(epochs=1), tmp_path / "model")
    model_dir = tmp_path / "model"
    for name in (checkpoint.CONFIG_FILE, checkpoint.SOURCE_VOCAB_FILE, checkpoint.TARGET_VOCAB_FILE,
                 checkpoint.BEST_FILE, checkpoint.LAST_FILE, checkpoint.LOG_FILE, checkpoint.DEV_FILE,
                 checkpoint.TEST_FILE):
        assert (model_dir / name).is_file(), name
    saved = checkpoint.read_config(model_dir)
    assert saved["format_version"] == checkpoint.FORMAT_VERSION
    assert saved["train"] == TINY.replace(epochs=1).to_dict()
    assert len(checkpoint.read_pairs_file(model_dir / checkpoint.TEST_FILE)) == 60
    assert result.test is not None and result.test.sentences == 60
    summary = log_events(model_dir, "summary")[-1]
    assert summary["test_bleu"] == pytest.approx(result.test.bleu)


def test_max_time_stops_saves_and_resume_finishes(tmp_path):
    model_dir = tmp_path / "model"
    result = train(TINY.replace(max_time=1e-6), model_dir, evaluate_test=False)
    assert result.stop_reason == StopReason.MAX_TIME
    assert (model_dir / checkpoint.BEST_FILE).is_file() and (model_dir / checkpoint.LAST_FILE).is_file()
    assert log_events(model_dir, "stop")[-1]["reason"] == StopReason.MAX_TIME
    # --max-time may change on resume (it says when to stop, not what to compute).
    finished = train(TINY, model_dir, resume=True, explicit={"max_time"}, evaluate_test=False)
    assert finished.stop_reason == StopReason.COMPLETED and finished.epochs_completed == TINY.epochs


def test_plateau_decays_lr_and_early_stopping_ends_training(tmp_path):
    # A learning rate this small cannot change greedy output: dev BLEU never improves after epoch 1.
    config = TINY.replace(lr=1e-12, epochs=5, early_stopping=2, lr_patience=0, lr_decay=0.5, plateau_metric="bleu",
                          lr_decay_start=0)
    result = train(config, tmp_path / "model", evaluate_test=False)
    assert result.stop_reason == StopReason.EARLY_STOPPING
    epochs = log_events(tmp_path / "model", "epoch")
    assert len(epochs) == 3
    assert [e["lr"] for e in epochs] == pytest.approx([1e-12, 0.5e-12, 0.25e-12])
    with pytest.raises(ConfigError, match="already finished"):
        train(config.replace(epochs=9), tmp_path / "model", resume=True, explicit={"epochs"})


def test_fixed_decay_halves_the_lr_every_epoch_from_the_start_epoch(tmp_path):
    config = TINY.replace(epochs=4, lr_decay=0.5, lr_decay_start=3, early_stopping=0)
    train(config, tmp_path / "model", evaluate_test=False)
    epochs = log_events(tmp_path / "model", "epoch")
    assert [e["lr"] for e in epochs] == pytest.approx([5e-3, 5e-3, 2.5e-3, 1.25e-3])


def test_fresh_run_refuses_an_existing_model_and_resume_refuses_changes(tmp_path):
    model_dir = tmp_path / "model"
    train(TINY.replace(epochs=1), model_dir, evaluate_test=False)
    with pytest.raises(ConfigError, match="already holds a model"):
        train(TINY, model_dir)
    with pytest.raises(ConfigError, match="--hidden-size"):
        train(TINY.replace(hidden_size=32), model_dir, resume=True, explicit={"hidden_size"})
    with pytest.raises(checkpoint.CheckpointError, match="does not exist"):
        train(TINY, tmp_path / "elsewhere", resume=True)


def test_corrupt_and_foreign_checkpoints_are_refused(tmp_path):
    model_dir = tmp_path / "model"
    train(TINY.replace(epochs=1), model_dir, evaluate_test=False)
    last = model_dir / checkpoint.LAST_FILE
    last.write_bytes(last.read_bytes()[:100])
    with pytest.raises(checkpoint.CheckpointError, match="corrupt"):
        checkpoint.load_checkpoint(last)
    config_path = model_dir / checkpoint.CONFIG_FILE
    document = json.loads(config_path.read_text(encoding="utf-8"))
    document["format_version"] = 99
    config_path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(checkpoint.CheckpointError, match="format version 99"):
        checkpoint.read_config(model_dir)


def test_a_crashed_run_resumes_from_the_checkpoint_written_before_the_first_batch(tmp_path):
    config = TINY.replace(epochs=1, dropout=0.2)
    train(config, tmp_path / "straight", evaluate_test=False)

    def crash(progress):
        if progress.batch == 4:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        train(config, tmp_path / "crashed", after_step=crash, evaluate_test=False)
    assert checkpoint.load_checkpoint(tmp_path / "crashed" / checkpoint.LAST_FILE)["progress"]["step"] == 0
    train(config, tmp_path / "crashed", resume=True, evaluate_test=False)
    assert_same_arrays(weights(tmp_path / "straight" / checkpoint.LAST_FILE),
                       weights(tmp_path / "crashed" / checkpoint.LAST_FILE))


def test_source_noise_resume_equals_uninterrupted_run(tmp_path):
    """Noised sources are drawn from (seed, epoch): an interrupted and resumed run sees the same ones."""
    config = TINY.replace(source_noise=0.5)
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(config, straight, evaluate_test=False)

    def interrupt(progress):
        if progress.epoch == 1 and progress.batch == 3:
            raise KeyboardInterrupt

    assert train(config, resumed, after_step=interrupt, evaluate_test=False).stop_reason == StopReason.INTERRUPTED
    assert train(config, resumed, resume=True, evaluate_test=False).stop_reason == StopReason.COMPLETED
    assert_same_arrays(weights(straight / checkpoint.BEST_FILE), weights(resumed / checkpoint.BEST_FILE))


def test_source_noise_vocabulary_and_epoch_examples():
    from translator.preparation import noised_examples, prepare
    word = TINY.replace(tokenizer="word", source_normalization="none")  # word vocabularies show the noised spellings
    clean, noisy = prepare(word.replace(source_noise=0.0), quiet), prepare(word.replace(source_noise=0.5), quiet)
    accented = {word for word in clean.source_vocab.itos if word != noise.strip_accents(word)}
    assert accented, "the numbers corpus has accented words (dieciséis, veintidós)"
    assert all(noise.strip_accents(word) in noisy.source_vocab.stoi for word in accented)
    assert not any(noise.strip_accents(word) in clean.source_vocab.stoi for word in accented)

    assert noised_examples(noisy, 0.0, seed=3, epoch=0) is noisy.train_examples
    first, again = noised_examples(noisy, 0.5, 3, 0), noised_examples(noisy, 0.5, 3, 0)
    assert first == again and first != noised_examples(noisy, 0.5, 3, 1)
    assert [target for _, target in first] == [target for _, target in noisy.train_examples]
    everything = noised_examples(noisy, 1.0, 3, 0)
    changed = sum(new != old for (new, _), (old, _) in zip(everything, noisy.train_examples))
    has_accent = sum(any(word in accented for word in noisy.source_vocab.decode(source)) for source, _ in
                     noisy.train_examples)
    assert 0 < changed <= has_accent  # numbers are lower case without punctuation: only accents can change


def test_the_loss_is_read_from_the_device_once_per_interval_and_a_nan_still_stops_training(tmp_path, monkeypatch):
    import tinygrad_rnn as tg
    from translator import training

    reads = []
    original_read = training.LossSum.read

    def counted_read(self):
        reads.append(self.steps)
        return original_read(self)

    monkeypatch.setattr(training.LossSum, "read", counted_read)
    monkeypatch.setattr(training, "LOSS_READ_EVERY", 3)
    config = TINY.replace(epochs=1, max_pairs=300)
    trainer = Trainer(config, tmp_path / "model", progress=False, log=quiet, evaluate_test=False)
    trainer.run()
    steps = trainer.progress.step
    training_reads = reads[:-1]  # the last read is dev_loss's single one
    assert sum(training_reads) == steps and max(training_reads) == 3 and len(training_reads) <= steps // 3 + 1
    assert reads[-1] == len(list(training.BatchIterator(trainer.data.dev_examples, training.EVAL_BATCH_SIZE,
                                                        shuffle=False, max_tokens=training.EVAL_MAX_TOKENS).epoch()))
    epoch = log_events(tmp_path / "model", "epoch")[0]
    assert np.isfinite(epoch["train_loss"]) and epoch["train_loss"] > 0

    def nan_loss(self, batch, label_smoothing, teacher_forcing=1.0):
        return tg.Tensor(float("nan"), requires_grad=True)

    monkeypatch.setattr(Trainer, "_loss", nan_loss)
    with pytest.raises(FloatingPointError, match=r"the training loss became nan in steps 1\.\.3; lower --lr"):
        train(config, tmp_path / "diverged", evaluate_test=False)


def test_an_overlong_dev_pair_is_truncated_for_bleu_and_left_out_of_the_dev_loss(tmp_path, monkeypatch):
    """Dev and test keep every length, but a pair longer than the inference limit is not decoded whole."""
    from translator import numbers_corpus
    from translator import inference
    from translator.splits import split_pairs

    monkeypatch.setattr(inference, "DEFAULT_MAX_SOURCE_LENGTH", 30)  # 256 by default: a faster test
    pairs = numbers_corpus.generate_pairs(400, seed=0)
    dev_index = split_pairs(pairs, dev_size=40, test_size=40, seed=3).dev[0]
    pairs[dev_index] = (" ".join(["cien"] * 3000), " ".join(["hundred"] * 3000))  # unique: the split is unchanged
    data = tmp_path / "pairs.tsv"
    data.write_text("".join(f"{target}\t{source}\n" for source, target in pairs), encoding="utf-8")
    config = TINY.replace(dataset="spa-eng", data=str(data), max_pairs=None, dev_size=40, test_size=40, epochs=1)
    lines = []
    result = Trainer(config, tmp_path / "model", progress=False, log=lines.append).run()
    assert result.stop_reason == StopReason.COMPLETED and result.test is not None
    info = checkpoint.read_config(tmp_path / "model")["data"]
    assert info["dev_pairs_over_max_source_length"] == 1 and info["test_pairs_over_max_source_length"] == 0
    assert any("over 30 tokens: 1 dev pair" in line for line in lines), lines


def test_training_batches_keep_to_the_token_budget(tmp_path):
    config = TINY.replace(max_length=20, max_tokens=60, batch_size=32)
    trainer = Trainer(config, tmp_path / "model", progress=False, log=quiet)
    trainer._build()
    examples = trainer.data.train_examples
    plan = trainer.batches.plan(0)
    assert sum(len(batch) for batch in plan) == len(examples)
    for batch in plan:
        width = max(max(len(examples[i][0]), len(examples[i][1])) for i in batch)  # + EOS, already encoded
        assert len(batch) <= 32 and len(batch) * width <= 60
    assert len(plan) > len(examples) / 32  # the budget binds: more batches than by count alone
