"""The model directory read back: nothing in it is trusted (weights, vocabularies, the resume state),
and a run killed while creating it leaves a directory the next run can take over."""
import hashlib
import json
import shutil

import numpy as np
import pytest

import tinygrad_rnn as tg
from translator import checkpoint
from translator.checkpoint import ModelDirectory, describe_load_error
from translator.config import TrainConfig
from translator.errors import CheckpointError
from translator.inference import Translator
from translator.training import Trainer

TINY = TrainConfig(dataset="numbers", max_pairs=300, dev_size=20, test_size=20, max_length=20, min_freq=1,
                   embedding_size=8, hidden_size=8, batch_size=32, epochs=1, seed=3)


def quiet(*_):
    pass


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    directory = tmp_path_factory.mktemp("checkpoint") / "model"
    Trainer(TINY, directory, progress=False, log=quiet, evaluate_test=False).run()
    return directory


@pytest.fixture
def copy(trained, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(trained, target)
    return target


def hashes(directory):
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in directory.iterdir()}


def edit_checkpoint(path, edit):
    state = tg.load(str(path))
    edit(state)
    tg.save(state, str(path))


# ---------------------------------------------------------------- weights
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused_on_load(copy, bad):
    def poison(state):
        state["model"]["decoder.output.weight"].data[0, 0] = bad

    edit_checkpoint(copy / checkpoint.BEST_FILE, poison)
    with pytest.raises(CheckpointError, match="decoder.output.weight' holds (NaN|infinite values): the run that "
                                              "saved it had diverged") as raised:
        Translator.load(copy)
    assert "\n" not in str(raised.value)


def test_weights_that_are_not_real_arrays_are_refused(copy):
    for value, kind in ((np.ones(3, dtype=np.complex64), "ndarray of complex64"), ("hello", "str")):
        edit_checkpoint(copy / checkpoint.BEST_FILE, _set("model", "decoder.output.bias", value))
        with pytest.raises(CheckpointError, match=f"decoder.output.bias' is not an array of real numbers \\({kind}\\)"):
            Translator.load(copy)


def test_a_size_mismatch_names_the_weights_and_their_shapes(copy):
    path = copy / checkpoint.CONFIG_FILE
    document = json.loads(path.read_text(encoding="utf-8"))
    document["model"]["hidden_size"] = 12
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(CheckpointError) as raised:
        Translator.load(copy)
    message = str(raised.value)
    assert "shape mismatch: encoder.rnn.weight_ih_l0: checkpoint shape (24, 8), model shape (36, 8)" in message
    assert "more)" in message and "\n" not in message


def test_describe_load_error_keeps_the_first_problems_whole():
    error = RuntimeError("Error(s) in loading:\n  shape mismatch: a: 1; b: 2; c: 3; d: 4; e: 5")
    assert describe_load_error(error) == "Error(s) in loading: shape mismatch: a: 1; b: 2; c: 3; and 2 more"
    assert describe_load_error(RuntimeError("one\ntwo")) == "one two"


# ---------------------------------------------------------------- vocabularies
def test_swapped_vocabulary_tokens_are_refused(copy):
    path = copy / checkpoint.SOURCE_VOCAB_FILE
    document = json.loads(path.read_text(encoding="utf-8"))
    document["tokens"][5], document["tokens"][6] = document["tokens"][6], document["tokens"][5]
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(CheckpointError, match="source_vocab.json is not the vocabulary the model was trained with"):
        Translator.load(copy)
    with pytest.raises(CheckpointError, match="checksum differs"):
        Trainer(TINY.replace(epochs=2), copy, resume=True, explicit={"epochs"}, progress=False, log=quiet).run()


def test_a_model_directory_written_before_the_checksums_still_loads(copy):
    path = copy / checkpoint.CONFIG_FILE
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document.pop("source_vocab_sha256") and document.pop("target_vocab_sha256")
    path.write_text(json.dumps(document), encoding="utf-8")
    assert Translator.load(copy).translate(["cien"])[0]


# ---------------------------------------------------------------- the resume state
def _set(*keys_and_value):
    *keys, value = keys_and_value

    def edit(state):
        node = state
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value(node[keys[-1]]) if callable(value) else value
    return edit


def _poison_moment(state):
    state["optimizer"]["state"][0]["exp_avg"].data[...] = np.nan


CRAFTED = {
    "epoch is a word": (_set("progress", "epoch", "three"), "progress.epoch is 'three'"),
    "negative epoch": (_set("progress", "epoch", -5), "progress.epoch is -5"),
    "batch beyond the epoch": (_set("progress", "batch", 10**9), "batch 1000000000 of epoch"),
    "boolean step": (_set("progress", "step", True), "progress.step is True"),
    "NaN seconds": (_set("progress", "train_seconds", float("nan")), "progress.train_seconds"),
    "unknown stop reason": (_set("progress", "stop_reason", "bored"), "progress.stop_reason is 'bored'"),
    "missing progress key": (lambda state: state["progress"].pop("step"), "progress has keys"),
    "lr is a word": (_set("optimizer", "param_groups", 0, "lr", "x"), "lr is 'x'"),
    "negative lr": (_set("optimizer", "param_groups", 0, "lr", -1.0), "lr is -1.0"),
    "NaN lr": (_set("optimizer", "param_groups", 0, "lr", float("nan")), "lr is nan"),
    "betas of three": (_set("optimizer", "param_groups", 0, "betas", (0.9, 0.99, 0.5)), "betas"),
    "NaN moment": (_poison_moment, "exp_avg holds NaN"),
    "mis-shaped moment": (_set("optimizer", "state", 0, "exp_avg", np.zeros((2, 2), np.float32)), "has shape (2, 2)"),
    "moment for no parameter": (_set("optimizer", "state", 999, {"step": 1}), "entry 999"),
    "scheduler mode": (_set("scheduler", "mode", "max"), "scheduler.mode is 'max'"),
    "scheduler counter": (_set("scheduler", "num_bad_epochs", "many"), "scheduler.num_bad_epochs"),
    "rng state": (_set("rng", "state", "nope"), "cannot be resumed"),
    "optimizer is a list": (_set("optimizer", [1, 2]), "'optimizer' entry"),
}


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_crafted_values_in_last_npz_are_refused_on_resume(copy, name):
    edit, words = CRAFTED[name]
    edit_checkpoint(copy / checkpoint.LAST_FILE, edit)
    before = hashes(copy)
    with pytest.raises(CheckpointError) as raised:
        Trainer(TINY.replace(epochs=3), copy, resume=True, explicit={"epochs"}, progress=False, log=quiet).run()
    message = str(raised.value)
    assert words in message and "\n" not in message, message
    assert hashes(copy) == before


def test_an_untouched_last_npz_resumes(copy):
    assert Trainer(TINY.replace(epochs=2), copy, resume=True, explicit={"epochs"}, progress=False, log=quiet,
                   evaluate_test=False).run().epochs_completed == 2


# ---------------------------------------------------------------- a run killed while creating its directory
class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs (not even the temporary file's clean-up, done by hand)."""


def test_a_run_killed_during_its_first_checkpoint_leaves_a_directory_a_new_run_takes_over(tmp_path, monkeypatch):
    directory = tmp_path / "model"

    def killed_while_writing(self, *args):
        (self.path / ".last.npz.k1ll3d.tmp").write_bytes(b"half a checkpoint")  # what SIGKILL leaves behind
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(ModelDirectory, "save_last", killed_while_writing)
        with pytest.raises(Killed):
            Trainer(TINY, directory, progress=False, log=quiet).run()
    assert not (directory / checkpoint.CONFIG_FILE).exists()  # so: no model here, and nothing claims one
    with pytest.raises(CheckpointError, match="holds no trained model"):
        Translator.load(directory)
    result = Trainer(TINY, directory, progress=False, log=quiet, evaluate_test=False).run()  # no --overwrite
    assert result.epochs_completed == 1
    assert not list(directory.glob(".*.tmp"))
    assert Translator.load(directory).translate(["cien"])[0]


def test_overwrite_and_resume_remove_temporaries_of_killed_writes(copy):
    stale = copy / ".best.npz.x7y8z9.tmp"
    stale.write_bytes(b"left by a kill")
    Trainer(TINY.replace(epochs=2), copy, resume=True, explicit={"epochs"}, progress=False, log=quiet,
            evaluate_test=False).run()
    assert not stale.exists()
