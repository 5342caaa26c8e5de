"""translator.footprint: the parameter count known before building, and the refusal of what cannot fit."""
import itertools

import numpy as np
import pytest

from translator.errors import ConfigError
from translator.footprint import check_fits, format_bytes, parameter_count
from translator.model import Seq2Seq
from translator.model_config import ModelConfig

# Every cell and attention, each with two opposite settings of the rest (24 models, toy sizes).
KINDS = [dict(cell=cell, attention=attention, bidirectional=bidirectional and attention != "dot",
              input_feeding=feeding and attention != "none", tie_embeddings=tie, embedding_size=5 if tie else 6,
              hidden_size=5, encoder_layers=layers, decoder_layers=4 - layers)
         for cell, attention, (bidirectional, feeding, tie, layers) in itertools.product(
             ("gru", "lstm", "rnn"), ("additive", "dot", "general", "none"),
             ((True, True, False, 1), (False, False, True, 2)))]


@pytest.mark.parametrize("options", KINDS, ids=lambda options: "-".join(str(value) for value in options.values()))
def test_parameter_count_is_the_models(options):
    config = ModelConfig(**options)
    model = Seq2Seq(config, 11, 13)
    assert parameter_count(config, 11, 13) == sum(int(np.prod(parameter.shape)) for parameter in model.parameters())


def test_what_cannot_fit_is_refused_naming_the_size():
    config = ModelConfig(embedding_size=4096, hidden_size=4096)
    parameters = parameter_count(config, 30_000, 20_000)
    assert check_fits(config, 30_000, 20_000, training=True, available=16 * parameters) == parameters
    with pytest.raises(ConfigError, match=f"would have {parameters:,} parameters, .* to train .*--hidden-size"):
        check_fits(config, 30_000, 20_000, training=True, available=16 * parameters - 1)
    assert check_fits(config, 30_000, 20_000, training=False, available=8 * parameters) == parameters
    with pytest.raises(ConfigError, match="to load"):
        check_fits(config, 30_000, 20_000, training=False, available=8 * parameters - 1, what="the model in m")


def test_format_bytes():
    assert [format_bytes(n) for n in (512, 1536, 3 << 30, 5 << 50)] == ["512 B", "1.5 KiB", "3.0 GiB", "5.0 PiB"]
