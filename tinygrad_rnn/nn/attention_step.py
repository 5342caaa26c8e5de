"""One decoder attention step as one autograd node: scores, masked softmax, context and the combine layer.

For the decoder's top hidden state ``h (B, H)``, the encoder outputs ``V (B, S, D)`` (keys and
values alike), a padding mask ``m (B, S)`` (True at real positions) and the combine weight
``W_c (O, H + D)``::

    e_s   = score(h, V_s)                                  # (B, S)
    alpha = softmax_s(e) where m, exactly 0 where not m    # (B, S) the attention weights
    c     = sum_s alpha_s V_s                              # (B, D) the context
    a     = tanh(W_c [h; c])                               # (B, O) Luong's attentional vector

with the scores of :mod:`tinygrad_rnn.nn.attention`:

- ``additive`` (Bahdanau): ``E = tanh(W_q h + K)``, ``e_s = v . E_s``, with the key projection
  ``K = W_k V (B, S, A)`` computed once per batch by the caller; ``W_q (A, H)``, ``v (1, A)``;
- ``dot``: ``e_s = h . V_s`` (needs ``H == D``);
- ``general``: ``q = W_q h``, ``e_s = q . V_s``; ``W_q (D, H)``.

The backward pass, for the output gradients ``g_a (B, O)`` and ``g_alpha (B, S)``::

    g_z = g_a * (1 - a^2);   dW_c = g_z^T [h; c];   [g_h; g_c] = g_z W_c
    r_s = g_alpha_s + V_s . g_c                            # the gradient reaching alpha
    g_e = alpha * (r - sum_s alpha_s r_s)                  # softmax backward; 0 at padding
    dV  = alpha g_c^T                                      # plus the score's share:
    additive:  g_E = g_e v * (1 - E^2);  dK = g_E;  dv = sum_{b,s} g_e E;  g_q = sum_s g_E
    dot:       g_h += sum_s g_e V_s;     dV += g_e h
    general:   g_q = sum_s g_e V_s;      dV += g_e q
    (additive, general)   dW_q = g_q^T h;  g_h += g_q W_q

One node per step instead of about twenty: the decoder's per-step engine overhead, not its
arithmetic, dominated a training step. The composed twin is
``attention_layer.attentional(..., fused=False)``: the layer's own forward and the combine layer
from engine ops; ``tests/test_attention_step.py`` holds the two equal in float64.
"""
from __future__ import annotations

from .. import backend
from ..autograd import Function, retaining_graph
from ..tensor import Tensor

SCORES = ("additive", "dot", "general")


class AttentionalStep(Function):
    """``apply(query, values, combine_weight, query_weight, energy_weight, projected_keys, mask=, score=)``.

    Shapes as in the module docstring: ``query (B, H)``, ``values (B, S, D)``, ``combine_weight
    (O, H + D)``; ``query_weight``, ``energy_weight``, ``projected_keys`` are ``None`` where the
    score has none. ``mask``: ``(B, S)`` bool array on the data's device. Returns
    ``attentional (B, O)`` and ``weights (B, S)``.
    """

    def forward(self, query, values, combine_weight, query_weight, energy_weight, projected_keys, mask=None,
                score="additive"):
        xp = backend.get_array_module(query)
        self.score = score
        self.query, self.values = query, values
        self.combine_weight, self.query_weight, self.energy_weight = combine_weight, query_weight, energy_weight
        if score == "additive":
            energy = (query @ query_weight.T)[:, None, :] + projected_keys               # W_q h + K (B, S, A)
            self.energy = xp.tanh(energy, out=energy)                                  # E, kept for backward
            scores = self.energy @ energy_weight[0]                                    # (B, S)
        else:
            self.projected_query = query if score == "dot" else query @ query_weight.T  # (B, D)
            scores = (values @ self.projected_query[:, :, None])[:, :, 0]
        lowest = xp.asarray(backend.numpy.finfo(scores.dtype).min, dtype=scores.dtype)
        zero = xp.zeros((), dtype=scores.dtype)
        scores = xp.where(mask, scores, lowest)
        scores -= scores.max(axis=1, keepdims=True)
        weights = xp.exp(scores, out=scores)
        weights /= weights.sum(axis=1, keepdims=True)
        self.weights = weights = xp.where(mask, weights, zero)  # a row without real positions: all 0
        context = (weights[:, None, :] @ values)[:, 0, :]                                  # (B, D)
        self.joined = xp.concatenate([query, context], axis=1)                             # [h; c] (B, H + D)
        combined = self.joined @ combine_weight.T
        self.attentional = xp.tanh(combined, out=combined)                                 # a (B, O)
        return self.attentional, weights

    def backward(self, grad_attentional, grad_weights):
        xp = backend.get_array_module(self.query)
        query, values, weights = self.query, self.values, self.weights
        hidden = query.shape[1]
        needs = self.needs_input_grad
        grad_query = grad_values = grad_combine = grad_query_weight = grad_energy = grad_keys = None

        grad_joined = None
        reaching_weights = grad_weights  # r (B, S)
        if grad_attentional is not None:
            grad_z = grad_attentional * (1 - self.attentional * self.attentional)           # (B, O)
            if needs[2]:
                grad_combine = grad_z.T @ self.joined
            grad_joined = grad_z @ self.combine_weight                                       # (B, H + D)
            grad_context = grad_joined[:, hidden:]
            from_context = (values @ grad_context[:, :, None])[:, :, 0]                      # V_s . g_c
            reaching_weights = from_context if grad_weights is None else from_context + grad_weights
            if needs[1]:
                grad_values = weights[:, :, None] * grad_context[:, None, :]
        if reaching_weights is None:
            return None, None, None, None, None, None
        grad_scores = weights * (reaching_weights - (weights * reaching_weights).sum(axis=1, keepdims=True))
        grad_query = grad_joined[:, :hidden].copy() if grad_joined is not None else xp.zeros_like(query)

        if self.score == "additive":
            energy = self.energy
            if needs[4]:
                grad_energy = grad_scores.reshape(1, -1) @ energy.reshape(-1, energy.shape[2])
            # E's last use was above: its buffer becomes g_E = g_e v (1 - E^2), the gradient before the tanh
            grad_pre = energy.copy() if retaining_graph() else energy
            xp.multiply(grad_pre, grad_pre, out=grad_pre)
            xp.subtract(1, grad_pre, out=grad_pre)
            grad_pre *= self.energy_weight[0]
            grad_pre *= grad_scores[:, :, None]                                              # (B, S, A)
            if needs[5]:
                grad_keys = grad_pre
            grad_projected = grad_pre.sum(axis=1)                                             # g_q (B, A)
        else:
            grad_projected = (grad_scores[:, None, :] @ values)[:, 0, :]                      # (B, D)
            if needs[1]:
                from_scores = grad_scores[:, :, None] * self.projected_query[:, None, :]
                grad_values = from_scores if grad_values is None else grad_values + from_scores
        if self.score == "dot":
            grad_query += grad_projected
        else:
            if needs[3]:
                grad_query_weight = grad_projected.T @ query
            grad_query += grad_projected @ self.query_weight
        if needs[1] and grad_values is None:
            grad_values = xp.zeros_like(values)
        return (grad_query if needs[0] else None, grad_values, grad_combine, grad_query_weight, grad_energy,
                grad_keys)


def attentional_step(query: Tensor, values: Tensor, combine_weight: Tensor, mask=None, *, score: str,
                     query_weight: Tensor | None = None, energy_weight: Tensor | None = None,
                     projected_keys: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """``(tanh(W_c [query; context]) (B, O), weights (B, S))`` in one fused node (see the module docstring).

    ``mask``: ``(B, S)`` bool (True = real position), a backend array or Tensor, or ``None`` (all real).
    ``score`` ``"additive"`` needs ``query_weight (A, H)``, ``energy_weight (1, A)`` and
    ``projected_keys (B, S, A)``; ``"general"`` needs ``query_weight (D, H)``; ``"dot"`` nothing.
    """
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}, got {score!r}")
    batch, length = values.shape[0], values.shape[1]
    if mask is None:
        mask = backend.xp_for(values.device).ones((batch, length), dtype=bool)
    else:
        if isinstance(mask, Tensor) and mask.device == values.device:
            mask = mask.data  # device data: a decoder makes its mask there once per batch
        else:
            mask = backend.to_device(mask.data if isinstance(mask, Tensor) else
                                     mask if backend.is_array(mask) else backend.numpy.asarray(mask), values.device)
        if tuple(mask.shape) != (batch, length) or mask.dtype.kind != "b":
            raise ValueError(f"mask should be a bool array of shape (batch, source_length) = {(batch, length)}, "
                             f"got {mask.dtype} {tuple(mask.shape)}")
    width = query.shape[1] + values.shape[2]
    if combine_weight.ndim != 2 or combine_weight.shape[1] != width:
        raise ValueError(f"combine_weight should have shape (out_features, {width}) for a query of size "
                         f"{query.shape[1]} and values of size {values.shape[2]}, got {combine_weight.shape}")
    return AttentionalStep.apply(query, values, combine_weight, query_weight, energy_weight, projected_keys,
                                 mask=mask, score=score)


__all__ = ["AttentionalStep", "attentional_step", "SCORES"]
