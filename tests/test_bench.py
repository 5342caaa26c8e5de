"""``bench/seq2seq_speed.py`` at toy size: it runs against the translator as it is today, and its
PyTorch twin (``bench/torch_seq2seq.py``) computes what our ``Seq2Seq`` computes.

The benchmark runs in a child process (it sets its BLAS thread count before NumPy loads). The
twin half needs a Python with PyTorch (never a dependency): ``$BENCH_TORCH_PYTHON`` or
``../venv-torch`` beside the repository, else it is skipped. Timings are printed, never asserted.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOY = ["--threads", "1", "--steps", "1", "--batch", "4", "--decode-batch", "4", "--decode-batches", "1",
       "--vocab", "60", "--hidden", "16", "--rounds", "1", "--beam", "3"]


def torch_python():
    for candidate in (os.environ.get("BENCH_TORCH_PYTHON"), str(REPO.parent / "venv-torch" / "bin" / "python")):
        if candidate and Path(candidate).exists() and subprocess.run(
                [candidate, "-c", "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is None)"],
                capture_output=True).returncode == 0:
            return candidate
    return None


def run_bench(*extra):
    environment = dict(os.environ, PYTHONPATH=str(REPO), OPENBLAS_NUM_THREADS="1")
    result = subprocess.run([sys.executable, str(REPO / "bench" / "seq2seq_speed.py"), *TOY, *extra],
                            capture_output=True, text=True, env=environment, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_ours_alone_reports_every_speed():
    output = run_bench("--no-torch")
    for name, unit in (("training", "target tok/s"), ("greedy", "sentences/s"), ("beam 3", "sentences/s")):
        assert re.search(rf"^{name} +ours +\d+ {unit}", output, re.MULTILINE), output
    assert "PyTorch" not in output.split("parameters:")[1]


def test_pytorch_twin_computes_what_ours_computes():
    python = torch_python()
    if python is None:
        pytest.skip("no Python with PyTorch: set BENCH_TORCH_PYTHON or make ../venv-torch")
    output = run_bench("--torch-python", python, "--check-only")
    sizes = re.search(r"parameters: ours ([\d,]+), PyTorch twin ([\d,]+)", output)
    assert sizes and sizes.group(1) == sizes.group(2), output
    check = re.search(r"^check .*\(rel ([\d.e+-]+)\), gradient norm rel ([\d.e+-]+), greedy tokens equal "
                      r"([\d.]+)%, beam tokens equal ([\d.]+)%: (\w+)$", output, re.MULTILINE)
    assert check, output
    assert float(check.group(1)) < 1e-5 and float(check.group(2)) < 1e-4 and check.group(5) == "ok", output
    assert float(check.group(3)) == 100.0 and float(check.group(4)) == 100.0, output
    assert "tok/s" not in output  # --check-only times nothing
