"""Decoding settings tuned on dev: the beam width and the GNMT length-penalty alpha (``translate tune``).

Every combination of the candidate beam widths and alphas translates the model's dev split (or its
first ``max_sentences`` pairs) and is scored with sacreBLEU; the best dev BLEU wins (ties: the
smaller beam, then the first alpha listed, so the faster setting is kept when it costs nothing). Greedy
search (beam 1) ignores alpha, so it is tried once. The winner is stored in ``config.json`` as
``"decoding": {"beam": ..., "alpha": ...}`` (:func:`translator.checkpoint.write_decoding`), which
``translate run``/``evaluate`` and :meth:`Translator.load` use unless told otherwise (``--beam``,
``--alpha``).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

from translator.checkpoint import DECODE_BATCH_SIZE
from translator.evaluate import evaluate_pairs

DEFAULT_BEAMS = (1, 3, 5, 8)
DEFAULT_ALPHAS = (0.0, 0.4, 0.6, 0.8, 1.0, 1.2, 1.5)

Pair = tuple[str, str]


@dataclasses.dataclass
class TuneResult:
    """The best setting and every setting tried: ``trials`` holds ``(beam, alpha, dev_bleu)``."""

    beam: int
    alpha: float
    dev_bleu: float
    sentences: int
    trials: list[tuple[int, float, float]]

    def to_dict(self) -> dict:
        """The ``decoding`` entry of ``config.json``."""
        return {"beam": self.beam, "alpha": self.alpha, "dev_bleu": round(self.dev_bleu, 2),
                "sentences": self.sentences}


def tune(translator, pairs: Sequence[Pair], beams: Sequence[int] = DEFAULT_BEAMS,
         alphas: Sequence[float] = DEFAULT_ALPHAS, batch_size: int = DECODE_BATCH_SIZE,
         log: Callable[[str], None] = lambda message: None) -> TuneResult:
    """Try every (beam, alpha) on ``pairs`` with ``translator``; return the best by BLEU.

    ``translator.length_penalty`` is restored afterwards.
    """
    if not pairs:
        raise ValueError("no dev pairs to tune on")
    if not beams or not alphas or min(beams) < 1:
        raise ValueError(f"need beam widths >= 1 and at least one alpha, got beams {list(beams)}, "
                         f"alphas {list(alphas)}")
    saved_alpha = translator.length_penalty
    trials: list[tuple[int, float, float]] = []
    best: tuple[float, int, float] | None = None
    try:
        for beam in sorted(set(beams)):
            for alpha in (alphas if beam > 1 else alphas[:1]):
                translator.length_penalty = alpha
                result = evaluate_pairs(lambda sentences: translator.translate(sentences, beam=beam,
                                                                               batch_size=batch_size), pairs)
                trials.append((beam, alpha, result.bleu))
                log(f"beam {beam}, alpha {alpha:g}: dev BLEU {result.bleu:.2f}")
                if best is None or result.bleu > best[0]:
                    best = (result.bleu, beam, alpha)
    finally:
        translator.length_penalty = saved_alpha
    bleu, beam, alpha = best
    return TuneResult(beam=beam, alpha=float(alpha), dev_bleu=bleu, sentences=len(pairs), trials=trials)
