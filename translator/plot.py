"""Draw a translation's attention matrix (``translate run --show-attention FILE.png``).

matplotlib is an optional extra, imported only when a plot is drawn; without it the error says
how to install it.
"""
from __future__ import annotations

import os

from translator.errors import PlotUnavailable

INSTALL_HINT = "install the plot extra: pip install 'tinygrad-rnn[plot]'"


def _pyplot():
    try:
        import matplotlib  # noqa: PLC0415 - optional dependency
    except ImportError:
        raise PlotUnavailable(f"drawing attention needs matplotlib, which is not installed; {INSTALL_HINT}") from None
    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def require_matplotlib() -> None:
    """Raise :class:`PlotUnavailable` now (before any work) if a plot could not be drawn later."""
    _pyplot()


def plot_attention(translation, path: str | os.PathLike, dpi: int = 120) -> None:
    """Save the (target x source) attention of ``translation`` as an image.

    Args:
        translation: a :class:`translator.inference.Translation` (``attention``, ``source_tokens``,
            ``target_tokens``).
        path: output file; the format follows the extension (``.png``, ``.pdf``, ``.svg``).
    Raises:
        PlotUnavailable: matplotlib is missing.
        ValueError: the translation has no attention (a model with ``attention="none"``, empty input).
    """
    if translation.attention is None or not translation.target_tokens:
        raise ValueError("this translation has no attention to draw (a model with attention 'none', "
                         "or an empty sentence)")
    plt = _pyplot()
    weights = translation.attention
    rows, columns = weights.shape
    figure, axes = plt.subplots(figsize=(1.5 + 0.5 * columns, 1.2 + 0.45 * rows))
    image = axes.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    axes.set_xticks(range(columns), translation.source_tokens[:columns], rotation=60, ha="right")
    axes.set_yticks(range(rows), translation.target_tokens[:rows])
    axes.set_xlabel("source")
    axes.set_ylabel("translation")
    figure.colorbar(image, ax=axes, fraction=0.04)
    figure.tight_layout()
    figure.savefig(os.fspath(path), dpi=dpi)
    plt.close(figure)
