"""Figures: a translation's attention matrix (``translate run --show-attention FILE.png``) and the
learning curves training draws after each epoch (``curves.png`` in the model directory, from ``log.jsonl``).

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


def epoch_records(log_lines) -> list[dict]:
    """The ``"epoch"`` records of ``log.jsonl`` lines, one per epoch (the latest wins), in epoch order."""
    import json  # noqa: PLC0415

    by_epoch: dict[int, dict] = {}
    for line in log_lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash: skip it, the curves are a view of the log
        if isinstance(record, dict) and record.get("event") == "epoch" and isinstance(record.get("epoch"), int):
            by_epoch[record["epoch"]] = record
    return [by_epoch[epoch] for epoch in sorted(by_epoch)]


def plot_curves(records: list[dict], output, dpi: int = 100) -> None:
    """Draw the learning curves of ``records`` (:func:`epoch_records`) as PNG into ``output`` (a path or binary file).

    Three panels against the epoch: training and dev loss, dev BLEU, learning rate (log scale).

    Raises:
        PlotUnavailable: matplotlib is missing.
    """
    plt = _pyplot()
    epochs = [record["epoch"] for record in records]
    figure, (loss_axes, bleu_axes, lr_axes) = plt.subplots(1, 3, figsize=(12, 3.4))
    loss_axes.plot(epochs, [record.get("train_loss") for record in records], "o-", label="train (smoothed)")
    loss_axes.plot(epochs, [record.get("dev_loss") for record in records], "s-", label="dev")
    loss_axes.set_title("loss per target token")
    loss_axes.legend()
    bleu_axes.plot(epochs, [record.get("dev_bleu") for record in records], "o-", color="tab:green")
    bleu_axes.set_title("dev BLEU (greedy)")
    lr_axes.plot(epochs, [record.get("lr") for record in records], "o-", color="tab:red")
    lr_axes.set_yscale("log")
    lr_axes.set_title("learning rate")
    for axes in (loss_axes, bleu_axes, lr_axes):
        axes.set_xlabel("epoch")
        axes.grid(alpha=0.3)
        if epochs:
            axes.set_xticks(epochs)
    figure.tight_layout()
    figure.savefig(output if hasattr(output, "write") else os.fspath(output), dpi=dpi, format="png")
    plt.close(figure)
