"""``ModelConfig``: the shape of the network, the one declaration and the one check of the model options.

Its fields are :mod:`translator.options` fields: ``translate train`` offers them as flags (they are
the model group of :class:`translator.config.TrainConfig`, which inherits them), and they are saved
in a model directory's ``config.json`` (:mod:`translator.checkpoint`). :meth:`ModelConfig.validate`
runs when a config is built, so a ModelConfig that exists is valid; it is all
:class:`translator.model.Seq2Seq` needs besides the two vocabulary sizes.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from translator.errors import ConfigError
from translator.options import Spell, check_types, option, require

CELLS = ("gru", "lstm", "rnn")  # the names; translator.encoder/decoder map them to the engine's layers
ATTENTIONS = ("additive", "dot", "general", "none")
# Upper bounds, so a typo or a crafted config.json is refused at once rather than built for minutes;
# far beyond any translator (GNMT: 8 layers of 1024). Whether a model fits in memory is checked
# separately, from these sizes and the vocabularies (translator.footprint).
MAX_WIDTH = 1 << 16
MAX_LAYERS = 64


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Sizes and choices of the encoder-decoder.

    Attributes:
        cell: recurrent cell of encoder and decoder: ``"gru"``, ``"lstm"`` or ``"rnn"`` (tanh).
        embedding_size: word embedding size E of source and target.
        hidden_size: recurrent state size H (per direction in the encoder; the decoder's size).
        encoder_layers, decoder_layers: stacked recurrent layers.
        bidirectional: bidirectional encoder (its outputs are then ``2 * hidden_size`` wide).
        attention: ``"additive"`` (Bahdanau), ``"dot"`` / ``"general"`` (Luong) or ``"none"``
            (the plain encoder-decoder: the bridged final encoder state is the only link).
        input_feeding: feed the previous attentional vector into the decoder's first layer (Luong);
            needs attention.
        dropout: probability, on embeddings, between stacked layers and on the attentional vector.
        tie_embeddings: the output projection reuses the target embedding matrix
            (needs ``embedding_size == hidden_size``, the width of the vector it projects).
    Raises:
        ConfigError (a ValueError): an impossible value or combination, on construction.
    """

    cell: str = option("gru", "recurrent cell of encoder and decoder", "model", choices=CELLS)
    embedding_size: int = option(256, "word embedding size", "model")
    hidden_size: int = option(256, "recurrent state size (per direction)", "model")
    encoder_layers: int = option(1, "stacked encoder layers", "model")
    decoder_layers: int = option(1, "stacked decoder layers", "model")
    bidirectional: bool = option(True, "bidirectional encoder", "model")
    attention: str = option("additive", "attention over encoder outputs: additive (Bahdanau), dot or general "
                            "(Luong), none (plain encoder-decoder)", "model", choices=ATTENTIONS)
    input_feeding: bool = option(True, "feed the previous attentional vector into the decoder (needs attention)",
                                 "model")
    dropout: float = option(0.2, "dropout probability", "model")
    tie_embeddings: bool = option(False, "share the target embedding with the output projection", "model")

    def __post_init__(self) -> None:
        self.validate()

    @property
    def encoder_output_size(self) -> int:
        """Width He of the encoder's outputs (the attention keys and values)."""
        return self.hidden_size * (2 if self.bidirectional else 1)

    def validate(self, spell: Spell = str) -> "ModelConfig":
        """Raise ConfigError (one line: what, which value, what to do) for an impossible config; else self.

        ``spell`` names an option in the message (:mod:`translator.options`): the field name here,
        the flag when :class:`translator.config.TrainConfig` checks its model group.
        """
        check_types(self, dataclasses.fields(ModelConfig), spell)
        for name in ("embedding_size", "hidden_size"):
            require(1 <= getattr(self, name) <= MAX_WIDTH, name, getattr(self, name), f"an integer in 1..{MAX_WIDTH}",
                    spell)
        for name in ("encoder_layers", "decoder_layers"):
            require(1 <= getattr(self, name) <= MAX_LAYERS, name, getattr(self, name),
                    f"an integer in 1..{MAX_LAYERS}", spell)
        require(0.0 <= self.dropout < 1.0, "dropout", self.dropout, "a number in [0, 1)", spell)
        if self.input_feeding and self.attention == "none":
            raise ConfigError(f"{spell('input_feeding')} needs attention: turn it off to use {spell('attention')} "
                              "'none'")
        if self.attention == "dot" and self.encoder_output_size != self.hidden_size:
            raise ConfigError(f"{spell('attention')} 'dot' compares the decoder state ({spell('hidden_size')}="
                              f"{self.hidden_size}) with encoder outputs of size {self.encoder_output_size} "
                              f"(bidirectional): use {spell('attention')} 'general' or 'additive', or a "
                              "unidirectional encoder")
        if self.tie_embeddings and self.embedding_size != self.hidden_size:
            raise ConfigError(f"{spell('tie_embeddings')} needs {spell('embedding_size')} == {spell('hidden_size')} "
                              f"(the output layer projects a {self.hidden_size}-wide vector), got "
                              f"{spell('embedding_size')}={self.embedding_size}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values keyed by field name; the inverse of :meth:`from_dict`."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "ModelConfig":
        """Build (and so validate) a config from :meth:`to_dict` output (missing keys take the defaults).

        Raises:
            ValueError: an unknown key or an impossible value (ConfigError).
        """
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown model option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**values)
