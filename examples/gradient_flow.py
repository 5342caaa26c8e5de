"""Claim 2, why: vanishing (and exploding) gradients through time.

Three measurements on the adding problem (see ``memory_tasks.py``):

1. **Gradient vs distance.** ``||dLoss/dh_t||`` as a function of the distance ``T-1-t`` from
   the step the loss reads, for RNN, LSTM and GRU with equal parameter budgets, at
   initialisation and after training. The models are trained with the fused sequence
   layers; for the measurement their weights are loaded into the composed cells
   (``nn.RNNCell`` ...), stepped by hand, and every ``h_t`` calls ``retain_grad()``.
   The norm is per example (the gradient of that example's own loss), averaged over a
   batch; the *decay per step* is the geometric mean ratio ``(g_{T-1} / g_0)^(1/(T-1))``.
   For the LSTM the cell state's ``||dLoss/dc_t||`` is reported too.
2. **Exploding gradients.** A tanh RNN (and a ReLU RNN) whose recurrent matrix is
   ``scale`` times a random orthogonal matrix: the ratio ``g_d / g_0`` for several scales.
3. **Clipping.** A tanh RNN with recurrent scale 1.5 trained with plain SGD on the adding
   problem, with and without ``nn.utils.clip_grad_norm_``, and with smaller learning
   rates instead of clipping: final error, gradient norms, divergence.

The measurements run in float64 (the cells and inputs are cast), since a gradient that
shrinks by 1e-20 or grows by 1e13 over 100 steps leaves float32's range.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, replace

import numpy as np

import common
import tinygrad_rnn as tg
from memory_tasks import ADDING_BASELINE_MSE, adding_batch
from tinygrad_rnn import nn, optim
from tinygrad_rnn.nn import functional as F


@dataclass(frozen=True)
class Config:
    length: int               # adding-problem length T for every measurement
    seeds: tuple[int, ...]
    lstm_hidden: int          # parameter budget: this LSTM + head
    train_steps: int
    batch_size: int
    learning_rate: float
    measure_size: int         # sequences averaged in a gradient measurement
    distances: tuple[int, ...]
    scales: tuple[float, ...]
    clip_scale: float         # recurrent scale of the clipping experiment
    clip_arms: tuple[tuple[int, float, float | None], ...]   # (length T, SGD learning rate, max norm or None)
    clip_steps: int

    def __post_init__(self):
        if max(self.distances) >= self.length:
            raise ValueError(f"distances {self.distances} must be below the length {self.length}")


FULL = Config(length=100, seeds=(0, 1, 2), lstm_hidden=32, train_steps=1200, batch_size=64, learning_rate=1e-2,
              measure_size=256, distances=(0, 1, 5, 10, 25, 50, 99), scales=(0.5, 0.9, 1.0, 1.1, 1.5, 3.0),
              clip_scale=1.5, clip_arms=((10, 0.1, None), (10, 0.1, 1.0), (10, 0.03, None), (10, 0.01, None),
                                         (50, 0.1, None), (50, 0.1, 1.0)), clip_steps=1500)
QUICK = replace(FULL, length=50, seeds=(0,), train_steps=150, measure_size=64, distances=(0, 1, 10, 25, 49),
                scales=(0.5, 1.0, 1.5), clip_arms=((30, 0.1, None), (30, 0.1, 1.0)), clip_steps=120)


# ------------------------------------------------------------------ models
class Regressor(nn.Module):
    """A fused recurrent layer and a linear head reading the last step: ``(T, B, 2) -> (B, 1)``."""

    def __init__(self, cell_type: str, hidden_size: int, nonlinearity: str = "tanh"):
        super().__init__()
        extra = {"nonlinearity": nonlinearity} if cell_type == "RNN" else {}
        self.recurrent = common.recurrent_layer(cell_type, 2, hidden_size, **extra)
        self.head = nn.Linear(hidden_size, 1)
        self.cell_type, self.hidden_size, self.nonlinearity = cell_type, hidden_size, nonlinearity

    def forward(self, x):
        output, _ = self.recurrent(x)
        return self.head(output[-1])


def hidden_sizes(config: Config) -> dict[str, int]:
    budget = common.recurrent_parameters("LSTM", 2, config.lstm_hidden) + config.lstm_hidden + 1
    return {cell_type: common.hidden_size_for_budget(cell_type, 2, 1, budget) for cell_type in common.CELL_TYPES}


def set_recurrent_scale(model: Regressor, scale: float, rng: np.random.Generator) -> None:
    """Recurrent weights := ``scale`` x a random orthogonal matrix (spectral radius ``scale``)."""
    weight = model.recurrent.weight_hh_l0
    hidden = model.hidden_size
    q, r = np.linalg.qr(rng.standard_normal((hidden, hidden)))
    q = q * np.sign(np.diag(r))  # uniformly distributed orthogonal matrix
    weight.data[...] = (scale * q).astype(weight.data.dtype)


def stepped_cell(model: Regressor) -> nn.Module:
    """The composed cell carrying the fused layer's weights (``weight_ih_l0`` -> ``weight_ih``)."""
    if model.cell_type == "RNN":
        step = nn.RNNCell(2, model.hidden_size, nonlinearity=model.nonlinearity, fused=False)
    else:
        step = common.cell(model.cell_type, 2, model.hidden_size, fused=False)
    state = model.recurrent.state_dict()
    step.load_state_dict({name: state[f"{name}_l0"] for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
    return step


# ------------------------------------------------------------------ measurement
def gradient_profile(model: Regressor, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Mean per-example ``||dLoss/dh_t||`` indexed by distance ``T-1-t`` (and ``c_t`` for the LSTM)."""
    step = stepped_cell(model).double()
    head = nn.Linear(model.hidden_size, 1).double()
    head.load_state_dict(model.head.state_dict())
    length, batch, _ = x.shape
    h = tg.zeros(batch, model.hidden_size, dtype=tg.float64)
    c = tg.zeros(batch, model.hidden_size, dtype=tg.float64)
    hidden_states, cell_states = [], []
    inputs = common.tensor(x, "float64")
    for t in range(length):
        if model.cell_type == "LSTM":
            h, c = step(inputs[t], (h, c))
            c.retain_grad()
            cell_states.append(c)
        else:
            h = step(inputs[t], h)
        h.retain_grad()
        hidden_states.append(h)
    # The sum over the batch makes each example's gradient that of its own squared error.
    loss = ((head(h) - common.tensor(y, "float64")) ** 2).sum()
    loss.backward()

    def norms(states):
        # The last c_t is not on any path to the loss (only h_t is read), so it gets no gradient: 0.
        per_step = np.array([np.linalg.norm(s.grad.numpy(), axis=1).mean() if s.grad is not None else 0.0
                             for s in states])
        return per_step[::-1]  # index = distance from the loss

    profile = {"h": norms(hidden_states)}
    if cell_states:
        profile["c"] = norms(cell_states)
    return profile


def decay_per_step(norms: np.ndarray) -> float:
    """Geometric mean ratio of successive norms, from the first non-zero norm to the last.

    The LSTM's last ``c_t`` is not read by the loss (norm 0), and a gradient that
    vanishes fast enough underflows to exactly 0 even in float64: both ends are trimmed.
    """
    positive = np.flatnonzero((norms > 0) & np.isfinite(norms))
    if len(positive) < 2 or not np.isfinite(norms).all():
        return float("nan")
    start, end = positive[0], positive[-1]
    return float(np.exp(np.log(norms[end] / norms[start]) / (end - start)))


def train(model: Regressor, rng, config: Config, steps: int, length: int, learning_rate: float,
          optimizer_name: str = "adam", clip: float | None = 1.0) -> dict:
    """Train on the adding problem; returns the gradient norms seen and the final held-out MSE."""
    parameters = list(model.parameters())
    optimizer = optim.Adam(parameters, lr=learning_rate) if optimizer_name == "adam" else \
        optim.SGD(parameters, lr=learning_rate)
    gradient_norms, losses = [], []
    for _ in range(steps):
        x, y = adding_batch(rng, config.batch_size, length)
        loss = F.mse_loss(model(common.tensor(x)), common.tensor(y))
        optimizer.zero_grad()
        loss.backward()
        total = nn.utils.clip_grad_norm_(parameters, clip if clip is not None else math.inf)
        gradient_norms.append(float(total))
        losses.append(float(loss.item()))
        if not math.isfinite(losses[-1]):
            break
        optimizer.step()
    eval_x, eval_y = adding_batch(np.random.default_rng(99), 500, length)
    with tg.no_grad():
        error = float(F.mse_loss(model(common.tensor(eval_x)), common.tensor(eval_y)).item())
    return {"gradient_norms": np.array(gradient_norms), "losses": np.array(losses), "mse": error}


# ------------------------------------------------------------------ experiments
def vanishing(config: Config, verbose: bool) -> dict:
    """Gradient profiles at init and after training, per cell type and seed."""
    sizes = hidden_sizes(config)
    profiles = {}  # (cell, stage) -> list over seeds of {"h": norms, "c": norms}
    trained_mse = {}
    for cell_type in common.CELL_TYPES:
        for seed in config.seeds:
            rng = common.seed_everything(seed)
            model = Regressor(cell_type, sizes[cell_type])
            x, y = adding_batch(np.random.default_rng(7), config.measure_size, config.length)
            profiles.setdefault((cell_type, "init"), []).append(gradient_profile(model, x, y))
            result = train(model, rng, config, config.train_steps, config.length, config.learning_rate)
            trained_mse.setdefault(cell_type, []).append(result["mse"])
            profiles.setdefault((cell_type, "trained"), []).append(gradient_profile(model, x, y))
            if verbose:
                print(f"  {cell_type:4s} seed {seed}: trained MSE {result['mse']:.4f}", flush=True)
    return {"profiles": profiles, "trained_mse": trained_mse, "sizes": sizes}


def exploding(config: Config) -> dict:
    """Ratio ``g_d / g_0`` at init for tanh and ReLU RNNs with recurrent matrix ``scale`` x orthogonal."""
    hidden = hidden_sizes(config)["RNN"]
    ratios = {}
    for nonlinearity in ("tanh", "relu"):
        for scale in config.scales:
            per_seed = []
            for seed in config.seeds:
                rng = common.seed_everything(seed)
                model = Regressor("RNN", hidden, nonlinearity)
                set_recurrent_scale(model, scale, rng)
                x, y = adding_batch(np.random.default_rng(7), config.measure_size, config.length)
                with np.errstate(all="ignore"):
                    norms = gradient_profile(model, x, y)["h"]
                per_seed.append(norms / norms[0])
            ratios[(nonlinearity, scale)] = np.exp(np.mean(np.log(np.array(per_seed)), axis=0))
    return ratios


def arm_label(length: int, learning_rate: float, clip: float | None) -> str:
    clipping_text = f"clip_grad_norm_({clip:g})" if clip is not None else "no clipping"
    return f"T={length}, lr {learning_rate:g}, {clipping_text}"


def clipping(config: Config, verbose: bool) -> dict:
    """A tanh RNN at ``clip_scale`` trained by SGD in every (length, learning rate, clipping) arm."""
    hidden = hidden_sizes(config)["RNN"]
    outcomes = {}
    for length, learning_rate, clip in config.clip_arms:
        label = arm_label(length, learning_rate, clip)
        outcomes[label] = []
        for seed in config.seeds:
            rng = common.seed_everything(seed)
            model = Regressor("RNN", hidden)
            set_recurrent_scale(model, config.clip_scale, rng)
            with np.errstate(all="ignore"):
                result = train(model, rng, config, config.clip_steps, length, learning_rate,
                               optimizer_name="sgd", clip=clip)
            outcomes[label].append(result)
            if verbose:
                print(f"  {label}, seed {seed}: MSE {result['mse']:.4f}, "
                      f"max grad norm {np.nanmax(result['gradient_norms']):.3g}", flush=True)
    return outcomes


def run(config: Config = FULL, out: str | None = None, verbose: bool = True) -> dict:
    report = {"vanishing": vanishing(config, verbose), "exploding": exploding(config),
              "clipping": clipping(config, verbose)}
    if verbose:
        print_tables(report, config)
    plot(report, config, out)
    return report


def summarise(report: dict) -> dict:
    """Numbers the tables print, also used by the tests: mean norms per distance and decay per step."""
    summary = {}
    for (cell_type, stage), runs in report["vanishing"]["profiles"].items():
        for state in ("h", "c"):
            if state not in runs[0]:
                continue
            norms = np.exp(np.mean(np.log([r[state] for r in runs]), axis=0))  # geometric mean over seeds
            summary[(cell_type, state, stage)] = {"norms": norms, "decay": decay_per_step(norms)}
    return summary


def print_tables(report: dict, config: Config) -> None:
    sizes = report["vanishing"]["sizes"]
    print(f"\n1. mean ||dLoss/dh_t|| by distance from the loss (adding problem, T={config.length}; geometric "
          f"mean over seeds {list(config.seeds)}); sizes: "
          + ", ".join(f"{cell_type} hidden {hidden}" for cell_type, hidden in sizes.items()))
    rows = []
    for (cell_type, state, stage), entry in summarise(report).items():
        name = f"{cell_type} {'c_t' if state == 'c' else 'h_t'}"
        rows.append([name, stage] + [f"{entry['norms'][d]:.2e}" for d in config.distances]
                    + [f"{entry['decay']:.3f}"])
    print(common.markdown_table(["state", "when"] + [f"d={d}" for d in config.distances] + ["decay/step"], rows))
    trained_mse = report["vanishing"]["trained_mse"]
    print("trained held-out MSE: " + ", ".join(f"{cell_type} {common.mean_std(values, 4)}"
                                               for cell_type, values in trained_mse.items()))

    print("\n2. RNN at init with W_hh = scale x orthogonal: ratio ||dL/dh_(T-1-d)|| / ||dL/dh_(T-1)||")
    rows = [[nonlinearity, f"{scale:g}"] + [f"{ratio[d]:.2e}" for d in config.distances[1:]]
            + [f"{decay_per_step(ratio):.3f}"] for (nonlinearity, scale), ratio in report["exploding"].items()]
    print(common.markdown_table(["nonlinearity", "scale"] + [f"d={d}" for d in config.distances[1:]]
                                + ["decay/step"], rows))

    print(f"\n3. tanh RNN, W_hh = {config.clip_scale} x orthogonal, plain SGD on the adding problem, "
          f"{config.clip_steps} steps, seeds {list(config.seeds)} (diverged: the loss became inf/nan)")
    rows = []
    for label, runs in report["clipping"].items():
        norms = np.concatenate([r["gradient_norms"] for r in runs])
        diverged = sum(not math.isfinite(r["mse"]) for r in runs)
        mses = [r["mse"] for r in runs if math.isfinite(r["mse"])]
        rows.append([label, common.mean_std(mses, 4) if mses else "-", f"{diverged}/{len(runs)}",
                     f"{np.nanmedian(norms):.3g}", f"{np.nanmax(norms):.3g}",
                     f"{np.mean(norms > 10 * np.nanmedian(norms)):.1%}"])
    print(common.markdown_table(["training", "held-out MSE", "diverged", "median grad norm", "max grad norm",
                                 "steps with norm > 10x median"], rows))
    print(f"(predicting the mean scores {ADDING_BASELINE_MSE:.3f})")


def plot(report: dict, config: Config, out: str | None) -> None:
    path = common.figure_path(out, "gradient_flow.png")
    if path is None:
        return
    plt = common.pyplot()
    figure, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    for (cell_type, state, stage), entry in summarise(report).items():
        style = "-" if stage == "trained" else "--"
        axes[0].semilogy(entry["norms"], style, label=f"{cell_type} {state}_t, {stage}")
    axes[0].set_ylim(1e-25, 1e2)
    axes[0].set_xlabel("distance from the loss (steps)")
    axes[0].set_ylabel("mean ||dLoss/d state||")
    axes[0].set_title(f"gradient flow, adding problem T={config.length}")
    axes[0].legend(fontsize=7)
    for (nonlinearity, scale), ratio in report["exploding"].items():
        axes[1].semilogy(ratio, "-" if nonlinearity == "tanh" else ":", label=f"{nonlinearity}, scale {scale:g}")
    axes[1].set_xlabel("distance from the loss (steps)")
    axes[1].set_ylabel("norm relative to distance 0")
    axes[1].set_title("RNN at init, W_hh = scale x orthogonal")
    axes[1].legend(fontsize=7)
    for label, runs in report["clipping"].items():
        for index, result in enumerate(runs):
            axes[2].semilogy(result["gradient_norms"], alpha=0.6, color=f"C{list(report['clipping']).index(label)}",
                             label=label if index == 0 else None)
    axes[2].set_xlabel("training step")
    axes[2].set_ylabel("gradient norm (before clipping)")
    axes[2].set_title(f"SGD, tanh RNN, recurrent scale {config.clip_scale}")
    axes[2].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    print(f"figure: {path}")


def main(argv=None) -> dict:
    args = common.base_parser(__doc__.split("\n")[0]).parse_args(argv)
    return common.timed_run(run, common.configure(args, QUICK, FULL), args.out)


if __name__ == "__main__":
    main(sys.argv[1:])
