"""Scoring translations: sacreBLEU's BLEU and chrF on detokenised output, and decoding speed.

Scores are always computed on natural text, the translator's detokenised output against the raw
reference sentences, with sacreBLEU's own tokenisation (BLEU: ``13a``, cased), never on our tokens,
so the numbers are comparable with published ones; each comes with sacreBLEU's signature.

``translate evaluate`` reads its pairs with :func:`load_evaluation_pairs` and scores them with
:func:`evaluate_pairs`, which training also uses for the per-epoch dev BLEU and the final test BLEU.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Callable, Sequence

from sacrebleu.metrics import BLEU, CHRF

from translator import checkpoint
from tinygrad_rnn.serialization import atomic_open
from translator.config import TrainConfig
from translator.corpus import read_pairs
from translator.errors import CheckpointError, ConfigError

Pair = tuple[str, str]


@dataclasses.dataclass
class EvaluationResult:
    """Scores of a set of translations.

    Attributes:
        bleu, chrf: corpus scores, 0..100.
        bleu_signature, chrf_signature: sacreBLEU's signatures (how to reproduce the number).
        sentences: how many sentences were translated.
        seconds: wall time spent translating them (scoring excluded).
        hypotheses: the translations, in input order.
        exact_matches: fraction of translations identical to their reference.
    """

    bleu: float
    chrf: float
    bleu_signature: str
    chrf_signature: str
    sentences: int
    seconds: float
    hypotheses: list[str]
    exact_matches: float

    @property
    def sentences_per_second(self) -> float:
        return self.sentences / self.seconds if self.seconds > 0 else float("inf")

    def to_dict(self, include_hypotheses: bool = False) -> dict:
        data = {"bleu": round(self.bleu, 2), "chrf": round(self.chrf, 2), "bleu_signature": self.bleu_signature,
                "chrf_signature": self.chrf_signature, "sentences": self.sentences,
                "seconds": round(self.seconds, 3), "sentences_per_second": round(self.sentences_per_second, 1),
                "exact_matches": round(self.exact_matches, 4)}
        if include_hypotheses:
            data["hypotheses"] = self.hypotheses
        return data

    def summary(self) -> str:
        """Human-readable lines: the scores with their signatures, and the speed."""
        return (f"BLEU = {self.bleu:.2f}  ({self.bleu_signature})\n"
                f"chrF = {self.chrf:.2f}  ({self.chrf_signature})\n"
                f"exact matches {100 * self.exact_matches:.1f}%, {self.sentences} sentences in "
                f"{self.seconds:.1f} s ({self.sentences_per_second:.0f} sentences/s)")


def score(hypotheses: Sequence[str], references: Sequence[str], seconds: float = 0.0) -> EvaluationResult:
    """BLEU and chrF of detokenised ``hypotheses`` against raw ``references`` (one each, same order)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    bleu, chrf = BLEU(), CHRF()
    bleu_score = bleu.corpus_score(list(hypotheses), [list(references)])
    chrf_score = chrf.corpus_score(list(hypotheses), [list(references)])
    matches = sum(hypothesis == reference for hypothesis, reference in zip(hypotheses, references))
    return EvaluationResult(
        bleu=float(bleu_score.score), chrf=float(chrf_score.score),
        bleu_signature=str(bleu.get_signature()), chrf_signature=str(chrf.get_signature()),
        sentences=len(hypotheses), seconds=seconds, hypotheses=list(hypotheses),
        exact_matches=matches / len(hypotheses) if hypotheses else 0.0,
    )


def evaluate_pairs(translate: Callable[[list[str]], list[str]], pairs: Sequence[Pair]) -> EvaluationResult:
    """Translate the sources of ``pairs`` with ``translate`` and score against their targets.

    Args:
        translate: maps a list of source sentences to their translations (e.g. a bound
            ``Translator.translate`` with the beam already chosen).
        pairs: ``(source, reference)`` raw text.
    """
    sources = [source for source, _ in pairs]
    started = time.perf_counter()
    hypotheses = translate(sources)
    seconds = time.perf_counter() - started
    return score(hypotheses, [target for _, target in pairs], seconds)


def load_evaluation_pairs(model_dir: str | os.PathLike, data: str | os.PathLike | None,
                          saved_train_options: dict, strict: bool = False,
                          log: Callable[[str], None] = lambda message: None,
                          member: str | None = None) -> tuple[list[Pair], str]:
    """The pairs to evaluate on: the model's own ``test.tsv``, or ``data`` read in the model's direction.

    ``data`` is a TSV/zip in the training data's layout (``member``: which file of a zip); the
    columns and ``reverse`` saved with the model apply, so ``--data`` gives source -> target pairs
    in the direction the model translates. Returns ``(pairs, description)``.
    Raises:
        CheckpointError: the saved training options are not a valid configuration.
    """
    if data is None:
        path = Path(model_dir) / checkpoint.TEST_FILE
        return checkpoint.read_pairs_file(path), str(path)
    try:
        saved = TrainConfig.from_dict(saved_train_options if isinstance(saved_train_options, dict) else None)
    except (ConfigError, TypeError) as error:
        raise CheckpointError(f"{Path(model_dir) / checkpoint.CONFIG_FILE} holds an unusable training "
                              f"configuration ({error}); retrain the model") from None
    result = read_pairs(data, source_column=saved.source_column, target_column=saved.target_column,
                        reverse=saved.reverse, strict=strict, member=member)
    log(result.summary())
    return result.pairs, result.source


def write_output(path: str | os.PathLike, hypotheses: Sequence[str]) -> None:
    """Keep the translations, one per line, in input order (written atomically)."""
    with atomic_open(path, "w") as handle:
        handle.write("".join(hypothesis.replace("\n", " ") + "\n" for hypothesis in hypotheses))
