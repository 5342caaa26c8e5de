"""``ModelConfig``: the shape of the network, a frozen dataclass validated in one place.

It is saved inside a model directory's ``config.json`` (see :mod:`translator.inference`) and is
all :class:`translator.model.Seq2Seq` needs besides the two vocabulary sizes.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

CELLS = ("gru", "lstm", "rnn")
ATTENTIONS = ("additive", "dot", "general", "none")


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
    """

    cell: str = "gru"
    embedding_size: int = 256
    hidden_size: int = 256
    encoder_layers: int = 1
    decoder_layers: int = 1
    bidirectional: bool = True
    attention: str = "additive"
    input_feeding: bool = True
    dropout: float = 0.25
    tie_embeddings: bool = False

    @property
    def encoder_output_size(self) -> int:
        """Width He of the encoder's outputs (the attention keys and values)."""
        return self.hidden_size * (2 if self.bidirectional else 1)

    def validate(self) -> "ModelConfig":
        """Raise ValueError (one line: what, which value, what to do) for an impossible config; else self."""
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {self.cell!r}")
        if self.attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {', '.join(ATTENTIONS)}, got {self.attention!r}")
        for name in ("embedding_size", "hidden_size", "encoder_layers", "decoder_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("bidirectional", "input_feeding", "tie_embeddings"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) \
                or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be a number in [0, 1), got {self.dropout!r}")
        if self.input_feeding and self.attention == "none":
            raise ValueError("input_feeding needs attention: turn input feeding off with attention 'none'")
        if self.attention == "dot" and self.encoder_output_size != self.hidden_size:
            raise ValueError(f"attention 'dot' compares the decoder state (hidden_size={self.hidden_size}) with "
                             f"encoder outputs of size {self.encoder_output_size} (bidirectional): use attention "
                             "'general' or 'additive', or a unidirectional encoder")
        if self.tie_embeddings and self.embedding_size != self.hidden_size:
            raise ValueError(f"tie_embeddings needs embedding_size == hidden_size (the output layer projects a "
                             f"{self.hidden_size}-wide vector), got embedding_size={self.embedding_size}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values keyed by field name; the inverse of :meth:`from_dict`."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "ModelConfig":
        """Build and validate a config from :meth:`to_dict` output (missing keys take the defaults).

        Raises:
            ValueError: an unknown key or an impossible value.
        """
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown model option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**values).validate()
