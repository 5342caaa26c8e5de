"""Claim 4, time series: LSTM and GRU forecasts of the airline passengers series vs seasonal naive.

The series is Box & Jenkins' series G: monthly international airline passengers
(thousands), January 1949 to December 1960, 144 values, embedded below so the script
runs anywhere. The models train on the first 120 months (1949-1958) and are scored
on the last 24 (1959-1960), which they never see, in two protocols:

- **24-month forecast** from December 1958: the models feed their own predictions
  back (recursive forecasting); seasonal naive repeats 1958 twice.
- **one step ahead**: each month is forecast from the actual values up to the month
  before (no refitting); seasonal naive is the value 12 months earlier.

Each network reads a window of the last 12 values of a transformed series and predicts
the next one. Two transforms are compared:

- ``log level``: ``log(passengers)``, standardised with the training months' mean and
  standard deviation;
- ``yearly log growth``: ``log(y_t) - log(y_(t-12))``, standardised likewise; the forecast
  is ``y_(t-12) * exp(predicted growth)``, so predicting zero growth *is* seasonal naive.

Baselines: seasonal naive, and seasonal naive with drift (each year grows by the mean
yearly log growth of the training months). Hyperparameters were fixed before looking
at the test months; there is no validation-based tuning.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, replace

import numpy as np

import common
import tinygrad_rnn as tg
from tinygrad_rnn import nn, optim
from tinygrad_rnn.nn import functional as F

# Box & Jenkins (1976) series G, thousands of passengers per month, Jan 1949 - Dec 1960 (public data).
AIRLINE_PASSENGERS = (
    112, 118, 132, 129, 121, 135, 148, 148, 136, 119, 104, 118,  # 1949
    115, 126, 141, 135, 125, 149, 170, 170, 158, 133, 114, 140,  # 1950
    145, 150, 178, 163, 172, 178, 199, 199, 184, 162, 146, 166,  # 1951
    171, 180, 193, 181, 183, 218, 230, 242, 209, 191, 172, 194,  # 1952
    196, 196, 236, 235, 229, 243, 264, 272, 237, 211, 180, 201,  # 1953
    204, 188, 235, 227, 234, 264, 302, 293, 259, 229, 203, 229,  # 1954
    242, 233, 267, 269, 270, 315, 364, 347, 312, 274, 237, 278,  # 1955
    284, 277, 317, 313, 318, 374, 413, 405, 355, 306, 271, 306,  # 1956
    315, 301, 356, 348, 355, 422, 465, 467, 404, 347, 305, 336,  # 1957
    340, 318, 362, 348, 363, 435, 491, 505, 404, 359, 310, 337,  # 1958
    360, 342, 406, 396, 420, 472, 548, 559, 463, 407, 362, 405,  # 1959
    417, 391, 419, 461, 472, 535, 622, 606, 508, 461, 390, 432,  # 1960
)
SEASON = 12
TEST_MONTHS = 24


@dataclass(frozen=True)
class Config:
    seeds: tuple[int, ...]
    cells: tuple[str, ...]
    transforms: tuple[str, ...]
    window: int
    hidden_size: int
    epochs: int           # full-batch Adam steps
    learning_rate: float

    def __post_init__(self):
        unknown = set(self.transforms) - {"log level", "yearly log growth"}
        if unknown:
            raise ValueError(f"unknown transform(s) {sorted(unknown)}")


FULL = Config(seeds=(0, 1, 2, 3, 4), cells=("LSTM", "GRU"), transforms=("log level", "yearly log growth"),
              window=12, hidden_size=16, epochs=800, learning_rate=1e-2)
QUICK = replace(FULL, seeds=(0,), epochs=300)


# ------------------------------------------------------------------ series and transforms
class Transform:
    """Maps passengers to the standardised series a network models, and a prediction back.

    ``series[t]`` is defined for ``t >= offset``; ``invert(value, t, history)`` turns a
    prediction of ``series[t]`` into passengers given the passengers before ``t``.
    """

    def __init__(self, name: str, train: np.ndarray):
        self.name = name
        self.offset = SEASON if name == "yearly log growth" else 0
        raw = self._raw(np.log(train))[self.offset:]
        self.mean, self.std = raw.mean(), raw.std()

    def _raw(self, logs: np.ndarray) -> np.ndarray:
        if self.offset == 0:
            return logs
        growth = np.full_like(logs, np.nan)
        growth[SEASON:] = logs[SEASON:] - logs[:-SEASON]
        return growth

    def series(self, passengers: np.ndarray) -> np.ndarray:
        return (self._raw(np.log(passengers)) - self.mean) / self.std

    def invert(self, value: float, history: np.ndarray) -> float:
        """Passengers at month ``len(history)`` from a prediction of the transformed value there."""
        raw = value * self.std + self.mean
        return float(np.exp(raw)) if self.offset == 0 else float(history[-SEASON] * np.exp(raw))


def windows(series: np.ndarray, start: int, window: int):
    """Every (window of ``window`` values, next value) pair from ``series[start:]``: ``x (W, N, 1)``, ``y (N, 1)``."""
    targets = np.arange(start + window, len(series))
    x = np.stack([series[t - window:t] for t in targets], axis=1)[..., None]
    return x.astype(np.float32), series[targets][:, None].astype(np.float32)


class Forecaster(nn.Module):
    """``forward(x (W, B, 1)) -> (B, 1)``: a recurrent layer read at the last step, then a linear head."""

    def __init__(self, cell_type: str, hidden_size: int):
        super().__init__()
        self.recurrent = common.recurrent_layer(cell_type, 1, hidden_size)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x):
        output, _ = self.recurrent(x)
        return self.head(output[-1])


def train_forecaster(cell_type: str, transform: Transform, train: np.ndarray, seed: int, config: Config):
    common.seed_everything(seed)
    model = Forecaster(cell_type, config.hidden_size)
    x, y = windows(transform.series(train), transform.offset, config.window)
    inputs, targets = common.tensor(x), common.tensor(y)
    optimizer = optim.Adam(model.parameters(), lr=config.learning_rate)
    for _ in range(config.epochs):
        loss = F.mse_loss(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def network_forecasts(model: Forecaster, transform: Transform, config: Config) -> dict[str, np.ndarray]:
    """Both protocols for the last TEST_MONTHS months, in passengers."""
    passengers = np.asarray(AIRLINE_PASSENGERS, dtype=float)
    first = len(passengers) - TEST_MONTHS
    forecasts = {"24-month forecast": [], "one step ahead": []}
    history = passengers[:first].copy()  # grows with the model's own predictions
    with tg.no_grad():
        for month in range(first, len(passengers)):
            recursive = transform.series(history)[-config.window:]
            actual = transform.series(passengers[:month])[-config.window:]
            batch = common.tensor(np.stack([recursive, actual], axis=1)[..., None])
            predicted = model(batch).numpy()[:, 0]
            forecasts["24-month forecast"].append(transform.invert(predicted[0], history))
            forecasts["one step ahead"].append(transform.invert(predicted[1], passengers[:month]))
            history = np.append(history, forecasts["24-month forecast"][-1])
    return {protocol: np.array(values) for protocol, values in forecasts.items()}


def baseline_forecasts() -> dict[str, dict[str, np.ndarray]]:
    passengers = np.asarray(AIRLINE_PASSENGERS, dtype=float)
    first = len(passengers) - TEST_MONTHS
    last_year = passengers[first - SEASON:first]
    logs = np.log(passengers[:first])
    drift = np.mean(logs[SEASON:] - logs[:-SEASON])  # mean yearly log growth of the training months
    years_ahead = 1 + np.arange(TEST_MONTHS) // SEASON
    return {
        "seasonal naive": {"24-month forecast": np.tile(last_year, TEST_MONTHS // SEASON),
                           "one step ahead": passengers[first - SEASON:-SEASON]},
        "seasonal naive with drift": {
            "24-month forecast": np.tile(last_year, TEST_MONTHS // SEASON) * np.exp(drift * years_ahead),
            "one step ahead": passengers[first - SEASON:-SEASON] * np.exp(drift)},
    }


def errors(forecast: np.ndarray) -> dict[str, float]:
    actual = np.asarray(AIRLINE_PASSENGERS[-TEST_MONTHS:], dtype=float)
    difference = forecast - actual
    return {"RMSE": float(np.sqrt(np.mean(difference ** 2))), "MAE": float(np.mean(np.abs(difference))),
            "MAPE %": float(100 * np.mean(np.abs(difference) / actual))}


# ------------------------------------------------------------------ experiment
def run(config: Config = FULL, out: str | None = None, verbose: bool = True) -> dict:
    """``{method: {protocol: {"errors": [per-seed error dicts], "forecasts": [...]}}}``."""
    train = np.asarray(AIRLINE_PASSENGERS[:-TEST_MONTHS], dtype=float)
    results = {name: {protocol: {"errors": [errors(values)], "forecasts": [values]}
                      for protocol, values in by_protocol.items()}
               for name, by_protocol in baseline_forecasts().items()}
    for transform_name in config.transforms:
        transform = Transform(transform_name, train)
        for cell_type in config.cells:
            name = f"{cell_type}, {transform_name}"
            results[name] = {}
            watch = common.Stopwatch()
            for seed in config.seeds:
                model = train_forecaster(cell_type, transform, train, seed, config)
                for protocol, values in network_forecasts(model, transform, config).items():
                    entry = results[name].setdefault(protocol, {"errors": [], "forecasts": []})
                    entry["errors"].append(errors(values))
                    entry["forecasts"].append(values)
            if verbose:
                print(f"  {name}: {watch.seconds():.1f} s for {len(config.seeds)} seeds", flush=True)
    if verbose:
        print_tables(results, config)
    plot(results, out)
    return results


def mean_error(results: dict, method: str, protocol: str, metric: str) -> float:
    return float(np.mean([e[metric] for e in results[method][protocol]["errors"]]))


def print_tables(results: dict, config: Config) -> None:
    for protocol in ("24-month forecast", "one step ahead"):
        print(f"\n{protocol}, Jan 1959 - Dec 1960 (passengers in thousands); networks: hidden size "
              f"{config.hidden_size}, window {config.window}, mean ± std over seeds {list(config.seeds)}")
        rows = [[method] + [common.mean_std([e[metric] for e in by_protocol[protocol]["errors"]], 1)
                            for metric in ("RMSE", "MAE", "MAPE %")]
                for method, by_protocol in results.items()]
        print(common.markdown_table(["method", "RMSE", "MAE", "MAPE %"], rows))


def plot(results: dict, out: str | None) -> None:
    path = common.figure_path(out, "airline_forecast.png")
    if path is None:
        return
    plt = common.pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(14, 4.5), sharey=True)
    months = 1949 + np.arange(len(AIRLINE_PASSENGERS)) / 12
    for axis, protocol in zip(axes, ("24-month forecast", "one step ahead")):
        axis.plot(months, AIRLINE_PASSENGERS, color="black", label="actual")
        for method, by_protocol in results.items():
            mean_forecast = np.mean(by_protocol[protocol]["forecasts"], axis=0)
            axis.plot(months[-TEST_MONTHS:], mean_forecast, label=method)
        axis.set_xlim(1956, 1961)
        axis.set_ylim(250, 700)
        axis.set_title(protocol)
        axis.set_xlabel("year")
        axis.legend(fontsize=7)
    axes[0].set_ylabel("passengers (thousands)")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    print(f"figure: {path}")


def main(argv=None) -> dict:
    args = common.base_parser(__doc__.split("\n")[0]).parse_args(argv)
    return common.timed_run(run, common.configure(args, QUICK, FULL), args.out)


if __name__ == "__main__":
    main(sys.argv[1:])
