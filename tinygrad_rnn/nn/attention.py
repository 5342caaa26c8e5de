"""Attention for encoder-decoders: additive (Bahdanau) and multiplicative (Luong ``dot``, ``general``).

Every layer takes one decoder step's query and the encoder's keys/values:

- ``query``: ``(B, query_size)``;
- ``keys``: ``(B, S, key_size)``; ``values``: ``(B, S, value_size)``, ``None`` meaning ``keys``;
- ``mask``: ``(B, S)`` bool, True at real positions, False at padding (``None``: all real);

and returns ``context (B, value_size)`` and ``weights (B, S)`` (each row sums to 1).

Padded positions get exactly zero weight: their scores are replaced by the
dtype's most negative finite value before the softmax, whose ``exp`` underflows
to exactly 0. Every row of ``mask`` must have at least one True (a sequence has
at least one real token); a row without any gets all-zero weights and a zero
context rather than NaN, so it is at least inert.
"""
from __future__ import annotations

from .. import backend
from ..tensor import Tensor, cat, device_array, where
from . import functional as F
from .attention_step import attentional_step
from .layers import Linear
from .module import Module


def masked_softmax(scores: Tensor, mask) -> Tensor:
    """Softmax over the last axis of ``scores (B, S)`` where ``mask (B, S)`` is True; exactly 0 elsewhere."""
    if mask is None:
        return F.softmax(scores, dim=-1)
    mask = device_array(mask, scores.device)
    if mask.shape != scores.data.shape:
        raise ValueError(f"mask should have shape (batch, source_length) = {scores.shape}, got {tuple(mask.shape)}")
    if mask.dtype.kind != "b":
        raise TypeError(f"mask must be boolean (True = real position), got dtype {mask.dtype}")
    lowest = backend.numpy.finfo(scores.dtype).min
    weights = F.softmax(where(mask, scores, lowest), dim=-1)
    # Only a row with no real position keeps non-zero weight on padding; zero it (see the module docstring).
    return where(mask, weights, 0.0)


def attend(scores: Tensor, values: Tensor, mask):
    """Masked softmax of ``scores (B, S)``, then the weighted sum of ``values (B, S, V)``: ``(context, weights)``."""
    weights = masked_softmax(scores, mask)
    context = (weights.unsqueeze(1) @ values).squeeze(1)
    return context, weights


def _check(query: Tensor, keys: Tensor, query_size: int | None, key_size: int | None, name: str):
    if query.ndim != 2 or keys.ndim != 3 or keys.shape[0] != query.shape[0]:
        raise ValueError(f"{name} expects query (batch, query_size) and keys (batch, source_length, key_size) "
                         f"with the same batch, got query {query.shape} and keys {keys.shape}")
    if query_size is not None and query.shape[1] != query_size:
        raise ValueError(f"{name}: query has size {query.shape[1]}, expected query_size={query_size}")
    if key_size is not None and keys.shape[2] != key_size:
        raise ValueError(f"{name}: keys have size {keys.shape[2]}, expected key_size={key_size}")


class _Attention(Module):
    """What the three layers share: Luong's attentional vector, fused or composed."""

    score = ""

    def attentional(self, query: Tensor, values: Tensor, combine_weight: Tensor, mask=None,
                    projected_keys: Tensor | None = None, fused: bool = True) -> tuple[Tensor, Tensor]:
        """One decoder step's ``tanh(W_c [query; context])`` and attention weights, keys = ``values``.

        ``query (B, query_size)``, ``values (B, S, key_size)``, ``combine_weight (O, query_size + key_size)``
        (``W_c``, no bias), ``mask (B, S)``; ``projected_keys`` as for ``forward``.
        Returns ``attentional (B, O)`` and ``weights (B, S)``.

        ``fused=True`` runs one autograd node (:mod:`tinygrad_rnn.nn.attention_step`);
        ``fused=False`` this layer's ``forward`` and the combine layer from engine ops, its twin.
        """
        sizes = (None, query.shape[-1]) if self.score == "dot" else (self.query_size, self.key_size)
        _check(query, values, *sizes, type(self).__name__)
        if not fused:
            extra = {} if self.score != "additive" else {"projected_keys": projected_keys}
            context, weights = self(query, values, mask=mask, **extra)
            return (cat([query, context], dim=1) @ combine_weight.T).tanh(), weights
        if self.score == "additive":
            keys = self.project_keys(values) if projected_keys is None else projected_keys
            return attentional_step(query, values, combine_weight, mask, score="additive",
                                    query_weight=self.query_layer.weight, energy_weight=self.energy_layer.weight,
                                    projected_keys=keys)
        weight = self.query_layer.weight if self.score == "general" else None
        return attentional_step(query, values, combine_weight, mask, score=self.score, query_weight=weight)


class AdditiveAttention(_Attention):
    """Bahdanau attention: ``score(q, k_s) = v^T tanh(W_q q + W_k k_s)``.

    ``AdditiveAttention(query_size, key_size, hidden_size)``; parameters
    ``query_layer.weight (hidden_size, query_size)``, ``key_layer.weight
    (hidden_size, key_size)``, ``energy_layer.weight (1, hidden_size)`` (no biases).

    A decoder reuses the same keys at every step: compute ``project_keys(keys)``
    once and pass it as ``projected_keys`` to each ``forward`` call.
    """

    score = "additive"

    def __init__(self, query_size: int, key_size: int, hidden_size: int):
        super().__init__()
        self.query_size, self.key_size, self.hidden_size = query_size, key_size, hidden_size
        self.query_layer = Linear(query_size, hidden_size, bias=False)
        self.key_layer = Linear(key_size, hidden_size, bias=False)
        self.energy_layer = Linear(hidden_size, 1, bias=False)

    def project_keys(self, keys: Tensor) -> Tensor:
        """``W_k k`` for every position: ``keys (B, S, key_size)`` -> ``(B, S, hidden_size)``."""
        return self.key_layer(keys)

    def forward(self, query: Tensor, keys: Tensor, values: Tensor | None = None, mask=None,
                projected_keys: Tensor | None = None):
        """``-> context (B, value_size), weights (B, S)``; ``projected_keys`` from :meth:`project_keys` if given."""
        _check(query, keys, self.query_size, self.key_size, type(self).__name__)
        if projected_keys is None:
            projected_keys = self.project_keys(keys)
        energy = (self.query_layer(query).unsqueeze(1) + projected_keys).tanh()  # (B, S, hidden)
        scores = self.energy_layer(energy).squeeze(2)
        return attend(scores, keys if values is None else values, mask)

    def extra_repr(self) -> str:
        return f"query_size={self.query_size}, key_size={self.key_size}, hidden_size={self.hidden_size}"


class DotAttention(_Attention):
    """Luong ``dot`` attention: ``score(q, k_s) = q . k_s`` (``query_size`` must equal ``key_size``). No parameters."""

    score = "dot"

    def forward(self, query: Tensor, keys: Tensor, values: Tensor | None = None, mask=None):
        """``-> context (B, value_size), weights (B, S)``."""
        _check(query, keys, None, query.shape[-1], type(self).__name__)
        scores = (keys @ query.unsqueeze(2)).squeeze(2)
        return attend(scores, keys if values is None else values, mask)


class GeneralAttention(_Attention):
    """Luong ``general`` attention: ``score(q, k_s) = q^T W k_s``.

    ``GeneralAttention(query_size, key_size)``; parameter ``weight (query_size, key_size)``
    held as ``query_layer.weight`` of shape ``(key_size, query_size)`` (``= W^T``): the query is
    projected once (``W^T q``) instead of projecting all ``S`` keys.
    """

    score = "general"

    def __init__(self, query_size: int, key_size: int):
        super().__init__()
        self.query_size, self.key_size = query_size, key_size
        self.query_layer = Linear(query_size, key_size, bias=False)

    def forward(self, query: Tensor, keys: Tensor, values: Tensor | None = None, mask=None):
        """``-> context (B, value_size), weights (B, S)``."""
        _check(query, keys, self.query_size, self.key_size, type(self).__name__)
        scores = (keys @ self.query_layer(query).unsqueeze(2)).squeeze(2)
        return attend(scores, keys if values is None else values, mask)

    def extra_repr(self) -> str:
        return f"query_size={self.query_size}, key_size={self.key_size}"


__all__ = ["AdditiveAttention", "DotAttention", "GeneralAttention", "masked_softmax"]
