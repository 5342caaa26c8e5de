"""The decoder: one Luong-style step with input feeding, shared by training and search.

One step, for the previous target token ``y`` (embedded, ``(B, E)``) and state ``s``::

    x       = [dropout(embed(y)); attentional_prev]      # input feeding (if on)
    h^l     = cell_l(dropout(h^{l-1}) or x, h^l_prev)    # stacked fused cells, l = 1..L
    context, weights = attention(h^L, encoder outputs, mask)
    attentional = dropout(tanh(W_c [h^L; context]))      # the pre-output vector, (B, H)
    logits  = W_out attentional + b_out                  # (B, V), deferred in training

With ``attention="none"`` there is no context and no ``W_c``: the pre-output vector is
``dropout(h^L)`` and the only link to the source is the bridged initial state.

The decoder's state is one :class:`DecoderState` for every cell type (LSTM keeps ``cell``).
"""
from __future__ import annotations

import dataclasses

from tinygrad_rnn import Tensor, backend, cat, nn, zeros

from translator.model_config import ModelConfig
from translator.vocabulary import PAD

RECURRENT_CELLS = {"gru": nn.GRUCell, "lstm": nn.LSTMCell, "rnn": nn.RNNCell}


@dataclasses.dataclass
class DecoderState:
    """The decoder's recurrent state after some step, for a batch of B rows.

    Attributes:
        hidden: one (B, H) Tensor per decoder layer, bottom first.
        cell: one (B, H) Tensor per layer for LSTM; None for GRU/RNN.
        attentional: (B, H) the previous attentional vector (input feeding); None without it.
    """

    hidden: list[Tensor]
    cell: list[Tensor] | None
    attentional: Tensor | None

    def select(self, rows) -> "DecoderState":
        """The state of the given rows (an int array, repeats allowed): beam reordering, dropping finished rows."""
        return self.take(_on_device(rows, self.hidden[0]))

    def take(self, rows) -> "DecoderState":
        """:meth:`select` with ``rows`` already an int array on the state's device (nothing is copied there)."""
        return DecoderState(
            hidden=[h[rows] for h in self.hidden],
            cell=None if self.cell is None else [c[rows] for c in self.cell],
            attentional=None if self.attentional is None else self.attentional[rows])


@dataclasses.dataclass
class EncoderOutput:
    """What the decoder reads from the encoder, for a batch of B sentences.

    Attributes:
        outputs: (B, S, He) encoder outputs: the attention's values (zero at padding).
        mask: (B, S) bool Tensor (no gradient), True at real tokens: made on the device once per batch.
        final: the decoder's initial state (after the bridge).
        keys: (B, S, A) the attention's key projection of ``outputs``, computed once per batch;
            None when the attention has no key projection (``dot``, ``none``).
    """

    outputs: Tensor
    mask: Tensor
    final: DecoderState
    keys: Tensor | None = None

    @property
    def lengths(self):
        """(B,) int source lengths (backend array)."""
        return self.mask.data.sum(axis=1)

    def __len__(self) -> int:
        return self.outputs.shape[0]

    def select(self, rows) -> "EncoderOutput":
        """The rows given by an int array (repeats allowed), e.g. each sentence K times for beam search."""
        return self.take(_on_device(rows, self.outputs))

    def take(self, rows) -> "EncoderOutput":
        """:meth:`select` with ``rows`` already an int array on the outputs' device (nothing is copied there)."""
        return EncoderOutput(self.outputs[rows], Tensor._wrap(self.mask.data[rows]), self.final.take(rows),
                             None if self.keys is None else self.keys[rows])


def _on_device(rows, like: Tensor):
    """Row indices as an int64 array on ``like``'s device (CuPy wants CuPy indices): one copy from the host."""
    if isinstance(rows, Tensor):
        rows = rows.data
    if backend.is_array(rows) and backend.get_array_module(rows) is not backend.numpy:
        return rows.astype("int64", copy=False)  # already on the GPU
    return backend.to_device(backend.numpy.asarray(rows, dtype="int64"), like.device)


class Decoder(nn.Module):
    """``Decoder(config, vocab_size)``: target embedding, stacked cells, attention, output layer.

    Parameters: ``embedding.weight (V, E)``, ``cells.<l>.*`` (PyTorch cell names),
    ``attention.*`` (the engine's attention layer), ``combine.weight (H, H + He)`` (``W_c``, no bias)
    and ``output.weight (V, H)``, ``output.bias (V,)``; with tied embeddings ``output.weight`` *is*
    ``embedding.weight``.
    """

    def __init__(self, config: ModelConfig, vocab_size: int):
        super().__init__()
        self.config = config
        hidden, key_size = config.hidden_size, config.encoder_output_size
        self.embedding = nn.Embedding(vocab_size, config.embedding_size, padding_idx=PAD)
        self.dropout = nn.Dropout(config.dropout)
        first_input = config.embedding_size + (hidden if config.input_feeding else 0)
        self.cells = nn.ModuleList([RECURRENT_CELLS[config.cell](first_input if layer == 0 else hidden, hidden)
                                    for layer in range(config.decoder_layers)])
        self.attention = _make_attention(config.attention, hidden, key_size)
        self.combine = nn.Linear(hidden + key_size, hidden, bias=False) if self.attention is not None else None
        self.output = nn.Linear(hidden, vocab_size)
        if config.tie_embeddings:
            self.output.weight = self.embedding.weight

    # ------------------------------------------------------------ attention keys
    def attention_keys(self, encoder_outputs: Tensor) -> Tensor | None:
        """(B, S, He) -> the attention's key projection (B, S, A), once per batch; None if it has none."""
        if self.config.attention != "additive":
            return None  # dot has no parameters; general projects the query instead of every key
        return self.attention.project_keys(encoder_outputs)

    def initial_attentional(self, batch: int, like: Tensor) -> Tensor | None:
        """The zero attentional vector the first step is fed (None without input feeding)."""
        if not self.config.input_feeding:
            return None
        return zeros(batch, self.config.hidden_size, dtype=like.dtype, device=like.device)

    # ------------------------------------------------------------ one step
    def forward_step(self, embedded: Tensor, state: DecoderState, encoder_output: EncoderOutput):
        """One decoder step up to the pre-output vector.

        Args:
            embedded: (B, E) the embedded (and dropped-out) previous target tokens.
            state: the state after the previous step.
            encoder_output: the batch's encoder output (same B rows).
        Returns:
            attentional: (B, H) the pre-output vector (the output layer's input).
            new_state: the state after this step.
            weights: (B, S) attention weights Tensor, or None without attention.
        """
        x = embedded if state.attentional is None else cat([embedded, state.attentional], dim=1)
        hidden, cells = [], [] if state.cell is not None else None
        for layer, cell in enumerate(self.cells):
            if layer:
                x = self.dropout(x)
            if cells is None:
                x = cell(x, state.hidden[layer])
            else:
                x, c = cell(x, (state.hidden[layer], state.cell[layer]))
                cells.append(c)
            hidden.append(x)
        if self.attention is None:
            return self.dropout(x), DecoderState(hidden, cells, None), None
        # scores, masked softmax, context and tanh(W_c [h; context]): one fused engine node
        attentional, weights = self.attention.attentional(x, encoder_output.outputs, self.combine.weight,
                                                          encoder_output.mask, projected_keys=encoder_output.keys)
        attentional = self.dropout(attentional)
        feed = attentional if self.config.input_feeding else None
        return attentional, DecoderState(hidden, cells, feed), weights

    def logits(self, attentional: Tensor) -> Tensor:
        """Output layer: (*, H) pre-output vectors -> (*, V) unnormalised scores (one fused node)."""
        return nn.functional.linear(attentional, self.output.weight, self.output.bias)


def _make_attention(kind: str, query_size: int, key_size: int):
    if kind == "additive":
        return nn.AdditiveAttention(query_size, key_size, query_size)
    if kind == "dot":
        return nn.DotAttention()
    if kind == "general":
        return nn.GeneralAttention(query_size, key_size)
    return None

