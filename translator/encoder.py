"""The encoder: source embedding -> dropout -> stacked, optionally bidirectional RNN/GRU/LSTM.

Runs the engine's whole-sequence recurrent layer (``nn.GRU``/``nn.LSTM``/``nn.RNN``, batch first)
with the source lengths, so padded positions neither change a sentence's final state nor
produce outputs (they are zero), and the backward direction starts at each sentence's own end.
"""
from __future__ import annotations

from tinygrad_rnn import Tensor, cat, nn

from translator.model_config import ModelConfig
from translator.vocabulary import PAD

RECURRENT_LAYERS = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}


class Encoder(nn.Module):
    """``Encoder(config, vocab_size)``; ``forward(source, source_lengths) -> (outputs, final)``.

    Parameters: ``embedding.weight (V, E)`` (the PAD row stays zero), ``rnn.*`` as PyTorch names them.
    """

    def __init__(self, config: ModelConfig, vocab_size: int):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(vocab_size, config.embedding_size, padding_idx=PAD)
        self.dropout = nn.Dropout(config.dropout)
        self.rnn = RECURRENT_LAYERS[config.cell](
            config.embedding_size, config.hidden_size, num_layers=config.encoder_layers, batch_first=True,
            bidirectional=config.bidirectional, dropout=config.dropout if config.encoder_layers > 1 else 0.0)

    @property
    def final_size(self) -> int:
        """Width of ``final``: every layer's and direction's last hidden state (and cell state for LSTM)."""
        directions = 2 if self.config.bidirectional else 1
        states = 2 if self.config.cell == "lstm" else 1
        return states * self.config.encoder_layers * directions * self.config.hidden_size

    def forward(self, source, source_lengths) -> tuple[Tensor, Tensor]:
        """Encode a padded batch.

        Args:
            source: (B, S) int64 token ids, PAD-padded on the right.
            source_lengths: (B,) int, each >= 1.
        Returns:
            outputs: (B, S, He) float, He = hidden_size * directions; zero at padded positions.
            final: (B, final_size) the last states of every layer and direction, concatenated
                (layer-major, forward before backward; LSTM: all hidden states, then all cell states).
        """
        embedded = self.dropout(self.embedding(source))
        outputs, last = self.rnn(embedded, lengths=source_lengths)
        # h_n (and c_n) are (layers * directions, B, H), PyTorch's layout.
        states = list(last) if self.config.cell == "lstm" else [last]
        batch = embedded.shape[0]
        flat = [state.permute(1, 0, 2).reshape(batch, -1) for state in states]
        final = flat[0] if len(flat) == 1 else cat(flat, dim=1)
        return outputs, final

