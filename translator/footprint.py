"""How much memory a model will take, known before a single weight is allocated.

``translate train`` and ``translate run`` build a :class:`translator.model.Seq2Seq` from a
:class:`ModelConfig` and two vocabulary sizes, from flags or from a model directory's
``config.json``; both come from the user. :func:`parameter_count` gives the exact number of weights
from those alone, and :func:`check_fits` refuses, with the size in the message, a model that the
machine's memory cannot hold, instead of a MemoryError (or an allocation that swaps for minutes)
half-way through building it.

Bytes per parameter (float32): 4 for the weights; training adds the gradient and Adam's two moment
estimates (16 in all); loading a checkpoint holds the file's copy beside the model's (8).
"""
from __future__ import annotations

import os

from translator.errors import ConfigError
from translator.model_config import ModelConfig

INFERENCE_BYTES_PER_PARAMETER = 8
TRAINING_BYTES_PER_PARAMETER = 16
_GATES = {"gru": 3, "lstm": 4, "rnn": 1}


def _recurrent_layer(cell: str, input_size: int, hidden_size: int) -> int:
    """Weights of one direction of one layer: ``W_ih (g*H, I)``, ``W_hh (g*H, H)`` and two ``(g*H,)`` biases."""
    gates = _GATES[cell] * hidden_size
    return gates * (input_size + hidden_size) + 2 * gates


def parameter_count(config: ModelConfig, source_vocab_size: int, target_vocab_size: int) -> int:
    """The number of weights of ``Seq2Seq(config, source_vocab_size, target_vocab_size)`` (tied ones once).

    It mirrors the modules' shapes (:mod:`translator.encoder`, :mod:`translator.decoder`, the
    bridge in :mod:`translator.model`); a test checks it against real models of every kind.
    """
    embedding, hidden, cell = config.embedding_size, config.hidden_size, config.cell
    directions = 2 if config.bidirectional else 1
    encoder = source_vocab_size * embedding + sum(
        directions * _recurrent_layer(cell, embedding if layer == 0 else directions * hidden, hidden)
        for layer in range(config.encoder_layers))
    states = 2 if cell == "lstm" else 1
    final_size = states * config.encoder_layers * directions * hidden
    bridge_out = states * config.decoder_layers * hidden
    bridge = final_size * bridge_out + bridge_out
    key_size = config.encoder_output_size
    first_input = embedding + (hidden if config.input_feeding else 0)
    decoder = target_vocab_size * embedding + sum(
        _recurrent_layer(cell, first_input if layer == 0 else hidden, hidden) for layer in range(config.decoder_layers))
    decoder += {"additive": hidden * hidden + key_size * hidden + hidden, "dot": 0,
                "general": hidden * key_size, "none": 0}[config.attention]
    if config.attention != "none":
        decoder += (hidden + key_size) * hidden  # combine
    decoder += target_vocab_size * (0 if config.tie_embeddings else hidden) + target_vocab_size  # output
    return encoder + bridge + decoder


def available_memory() -> int | None:
    """Bytes this process may still allocate: MemAvailable of /proc/meminfo, else physical memory; None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def format_bytes(count: float) -> str:
    """``1.5 GiB``, ``320 MiB``, ..."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if count < 1024 or unit == "PiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def check_fits(config: ModelConfig, source_vocab_size: int, target_vocab_size: int, *, training: bool,
               what: str = "the model", available: int | None = None) -> int:
    """Refuse a model the machine cannot hold; else its parameter count.

    Args:
        config, source_vocab_size, target_vocab_size: what ``Seq2Seq`` would be built from.
        training: count the gradient and Adam's moments too.
        what: names the model in the message (e.g. the config file it was read from).
        available: bytes available (default: :func:`available_memory`; no check if unknown).
    Raises:
        ConfigError: naming the parameter count and the memory needed and available.
    """
    parameters = parameter_count(config, source_vocab_size, target_vocab_size)
    per_parameter = TRAINING_BYTES_PER_PARAMETER if training else INFERENCE_BYTES_PER_PARAMETER
    needed = parameters * per_parameter
    available = available_memory() if available is None else available
    if available is not None and needed > available:
        purpose = "to train (weights, gradients, Adam state)" if training else "to load"
        raise ConfigError(f"{what} would have {parameters:,} parameters, {format_bytes(needed)} {purpose}, but this "
                          f"machine has {format_bytes(available)} available; lower --embedding-size, --hidden-size, "
                          "the layer counts or the vocabulary (--min-freq, --max-vocab-size)")
    return parameters
