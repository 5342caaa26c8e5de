"""``translate`` end to end with Click's CliRunner: train on the built-in numbers corpus, run, evaluate,
and every user mistake as one line on stderr with exit status 2."""
import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile

import pytest
from click.testing import CliRunner

from translator import checkpoint
from translator.cli import cli

# Flags that train a tiny numbers model in a few seconds; the model options come from a TOML file.
TINY_TOML = """\
# keys are the option names
dataset = "numbers"
max-pairs = 3000
dev_size = 200
test-size = 200
max-length = 20
min-freq = 1
embedding-size = 32
hidden-size = 32
batch-size = 32
lr = 0.005
lr-decay-start = 0  # a 3-epoch toy run learns faster at a constant rate
dropout = 0.0
epochs = 9
source-noise = 0.0  # casual-input noise costs this 3-epoch toy run most of its accuracy
"""


def invoke(*args, input=None):
    return CliRunner().invoke(cli, [str(arg) for arg in args], input=input, catch_exceptions=False)


def assert_user_error(result, *fragments):
    """Exit 2, the error in ONE line (the last on stderr; progress lines may precede it), no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.stderr, result.stdout)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert [line for line in lines if "error" in line.lower()] == lines[-1:], result.stderr
    assert lines[-1].startswith("translate: error: ")
    for fragment in fragments:
        assert fragment in lines[-1], lines[-1]
    return lines[-1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A numbers model trained by the CLI: the file says 9 epochs, the flag 3 (the flag wins)."""
    directory = tmp_path_factory.mktemp("cli")
    config_file = directory / "tiny.toml"
    config_file.write_text(TINY_TOML, encoding="utf-8")
    model_dir = directory / "model"
    result = invoke("train", "--model", model_dir, "--config", config_file, "--epochs", 3, "--no-progress")
    assert result.exit_code == 0, result.output
    return model_dir, result


def test_train_learns_and_reports(trained):
    model_dir, result = trained
    saved = checkpoint.read_config(model_dir)["train"]
    assert saved["epochs"] == 3 and saved["hidden_size"] == 32 and saved["dataset"] == "numbers"
    assert "test BLEU" in result.stdout and "nrefs:1" in result.stdout
    assert "dev BLEU" in result.stderr and "target tokens/s" in result.stderr
    records = [json.loads(line) for line in (model_dir / checkpoint.LOG_FILE).read_text().splitlines()]
    epochs = [record for record in records if record["event"] == "epoch"]
    assert len(epochs) == 3
    assert epochs[-1]["dev_loss"] < 0.5 * epochs[0]["dev_loss"]
    summary = records[-1]
    assert summary["event"] == "summary" and summary["test_exact_matches"] > 0.2


def test_run_arguments_stdin_and_input_file(trained, tmp_path):
    model_dir, _ = trained
    result = invoke("run", "--model", model_dir, "cien", "", "dos mil")
    assert result.exit_code == 0, result.output
    lines = result.stdout.split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[3] == ""  # one line per input, empty stays empty
    assert lines[0] and lines[2]

    piped = invoke("run", "--model", model_dir, "--beam", 1, input="cien\n\ndos mil\n")
    assert piped.exit_code == 0 and piped.stdout.count("\n") == 3
    source = tmp_path / "input.txt"
    source.write_text("cien\ndos mil\n", encoding="utf-8")
    from_file = invoke("run", "--model", model_dir, "--input", source)
    assert from_file.stdout.splitlines() == [lines[0], lines[2]]


def test_run_nbest(trained):
    """input number, rank, score, translation: N rows for every input, blank ones included."""
    model_dir, _ = trained
    result = invoke("run", "--model", model_dir, "--nbest", 3, input="cien\n\n   \ndos\n")
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.stdout.split("\n")[:-1]]
    assert all(len(row) == 4 for row in rows), rows
    assert [(row[0], row[1]) for row in rows] == [(str(line), str(rank)) for line in range(1, 5) for rank in (1, 2, 3)]
    scores = [float(row[2]) for row in rows[:3]]
    assert scores == sorted(scores, reverse=True)
    assert all(row[3] for row in rows[:3] + rows[9:])
    assert [row[3] for row in rows[3:9]] == [""] * 6  # a blank input line: N empty translations


def test_evaluate_text_json_and_output(trained, tmp_path):
    model_dir, _ = trained
    text = invoke("evaluate", "--model", model_dir, "--beam", 1)
    assert text.exit_code == 0, text.output
    assert "BLEU = " in text.stdout and "chrF = " in text.stdout and "sentences/s" in text.stdout
    output = tmp_path / "hypotheses.txt"
    result = invoke("evaluate", "--model", model_dir, "--json", "--output", output)
    report = json.loads(result.stdout)
    assert report["sentences"] == 200 and report["bleu"] > 20 and report["exact_matches"] > 0.2
    assert report["bleu_signature"].startswith("nrefs:1|case:mixed")
    assert len(output.read_text(encoding="utf-8").splitlines()) == 200

    data = tmp_path / "pairs.tsv"  # the anki layout: english <TAB> spanish
    data.write_text("one hundred\tcien\ntwo thousand\tdos mil\n", encoding="utf-8")
    on_file = json.loads(invoke("evaluate", "--model", model_dir, "--data", data, "--json").stdout)
    assert on_file["sentences"] == 2


def test_resume_of_finished_training_and_more_epochs(trained, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(trained[0], model_dir)
    assert_user_error(invoke("train", "--model", model_dir, "--resume"), "already finished")
    assert_user_error(invoke("train", "--model", model_dir, "--resume", "--hidden-size", 64), "--hidden-size")
    more = invoke("train", "--model", model_dir, "--resume", "--epochs", 4, "--no-progress")
    assert more.exit_code == 0, more.output
    assert "after 4 epoch(s)" in more.stdout


def test_ctrl_c_saves_last_and_exits_cleanly(tmp_path, monkeypatch):
    from translator import training

    original_step = training.Trainer._train_step
    calls = []

    def step_then_ctrl_c(self, batch):
        loss = original_step(self, batch)
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl-C during training
        return loss

    monkeypatch.setattr(training.Trainer, "_train_step", step_then_ctrl_c)
    config_file = tmp_path / "tiny.toml"
    config_file.write_text(TINY_TOML, encoding="utf-8")
    model_dir = tmp_path / "model"
    result = invoke("train", "--model", model_dir, "--config", config_file, "--no-progress")
    assert result.exit_code == 130
    assert "Traceback" not in result.output and "--resume" in result.stderr
    state = checkpoint.load_checkpoint(model_dir / checkpoint.LAST_FILE)
    assert state["progress"]["step"] == 3
    assert invoke("run", "--model", model_dir, "cien").exit_code == 0  # a usable model was kept


def test_sigterm_is_a_ctrl_c_finish_the_step_save_and_exit_143(tmp_path, monkeypatch):
    from translator import training

    original_step = training.Trainer._train_step
    calls = []

    def step_then_sigterm(self, batch):
        loss = original_step(self, batch)
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # what a scheduler or `docker stop` sends
        return loss

    monkeypatch.setattr(training.Trainer, "_train_step", step_then_sigterm)
    config_file = tmp_path / "tiny.toml"
    config_file.write_text(TINY_TOML, encoding="utf-8")
    model_dir = tmp_path / "model"
    result = invoke("train", "--model", model_dir, "--config", config_file, "--no-progress")
    assert result.exit_code == 143, result.output
    assert "translate: terminated: saved" in result.stderr and "--resume" in result.stderr
    assert checkpoint.load_checkpoint(model_dir / checkpoint.LAST_FILE)["progress"]["step"] == 2
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the handler does not outlive training


def test_ctrl_c_while_preparing_the_data_says_nothing_was_saved(tmp_path, monkeypatch):
    from translator import training

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "prepare", interrupted)
    result = invoke("train", "--model", tmp_path / "model", "--dataset", "numbers", "--no-progress")
    assert result.exit_code == 130
    assert result.stderr.strip().splitlines() == ["translate: 1 BLAS thread (from the environment)",
                                                   "translate: interrupted before training began: nothing was saved"]
    assert not (tmp_path / "model").exists()


def test_version_and_python_dash_m():
    assert invoke("--version").stdout.startswith("translate ")
    completed = subprocess.run([sys.executable, "-m", "translator", "--help"], capture_output=True, text=True,
                               check=False)
    assert completed.returncode == 0 and "train" in completed.stdout


# ---------------------------------------------------------------- user mistakes: one line, exit 2
def test_unknown_model_dir(tmp_path):
    assert_user_error(invoke("run", "--model", tmp_path / "missing", "hola"), "does not exist")
    assert_user_error(invoke("evaluate", "--model", tmp_path), "no trained model")


def test_corrupt_and_incompatible_checkpoints(trained, tmp_path):
    corrupt = tmp_path / "corrupt"
    shutil.copytree(trained[0], corrupt)
    best = corrupt / checkpoint.BEST_FILE
    best.write_bytes(best.read_bytes()[:200])
    assert_user_error(invoke("run", "--model", corrupt, "cien"), "corrupt")

    incompatible = tmp_path / "incompatible"
    shutil.copytree(trained[0], incompatible)
    config_path = incompatible / checkpoint.CONFIG_FILE
    document = json.loads(config_path.read_text(encoding="utf-8"))
    document["format_version"] = 99
    config_path.write_text(json.dumps(document), encoding="utf-8")
    assert_user_error(invoke("run", "--model", incompatible, "cien"), "format version 99")

    mismatched = tmp_path / "mismatched"
    shutil.copytree(trained[0], mismatched)
    config_path = mismatched / checkpoint.CONFIG_FILE
    document = json.loads(config_path.read_text(encoding="utf-8"))
    document["model"]["hidden_size"] = 48
    config_path.write_text(json.dumps(document), encoding="utf-8")
    assert_user_error(invoke("run", "--model", mismatched, "cien"), "does not fit")


def test_impossible_option_combinations(trained, tmp_path):
    model_dir, _ = trained
    assert_user_error(invoke("run", "--model", model_dir, "--nbest", 3, "--beam", 2, "cien"), "--nbest 3")
    source = tmp_path / "in.txt"
    source.write_text("cien\n", encoding="utf-8")
    assert_user_error(invoke("run", "--model", model_dir, "--input", source, "cien"), "not both")
    assert_user_error(invoke("run", "--model", model_dir, "--show-attention", tmp_path / "a.png", "uno", "dos"),
                      "one sentence")
    assert_user_error(invoke("train", "--model", tmp_path / "m", "--attention", "none"), "--input-feeding")
    assert_user_error(invoke("train", "--model", tmp_path / "m", "--epochs", 0), "--epochs")
    assert_user_error(invoke("train", "--model", tmp_path / "m", "--resume", "--overwrite"), "choose one")
    assert_user_error(invoke("train", "--model", tmp_path / "m", "--resume"), "does not exist")
    assert_user_error(invoke("train", "--model", model_dir, "--dataset", "numbers"), "already holds a model")
    assert_user_error(invoke("train", "--model", tmp_path / "m", "--attention", "dot"), "attention 'dot'")
    assert_user_error(invoke("train", "--bogus-option"), "No such option")
    assert_user_error(invoke("run", "--model", model_dir, "--beam", 0, "x"), "--beam")


def test_bad_config_file(tmp_path):
    config_file = tmp_path / "bad.toml"
    config_file.write_text("hiden-size = 3\n", encoding="utf-8")
    assert_user_error(invoke("train", "--model", tmp_path / "m", "--config", config_file), "hiden-size")
    assert_user_error(invoke("train", "--model", tmp_path / "m", "--config", tmp_path / "none.toml"),
                      "does not exist")


def test_non_utf8_input_names_file_and_offset(trained, tmp_path):
    model_dir, _ = trained
    source = tmp_path / "latin1.txt"
    source.write_bytes("cien\nañ\n".encode("latin-1"))
    assert_user_error(invoke("run", "--model", model_dir, "--input", source), str(source), "byte offset 6")
    piped = CliRunner().invoke(cli, ["run", "--model", str(model_dir)], input=b"uno\n\xff\n")
    assert_user_error(piped, "standard input", "byte offset 4")
    assert_user_error(invoke("run", "--model", model_dir, "--input", tmp_path / "absent.txt"), "absent.txt")
    assert_user_error(invoke("evaluate", "--model", model_dir, "--data", source), str(source), "byte offset")


def test_bad_training_data(tmp_path):
    data = tmp_path / "pairs.tsv"
    good = "".join(f"{n} dogs\t{n} perros\n" for n in range(40))
    data.write_text(good + "no tab here\n" + good, encoding="utf-8")
    line = assert_user_error(invoke("train", "--model", tmp_path / "m", "--data", data, "--strict"), "line 41")
    assert str(data) in line
    assert_user_error(invoke("train", "--model", tmp_path / "m", "--data", tmp_path / "absent.tsv"), "absent.tsv")
    assert_user_error(invoke("train", "--model", tmp_path / "m", "--data", data, "--dev-size", 50,
                             "--test-size", 50), "--dev-size")
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    assert_user_error(invoke("train", "--model", tmp_path / "m", "--data", broken), "broken.zip")


def test_malformed_lines_are_skipped_and_reported(tmp_path):
    data = tmp_path / "pairs.tsv"
    lines = [f"{n} dogs\t{n} perros" for n in range(60)]
    lines[10], lines[20] = "missing the tab", "\tempty english"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = invoke("train", "--model", tmp_path / "m", "--data", data, "--dev-size", 5, "--test-size", 5,
                    "--epochs", 1, "--embedding-size", 8, "--hidden-size", 8, "--min-freq", 1, "--no-progress")
    assert result.exit_code == 0, result.output
    assert "skipped 2 malformed lines (11, 21)" in result.stderr


def test_real_spa_eng_data(spa_eng_path, tmp_path):
    """The real Tatoeba file: a tiny model trains for a few seconds, is saved, and translates."""
    model_dir = tmp_path / "spa"
    result = invoke("train", "--model", model_dir, "--data", spa_eng_path, "--max-pairs", 20000,
                    "--dev-size", 100, "--test-size", 100, "--embedding-size", 16, "--hidden-size", 16,
                    "--max-time", 5, "--no-progress")
    assert result.exit_code == 0, result.output
    assert "read 20000 pairs" in result.stderr and "test BLEU" in result.stdout
    assert (model_dir / checkpoint.BEST_FILE).is_file() and (model_dir / checkpoint.LAST_FILE).is_file()
    with zipfile.ZipFile(spa_eng_path) as archive:
        assert "spa-eng/spa.txt" in archive.namelist()
    translated = invoke("run", "--model", model_dir, "¿Dónde está la estación?")
    assert translated.exit_code == 0 and translated.stdout.count("\n") == 1


def test_offline_without_a_cached_dataset_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSLATE_DATA_URL", (tmp_path / "no-such-mirror.zip").as_uri())
    line = assert_user_error(invoke("train", "--model", tmp_path / "m", "--data-dir", tmp_path / "data"),
                             "spa-eng")
    assert str(tmp_path / "data" / "spa-eng.zip") in line


@pytest.mark.skipif(__import__("tinygrad_rnn").cuda_available(), reason="this machine has CUDA: the device exists")
def test_cuda_without_a_gpu(trained, tmp_path):
    assert_user_error(invoke("train", "--model", tmp_path / "m", "--dataset", "numbers", "--device", "cuda"),
                      "--device cuda")
    assert_user_error(invoke("run", "--model", trained[0], "--device", "cuda", "uno"), "--device cuda")


def test_show_attention_draws_or_explains(trained, tmp_path):
    picture = tmp_path / "attention.png"
    result = invoke("run", "--model", trained[0], "--show-attention", picture, "veintiún mil")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert_user_error(result, "matplotlib", "pip install")
    else:
        assert result.exit_code == 0 and picture.stat().st_size > 0, result.output
        assert result.stdout.count("\n") == 1  # the translation only; the note goes to stderr


def test_evaluate_noise_noises_sources_only(trained, tmp_path):
    """--noise casual turns '¡Cien!' into 'cien': the same translations as the clean sources, same references."""
    model_dir, _ = trained
    clean, noisy = tmp_path / "clean.tsv", tmp_path / "noisy.tsv"
    clean.write_text("one hundred\tcien\ntwo thousand\tdos mil\n", encoding="utf-8")
    noisy.write_text("one hundred\t¡Cien!\ntwo thousand\tDOS MIL.\n", encoding="utf-8")
    outputs = {}
    for name, data, spec in (("clean", clean, "clean"), ("noisy", noisy, "casual")):
        outputs[name] = tmp_path / f"{name}.out"
        result = invoke("evaluate", "--model", model_dir, "--data", data, "--noise", spec, "--json",
                        "--output", outputs[name])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["noise"] == ("clean" if spec == "clean" else "lower,nopunct")
    assert outputs["noisy"].read_text(encoding="utf-8") == outputs["clean"].read_text(encoding="utf-8")
    assert_user_error(invoke("evaluate", "--model", model_dir, "--noise", "shouting"), "--noise", "shouting", "casual")


# ---------------------------------------------------------------- device, pipes, long inputs
def test_explicit_device_wins_over_the_environment(trained, monkeypatch):
    import tinygrad_rnn as tg

    model_dir, _ = trained
    monkeypatch.setattr(tg.backend, "_default_device", None)  # as in a fresh process: the variable is read
    monkeypatch.setenv("TINYGRAD_RNN_DEVICE", "cuda" if not tg.cuda_available() else "tpu")
    try:
        result = invoke("run", "--model", model_dir, "--device", "cpu", "cien")
        assert result.exit_code == 0, result.output
        assert tg.backend.get_default_device() == "cpu"
        monkeypatch.setattr(tg.backend, "_default_device", None)
        assert_user_error(invoke("run", "--model", model_dir, "cien"), "TINYGRAD_RNN_DEVICE=", "--device")
        assert_user_error(invoke("train", "--model", model_dir / "new", "--dataset", "numbers"), "TINYGRAD_RNN_DEVICE=")
    finally:
        tg.backend.set_default_device("cpu")


def test_threads_flag_wins_over_the_environment_and_auto_asks_the_engine(trained, monkeypatch):
    import tinygrad_rnn as tg
    from tinygrad_rnn import threads

    model_dir, result = trained
    assert "translate: 1 BLAS thread (from the environment)" in result.stderr  # conftest set it
    chosen = []
    monkeypatch.setattr(threads, "set_num_threads", chosen.append)
    monkeypatch.setattr(threads, "auto_num_threads", lambda processes=1: 7 * processes)
    assert invoke("run", "--model", model_dir, "--threads", 3, "cien").exit_code == 0
    assert invoke("evaluate", "--model", model_dir, "--threads", "auto", "--beam", 1).exit_code == 0
    assert invoke("run", "--model", model_dir, "cien").exit_code == 0   # the environment (conftest) wins: no call
    for name in threads.ENVIRONMENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert invoke("run", "--model", model_dir, "cien").exit_code == 0   # nothing set: auto
    assert chosen == [3, 7, 7]
    for bad in (0, -1, "two", 1025):
        assert_user_error(invoke("run", "--model", model_dir, "--threads", bad, "cien"), "--threads", "auto")
    assert tg.get_num_threads() in (None, 1)  # set_num_threads was replaced: the suite keeps one thread


def test_train_saves_its_thread_count_and_resume_reuses_it(tmp_path):
    import tinygrad_rnn as tg

    if tg.get_num_threads() is None:
        pytest.skip("no BLAS library threadpoolctl can control")
    config_file = tmp_path / "tiny.toml"
    config_file.write_text(TINY_TOML, encoding="utf-8")
    model_dir = tmp_path / "model"
    common = ("--model", model_dir, "--config", config_file, "--max-pairs", 600, "--no-progress")
    first = invoke("train", *common, "--epochs", 1, "--threads", 2)
    assert first.exit_code == 0, first.output
    assert "translate: 2 BLAS threads (--threads)" in first.stderr
    assert checkpoint.read_config(model_dir)["train"]["threads"] == 2
    tg.set_num_threads(1)
    resumed = invoke("train", *common, "--epochs", 2, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "translate: 2 BLAS threads (as the run saved)" in resumed.stderr
    assert tg.get_num_threads() == 2
    again = invoke("train", *common, "--epochs", 3, "--resume", "--threads", 1)
    assert again.exit_code == 0, again.output
    assert "translate: 1 BLAS thread (--threads)" in again.stderr and tg.get_num_threads() == 1
    assert checkpoint.read_config(model_dir)["train"]["threads"] == 2  # config.json keeps the run's start
    assert_user_error(invoke("train", "--model", tmp_path / "other", "--dataset", "numbers", "--threads", 0),
                      "--threads", "from 1 to")


def test_a_closed_pipe_ends_run_quietly_like_cat(trained, tmp_path):
    model_dir, _ = trained
    source = tmp_path / "many.txt"
    source.write_text("cien mil\n" * 4000, encoding="utf-8")  # more output than a pipe buffer holds
    process = subprocess.Popen([sys.executable, "-m", "translator", "run", "--model", str(model_dir), "--beam", "1",
                                "--input", str(source)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = process.stdout.readline()
    process.stdout.close()  # what `| head -1` does
    stderr = process.stderr.read().decode()
    process.wait(timeout=120)
    assert first.strip()
    assert stderr == ""
    assert process.returncode == -signal.SIGPIPE  # as `cat` ends: the shell shows 141


def test_long_inputs_are_truncated_with_a_warning_and_keep_their_lines(trained):
    model_dir, _ = trained
    words = " ".join(["cien"] * 3000)
    lines = ["dos", words, "", words + " mil", "tres"]
    result = invoke("run", "--model", model_dir, "--beam", 2, "--max-source-length", 40, "--max-tokens", 64,
                    input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") == len(lines)
    warning = result.stderr.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith("translate: warning: 2 input line(s) longer than 40 tokens (2, 4)")
    nbest = invoke("run", "--model", model_dir, "--nbest", 2, input="\n".join(lines) + "\n")
    assert nbest.exit_code == 0 and nbest.stdout.count("\n") == 2 * len(lines)


# ---------------------------------------------------------------- sizes, vocabularies, zip members
def test_absurd_sizes_are_refused_before_anything_is_allocated(tmp_path, monkeypatch):
    from translator import footprint

    base = ["train", "--model", tmp_path / "m", "--dataset", "numbers", "--max-pairs", 300, "--dev-size", 20,
            "--test-size", 20, "--no-progress"]
    assert_user_error(invoke(*base, "--embedding-size", 100_000_000), "--embedding-size", "100000000")
    assert_user_error(invoke(*base, "--encoder-layers", 1_000_000), "--encoder-layers", "1..64")
    monkeypatch.setattr(footprint, "available_memory", lambda: 64 << 20)  # a machine with 64 MiB to spare
    line = assert_user_error(invoke(*base, "--hidden-size", 1024), "parameters", "64.0 MiB available")
    assert "to train" in line and "--hidden-size" in line
    assert not (tmp_path / "m").exists()  # refused before the model directory was made


def test_a_min_freq_that_empties_the_vocabulary(tmp_path):
    assert_user_error(invoke("train", "--model", tmp_path / "m", "--dataset", "numbers", "--max-pairs", 300,
                             "--dev-size", 20, "--test-size", 20, "--min-freq", 1_000_000, "--tokenizer", "word"),
                      "--min-freq 1000000", "vocabulary")


def test_sizes_in_config_json_are_bounded(trained, tmp_path, monkeypatch):
    from translator import footprint

    for key, value, words in (("hidden_size", 10**12, "1..65536"), ("encoder_layers", 10**6, "1..64")):
        crafted = tmp_path / key
        shutil.copytree(trained[0], crafted)
        path = crafted / checkpoint.CONFIG_FILE
        document = json.loads(path.read_text(encoding="utf-8"))
        document["model"][key] = value
        path.write_text(json.dumps(document), encoding="utf-8")
        assert_user_error(invoke("run", "--model", crafted, "cien"), words)
    monkeypatch.setattr(footprint, "available_memory", lambda: 1 << 10)
    assert_user_error(invoke("run", "--model", trained[0], "cien"), "parameters", "to load")


def test_a_zip_member_can_be_named(tmp_path):
    data = tmp_path / "two.zip"
    with zipfile.ZipFile(data, "w") as archive:
        archive.writestr("notes.txt", "not pairs at all\n")
        archive.writestr("pairs.txt", "".join(f"{n} dogs\t{n} perros\n" for n in range(60)))
    options = ["--dev-size", 5, "--test-size", 5, "--epochs", 1, "--embedding-size", 8, "--hidden-size", 8,
               "--min-freq", 1, "--no-progress"]
    assert_user_error(invoke("train", "--model", tmp_path / "m", "--data", data, *options), "--data-member")
    result = invoke("train", "--model", tmp_path / "m", "--data", data, "--data-member", "pairs.txt", *options)
    assert result.exit_code == 0, result.output
    assert f"{data}:pairs.txt" in result.stderr
    assert_user_error(invoke("train", "--model", tmp_path / "n", "--data", data, "--data-member", "x.txt", *options),
                      "no member 'x.txt'", "pairs.txt")
    assert_user_error(invoke("evaluate", "--model", tmp_path / "m", "--data", data), "--data-member")
    scored = invoke("evaluate", "--model", tmp_path / "m", "--data", data, "--data-member", "pairs.txt", "--json")
    assert scored.exit_code == 0, scored.output
    assert json.loads(scored.stdout)["sentences"] == 60
