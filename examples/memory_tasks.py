"""Claim 1, the memory problem: a tanh RNN cannot bridge long gaps, LSTM and GRU can.

Two standard long-range tasks, over several gaps, for RNN, LSTM and GRU with the same
parameter budget (recurrent layer + linear head), several seeds:

- **Adding problem** (Hochreiter & Schmidhuber 1997, in the form of Le et al. 2015):
  ``T`` steps of ``(value ~ U(0, 1), marker)``; exactly two markers are set, one in the
  first half and one in the second half; the target is the sum of the two marked values,
  read from the last step. Always predicting the mean (1.0) scores MSE ``2/12 = 0.167``.
  The first marker lies at least ``T/2`` steps before the loss; the "gap" here is ``T``.
- **Copy memory** (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016): ``copy_length``
  (3) symbols from an alphabet of 8, then ``gap`` steps of blanks ending in a delimiter,
  then the network must output the symbols in order. The loss and accuracy are taken on
  the recall steps only; guessing scores accuracy 1/8 = 0.125 (cross-entropy ln 8 = 2.08).

Each run trains until the task counts as solved (the training metric averaged over
``window`` steps passes a threshold) or the step budget is spent; the tables give the
held-out metric and how many seeds solved the task, in how many steps.

Run ``python examples/memory_tasks.py`` (full: both tasks, about 14 minutes on a busy
2-core CPU; ``--tasks adding`` or ``--tasks copy`` for one) or ``--quick``; ``--out DIR``
saves one figure per task when matplotlib is installed.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, replace

import numpy as np

import common
import tinygrad_rnn as tg
from tinygrad_rnn import nn, optim
from tinygrad_rnn.nn import functional as F

ADDING_BASELINE_MSE = 2 / 12
ALPHABET = 8  # copy-task symbols are 1..8; 0 is the blank, 9 the delimiter


@dataclass(frozen=True)
class Config:
    tasks: tuple[str, ...]
    gaps: tuple[int, ...]           # adding problem: the sequence length T
    copy_gaps: tuple[int, ...]      # copy task: blank steps between the symbols and the recall
    cells: tuple[str, ...]
    seeds: tuple[int, ...]
    lstm_hidden: int                # the budget is what an LSTM of this size (+ head) has
    max_steps: int                  # training batches per adding-problem run, unless solved earlier
    copy_max_steps: int             # the same for the copy task
    batch_size: int
    learning_rate: float
    clip: float
    copy_length: int
    eval_size: int
    window: int                     # "solved": the training metric averaged over this many steps ...
    solved_mse: float               # ... is below this (adding) ...
    solved_accuracy: float          # ... or above this (copy)

    def __post_init__(self):
        unknown = set(self.tasks) - {"adding", "copy"}
        if unknown:
            raise ValueError(f"unknown task(s) {sorted(unknown)}: choose from adding, copy")
        known = common.CELL_TYPES + (common.LSTM_FORGET_BIAS,)
        unknown = set(self.cells) - set(known)
        if unknown:
            raise ValueError(f"unknown cell type(s) {sorted(unknown)}: choose from {', '.join(known)}")
        if min(self.gaps + self.copy_gaps) < 2:
            raise ValueError(f"gaps must be at least 2, got {self.gaps}, {self.copy_gaps}")


FULL = Config(tasks=("adding", "copy"), gaps=(10, 25, 50, 100, 200), copy_gaps=(10, 25, 50, 100, 200),
              cells=common.CELL_TYPES, seeds=(0, 1, 2), lstm_hidden=32, max_steps=1500, copy_max_steps=1000,
              batch_size=64, learning_rate=1e-2, clip=1.0, copy_length=3, eval_size=1000, window=25,
              solved_mse=0.01, solved_accuracy=0.98)
QUICK = replace(FULL, tasks=("adding",), gaps=(50,), copy_gaps=(), seeds=(0,), max_steps=800, eval_size=500)


# ------------------------------------------------------------------ data
def adding_batch(rng: np.random.Generator, batch_size: int, length: int):
    """``x (T, B, 2)`` float32 (value, marker), ``y (B, 1)`` the sum of the two marked values."""
    values = rng.uniform(0.0, 1.0, size=(length, batch_size))
    columns = np.arange(batch_size)
    first = rng.integers(0, length // 2, size=batch_size)
    second = rng.integers(length // 2, length, size=batch_size)
    markers = np.zeros((length, batch_size))
    markers[first, columns] = 1.0
    markers[second, columns] = 1.0
    x = np.stack([values, markers], axis=-1).astype(np.float32)
    y = (values[first, columns] + values[second, columns]).astype(np.float32)[:, None]
    return x, y


def copy_batch(rng: np.random.Generator, batch_size: int, gap: int, copy_length: int):
    """``x (L + gap + L, B, 10)`` one-hot inputs, ``y (L, B)`` the symbols to recall (0-based classes).

    Layout per sequence: ``L`` symbols, ``gap - 1`` blanks, the delimiter, ``L`` blanks
    during which the network must output the symbols.
    """
    symbols = rng.integers(1, ALPHABET + 1, size=(copy_length, batch_size))
    tokens = np.zeros((2 * copy_length + gap, batch_size), dtype=np.int64)
    tokens[:copy_length] = symbols
    tokens[copy_length + gap - 1] = ALPHABET + 1
    x = np.eye(ALPHABET + 2, dtype=np.float32)[tokens]
    return x, symbols - 1


# ------------------------------------------------------------------ model
class MemoryModel(nn.Module):
    """A recurrent layer and a linear head on the last ``read_steps`` outputs.

    ``forward(x (T, B, I)) -> (read_steps, B, output_size)``.
    """

    def __init__(self, cell_type: str, input_size: int, hidden_size: int, output_size: int, read_steps: int):
        super().__init__()
        self.recurrent = common.recurrent_layer(common.base_cell(cell_type), input_size, hidden_size)
        if cell_type == common.LSTM_FORGET_BIAS:
            common.open_forget_gates(self.recurrent)
        self.head = nn.Linear(hidden_size, output_size)
        self.read_steps = read_steps

    def forward(self, x):
        output, _ = self.recurrent(x)
        return self.head(output[-self.read_steps:])


def task_shape(task: str, config: Config):
    """``(input_size, output_size, read_steps)`` of a task."""
    return (2, 1, 1) if task == "adding" else (ALPHABET + 2, ALPHABET, config.copy_length)


def hidden_size(task: str, cell_type: str, config: Config) -> int:
    """The hidden size giving ``cell_type`` the parameter count of the reference LSTM (+ head)."""
    input_size, output_size, _ = task_shape(task, config)
    budget = (common.recurrent_parameters("LSTM", input_size, config.lstm_hidden)
              + config.lstm_hidden * output_size + output_size)
    return common.hidden_size_for_budget(cell_type, input_size, output_size, budget)


def make_batch(task: str, rng, batch_size: int, gap: int, config: Config):
    if task == "adding":
        return adding_batch(rng, batch_size, gap)
    return copy_batch(rng, batch_size, gap, config.copy_length)


def loss_and_metric(task: str, prediction, target):
    """Training loss (a Tensor) and the reported metric: MSE (adding) or recall accuracy (copy)."""
    if task == "adding":
        loss = F.mse_loss(prediction[0], common.tensor(target))
        return loss, float(loss.item())
    steps, batch, classes = prediction.shape
    logits = prediction.reshape(steps * batch, classes)
    labels = target.reshape(-1)
    loss = F.cross_entropy(logits, tg.Tensor(labels))
    accuracy = float((logits.argmax(dim=1).numpy() == labels).mean())
    return loss, accuracy


def solved(task: str, recent_metrics: list[float], config: Config) -> bool:
    if len(recent_metrics) < config.window:
        return False
    average = float(np.mean(recent_metrics[-config.window:]))
    return average < config.solved_mse if task == "adding" else average > config.solved_accuracy


def train_one(task: str, cell_type: str, gap: int, seed: int, config: Config) -> dict:
    """Train one model until solved or ``max_steps``; return its held-out metric, steps taken and curve."""
    rng = common.seed_everything(seed)
    input_size, output_size, read_steps = task_shape(task, config)
    hidden = hidden_size(task, cell_type, config)
    model = MemoryModel(cell_type, input_size, hidden, output_size, read_steps)
    optimizer = optim.Adam(model.parameters(), lr=config.learning_rate)
    training_metrics = []
    max_steps = config.max_steps if task == "adding" else config.copy_max_steps
    for step in range(1, max_steps + 1):
        x, y = make_batch(task, rng, config.batch_size, gap, config)
        loss, metric = loss_and_metric(task, model(common.tensor(x)), y)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        optimizer.step()
        training_metrics.append(metric)
        if solved(task, training_metrics, config):
            break
    eval_x, eval_y = make_batch(task, np.random.default_rng(99), config.eval_size, gap, config)
    with tg.no_grad():
        _, metric = loss_and_metric(task, model(common.tensor(eval_x)), eval_y)
    return {"metric": metric, "steps": step, "solved": solved(task, training_metrics, config),
            "parameters": common.count_parameters(model), "hidden": hidden, "curve": training_metrics}


# ------------------------------------------------------------------ experiment
def run(config: Config = FULL, out: str | None = None, verbose: bool = True) -> dict:
    """Every (task, cell, gap, seed): ``{"runs": {task: {cell: {gap: [train_one result per seed]}}}, "sizes"}``."""
    runs, sizes = {}, {}
    for task in config.tasks:
        runs[task], sizes[task] = {}, {}
        for cell_type in config.cells:
            runs[task][cell_type] = {}
            for gap in gaps_of(task, config):
                watch = common.Stopwatch()
                results = [train_one(task, cell_type, gap, seed, config) for seed in config.seeds]
                runs[task][cell_type][gap] = results
                sizes[task][cell_type] = (results[0]["hidden"], results[0]["parameters"])
                if verbose:
                    print(f"  {task:6s} {cell_type:8s} gap {gap:4d}: {common.mean_std(metrics(results))}, "
                          f"steps {[r['steps'] for r in results]} ({watch.seconds():.1f} s)", flush=True)
    report = {"runs": runs, "sizes": sizes}
    if verbose:
        print_tables(report, config)
    plot(report, config, out)
    return report


def gaps_of(task: str, config: Config) -> tuple[int, ...]:
    return config.gaps if task == "adding" else config.copy_gaps


def metrics(results: list[dict]) -> list[float]:
    return [r["metric"] for r in results]


def print_tables(report: dict, config: Config) -> None:
    for task, by_cell in report["runs"].items():
        gaps = gaps_of(task, config)
        header = ["cell"] + [f"T={gap}" if task == "adding" else f"gap={gap}" for gap in gaps]
        metric = "held-out MSE (predicting the mean: 0.167)" if task == "adding" else \
            f"held-out recall accuracy ({config.copy_length} symbols; chance 0.125)"
        print(f"\n{task}: {metric}, mean ± std over seeds {list(config.seeds)}")
        print("sizes: " + ", ".join(f"{cell_type} hidden {hidden} ({params} parameters)"
                                    for cell_type, (hidden, params) in report["sizes"][task].items()))
        rows = [[cell_type] + [common.mean_std(metrics(by_gap[gap])) for gap in gaps]
                for cell_type, by_gap in by_cell.items()]
        print(common.markdown_table(header, rows))
        threshold = f"MSE < {config.solved_mse}" if task == "adding" else f"accuracy > {config.solved_accuracy}"
        max_steps = config.max_steps if task == "adding" else config.copy_max_steps
        print(f"\n{task}: runs solved (training {threshold} over {config.window} steps) within "
              f"{max_steps} steps, and the median steps of those solved")
        rows = []
        for cell_type, by_gap in by_cell.items():
            row = [cell_type]
            for gap in gaps:
                steps = [r["steps"] for r in by_gap[gap] if r["solved"]]
                row.append(f"{len(steps)}/{len(by_gap[gap])}" + (f" ({int(np.median(steps))})" if steps else ""))
            rows.append(row)
        print(common.markdown_table(header, rows))


def plot(report: dict, config: Config, out: str | None) -> None:
    """One figure per task, ``memory_tasks_<task>.png``: the metric against the gap, per cell type."""
    for task, by_cell in report["runs"].items():
        path = common.figure_path(out, f"memory_tasks_{task}.png")
        if path is None:
            return
        plt = common.pyplot()
        figure, axis = plt.subplots(figsize=(6, 4))
        gaps = gaps_of(task, config)
        for cell_type, by_gap in by_cell.items():
            means = [np.mean(metrics(by_gap[gap])) for gap in gaps]
            spreads = [np.std(metrics(by_gap[gap])) for gap in gaps]
            axis.errorbar(gaps, means, yerr=spreads, marker="o", capsize=3, label=cell_type)
        if task == "adding":
            axis.axhline(ADDING_BASELINE_MSE, color="gray", linestyle="--", label="predict the mean")
            axis.set_ylabel("held-out MSE")
            axis.set_xlabel("T (sequence length)")
        else:
            axis.axhline(1 / ALPHABET, color="gray", linestyle="--", label="chance")
            axis.set_ylabel("recall accuracy")
            axis.set_xlabel("gap (blank steps)")
        axis.set_xscale("log")
        axis.set_title(f"{'adding problem' if task == 'adding' else 'copy-memory task'}, seeds {list(config.seeds)}")
        axis.legend()
        figure.tight_layout()
        figure.savefig(path, dpi=80)
        plt.close(figure)
        print(f"figure: {path}")


def main(argv=None) -> dict:
    parser = common.base_parser(__doc__.split("\n")[0])
    parser.add_argument("--tasks", default=None, help="comma-separated subset of adding,copy")
    parser.add_argument("--gaps", type=common.int_list, default=None, help="adding-problem lengths T")
    parser.add_argument("--copy-gaps", type=common.int_list, default=None, help="copy-task gaps")
    parser.add_argument("--cells", default=None, help="comma-separated subset of RNN,LSTM,GRU (or LSTM+fb1: "
                        "an LSTM with forget-gate bias +1)")
    parser.add_argument("--max-steps", type=int, default=None, help="training batches per run unless solved")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else FULL
    overrides = {}
    if args.seeds:
        overrides["seeds"] = args.seeds
    if args.tasks:
        overrides["tasks"] = tuple(t.strip() for t in args.tasks.split(",") if t.strip())
    if args.gaps:
        overrides["gaps"] = args.gaps
    if args.copy_gaps:
        overrides["copy_gaps"] = args.copy_gaps
    if args.cells:
        overrides["cells"] = tuple(c.strip() for c in args.cells.split(",") if c.strip())
    if args.max_steps:
        overrides["max_steps"] = overrides["copy_max_steps"] = args.max_steps
    try:
        config = replace(config, **overrides)
    except ValueError as error:
        parser.error(str(error))
    common.announce_plotting(args.out)
    watch = common.Stopwatch()
    report = run(config, out=args.out)
    print(f"\ntotal runtime {watch.seconds():.0f} s")
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
