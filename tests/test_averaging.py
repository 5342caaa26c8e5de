"""Checkpoint averaging: identical checkpoints average to themselves, two known ones to their mean;
training keeps the last K epochs; ``translate average`` writes averaged.npz that run/evaluate can use."""
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from translator import checkpoint
from translator.averaging import average_last, average_states, epoch_checkpoints
from translator.cli import cli
from translator.config import TrainConfig
from translator.errors import CheckpointError
from translator.training import Trainer

TINY = TrainConfig(dataset="numbers", max_pairs=600, dev_size=60, test_size=60, max_length=20, min_freq=1,
                   embedding_size=16, hidden_size=16, batch_size=32, lr=5e-3, epochs=3, seed=3, keep_epochs=2)


def quiet(*_):
    pass


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("copies", [1, 2, 3, 5, 7])
def test_average_of_identical_states_is_the_identity(dtype, copies):
    """Bit for bit, in float64 too (where sum / K rounds: 3 equal float64 weights summed are not 3x exactly)."""
    rng = np.random.default_rng(copies)
    state = {"w": rng.standard_normal((30, 40)).astype(dtype), "b": rng.standard_normal(40).astype(dtype)}
    averaged = average_states([dict(state) for _ in range(copies)])
    assert averaged.keys() == state.keys()
    for name, value in state.items():
        assert averaged[name].dtype == value.dtype
        assert np.array_equal(averaged[name], value)


def test_average_of_two_states_is_their_mean_and_mismatches_are_refused():
    first = {"w": np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)}
    second = {"w": np.array([[3.0, 0.0], [-3.0, 5.0]], dtype=np.float32)}
    assert np.array_equal(average_states([first, second])["w"], np.array([[2.0, 1.0], [0.0, 4.5]], np.float32))
    with pytest.raises(ValueError, match="shape"):
        average_states([first, {"w": np.zeros((2, 3), np.float32)}])
    with pytest.raises(ValueError, match="other parameters"):
        average_states([first, {"v": first["w"]}])
    with pytest.raises(ValueError, match="nothing"):
        average_states([])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A TINY model directory: 3 epochs, the last 2 kept as epoch-NNN.npz."""
    model_dir = tmp_path_factory.mktemp("averaging") / "model"
    Trainer(TINY, model_dir, progress=False, log=quiet).run()
    return model_dir


def test_training_keeps_the_last_epochs_and_translate_average_writes_their_mean(trained, capsys):
    model_dir = trained
    paths = epoch_checkpoints(model_dir)
    assert [path.name for path in paths] == ["epoch-002.npz", "epoch-003.npz"]
    states = [checkpoint.load_checkpoint(path)["model"] for path in paths]
    assert cli.main(["average", "--model", str(model_dir), "--last", "2"], standalone_mode=False) is None
    printed = capsys.readouterr().out
    assert "dev BLEU (greedy) of best.npz" in printed and "dev BLEU (greedy) of averaged.npz" in printed
    averaged = checkpoint.load_checkpoint(model_dir / checkpoint.AVERAGED_FILE)
    assert averaged["epochs"] == [2, 3]
    for name, value in averaged["model"].items():
        expected = (np.asarray(states[0][name].data, np.float64) + np.asarray(states[1][name].data, np.float64)) / 2
        np.testing.assert_allclose(np.asarray(value.data), expected, rtol=1e-6, atol=1e-7)
    assert not np.array_equal(np.asarray(states[0][name].data), np.asarray(states[1][name].data))
    best = checkpoint.load_checkpoint(model_dir / checkpoint.BEST_FILE)
    assert best["kind"] == "best"  # untouched
    assert cli.main(["run", "--model", str(model_dir), "--weights", checkpoint.AVERAGED_FILE, "--beam", "1",
                     "doce"], standalone_mode=False) is None
    with pytest.raises(CheckpointError, match="--keep-epochs"):
        average_last(model_dir, 3)


@pytest.mark.parametrize("output, says", [
    ("best.npz", "would replace the weights training chose (best.npz): write the average to another file "
                 "(default averaged.npz), compare their dev BLEU, and copy it over best.npz yourself"),
    ("BEST.npz", "would replace the weights training chose"),  # the same file on a case-insensitive disk
    ("last.npz", "would replace the checkpoint --resume continues: choose another file name (default averaged.npz)"),
    ("epoch-003.npz", "would replace a kept epoch checkpoint: choose another file name"),
    ("epoch-1000.npz", "would replace a kept epoch checkpoint"),
    ("../elsewhere.npz", "--output must be a .npz file name inside the model directory"),
    ("averaged", "--output must be a .npz file name inside the model directory"),
])
def test_translate_average_never_replaces_trainings_files(trained, output, says):
    """Refused in one line, before anything is read or written: best.npz, last.npz and the epoch files
    stay byte for byte what training wrote, as the help and the README promise."""
    kept = {path.name: path.read_bytes() for path in trained.glob("*.npz") if path.name != checkpoint.AVERAGED_FILE}
    assert {checkpoint.BEST_FILE, checkpoint.LAST_FILE, "epoch-003.npz"} <= set(kept)
    result = CliRunner().invoke(cli, ["average", "--model", str(trained), "--last", "2", "--output", output,
                                      "--no-score"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("translate: error: ") and says in lines[0], result.stderr
    assert {path.name: path.read_bytes() for path in trained.glob("*.npz") if path.name in kept} == kept
    with pytest.raises(CheckpointError, match="--output"):
        average_last(trained, 2, output=output)


def test_translate_average_may_write_any_other_name_and_replace_its_own_average(trained):
    for output in ("averaged.npz", "avg-2.npz", "averaged.npz"):  # a second average replaces the first
        path, epochs = average_last(trained, 2, output=output)
        assert path == trained / output and epochs == [2, 3]
        assert checkpoint.load_checkpoint(path)["kind"] == "average"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_translate_average_of_identical_epoch_checkpoints_is_the_identity(trained, tmp_path, dtype):
    """Five epoch files holding the same weights (a trained model's, in ``dtype``, with noise that fills every
    mantissa bit): averaged.npz holds exactly them."""
    model_dir = tmp_path / "model"
    shutil.copytree(trained, model_dir)
    for path in epoch_checkpoints(model_dir):
        path.unlink()
    rng = np.random.default_rng(5)
    weights = {name: (np.asarray(value.data, np.float64) + rng.standard_normal(value.shape) * 1e-3).astype(dtype)
               for name, value in checkpoint.load_checkpoint(model_dir / checkpoint.BEST_FILE)["model"].items()}
    for epoch in range(1, 6):
        checkpoint.save_checkpoint(model_dir / checkpoint.epoch_file(epoch),
                                   {"kind": "epoch", "model": weights, "epoch": epoch, "dev_bleu": 0.0})
    path, epochs = average_last(model_dir, 5)
    assert epochs == [1, 2, 3, 4, 5]
    averaged = checkpoint.load_checkpoint(path)["model"]
    assert averaged.keys() == weights.keys()
    for name, value in weights.items():
        assert np.asarray(averaged[name].data).dtype == dtype
        assert np.array_equal(np.asarray(averaged[name].data), value), name
