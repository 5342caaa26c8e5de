"""``mpiexec -n N translate train``: the same training as one process, one set of files, exact resume, no hangs.

The multi-rank tests run the CLI under ``mpiexec -n 2`` on a toy configuration (the numbers corpus,
a 16-unit model, a few seconds per run) and skip, with the reason, where mpi4py or mpiexec is missing.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from click.testing import CliRunner

from translator import checkpoint, launch, parallel
from translator.batching import BatchIterator, make_batch
from translator.cli import cli
from translator.config import build_config
from translator.errors import CheckpointError, ConfigError
from translator.inference import Translator

from mpi_helpers import MPI_PROGRAMS, REPO_ROOT, find_mpiexec, mpi_environment, needs_mpi, run_mpi

TOY = ["--dataset", "numbers", "--max-pairs", "300", "--dev-size", "30", "--test-size", "30", "--max-length", "20",
       "--min-freq", "1", "--embedding-size", "16", "--hidden-size", "16", "--batch-size", "32", "--lr", "5e-3",
       "--seed", "3", "--no-progress"]


def weights(path: Path) -> dict:
    return {name: tensor.numpy() for name, tensor in checkpoint.load_checkpoint(path)["model"].items()}


def events(model_dir: Path, kind: str) -> list:
    lines = (model_dir / checkpoint.LOG_FILE).read_text(encoding="utf-8").splitlines()
    return [record for record in map(json.loads, lines) if record["event"] == kind]


# ---------------------------------------------------------------- without MPI
def test_the_launcher_environment_gives_world_size_and_rank(monkeypatch):
    for name in ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_SIZE",
                 "MV2_COMM_WORLD_RANK", "PMIX_SIZE", "PMIX_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert (parallel.launched_world_size(), parallel.launched_rank()) == (1, 0)
    assert type(parallel.world_for("cpu")) is parallel.World
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "3")
    assert (parallel.launched_world_size(), parallel.launched_rank()) == (4, 3)


def test_a_world_of_one_answers_alone():
    world = parallel.World()
    assert world.is_leader and (world.rank, world.size) == (0, 1)
    assert world.any(True, False) == (True, False) and world.sum(2, 3.5) == (2.0, 3.5)
    assert list(world.mine("abc")) == ["a", "b", "c"] and world.rng_states() is None


def test_a_share_is_every_nth_row_padded_to_its_own_length():
    examples = [([5] * length, [6] * (length + 1)) for length in (1, 4, 2, 3, 6)]
    batch = make_batch(examples, [0, 1, 2, 3, 4])
    share = parallel.take_rows(batch, np.arange(1, 5, 2), examples)  # rows 1 and 3
    assert share.indices.tolist() == [1, 3]
    assert share.source.shape == (2, 4) and batch.source.shape == (5, 6)  # padded to the share's longest
    assert share.target_lengths.tolist() == batch.target_lengths[[1, 3]].tolist()
    np.testing.assert_array_equal(share.target_out, batch.target_out[[1, 3], :share.target_out.shape[1]])


def test_ranks_after_the_first_never_write_the_model_directory(tmp_path):
    directory = parallel.ReadOnlyDirectory(tmp_path / "model")
    directory.check_fresh(overwrite=False)
    first_checkpoint = []
    directory.create(None, None, None, first_checkpoint=lambda: first_checkpoint.append(1))
    assert first_checkpoint == [1]  # the rank takes part in saving it (a collective), writes nothing
    directory.save_last(None, None, None, {})
    directory.save_epoch(None, 1, 0.0, 2)
    directory.remove_temporaries()
    assert directory.draw_curves() is False
    directory.log("start")
    assert not directory.has_best()
    directory.save_best(None, 0, 1.0)
    assert directory.has_best()  # what rank 0 now has on disk
    assert not (tmp_path / "model").exists()


# ---------------------------------------------------------------- under mpiexec
@needs_mpi
@pytest.mark.parametrize("sharding", ["--shard-optimizer", "--no-shard-optimizer"])
def test_two_ranks_train_the_translator_like_one_and_write_one_set_of_files(tmp_path, sharding):
    """float64 (the engine's default dtype set by the wrapper), dropout off: equal up to summation order,
    with the optimizer step sharded over the ranks (the default) and without."""
    program = MPI_PROGRAMS / "translate_float64.py"
    arguments = ["train", *TOY, "--epochs", "2", "--dropout", "0"]
    one = subprocess.run([sys.executable, program, *arguments, "--model", tmp_path / "one"], capture_output=True,
                         text=True, timeout=120, env=mpi_environment())
    assert one.returncode == 0, one.stderr
    two = run_mpi(2, [program, *arguments, sharding, "--model", tmp_path / "two"], timeout=120)
    assert two.returncode == 0, two.stdout + two.stderr
    assert two.stdout.count("training stopped: completed after 2 epoch(s)") == 1  # rank 0 alone reports
    assert two.stderr.count("epoch 2/2: train loss") == 1
    assert sorted(os.listdir(tmp_path / "two")) == sorted(os.listdir(tmp_path / "one"))  # no stray files
    assert len(events(tmp_path / "two", "start")) == 1 and len(events(tmp_path / "two", "summary")) == 1
    for name in (checkpoint.BEST_FILE, checkpoint.LAST_FILE):
        reference, ours = weights(tmp_path / "one" / name), weights(tmp_path / "two" / name)
        assert reference.keys() == ours.keys()
        for key in reference:
            assert ours[key].dtype == np.float64
            relative = np.abs(ours[key] - reference[key]) / np.maximum(np.abs(reference[key]), 1e-300)
            assert relative.max() <= 1e-9, (name, key, relative.max())
    one_epochs, two_epochs = events(tmp_path / "one", "epoch"), events(tmp_path / "two", "epoch")
    assert [e["dev_loss"] for e in two_epochs] == pytest.approx([e["dev_loss"] for e in one_epochs], rel=1e-12)
    assert [e["dev_bleu"] for e in two_epochs] == [e["dev_bleu"] for e in one_epochs]  # sharded decoding


@needs_mpi
def test_a_sharded_run_resumed_after_an_epoch_equals_an_uninterrupted_one(tmp_path):
    """last.npz holds the sharded optimizer's whole state (gathered on rank 0); each rank takes its slice
    back: exactly the uninterrupted run. Resumed unsharded, the same up to summation order."""
    program = MPI_PROGRAMS / "translate_float64.py"
    arguments = ["train", *TOY, "--dropout", "0"]
    straight = run_mpi(2, [program, *arguments, "--epochs", "2", "--model", tmp_path / "straight"], timeout=120)
    assert straight.returncode == 0, straight.stdout + straight.stderr
    reference = weights(tmp_path / "straight" / checkpoint.LAST_FILE)
    first = run_mpi(2, [program, *arguments, "--epochs", "1", "--model", tmp_path / "first"], timeout=120)
    assert first.returncode == 0, first.stdout + first.stderr
    saved = checkpoint.load_checkpoint(tmp_path / "first" / checkpoint.LAST_FILE)["optimizer"]
    assert len(saved["state"]) == len(reference)  # every parameter's whole moments, not a slice
    assert all(entries["exp_avg"].shape == reference[name].shape
               for entries, name in zip(saved["state"].values(), reference))
    for sharding in ("--shard-optimizer", "--no-shard-optimizer"):
        model_dir = tmp_path / sharding
        shutil.copytree(tmp_path / "first", model_dir)
        again = run_mpi(2, [program, "train", "--model", model_dir, "--resume", "--epochs", "2", sharding,
                            "--no-progress"], timeout=120)
        assert again.returncode == 0, again.stdout + again.stderr
        ours = weights(model_dir / checkpoint.LAST_FILE)
        for key in reference:
            if sharding == "--shard-optimizer":
                np.testing.assert_array_equal(ours[key], reference[key], err_msg=key)
            else:
                relative = np.abs(ours[key] - reference[key]) / np.maximum(np.abs(reference[key]), 1e-300)
                assert relative.max() <= 1e-9, (key, relative.max())


@pytest.fixture
def start():
    """``start(model_dir, epochs, extra)``: ``mpiexec -n 2 translate train`` in the background on the toy
    configuration; a job still running when the test ends (a failed test) is killed with its ranks."""
    jobs = []

    def start_job(model_dir: Path, epochs: int, extra=()) -> subprocess.Popen:
        command = [find_mpiexec(), "-n", "2", sys.executable, "-m", "translator", "train", *TOY, "--epochs",
                   str(epochs), "--model", str(model_dir), *extra]
        jobs.append((subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      env=mpi_environment(), cwd=Path(__file__).resolve().parent.parent), model_dir))
        return jobs[-1][0]

    yield start_job
    for process, model_dir in jobs:
        if process.poll() is None:
            _kill_job(process, model_dir)


# Runs that only a signal ends: started with 1000 epochs (far more than the test waits for), never stopped early.
ENDLESS = ["--early-stopping", "0", "--no-curves"]
FIRST_EPOCH_SECONDS = 180  # data, two ranks and one toy epoch (~1 s idle); bounded for a loaded machine
STOP_SECONDS = 60  # the limit for a Ctrl-C or a killed rank to end the job


def _events_so_far(model_dir: Path, kind: str) -> list:
    """:func:`events` of a running job: none before ``log.jsonl`` exists, its half-written last line skipped."""
    try:
        lines = (model_dir / checkpoint.LOG_FILE).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return [record for record in records if record["event"] == kind]


def _wait_for_epoch(model_dir: Path, process: subprocess.Popen) -> None:
    """Until rank 0 has logged a complete epoch: both ranks are then in the training loop, signal handlers set."""
    deadline = time.monotonic() + FIRST_EPOCH_SECONDS
    while not _events_so_far(model_dir, "epoch"):
        if process.poll() is not None:
            pytest.fail("the run ended before its first epoch:\n" + "".join(process.communicate()))
        if time.monotonic() > deadline:
            pytest.fail(f"no epoch logged within {FIRST_EPOCH_SECONDS} s:\n" + _kill_job(process, model_dir))
        time.sleep(0.02)


def _wait_for_saved_epoch(model_dir: Path, process: subprocess.Popen) -> None:
    """Until ``last.npz`` records a complete epoch (it is written atomically, after the epoch's log line)."""
    deadline = time.monotonic() + FIRST_EPOCH_SECONDS
    while True:
        try:
            if int(_progress(model_dir)["epoch"]) >= 1:
                return
        except (OSError, CheckpointError):
            pass
        if process.poll() is not None:
            pytest.fail("the run ended before saving its first epoch:\n" + "".join(process.communicate()))
        if time.monotonic() > deadline:
            pytest.fail(f"no epoch saved within {FIRST_EPOCH_SECONDS} s:\n" + _kill_job(process, model_dir))
        time.sleep(0.02)


def _ended(process: subprocess.Popen, model_dir: Path) -> tuple[str, str, float]:
    """``(stdout, stderr, seconds)`` of a job told to stop; fails (and kills it) if it takes over a minute."""
    started = time.monotonic()
    try:
        stdout, stderr = process.communicate(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the job did not end within {STOP_SECONDS} s:\n" + _kill_job(process, model_dir))
    return stdout, stderr, time.monotonic() - started


def _kill_job(process: subprocess.Popen, model_dir: Path) -> str:
    """SIGKILL a job that a test gives up on, its ranks too (each runs in its own session); its output."""
    for rank in (0, 1):
        try:
            os.kill(_rank_pid(rank, str(model_dir)), signal.SIGKILL)
        except (AssertionError, ProcessLookupError):
            pass  # already gone
    process.kill()
    return "".join(process.communicate())


def _progress(model_dir: Path) -> dict:
    return checkpoint.load_checkpoint(model_dir / checkpoint.LAST_FILE)["progress"]


@needs_mpi
def test_ctrl_c_stops_both_ranks_and_resuming_equals_an_uninterrupted_run(tmp_path, start):
    """With dropout and scheduled sampling on: every rank's random stream is saved and restored.

    The interrupted run has 1000 epochs and gets Ctrl-C once it has logged its first, so the signal
    always lands in training (most often in the middle of epoch 2); it is resumed to the end of the
    epoch it stopped in, which an uninterrupted run of that many epochs must match exactly.
    """
    noisy = ["--dropout", "0.3", "--teacher-forcing", "0.7"]
    resumed = tmp_path / "resumed"
    process = start(resumed, 1000, [*noisy, *ENDLESS])
    _wait_for_epoch(resumed, process)
    first = _events_so_far(resumed, "epoch")[0]
    time.sleep(min(first["eval_seconds"] + first["train_seconds"] / 2, 5))  # most often mid-epoch; anywhere will do
    process.send_signal(signal.SIGINT)  # what Ctrl-C does to mpiexec, which passes it to every rank
    stdout, stderr, seconds = _ended(process, resumed)
    assert process.returncode == 130, stdout + stderr
    assert seconds < STOP_SECONDS
    assert stderr.count("translate: interrupted: saved") == 1, stderr  # rank 0 alone, once
    assert f"continue with 'translate train --model {resumed} --resume'" in stderr
    assert "Traceback" not in stdout + stderr and "BAD TERMINATION" not in stdout + stderr
    assert [stop["reason"] for stop in events(resumed, "stop")] == ["interrupted"]
    assert [summary["stop_reason"] for summary in events(resumed, "summary")] == ["interrupted"]
    assert Translator.load(resumed).translate(["tres"])  # the interrupted model directory is whole
    interrupted_at = _progress(resumed)
    assert interrupted_at["stop_reason"] is None and interrupted_at["epoch"] >= 1
    epochs = interrupted_at["epoch"] + 1  # the end of the epoch it stopped in

    again = run_mpi(2, ["-m", "translator", "train", "--model", resumed, "--resume", "--epochs", epochs,
                        "--no-progress"], timeout=240)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"resuming at epoch {epochs} batch {interrupted_at['batch']}" in again.stderr
    assert _progress(resumed)["epoch"] == epochs
    straight = run_mpi(2, ["-m", "translator", "train", *TOY, *noisy, "--epochs", epochs, "--early-stopping", "0",
                           "--no-curves", "--model", tmp_path / "straight"], timeout=240)
    assert straight.returncode == 0, straight.stdout + straight.stderr

    reference, ours = weights(tmp_path / "straight" / checkpoint.LAST_FILE), weights(resumed / checkpoint.LAST_FILE)
    assert reference.keys() == ours.keys()
    for key in reference:
        np.testing.assert_array_equal(ours[key], reference[key], err_msg=key)
    assert len(checkpoint.load_checkpoint(resumed / checkpoint.LAST_FILE)["rank_rng"]) == 2


@needs_mpi
def test_a_killed_rank_ends_the_job_within_a_minute_and_the_model_still_loads(tmp_path, start):
    """Rank 1 is killed (SIGKILL: no handler runs) once an epoch is logged, while rank 0 trains, saves or waits
    for it in a collective: ``mpiexec`` ends the job, and what rank 0 wrote is whole."""
    model_dir = tmp_path / "model"
    process = start(model_dir, 1000, ENDLESS)
    _wait_for_epoch(model_dir, process)
    _wait_for_saved_epoch(model_dir, process)  # last.npz is saved just after the epoch is logged
    os.kill(_rank_pid(1, str(model_dir)), signal.SIGKILL)
    stdout, stderr, seconds = _ended(process, model_dir)
    assert process.returncode != 0 and seconds < STOP_SECONDS
    output = stdout + stderr
    assert output.count("BAD TERMINATION") == 1 and "Killed (signal 9)" in output, output  # mpiexec's, once
    assert "Traceback" not in output, output
    assert Translator.load(model_dir).translate(["tres"])  # best.npz and the rest are whole
    # mpiexec killed rank 0 too (SIGKILL), maybe in the middle of a save: the files are whole, and
    # --resume goes on from last.npz and removes what the unfinished save left
    assert len(checkpoint.load_checkpoint(model_dir / checkpoint.LAST_FILE)["rank_rng"]) == 2
    saved_epoch = int(_progress(model_dir)["epoch"])
    assert saved_epoch >= 1
    again = run_mpi(2, ["-m", "translator", "train", "--model", model_dir, "--resume", "--epochs", saved_epoch + 1,
                        "--no-progress"], timeout=240)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "training stopped: completed after" in again.stdout
    assert _progress(model_dir)["epoch"] == saved_epoch + 1
    assert not [path.name for path in model_dir.iterdir() if path.name.startswith(".")]


def _rank_pid(rank: int, marker: str) -> int:
    """The pid of the rank ``rank`` process whose command line mentions ``marker``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().decode(errors="replace")
            environment = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in command and f"PMI_RANK={rank}".encode() in environment and "mpiexec" not in command:
            return int(entry.name)
    raise AssertionError(f"no process of rank {rank} found")


# ---------------------------------------------------------------- translate train starting its own ranks
@pytest.fixture
def alone(monkeypatch):
    """This test process as a ``translate train`` started alone: no launcher variables, no $TRANSLATE_PROCESSES."""
    for name in (*parallel.LAUNCHER_VARIABLES, launch.PROCESSES_ENV):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _machine(monkeypatch, usable: int, busy: float, mpi_missing: str | None = None) -> None:
    from tinygrad_rnn import threads

    monkeypatch.setattr(threads, "usable_cores", lambda: usable)
    monkeypatch.setattr(threads, "busy_cores", lambda *args, **kwargs: busy)
    monkeypatch.setattr(launch, "mpi_missing", lambda: mpi_missing)


def test_auto_starts_two_processes_on_an_idle_cpu_machine_with_mpi_and_one_otherwise(alone):
    _machine(alone, usable=2, busy=0.0)
    assert launch.processes_to_start(None, "cpu") == (2, "auto")
    assert launch.processes_to_start(None, "CPU") == (2, "auto")
    assert launch.processes_to_start(None, "cuda") == (1, "auto")  # GPUs: asked for, never auto
    _machine(alone, usable=2, busy=1.0)  # another job keeps a core busy
    assert launch.processes_to_start(None, "cpu") == (1, "auto")
    _machine(alone, usable=16, busy=0.0)  # more cores: still two ranks (they share the cores as BLAS threads)
    assert launch.processes_to_start(None, "cpu") == (2, "auto")
    _machine(alone, usable=2, busy=0.0, mpi_missing="mpi4py is not installed")
    assert launch.processes_to_start(None, "cpu") == (1, "auto")


def test_processes_asked_for_win_over_the_environment_and_auto(alone):
    _machine(alone, usable=2, busy=0.0)
    alone.setenv(launch.PROCESSES_ENV, "3")
    assert launch.processes_to_start(None, "cpu") == (3, "$TRANSLATE_PROCESSES")
    assert launch.processes_to_start(1, "cpu") == (1, "--processes")
    alone.setenv(launch.PROCESSES_ENV, "auto")
    assert launch.processes_to_start(None, "cpu") == (2, "auto")
    alone.setenv(launch.PROCESSES_ENV, "two")
    with pytest.raises(ConfigError, match=r"TRANSLATE_PROCESSES=two: give a number of processes from 1"):
        launch.processes_to_start(None, "cpu")
    with pytest.raises(ConfigError, match=r"--processes must be from 1 to 1024 \(unset: auto\), got 0"):
        build_config({}, {"processes": 0})


def test_more_than_one_process_without_mpi_is_one_line_that_says_what_to_install(alone, tmp_path):
    _machine(alone, usable=2, busy=0.0, mpi_missing="mpi4py is not installed")
    assert launch.processes_to_start(1, "cpu") == (1, "--processes")
    result = CliRunner().invoke(cli, ["train", *TOY, "--processes", "2", "--model", str(tmp_path / "m")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines == ["translate: error: --processes 2 starts 2 MPI ranks, but mpi4py is not installed: pip install "
                     "'.[mpi]' (mpi4py and mpich, which brings mpiexec), or train in one process with --processes 1"]
    assert not (tmp_path / "m").exists()


def test_the_ranks_are_this_python_running_the_same_arguments(alone):
    command = launch.rank_command(2, ["train", "--epochs", "3"])
    assert command[1:] == ["-n", "2", sys.executable, "-m", "translator", "train", "--epochs", "3"]
    assert not parallel.under_launcher()
    alone.setenv("PMI_SIZE", "1")  # mpiexec -n 1: a rank, which starts nothing
    assert parallel.under_launcher()


def _alone_environment() -> dict:
    environment = mpi_environment()
    environment.pop(launch.PROCESSES_ENV, None)
    return environment


@needs_mpi
def test_train_started_alone_with_two_processes_trains_like_one_process(tmp_path):
    """``translate train --processes 2`` (no mpiexec typed): two ranks, one set of files, dropout off: the
    weights of one process up to float32 summation order (float64 equality is tested under mpiexec above)."""
    arguments = [sys.executable, "-m", "translator", "train", *TOY, "--epochs", "2", "--dropout", "0"]
    one = subprocess.run([*arguments, "--processes", "1", "--model", tmp_path / "one"], capture_output=True,
                         text=True, timeout=120, env=_alone_environment(), cwd=REPO_ROOT)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([*arguments, "--processes", "2", "--model", tmp_path / "two"], capture_output=True,
                         text=True, timeout=120, env=_alone_environment(), cwd=REPO_ROOT)
    assert two.returncode == 0, two.stdout + two.stderr
    assert two.stderr.count("translate: 2 processes (--processes), started with mpiexec") == 1
    assert two.stdout.count("training stopped: completed after 2 epoch(s)") == 1  # rank 0 alone reports
    assert sorted(os.listdir(tmp_path / "two")) == sorted(os.listdir(tmp_path / "one"))
    saved = json.loads((tmp_path / "two" / checkpoint.CONFIG_FILE).read_text(encoding="utf-8"))
    assert saved["train"]["processes"] == 2
    reference, ours = weights(tmp_path / "one" / checkpoint.LAST_FILE), weights(tmp_path / "two" / checkpoint.LAST_FILE)
    for key in reference:
        np.testing.assert_allclose(ours[key], reference[key], rtol=1e-3, atol=1e-5, err_msg=key)
    assert events(tmp_path / "two", "summary")[0]["steps"] == events(tmp_path / "one", "summary")[0]["steps"]


@needs_mpi
def test_ctrl_c_to_train_started_alone_reaches_every_rank_once(tmp_path):
    """The terminal's Ctrl-C reaches the process the user started; it passes it on to mpiexec, which passes
    it on to the ranks: one stop after the current batch, saved, exit 130 (a second one would quit unsaved)."""
    model_dir = tmp_path / "model"
    process = subprocess.Popen([sys.executable, "-m", "translator", "train", *TOY, *ENDLESS, "--epochs", "1000",
                                "--processes", "2", "--model", str(model_dir)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=_alone_environment(), cwd=REPO_ROOT,
                               start_new_session=True)  # its own process group, as a terminal's foreground job
    try:
        _wait_for_epoch(model_dir, process)
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal does: the whole foreground group
        stdout, stderr, seconds = _ended(process, model_dir)
    finally:
        if process.poll() is None:
            _kill_job(process, model_dir)
    assert process.returncode == 130, stdout + stderr
    assert seconds < STOP_SECONDS
    assert stderr.count("translate: interrupted: saved") == 1, stderr
    assert stderr.count("again to quit without saving") == 1, stderr  # one Ctrl-C reached rank 0, not two
    assert "interrupted again" not in stderr and "Traceback" not in stdout + stderr
    assert [stop["reason"] for stop in events(model_dir, "stop")] == ["interrupted"]
    assert Translator.load(model_dir).translate(["tres"])


def test_the_starter_passes_signals_on_and_returns_the_ranks_status(monkeypatch, tmp_path):
    """``run_ranks`` with a stand-in for mpiexec (no MPI needed): a SIGTERM sent to this process reaches the
    child, the child's status comes back, a child killed by a signal gives 128 + N, and this process's
    own handlers are back afterwards."""
    ready = tmp_path / "ready"
    child_code = ("import pathlib, signal, sys, time\n"
                  "signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))\n"
                  f"pathlib.Path({str(ready)!r}).touch()\n"
                  "time.sleep(60)\n"
                  "sys.exit(1)\n")
    monkeypatch.setattr(launch, "rank_command", lambda processes, arguments: [sys.executable, "-c", child_code])

    def terminate_when_ready():
        deadline = time.monotonic() + 50
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGTERM)  # to this process, as `kill` would: run_ranks passes it on

    before = signal.getsignal(signal.SIGTERM)
    sender = threading.Thread(target=terminate_when_ready, daemon=True)
    sender.start()
    assert launch.run_ranks(2, []) == 7  # the child ended by the passed-on SIGTERM, not by its sleep
    sender.join()
    assert signal.getsignal(signal.SIGTERM) is before
    monkeypatch.setattr(launch, "rank_command", lambda processes, arguments:
                        [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"])
    assert launch.run_ranks(2, []) == 128 + signal.SIGKILL
