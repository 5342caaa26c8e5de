"""``translate`` with the engine's default dtype float64: run by tests/test_parallel.py under ``mpiexec``.

In float64, N ranks and one rank must end training with weights equal to ~1e-12 (relative); in
float32 Adam turns the summation-order noise of the gradients into ~1e-5 (relative to the largest
weight), which would hide a real error of that size.
"""
import sys

import tinygrad_rnn as tg

tg.set_default_dtype("float64")

from translator.cli import main  # noqa: E402 - after the dtype is set

sys.argv[0] = "translate"
main()
