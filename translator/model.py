"""``Seq2Seq``: encoder, bridge and decoder, with the interface training and search use.

- :meth:`Seq2Seq.encode` runs the encoder once per batch and returns an :class:`EncoderOutput`
  (outputs, padding mask, the decoder's initial state, and the precomputed attention keys);
- :meth:`Seq2Seq.step` is ONE decoder step (previous tokens -> logits), what search calls;
- :meth:`Seq2Seq.forward` is the training pass: the same decoder step for every target position
  (``Decoder.forward_step``), but the output projection is deferred and done once, as one
  ``(B*T, H) @ (H, V)`` matmul, on the stacked pre-output vectors.

Shapes: B batch, S source length, T target length, E embedding size, H hidden size,
He encoder output size (H or 2H), V target vocabulary size.
"""
from __future__ import annotations

import numpy as np

from tinygrad_rnn import Tensor, backend, cat, nn, no_grad, stack

from translator.decoder import Decoder, DecoderState, EncoderOutput
from translator.encoder import Encoder
from translator.model_config import ATTENTIONS, CELLS, ModelConfig
from translator.vocabulary import PAD

__all__ = ["ModelConfig", "Seq2Seq", "Bridge", "EncoderOutput", "DecoderState", "CELLS", "ATTENTIONS"]


class Bridge(nn.Module):
    """``tanh(W [final encoder states] + b)`` split into the decoder's initial state of every layer.

    ``Bridge(in_features, config)``: ``forward(final (B, in_features)) -> (hidden, cell)`` with one
    (B, H) Tensor per decoder layer in ``hidden`` (and in ``cell`` for LSTM; else ``cell`` is None).
    One matmul for all layers: ``W`` is ``(layers * H * (2 if LSTM else 1), in_features)``.
    """

    def __init__(self, in_features: int, config: ModelConfig):
        super().__init__()
        self.layers, self.hidden_size = config.decoder_layers, config.hidden_size
        self.has_cell = config.cell == "lstm"
        pieces = self.layers * (2 if self.has_cell else 1)
        self.linear = nn.Linear(in_features, pieces * self.hidden_size)

    def forward(self, final: Tensor) -> tuple[list[Tensor], list[Tensor] | None]:
        states = list(self.linear(final).tanh().split(self.hidden_size, dim=1))
        if self.has_cell:
            return states[:self.layers], states[self.layers:]
        return states, None


class Seq2Seq(nn.Module):
    """Attentional encoder-decoder: ``Seq2Seq(config, source_vocab_size, target_vocab_size)``.

    Submodules: ``encoder`` (:class:`translator.encoder.Encoder`), ``bridge`` (:class:`Bridge`),
    ``decoder`` (:class:`translator.decoder.Decoder`). Token ids follow
    :mod:`translator.vocabulary` (PAD=0, BOS=1, EOS=2, UNK=3).
    """

    def __init__(self, config: ModelConfig, source_vocab_size: int, target_vocab_size: int):
        super().__init__()
        for name, size in (("source_vocab_size", source_vocab_size), ("target_vocab_size", target_vocab_size)):
            if isinstance(size, bool) or not isinstance(size, int) or size < 5:
                raise ValueError(f"{name} must be an int >= 5 (4 special tokens and a word), got {size!r}")
        self.config = config
        self.source_vocab_size, self.target_vocab_size = source_vocab_size, target_vocab_size
        self.encoder = Encoder(config, source_vocab_size)
        self.bridge = Bridge(self.encoder.final_size, config)
        self.decoder = Decoder(config, target_vocab_size)

    # ------------------------------------------------------------ encoder side
    def encode(self, source, source_lengths) -> EncoderOutput:
        """Encode a padded batch once.

        Args:
            source: (B, S) int64 ids, PAD-padded (Tensor or array).
            source_lengths: (B,) int, each in 1..S.
        Returns:
            an EncoderOutput: ``outputs`` (B, S, He), ``mask`` (B, S) bool Tensor (True = real token),
            ``final`` the decoder's initial DecoderState, ``keys`` the precomputed attention keys.
        """
        source = source.data if isinstance(source, Tensor) else source
        # the recurrent layers want the lengths on the host: read them only if they are device data
        lengths = backend.as_numpy(source_lengths.data) if isinstance(source_lengths, Tensor) else \
            np.asarray(source_lengths)
        outputs, final = self.encoder(source, lengths)
        xp = backend.get_array_module(outputs.data)
        on_device = backend.to_device(lengths, outputs.device)  # the batch's one copy of its lengths
        mask = Tensor._wrap(xp.arange(outputs.shape[1])[None, :] < on_device[:, None])  # made on the device
        hidden, cell = self.bridge(final)
        initial = DecoderState(hidden, cell, self.decoder.initial_attentional(outputs.shape[0], outputs))
        return EncoderOutput(outputs, mask, initial, self.decoder.attention_keys(outputs))

    # ------------------------------------------------------------ one decoder step
    def embed_target(self, tokens) -> Tensor:
        """(*) int target ids -> (*, E) embedded and dropped-out decoder inputs."""
        return self.decoder.dropout(self.decoder.embedding(tokens))

    def step(self, previous_tokens, state: DecoderState, encoder_output: EncoderOutput):
        """One decoder step: what search calls, the same computation training runs per position.

        Args:
            previous_tokens: (B,) int ids of the previous target tokens (BOS first).
            state: the DecoderState after the previous step (``encoder_output.final`` at first).
            encoder_output: from :meth:`encode`, with the same B rows.
        Returns:
            logits: (B, V) Tensor of unnormalised next-token scores.
            new_state: the DecoderState after this step.
            attention: (B, S) backend array of attention weights, or None (``attention="none"``).
        """
        attentional, new_state, weights = self.decoder.forward_step(
            self.embed_target(previous_tokens), state, encoder_output)
        return self.decoder.logits(attentional), new_state, None if weights is None else weights.data

    # ------------------------------------------------------------ training
    def forward(self, source, source_lengths, target_in, teacher_forcing_ratio: float = 1.0) -> Tensor:
        """Training pass: (B, S) source, (B,) lengths, (B, T) ``target_in`` -> logits (B, T, V).

        Reshape the logits to ``(B*T, V)`` for one fused cross-entropy against ``target_out``
        with ``ignore_index=PAD``.
        """
        return self.decoder.logits(self.pre_output(source, source_lengths, target_in, teacher_forcing_ratio))

    def pre_output(self, source, source_lengths, target_in, teacher_forcing_ratio: float = 1.0) -> Tensor:
        """The decoder's pre-output vectors (B, T, H) for every target position (``logits`` of them = forward).

        With ``teacher_forcing_ratio`` < 1 each step after the first feeds, with probability
        ``1 - ratio`` (one draw per step from ``tinygrad_rnn.backend.rng``, so seeding reproduces it),
        the model's own argmax prediction instead of the reference token.
        """
        return stack(self._decode(source, source_lengths, target_in, teacher_forcing_ratio), dim=1)

    def _decode(self, source, source_lengths, target_in, teacher_forcing_ratio: float) -> list[Tensor]:
        """The decoder loop of training: one (B, H) pre-output vector per target position, T of them."""
        if not 0.0 <= teacher_forcing_ratio <= 1.0:
            raise ValueError(f"teacher_forcing_ratio must be in [0, 1], got {teacher_forcing_ratio}")
        target_in = target_in.data if isinstance(target_in, Tensor) else np.asarray(target_in)
        encoder_output = self.encode(source, source_lengths)
        batch, steps = target_in.shape
        state = encoder_output.final
        attentionals = []
        if teacher_forcing_ratio == 1.0:
            # All reference inputs embedded at once, time-major (one gather, one dropout), then cut
            # into the T steps' (B, E) inputs by one split.
            time_major = target_in.T.reshape(-1)  # a copy: (T*B,) ids, step t at rows t*B..(t+1)*B-1
            inputs = self.embed_target(time_major).split(batch, dim=0)
            for t in range(steps):
                attentional, state, _ = self.decoder.forward_step(inputs[t], state, encoder_output)
                attentionals.append(attentional)
            return attentionals
        # The model's own predictions stay on the device; the reference is checked and copied once.
        reference = self.decoder.embedding.weight.device
        target = backend.to_device(self._checked_ids(target_in), reference)
        previous = target[:, 0]
        for t in range(steps):
            if t and backend.rng.random() >= teacher_forcing_ratio:
                with no_grad():
                    predicted = self.decoder.logits(attentionals[-1].detach()).data.argmax(axis=1)
                # Positions whose reference is padding keep PAD (the loss ignores them anyway).
                previous = backend.get_array_module(predicted).where(target[:, t] == PAD, PAD, predicted)
            elif t:
                previous = target[:, t]
            attentional, state, _ = self.decoder.forward_step(self.embed_target(Tensor._wrap(previous)), state,
                                                              encoder_output)
            attentionals.append(attentional)
        return attentionals

    def _checked_ids(self, target_in):
        """Host target ids, range-checked against the target vocabulary before they go to the device."""
        if backend.get_array_module(target_in) is np and target_in.size and (
                (target_in < 0) | (target_in >= self.target_vocab_size)).any():
            raise IndexError(f"target ids span {int(target_in.min())}..{int(target_in.max())} but the target "
                             f"vocabulary has {self.target_vocab_size} tokens (0..{self.target_vocab_size - 1})")
        return target_in

    def loss(self, source, source_lengths, target_in, target_out, *, label_smoothing: float = 0.0,
             teacher_forcing_ratio: float = 1.0, reduction: str = "mean") -> Tensor:
        """Mean token cross-entropy of a batch, equal to ``cross_entropy(forward(...), target_out, ignore_index=PAD)``.

        Faster than that: after the decoder loop, the output projection and the softmax, the most
        expensive part of a training step, run once (``linear_cross_entropy``: one fused node) on the
        non-PAD target positions only (one ``(N, H) @ (H, V)`` product, N = number of target tokens).

        Args:
            source, source_lengths, target_in: as :meth:`forward`.
            target_out: (B, T) int ids to predict (EOS last, PAD-padded), on the host.
            label_smoothing: as ``tinygrad_rnn.nn.functional.cross_entropy``.
            reduction: ``"mean"`` over the N target tokens, or ``"sum"``.
        Returns:
            a 0-d Tensor (on the device: reading it is the caller's choice).
        """
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        target_out = backend.as_numpy(target_out.data) if isinstance(target_out, Tensor) else np.asarray(target_out)
        targets = target_out.T.reshape(-1)  # time-major, as the decoder's outputs are joined below
        rows = np.flatnonzero(targets != PAD)
        if len(rows) == 0:
            raise ValueError("target_out has no tokens (all PAD): nothing to compute a loss on")
        pre_output = cat(self._decode(source, source_lengths, target_in, teacher_forcing_ratio), dim=0)  # (T*B, H)
        picked = pre_output[backend.to_device(rows, pre_output.device)]
        output = self.decoder.output
        return nn.functional.linear_cross_entropy(picked, output.weight, output.bias, targets[rows],
                                                  label_smoothing=label_smoothing, reduction=reduction)

    def logits(self, pre_output: Tensor) -> Tensor:
        """The output layer on pre-output vectors: (*, H) -> (*, V)."""
        return self.decoder.logits(pre_output)

    def extra_repr(self) -> str:
        return f"source_vocab_size={self.source_vocab_size}, target_vocab_size={self.target_vocab_size}"
