"""Batched greedy and beam search over :meth:`translator.model.Seq2Seq.step`.

Both run under ``no_grad`` on an :class:`~translator.decoder.EncoderOutput` of B sentences and
return :class:`Hypothesis` objects. Sentences that finish leave the batch (their rows are dropped),
so a batch costs what its longest sentence costs, not B times the longest.

Length limit: sentence ``b`` may produce at most ``max_length_ratio * source_length_b +
max_length_offset`` tokens (EOS included), further capped by ``max_length`` if given; a hypothesis
cut there has ``finished=False``.

Search never produces PAD or BOS. Scores: ``log_prob`` is the sum of the model's log-probabilities
of the generated tokens (the EOS included when finished); ``score = log_prob / lp(length)`` with
the GNMT length penalty ``lp(n) = ((5 + n) / 6) ** alpha`` (Wu et al. 2016), ``n`` the number of
generated tokens (EOS included). ``alpha = 0`` ranks by raw log-probability (which favours short
outputs); ``alpha = 1`` is close to dividing by the length.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from tinygrad_rnn import Tensor, backend, no_grad
from tinygrad_rnn.nn.functional import CPU_ROW_BLOCK  # the loss's cache-sized row block, also used here

from translator.vocabulary import BOS, EOS, PAD

DEFAULT_MAX_LENGTH_RATIO = 2.0
DEFAULT_MAX_LENGTH_OFFSET = 10
DEFAULT_LENGTH_PENALTY = 1.0
# How often (in steps) search asks the device which rows are done, to drop them from the batch. On
# a GPU a question makes the host wait for the device, while rows that are done but still in the
# batch cost next to nothing; on the CPU it is the other way round (a trained model's dev set
# decoded with checks every 4 steps ran 26% more decoder rows than with a check every step).
FINISHED_CHECK_EVERY = {"cpu": 1, "cuda": 4}


@dataclasses.dataclass
class Hypothesis:
    """One output sentence of a search.

    Attributes:
        tokens: generated target ids, without BOS and without the final EOS.
        log_prob: sum of the log-probabilities of ``tokens`` (and of EOS when ``finished``).
        score: ``log_prob / lp(length)``, what the search ranks by (see the module docstring).
        attention: (len(tokens), S) float32 NumPy array, row i the attention when token i was chosen
            (S = that sentence's source length); None for a model without attention.
        finished: True when the hypothesis ended with EOS, False when the length limit cut it.
    """

    tokens: list[int]
    log_prob: float
    score: float
    attention: np.ndarray | None
    finished: bool

    @property
    def length(self) -> int:
        """Generated tokens, EOS included: the ``n`` of the length penalty."""
        return len(self.tokens) + int(self.finished)


def length_penalty(length, alpha: float):
    """GNMT length penalty ``((5 + length) / 6) ** alpha`` (1 when ``alpha == 0``); works on arrays."""
    return ((5.0 + np.asarray(length, dtype=np.float64)) / 6.0) ** alpha


def max_lengths(source_lengths, max_length: int | None = None, ratio: float = DEFAULT_MAX_LENGTH_RATIO,
                offset: int = DEFAULT_MAX_LENGTH_OFFSET) -> np.ndarray:
    """(B,) int64 per-sentence limit ``floor(ratio * source_length + offset)``, capped by ``max_length``, >= 1."""
    lengths = np.asarray(source_lengths) if backend.get_array_module(source_lengths) is np else \
        backend.as_numpy(source_lengths)
    limits = np.floor(ratio * lengths.astype(np.float64) + offset).astype(np.int64)
    if max_length is not None:
        limits = np.minimum(limits, max_length)
    return np.maximum(limits, 1)




def _next_token_scores(logits):
    """Float32 logits (N, V), on their device, with PAD and BOS made impossible, and the log normalisers (N,).

    ``log p(token) = logits[token] - log_z``: the search ranks tokens by their logits and
    computes log-probabilities only for the few it keeps. PAD and BOS get -inf without
    renormalising, so ``log_prob`` stays the model's own score. Modifies ``logits`` in place.
    """
    xp = backend.get_array_module(logits)
    if xp is np:
        log_z = np.empty(logits.shape[0], dtype=logits.dtype)
        scratch = np.empty((min(CPU_ROW_BLOCK, logits.shape[0]), logits.shape[1]), dtype=logits.dtype)
        for start in range(0, logits.shape[0], CPU_ROW_BLOCK):
            block = logits[start:start + CPU_ROW_BLOCK]
            log_z[start:start + CPU_ROW_BLOCK] = _log_normalisers(block, scratch[:block.shape[0]])
    else:
        top = logits.max(axis=1, keepdims=True)
        shifted = logits - top
        log_z = (xp.log(xp.exp(shifted, out=shifted).sum(axis=1, keepdims=True)) + top)[:, 0]
    logits[:, PAD] = logits[:, BOS] = -xp.inf  # two scalar indices: a list would be copied to a GPU
    return logits, log_z


def _log_normalisers(logits: np.ndarray, out: np.ndarray) -> np.ndarray:
    """(R,) ``log(sum(exp(logits - top))) + top`` of each row of NumPy ``logits (R, V)``; ``out (R, V)`` is scratch.

    The same arithmetic, element for element, as the whole-array expression of
    :func:`_next_token_scores`, so the same bits.
    """
    top = logits.max(axis=1, keepdims=True)
    np.subtract(logits, top, out=out)
    return (np.log(np.exp(out, out=out).sum(axis=1, keepdims=True)) + top)[:, 0]


def _greedy_choice(logits):
    """The best token of each row of float32 logits (N, V) other than PAD and BOS, and its log-probability.

    Returns ``best (N,)`` int64 and ``log p(best) (N,)`` (float32), on the logits' device; the
    same as ``argmax`` and ``logits[best] - log_z`` of :func:`_next_token_scores`. Overwrites
    ``logits``. On the CPU it goes over blocks of ``CPU_ROW_BLOCK`` rows, and each block is its
    own scratch: the special columns are set aside while ``argmax`` skips them, put back, and
    the block then becomes its ``exp``.
    """
    xp = backend.get_array_module(logits)
    if xp is not np:
        masked, log_z = _next_token_scores(logits)
        best = masked.argmax(axis=1)
        return best, xp.take_along_axis(masked, best[:, None], axis=1)[:, 0] - log_z
    rows = logits.shape[0]
    best = np.empty(rows, dtype=np.int64)
    best_logit, log_z = np.empty(rows, dtype=logits.dtype), np.empty(rows, dtype=logits.dtype)
    for start in range(0, rows, CPU_ROW_BLOCK):
        block = logits[start:start + CPU_ROW_BLOCK]
        chosen = best[start:start + CPU_ROW_BLOCK]
        special = block[:, (PAD, BOS)]  # a copy
        block[:, PAD] = block[:, BOS] = -np.inf
        block.argmax(axis=1, out=chosen)
        best_logit[start:start + CPU_ROW_BLOCK] = block[np.arange(block.shape[0]), chosen]
        block[:, (PAD, BOS)] = special
        log_z[start:start + CPU_ROW_BLOCK] = _log_normalisers(block, block)
    best_logit -= log_z
    return best, best_logit


def top_k(values, k: int, block: int = 64):
    """Column indices of the ``k`` largest entries of each row of ``values (R, V)``, best first.

    Ties are broken by the lower index (as ``argmax``). On the device of ``values``: NumPy data
    by :func:`_top_k_by_blocks`, GPU data by :func:`_top_k_by_keys` (the first needs shapes that
    depend on the data, which a GPU would have to report to the host).
    """
    if backend.get_array_module(values) is np:
        return _top_k_by_blocks(values, k, block)
    return _top_k_by_keys(values, k)


def _top_k_by_keys(values, k: int):
    """:func:`top_k` with fixed shapes: a distinct int64 key per entry, larger for a larger value, then a lower index.

    For float32 the key is the value's bits made monotonic (negative floats' magnitude bits
    flipped) times 2^32 plus ``2^32 - 1 - column``; ``argpartition`` then finds exactly the k
    largest keys. Other dtypes take a stable sort of the whole row.
    """
    xp = backend.get_array_module(values)
    rows, width = values.shape
    k = min(k, width)
    if values.dtype != np.float32:
        return xp.argsort(-values, axis=1, kind="stable")[:, :k]
    bits = (values + np.float32(0)).view(np.int32).astype(np.int64)  # + 0 makes -0.0 into 0.0: equal keys
    monotonic = xp.where(bits < 0, bits ^ 0x7FFFFFFF, bits)
    keys = monotonic * (1 << 32) + ((1 << 32) - 1 - xp.arange(width, dtype=np.int64))
    candidates = xp.argpartition(keys, width - k, axis=1)[:, width - k:] if k < width else \
        xp.broadcast_to(xp.arange(width), (rows, width))
    order = xp.argsort(-xp.take_along_axis(keys, candidates, axis=1), axis=1)
    return xp.take_along_axis(candidates, order, axis=1)


def _top_k_by_blocks(values: np.ndarray, k: int, block: int = 64) -> np.ndarray:
    """:func:`top_k` for NumPy data, cheaper than a per-row selection.

    With ``t`` the k-th largest of the row's block maxima (blocks of ``block`` columns), every
    one of the k largest entries is ``>= t`` and lies in a block whose maximum is ``>= t``; only
    those blocks (about k per row) are gathered and sorted.
    """
    rows, width = values.shape
    k = min(k, width)
    block_max = np.maximum.reduceat(values, np.arange(0, width, block), axis=1)
    blocks = block_max.shape[1]
    if k >= blocks:
        threshold = np.full(rows, -np.inf, dtype=values.dtype)
    else:
        threshold = np.partition(block_max, blocks - k, axis=1)[:, blocks - k]
    block_row, block_index = np.nonzero(block_max >= threshold[:, None])
    full_blocks = width // block
    in_full = block_index < full_blocks
    block_row, block_index = block_row[in_full], block_index[in_full]
    gathered = values[:, :full_blocks * block].reshape(rows, full_blocks, block)[block_row, block_index]
    pair, offset = np.nonzero(gathered >= threshold[block_row][:, None])
    row_of, column, value = block_row[pair], block_index[pair] * block + offset, gathered[pair, offset]
    if width > full_blocks * block:  # the last, partial block: its few columns are always looked at
        tail = values[:, full_blocks * block:]
        tail_row, tail_column = np.nonzero(tail >= threshold[:, None])
        row_of = np.concatenate([row_of, tail_row])
        column = np.concatenate([column, tail_column + full_blocks * block])
        value = np.concatenate([value, tail[tail_row, tail_column]])
    order = np.lexsort((column, -value, row_of))  # by row, then value descending, then index
    row_of, column = row_of[order], column[order]
    starts = np.concatenate([[0], np.cumsum(np.bincount(row_of, minlength=rows))[:-1]])
    rank = np.arange(len(row_of)) - starts[row_of]
    return column[rank < k].reshape(rows, k)


def _lexsort_rows(keys):
    """``np.lexsort(keys, axis=1)`` for 2-D keys (the last the primary one) from stable argsorts (CuPy has no lexsort by rows)."""
    xp = backend.get_array_module(keys[0])
    order = xp.argsort(keys[0], axis=1, kind="stable")
    for key in keys[1:]:
        order = xp.take_along_axis(order, xp.argsort(xp.take_along_axis(key, order, axis=1), axis=1, kind="stable"),
                                   axis=1)
    return order


def _read_all(arrays: list) -> list[np.ndarray]:
    """Device arrays of one dtype -> NumPy copies, with one device->host read (joined on the device first)."""
    if not arrays:
        return []
    xp = backend.get_array_module(arrays[0])
    flat = backend.as_numpy(xp.concatenate([array.reshape(-1) for array in arrays]))
    pieces, start = [], 0
    for array in arrays:
        pieces.append(flat[start:start + array.size].reshape(array.shape))
        start += array.size
    return pieces


def _source_lengths(encoder_output) -> np.ndarray:
    return backend.as_numpy(encoder_output.lengths).astype(np.int64)


@no_grad()
def greedy_search(model, encoder_output, max_length: int | None = None, *,
                  max_length_ratio: float = DEFAULT_MAX_LENGTH_RATIO,
                  max_length_offset: int = DEFAULT_MAX_LENGTH_OFFSET,
                  length_penalty_alpha: float = DEFAULT_LENGTH_PENALTY) -> list[Hypothesis]:
    """Pick the most probable token at every step, for B sentences at once.

    Everything a step makes stays on the device (the chosen tokens, their log-probabilities,
    the attention rows, which rows are done); the host asks which rows are done only every
    ``FINISHED_CHECK_EVERY[device]`` steps, and drops them from the batch then (rows that reach
    their length limit, which the host knows, are dropped at once). Done rows that are still in
    the batch are decoded on but their steps are not recorded.

    Args:
        model: a Seq2Seq (in eval mode for deterministic output).
        encoder_output: ``model.encode(source, source_lengths)`` for B sentences.
        max_length, max_length_ratio, max_length_offset: the length limit (module docstring).
        length_penalty_alpha: only sets ``Hypothesis.score`` (greedy's choices do not depend on it).
    Returns:
        B hypotheses, in the order of the batch.
    """
    source_lengths = _source_lengths(encoder_output)
    limits = max_lengths(source_lengths, max_length, max_length_ratio, max_length_offset)
    batch, steps = len(source_lengths), int(limits.max())
    xp = backend.get_array_module(encoder_output.outputs.data)
    device = encoder_output.outputs.device
    with_attention = _has_attention(model)
    # The record, per sentence, on the device: generated tokens, their count, log-probability, EOS seen.
    tokens = xp.zeros((batch, steps), dtype=np.int64)
    counts = xp.zeros(batch, dtype=np.int64)
    log_probs = xp.zeros(batch, dtype=np.float64)
    finished = xp.zeros(batch, dtype=bool)
    attention = xp.zeros((batch, steps, encoder_output.outputs.shape[1]), dtype=np.float32) if with_attention \
        else None

    active = np.arange(batch)  # sentence index of each row still in the batch (host)
    active_rows, row_limits = (backend.to_device(a, device) for a in (active, limits))  # the same on the device
    done = xp.zeros(batch, dtype=bool)  # per row: EOS chosen or the limit reached
    previous = xp.full(batch, BOS, dtype=np.int64)
    state, rows_output = encoder_output.final, encoder_output
    for step in range(steps):
        logits, state, weights = model.step(Tensor._wrap(previous), state, rows_output)  # device ids
        best, best_log_p = _greedy_choice(logits.data)
        live = ~done
        generated = live & (best != EOS)
        log_probs[active_rows] += xp.where(live, best_log_p, best_log_p.dtype.type(0))
        tokens[active_rows, step] = best
        counts[active_rows] += generated
        finished[active_rows] |= live & (best == EOS)
        if with_attention:
            attention[active_rows, step] = weights
        done = ~generated | (row_limits <= step + 1)
        previous = best
        if step + 1 == steps:
            break
        drop = _leaving(step, limits[active], lambda: backend.as_numpy(done), device)  # the only wait for the device
        if drop.all():
            break
        if drop.any():
            keep = np.flatnonzero(~drop)
            kept = backend.to_device(keep, device)
            state, rows_output = state.take(kept), rows_output.take(kept)
            active, active_rows, row_limits = active[keep], active_rows[kept], row_limits[kept]
            done, previous = done[kept], previous[kept]

    # the record comes to the host in three reads: ints (tokens, counts, finished), log-probabilities, attention
    ints = backend.as_numpy(xp.concatenate([tokens, counts[:, None], finished[:, None].astype(np.int64)], axis=1))
    tokens, counts, finished = ints[:, :steps], ints[:, steps], ints[:, steps + 1].astype(bool)
    log_probs = backend.as_numpy(log_probs)
    attention = backend.as_numpy(attention) if with_attention else None
    penalties = length_penalty(counts + finished, length_penalty_alpha)
    return [Hypothesis(tokens[b, :counts[b]].tolist(), float(log_probs[b]), float(log_probs[b] / penalties[b]),
                       attention[b, :counts[b], :source_lengths[b]].copy() if with_attention else None,
                       bool(finished[b]))
            for b in range(batch)]


def _leaving(step: int, row_limits: np.ndarray, read_done, device: str) -> np.ndarray:
    """(N,) bool: the rows that leave the batch after ``step``, for N rows with length limits ``row_limits``.

    Every ``FINISHED_CHECK_EVERY[device]`` steps all done rows (``read_done()`` reads them, from the device
    in greedy search); in between only those at their length limit, which the host knows. Greedy
    and beam search share this schedule, so beam search of width 1 decodes exactly greedy's
    batches, row for row (a matrix product's last bits can depend on how many rows it has).
    """
    if (step + 1) % FINISHED_CHECK_EVERY[device] == 0:
        return read_done()
    return row_limits <= step + 1


def _has_attention(model) -> bool:
    return model.config.attention != "none"


class _BeamRecord:
    """What beam search needs to build its hypotheses, kept on the device while it runs.

    Per step: the sentences in the batch (host), which of each one's best 2K continuations end,
    with their total log-probabilities, beams and tokens, and every row's attention weights; after
    the step, the rows the next step continues (each new row's parent) and their tokens.
    :meth:`hypotheses` reads it all from the device at once and replays the bookkeeping on the
    host: token sequences and attention rows follow the parents step by step.
    """

    def __init__(self, beam_size: int, source_width: int, with_attention: bool):
        self.beam_size, self.source_width, self.with_attention = beam_size, source_width, with_attention
        self.active, self.ending, self.scores, self.beams, self.tokens, self.weights = [], [], [], [], [], []
        self.parents, self.continued = [], []

    def step(self, active, ending, scores, beams, tokens, weights) -> None:
        """One step's ``active`` sentences (host) and its (count, 2K) ``ending``/``scores``/``beams``/``tokens``."""
        self.active.append(active)
        for name, array in (("ending", ending), ("scores", scores), ("beams", beams), ("tokens", tokens)):
            getattr(self, name).append(array)
        if self.with_attention:
            self.weights.append(weights)

    def reorder(self, parents, tokens) -> None:
        """The next step's rows: row j continues this step's row ``parents[j]`` with ``tokens[j]``."""
        self.parents.append(parents)
        self.continued.append(tokens)

    def hypotheses(self, batch: int, source_lengths: np.ndarray, alpha: float) -> list[list[Hypothesis]]:
        """Every ended hypothesis of every sentence, in the order they ended."""
        K = self.beam_size  # noqa: N806
        ending, scores, beams, tokens, weights, parents, continued = (
            _read_all(arrays) for arrays in (self.ending, self.scores, self.beams, self.tokens, self.weights,
                                             self.parents, self.continued))
        ended: list[list[Hypothesis]] = [[] for _ in range(batch)]
        sequences = np.zeros((batch * K, 0), dtype=np.int64)
        attention = np.zeros((batch * K, 0, self.source_width), dtype=np.float32)
        for step, active in enumerate(self.active):
            step_weights = weights[step] if self.with_attention else None
            for i, position in zip(*np.nonzero(ending[step])):
                sentence, row = active[i], i * K + beams[step][i, position]
                token = int(tokens[step][i, position])
                is_eos = token == EOS
                hypothesis_tokens = sequences[row].tolist() + ([] if is_eos else [token])
                rows_attention = None
                if self.with_attention:
                    length = source_lengths[sentence]
                    rows_attention = attention[row, :, :length]
                    if not is_eos:
                        rows_attention = np.concatenate([rows_attention, step_weights[row:row + 1, :length]])
                    rows_attention = rows_attention.astype(np.float32)
                log_prob = float(scores[step][i, position])
                length_with_eos = len(hypothesis_tokens) + int(is_eos)
                ended[sentence].append(Hypothesis(hypothesis_tokens, log_prob, log_prob / float(
                    length_penalty(length_with_eos, alpha)), rows_attention, is_eos))
            if step < len(parents):
                rows = parents[step]
                sequences = np.concatenate([sequences[rows], continued[step][:, None]], axis=1)
                if self.with_attention:
                    attention = np.concatenate([attention[rows], step_weights[rows][:, None, :]], axis=1)
        return ended


@no_grad()
def beam_search(model, encoder_output, beam_size: int, max_length: int | None = None, *,
                length_penalty_alpha: float = DEFAULT_LENGTH_PENALTY, nbest: int = 1,
                max_length_ratio: float = DEFAULT_MAX_LENGTH_RATIO,
                max_length_offset: int = DEFAULT_MAX_LENGTH_OFFSET,
                include_greedy: bool = True) -> list[list[Hypothesis]]:
    """Beam search of width K for B sentences at once (B*K rows through the decoder).

    Each step ranks the K*V continuations of a sentence's K live hypotheses by total
    log-probability and looks at the best 2K: an EOS among the best K ends that hypothesis (it is
    set aside, scored with the length penalty); the best K that do not end stay live. A sentence is
    done when K hypotheses have ended or it reaches its length limit (then its live hypotheses end
    unfinished). Its ``nbest`` highest-``score`` hypotheses are returned.

    With ``include_greedy`` (the default, only used when K > 1) the greedy output is one more
    candidate: pruning can drop the greedy path, so beam search alone does not guarantee a result
    at least as good as greedy's; with it, a wider beam never returns a lower score than greedy.

    Args:
        model: a Seq2Seq (eval mode).
        encoder_output: ``model.encode(...)`` for B sentences.
        beam_size: K >= 1. With K = 1 this code path gives exactly greedy search's output.
        max_length, max_length_ratio, max_length_offset: the length limit (module docstring).
        length_penalty_alpha: GNMT ``alpha`` for ranking ended hypotheses.
        nbest: hypotheses returned per sentence, 1 <= nbest <= K.
    Returns:
        for each of the B sentences, ``nbest`` Hypotheses, best first.
    """
    if isinstance(beam_size, bool) or not isinstance(beam_size, int) or beam_size < 1:
        raise ValueError(f"beam size must be an integer >= 1, got {beam_size!r}")
    if not 1 <= nbest <= beam_size:
        raise ValueError(f"nbest must be between 1 and the beam size ({beam_size}), got {nbest}")
    K = beam_size  # noqa: N806 - the K of the docstring
    source_lengths = _source_lengths(encoder_output)
    limits = max_lengths(source_lengths, max_length, max_length_ratio, max_length_offset)
    batch = len(source_lengths)
    xp = backend.get_array_module(encoder_output.outputs.data)
    device = encoder_output.outputs.device
    record = _BeamRecord(K, int(encoder_output.outputs.shape[1]), _has_attention(model))

    active = np.arange(batch)  # sentences still in the batch (host); rows are i * K + k for the i-th
    row_limits, ended_counts = backend.to_device(limits, device), xp.zeros(batch, dtype=np.int64)
    sentences = xp.arange(batch)  # the same as ``active``, on the device
    rows_output = encoder_output.select(np.repeat(np.arange(batch), K))
    state = rows_output.final
    scores = xp.full((batch, K), -np.inf)
    scores[:, 0] = 0.0  # all K rows start identical: only the first may expand
    previous = xp.full(batch * K, BOS, dtype=np.int64)
    done = xp.zeros(batch, dtype=bool)  # per sentence in the batch: K hypotheses ended, or the limit reached

    for step in range(int(limits.max())):
        logits, state, weights = model.step(Tensor._wrap(previous), state, rows_output)  # device ids
        masked, log_z = _next_token_scores(logits.data)
        count, vocab = len(active), masked.shape[1]
        # A sentence's best 2K continuations are among the best 2K tokens of each of its K rows.
        width = min(2 * K, vocab)
        row_tokens = top_k(masked, width)  # (count*K, width)
        row_logits = xp.take_along_axis(masked, row_tokens, axis=1)
        row_scores = scores.reshape(-1, 1) + (row_logits - log_z[:, None]).astype(np.float64)
        candidates = row_scores.reshape(count, K * width)
        flat_index = (xp.arange(K)[:, None] * vocab + row_tokens.reshape(count, K, width)).reshape(count, K * width)
        # Best first; equal totals fall back to the raw logit, then the lower index (as greedy's argmax).
        order = _lexsort_rows([flat_index, -row_logits.reshape(count, K * width), -candidates])[:, :2 * K]
        top_scores = xp.take_along_axis(candidates, order, axis=1)
        top = xp.take_along_axis(flat_index, order, axis=1)
        top_beams, top_tokens = top // vocab, top % vocab
        at_limit = row_limits[sentences] <= step + 1

        # Hypotheses that end now: EOS among the best K, or everything in the best K at the limit
        # (none for sentences already done that wait in the batch for the next check).
        ending = xp.zeros(top_tokens.shape, dtype=bool)
        ending[:, :K] = (top_tokens[:, :K] == EOS) | at_limit[:, None]
        ending &= xp.isfinite(top_scores) & ~done[:, None]
        ended_counts[sentences] += ending.sum(axis=1)
        done = at_limit | (ended_counts[sentences] >= K)
        record.step(active, ending, top_scores, top_beams, top_tokens, weights)

        drop = _leaving(step, limits[active], lambda: backend.as_numpy(done), device)  # the only wait for the device
        if drop.all():
            break
        # The best K continuations that do not end (there are >= K non-EOS among the best 2K).
        live = xp.argsort(top_tokens == EOS, axis=1, kind="stable")[:, :K]
        live_beams = xp.take_along_axis(top_beams, live, axis=1)
        scores = xp.take_along_axis(top_scores, live, axis=1)
        previous = xp.take_along_axis(top_tokens, live, axis=1)
        kept = xp.arange(count)
        if drop.any():
            kept = backend.to_device(np.flatnonzero(~drop), device)
            active, sentences, done = active[~drop], sentences[kept], done[kept]
            live_beams, scores, previous = live_beams[kept], scores[kept], previous[kept]
            # the K rows of a sentence share its encoder output: only leaving sentences change it
            rows_output = rows_output.take((kept[:, None] * K + xp.arange(K)).reshape(-1))
        rows = (kept[:, None] * K + live_beams).reshape(-1)
        previous = previous.reshape(-1)
        state = state.take(rows)
        record.reorder(rows, previous)

    ended = record.hypotheses(batch, source_lengths, length_penalty_alpha)
    if include_greedy and K > 1:
        greedy = greedy_search(model, encoder_output, max_length, max_length_ratio=max_length_ratio,
                               max_length_offset=max_length_offset, length_penalty_alpha=length_penalty_alpha)
        for sentence, hypothesis in enumerate(greedy):
            if all(h.tokens != hypothesis.tokens or h.finished != hypothesis.finished for h in ended[sentence]):
                ended[sentence].append(hypothesis)
    # Stable sort: equal scores keep the order in which they ended.
    return [sorted(hypotheses, key=lambda h: -h.score)[:nbest] for hypotheses in ended]
