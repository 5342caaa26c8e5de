"""Checkpoint averaging: the mean of the weights of the last K epochs (fairseq's
``scripts/average_checkpoints.py --num-epoch-checkpoints K``).

Training keeps the weights of its last ``--keep-epochs K`` epochs as ``epoch-NNN.npz`` in the model
directory (:meth:`translator.checkpoint.ModelDirectory.save_epoch`). ``translate average --last K``
averages them, parameter by parameter (in float64, stored in each parameter's own dtype), into
``averaged.npz``, a file in ``best.npz``'s format: ``translate run``/``evaluate --weights averaged.npz``
use it. ``best.npz`` is never touched (``--output`` refuses the names of training's own files:
``best.npz``, ``last.npz``, ``epoch-NNN.npz``), so an average that scores worse on dev costs nothing;
copy it over ``best.npz`` to make it the default once it has proved better.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from translator import checkpoint
from translator.errors import CheckpointError

AVERAGED_FILE = checkpoint.AVERAGED_FILE


def _array(value) -> np.ndarray:
    return np.asarray(getattr(value, "data", value))


def average_states(states: Sequence[dict[str, object]]) -> dict[str, np.ndarray]:
    """The parameter-wise mean of model state dicts with the same names and shapes.

    Args:
        states: K >= 1 ``{name: tensor or array}`` mappings.
    Returns:
        ``{name: array}``, each the mean over the K states, in the first state's dtype.
    Raises:
        ValueError: no states, or states whose names or shapes differ.

    The mean is taken as ``first + sum(state - first) / K`` in float64: K identical states average to
    exactly themselves in every dtype (a plain ``sum / K`` rounds float64 weights for K = 3, 5, ...),
    and the differences of nearby checkpoints lose nothing.
    """
    if not states:
        raise ValueError("nothing to average: no checkpoints given")
    first = {name: _array(value) for name, value in states[0].items()}
    origins = {name: value.astype(np.float64) for name, value in first.items()}
    totals = {name: np.zeros(value.shape, np.float64) for name, value in first.items()}
    for index, state in enumerate(states[1:], start=1):
        if set(state) != set(first):
            raise ValueError(f"checkpoint {index} has other parameters than checkpoint 0 "
                             f"({sorted(set(state) ^ set(first))[:3]} ...)")
        for name, value in state.items():
            value = _array(value)
            if value.shape != first[name].shape:
                raise ValueError(f"parameter {name} has shape {value.shape} in checkpoint {index} but "
                                 f"{first[name].shape} in checkpoint 0")
            totals[name] += value - origins[name]
    return {name: (origins[name] + total / len(states)).astype(first[name].dtype) for name, total in totals.items()}


def epoch_checkpoints(model_dir: str | os.PathLike) -> list[Path]:
    """The ``epoch-NNN.npz`` files of ``model_dir``, oldest first."""
    return sorted(Path(model_dir).glob(checkpoint.EPOCH_PATTERN))


def check_output_name(output: str) -> None:
    """Refuse an ``--output`` that is not a plain ``.npz`` file name, or that names one of training's files.

    ``best.npz`` (what ``run`` loads), ``last.npz`` (what ``--resume`` continues) and the kept
    ``epoch-NNN.npz`` (what is averaged) are never replaced; the names are compared ignoring case,
    as a case-insensitive file system would.

    Raises:
        CheckpointError: saying which name to use instead.
    """
    if Path(output).name != output or not output.endswith(".npz"):
        raise CheckpointError(f"--output must be a .npz file name inside the model directory (such as the default "
                              f"{AVERAGED_FILE}), got {output!r}")
    name = output.lower()
    if name == checkpoint.BEST_FILE:
        raise CheckpointError(f"--output {output} would replace the weights training chose ({checkpoint.BEST_FILE}): "
                              f"write the average to another file (default {AVERAGED_FILE}), compare their dev BLEU, "
                              f"and copy it over {checkpoint.BEST_FILE} yourself if it is better")
    if name == checkpoint.LAST_FILE or re.fullmatch(r"epoch-[0-9]+\.npz", name):
        what = "the checkpoint --resume continues" if name == checkpoint.LAST_FILE else "a kept epoch checkpoint"
        raise CheckpointError(f"--output {output} would replace {what}: choose another file name "
                              f"(default {AVERAGED_FILE})")


def average_last(model_dir: str | os.PathLike, last: int, output: str = AVERAGED_FILE) -> tuple[Path, list[int]]:
    """Average the last ``last`` epoch checkpoints of ``model_dir`` into ``model_dir/output`` (atomically).

    Returns:
        ``(path written, the epochs averaged)``.
    Raises:
        CheckpointError: an ``output`` :func:`check_output_name` refuses, fewer than ``last`` epoch
            checkpoints, or ones that do not fit together.
    """
    check_output_name(output)
    model_dir = Path(model_dir)
    checkpoint.read_config(model_dir)  # a model directory, of this version
    if last < 1:
        raise CheckpointError(f"--last must be >= 1, got {last}")
    paths = epoch_checkpoints(model_dir)
    if len(paths) < last:
        raise CheckpointError(f"{model_dir} holds {len(paths)} epoch checkpoint(s), --last {last} needs {last}; "
                              "train with --keep-epochs K (K >= --last) to keep them")
    states = [checkpoint.load_checkpoint(path) for path in paths[-last:]]
    try:
        averaged = average_states([state["model"] for state in states])
    except ValueError as error:
        raise CheckpointError(f"the epoch checkpoints in {model_dir} do not fit together ({error})") from None
    epochs = [int(state.get("epoch", -1)) for state in states]
    target = model_dir / output
    checkpoint.save_checkpoint(target, {"kind": "average", "model": averaged, "epochs": epochs})
    return target, epochs
