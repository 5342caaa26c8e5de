"""A standing guard: hostile and random inputs to ``translate``, checked against the CLI's promises.

Every case must end with exit status 0, or with a user mistake reported as exit status 2 and ONE
line on stderr, never a traceback or another status; a failed command leaves the files already in
the model directory byte for byte unchanged (hashed before and after); memory stays bounded
(traced with tracemalloc where the input could make it grow). Inputs: random and damaged bytes as
data files, checkpoints, config.json and TOML files; random option values; random stdin.

Hypothesis is derandomized (the same cases on every run, so CI is reproducible) and the example
counts are small, to keep this file to some 30 s on two cores; raise ``FUZZ_EXAMPLES`` (e.g.
``FUZZ_EXAMPLES=10 python -m pytest tests/test_fuzz_cli.py``) to search harder.
"""
import hashlib
import io
import itertools
import json
import math
import os
import shutil
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from translator import checkpoint
from translator.cli import cli
from translator.config import FIELDS
from translator.options import flag_name, python_type

SCALE = float(os.environ.get("FUZZ_EXAMPLES", "1"))
UNIQUE = itertools.count()  # a fresh directory name for every Hypothesis example


def fuzz(examples: int):
    return settings(max_examples=max(1, int(examples * SCALE)), deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


# A model trained in seconds, and the flags of a training run that stays that small whatever one
# option is changed to (--max-time bounds it).
TINY = {"--dataset": "numbers", "--max-pairs": 300, "--dev-size": 20, "--test-size": 20, "--min-freq": 1,
        "--embedding-size": 8, "--hidden-size": 8, "--epochs": 1, "--max-time": 2}


def tiny_flags(**changes):
    flags = {**TINY, **changes}
    return [str(part) for flag, value in flags.items() if value is not None for part in (flag, value)]


def invoke(*args, input=None):
    return CliRunner().invoke(cli, [str(arg) for arg in args], input=input, catch_exceptions=False)


def assert_promise_kept(result):
    """Exit 0, or exit 2 with exactly one line on stderr that is the error; never a traceback."""
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 2), (result.exit_code, result.output)
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        errors = [line for line in lines if line.startswith("translate: error: ")]
        assert errors == lines[-1:], result.stderr
    return result


def hashes(directory: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(directory.iterdir())
            if path.is_file()}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fuzz") / "model"
    result = invoke("train", "--model", directory, *tiny_flags(**{"--max-time": None}), "--no-progress")
    assert result.exit_code == 0, result.output
    return directory


@pytest.fixture
def scratch(model, tmp_path):
    """Makes a fresh copy of the model directory to damage (one per Hypothesis example)."""
    def fresh() -> Path:
        copy = tmp_path / f"model{next(UNIQUE)}"
        shutil.copytree(model, copy)
        return copy

    return fresh


def mutate(data: bytes, draw) -> bytes:
    """Truncate, flip bytes, or splice random bytes into ``data``."""
    kind = draw(st.sampled_from(["truncate", "flip", "splice"]))
    if kind == "truncate" or not data:
        return data[:draw(st.integers(0, max(len(data) - 1, 0)))]
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[position] ^= draw(st.integers(1, 255))
        else:
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


PAIRS_TEXT = "".join(f"{n} dogs\t{n} perros\n" for n in range(80))


def pairs_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("pairs/_about.txt", "about")
        archive.writestr("pairs/pairs.txt", PAIRS_TEXT)
    return buffer.getvalue()


# ---------------------------------------------------------------- data files
@fuzz(6)
@given(data=st.data())
def test_random_and_damaged_data_files(tmp_path, data):
    original = data.draw(st.sampled_from([PAIRS_TEXT.encode(), pairs_zip()]))
    content = data.draw(st.one_of(st.binary(max_size=300), st.none()))  # None: damage a good file instead
    content = mutate(original, data.draw) if content is None else content
    path = tmp_path / f"data{next(UNIQUE)}.bin"
    path.write_bytes(content)
    target = tmp_path / f"model{next(UNIQUE)}"
    assert_promise_kept(invoke("train", "--model", target, "--data", path, "--no-progress",
                               *tiny_flags(**{"--dataset": None, "--dev-size": 5, "--test-size": 5})))
    assert_promise_kept(invoke("evaluate", "--model", target if target.exists() else tmp_path, "--data", path))


# ---------------------------------------------------------------- checkpoints and config files
@fuzz(6)
@given(data=st.data())
def test_damaged_checkpoints_are_refused_and_nothing_is_written(scratch, data):
    scratch = scratch()
    name = data.draw(st.sampled_from([checkpoint.BEST_FILE, checkpoint.LAST_FILE]))
    path = scratch / name
    path.write_bytes(mutate(path.read_bytes(), data.draw))
    before = hashes(scratch)
    assert_promise_kept(invoke("run", "--model", scratch, "--beam", 2, "cien"))
    assert hashes(scratch) == before
    resumed = assert_promise_kept(invoke("train", "--model", scratch, "--resume", "--epochs", 2, "--max-time", 1,
                                         "--no-progress"))
    if resumed.exit_code == 2:
        assert hashes(scratch) == before


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.sampled_from([0, -1, 10**12, 2**63]),
              st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8)),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(st.text(max_size=6), children,
                                                                               max_size=3)),
    max_leaves=6)


def set_somewhere(document, draw, value):
    """Replace one value, at any depth, of a JSON document."""
    node = document
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            return
        key = draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, (dict, list)) and child and draw(st.booleans()):
            node = child
            continue
        node[key] = value
        return


@fuzz(8)
@given(data=st.data())
def test_crafted_config_json(scratch, data):
    scratch = scratch()
    path = scratch / checkpoint.CONFIG_FILE
    if data.draw(st.booleans()):
        document = json.loads(path.read_text(encoding="utf-8"))
        if data.draw(st.booleans()):  # the settings `translate tune` stores
            document["decoding"] = data.draw(st.fixed_dictionaries({"beam": JSON_VALUES, "alpha": JSON_VALUES}))
        else:
            set_somewhere(document, data.draw, data.draw(JSON_VALUES))
        path.write_text(json.dumps(document), encoding="utf-8")
    else:
        path.write_bytes(mutate(path.read_bytes(), data.draw))
    before = hashes(scratch)
    assert_promise_kept(invoke("run", "--model", scratch, "cien"))
    assert_promise_kept(invoke("evaluate", "--model", scratch, "--beam", 1))
    assert hashes(scratch) == before


@fuzz(4)
@given(content=st.binary(max_size=200))
def test_random_vocabulary_and_split_files(scratch, content):
    scratch = scratch()
    for name in (checkpoint.SOURCE_VOCAB_FILE, checkpoint.TEST_FILE):
        (scratch / name).write_bytes(content)
    before = hashes(scratch)
    assert_promise_kept(invoke("run", "--model", scratch, "cien"))
    assert_promise_kept(invoke("evaluate", "--model", scratch, "--beam", 1))
    assert hashes(scratch) == before


@fuzz(4)
@given(content=st.one_of(st.binary(max_size=200), st.text(max_size=100).map(str.encode)))
def test_random_toml_config_files(tmp_path, content):
    config_file = tmp_path / f"options{next(UNIQUE)}.toml"
    config_file.write_bytes(content)
    assert_promise_kept(invoke("train", "--model", tmp_path / f"model{next(UNIQUE)}", "--config",
                               config_file, "--no-progress", *tiny_flags()))


# ---------------------------------------------------------------- option values
HOSTILE = {
    int: st.sampled_from([-1, 0, 1, 2, 7, 64, 10**6, 10**12, 2**63]),
    float: st.sampled_from([-1.0, 0.0, 1e-300, 0.5, 0.999, 1.0, 1.5, 1e308, math.nan, math.inf, -math.inf]),
    str: st.sampled_from(["", "x", "cuda", "cpu", "numbers", "..", "é", "a\tb", "none"]),
}


@fuzz(12)
@given(data=st.data())
def test_random_train_option_values(tmp_path, data):
    name = data.draw(st.sampled_from(sorted(set(FIELDS) - {"data_dir", "dataset"})))  # no downloads
    kind = python_type(FIELDS[name])
    if kind is bool:
        arguments = [data.draw(st.sampled_from([flag_name(name), "--no-" + flag_name(name)[2:]]))]
    else:
        choices = list(FIELDS[name].metadata.get("choices") or ())
        value = data.draw(st.one_of(HOSTILE[kind], *(st.sampled_from(choices),) if choices else ()))
        arguments = [flag_name(name), str(value)]
    target = tmp_path / f"model{next(UNIQUE)}"
    result = assert_promise_kept(invoke("train", "--model", target, "--no-progress", *tiny_flags(), *arguments))
    if result.exit_code == 2:
        assert not (target / checkpoint.CONFIG_FILE).exists()


RUN_OPTIONS = {"--beam": int, "--nbest": int, "--batch-size": int, "--max-tokens": int, "--max-source-length": int,
               "--device": str, "--alpha": float, "--weights": str}


@fuzz(8)
@given(data=st.data())
def test_random_run_and_evaluate_option_values(model, data):
    option = data.draw(st.sampled_from(sorted(RUN_OPTIONS)))
    value = data.draw(HOSTILE[RUN_OPTIONS[option]])
    before = hashes(model)
    assert_promise_kept(invoke("run", "--model", model, option, value, "cien", "", "dos mil"))
    if option != "--nbest":
        assert_promise_kept(invoke("evaluate", "--model", model, option, value))
    assert hashes(model) == before


@fuzz(6)
@given(data=st.data())
def test_random_tune_and_average_option_values(scratch, data):
    scratch = scratch()
    before = hashes(scratch)
    option = data.draw(st.sampled_from(["--beams", "--alphas", "--max-sentences", "--batch-size", "--weights"]))
    if option in ("--beams", "--alphas"):
        value = ",".join(str(number) for number in data.draw(st.lists(st.one_of(HOSTILE[int], HOSTILE[float]),
                                                                            min_size=1, max_size=3)))
    else:
        value = data.draw(HOSTILE[str] if option == "--weights" else HOSTILE[int])
    if option == "--max-sentences" and isinstance(value, int) and value > 0:
        value = min(value, 5)  # tuning on the whole dev split is slow, not wrong
    tuned = assert_promise_kept(invoke("tune", "--model", scratch, "--beams", "1,2", "--alphas", "1",
                                       "--max-sentences", 5, option, value))
    assert_promise_kept(invoke("average", "--model", scratch, "--last", data.draw(HOSTILE[int]), "--output",
                               data.draw(st.sampled_from(["avg.npz", "../up.npz", "best.npz", "last.npz",
                                                          "epoch-001.npz", "x.txt", ""]))))
    after = hashes(scratch)
    changed = {name for name in before if after.get(name) != before[name]}
    assert changed <= ({checkpoint.CONFIG_FILE} if tuned.exit_code == 0 else set()), changed  # tune stores its choice


# ---------------------------------------------------------------- standard input
@fuzz(8)
@given(stdin=st.one_of(st.binary(max_size=300),
                       st.text(st.characters(codec="utf-8"), max_size=200).map(str.encode)))
def test_random_stdin_keeps_one_line_per_line(model, stdin):
    result = assert_promise_kept(invoke("run", "--model", model, "--beam", 1, input=stdin))
    if result.exit_code == 0:
        text = stdin.decode("utf-8").removeprefix("\ufeff")
        lines = text.split("\n")
        expected = len(lines) - (1 if lines[-1] == "" else 0)
        assert result.stdout.count("\n") == expected


def test_huge_stdin_lines_keep_memory_bounded(model):
    """64 lines of 10,000 words (6 GiB before the token budget): a few MiB, and 64 output lines."""
    stdin = ("cien mil " * 5000 + "\n").encode() * 64
    tracemalloc.start()
    try:
        result = invoke("run", "--model", model, "--beam", 1, "--max-source-length", 32, input=stdin)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert_promise_kept(result)
    assert result.exit_code == 0 and result.stdout.count("\n") == 64
    assert peak < 96 << 20, peak
