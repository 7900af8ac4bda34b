"""Forecasting metrics (MAE, RMSE, MASE per horizon step; direction and price errors for
returns) and baselines (persistence, seasonal naive, a linear model, the training mean) on the
same test windows."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from pipelines import strict_json
from pipelines.base import Evaluation, Splits
from pipelines.forecasting import intervals, linear
from pipelines.forecasting.data import ForecastingInfo
from pipelines.plotting import plt

MASE_UNDEFINED = (
    "the training split's one-step persistence error is zero for a target (a constant "
    "series), so there is no scale to divide by"
)
UNDEFINED_REASONS = {
    "price_mae": "the implied prices overflow (returns too large to compound)",
    "price_rmse": "the implied prices overflow (returns too large to compound)",
}

# === Baselines ===


def transformed_windows(inputs: np.ndarray, info: ForecastingInfo) -> np.ndarray:
    """What the model's first layer makes of windows: log returns of the price columns."""
    return linear.transformed_windows(inputs, info.target_indices, info.transform)


def persistence(inputs: np.ndarray, info: ForecastingInfo) -> np.ndarray:
    """The last value, held: for returns, the last price held, i.e. a zero return."""
    return linear.persistence(inputs, info.target_indices, info.transform, info.horizon)


def seasonal_naive(inputs: np.ndarray, info: ForecastingInfo) -> np.ndarray:
    """The value one season earlier (same day last week, same hour yesterday) for each step."""
    series = transformed_windows(inputs, info)[:, :, info.target_indices]
    period, steps = info.seasonal_period, series.shape[1]
    rows = [steps - 1 + h - period * math.ceil(h / period) for h in range(1, info.horizon + 1)]
    return series[:, rows, :]


def train_mean(inputs: np.ndarray, info: ForecastingInfo) -> np.ndarray:
    """The training split's mean of each target (climatology; the drift for returns)."""
    shape = (len(inputs), info.horizon, len(info.target_indices))
    return np.broadcast_to(np.asarray(info.target_mean), shape).copy()


# === Metrics ===


def forecast_metrics(
    predicted: np.ndarray, truth: np.ndarray, inputs: np.ndarray, info: ForecastingInfo
) -> dict[str, float]:
    """MAE, RMSE, MASE (scaled by the in-sample persistence error) in target units, over all
    steps and targets, then per step when the horizon exceeds one. For log returns also the
    directional accuracy (up / not up) and the errors of the implied prices."""
    error = predicted - truth
    scale = np.asarray(info.mase_scale, dtype=np.float64)
    metrics = _errors(error, scale)
    if info.transform == "log_return":
        metrics["directional_accuracy"] = float(np.mean((predicted > 0) == (truth > 0)))
        price_error = implied_prices(predicted, inputs, info) - implied_prices(truth, inputs, info)
        metrics["price_mae"] = float(np.mean(np.abs(price_error)))
        metrics["price_rmse"] = float(np.sqrt(np.mean(price_error**2)))
    if info.horizon > 1:
        for step in range(info.horizon):
            for key, value in _errors(error[:, step : step + 1], scale).items():
                metrics[f"{key}_step_{step + 1}"] = value
    return strict_json.defined_metrics(metrics, UNDEFINED_REASONS)


def _errors(error: np.ndarray, scale: np.ndarray) -> dict[str, float | None]:
    """MAE, RMSE and MASE; MASE is null with its reason when a target's scale is zero."""
    errors = {
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(error**2))),
    }
    if mase_defined(scale):
        return errors | {"mase": float(np.mean(np.abs(error) / scale))}
    return errors | strict_json.undefined("mase", MASE_UNDEFINED)


def mase_defined(scale: np.ndarray) -> bool:
    """Whether every target's MASE scale (training persistence error) is positive."""
    return bool(np.all(np.asarray(scale) > 0))


def implied_prices(log_returns: np.ndarray, inputs: np.ndarray, info: ForecastingInfo):
    """Prices the log returns imply from each window's last price: [n, horizon, targets]."""
    last = inputs[:, -1, info.target_indices].astype(np.float64)
    return last[:, None, :] * np.exp(np.cumsum(log_returns, axis=1))


# === Evaluation ===


def evaluate(model, splits: Splits, config, out_dir: Path) -> Evaluation:
    """Model and baselines on ``splits.test``; writes ``forecast.png``, ``error_by_horizon.png``.

    With quantile levels, each also gets the coverage and width of its interval and its
    pinball loss: the model's calibrated quantiles (``intervals``), each baseline's from the
    empirical quantiles of its own validation errors."""
    info = splits.info
    inputs, truth = splits.test
    forecasts, quantiles, metrics = scored(model, splits.test, splits.validation, info)
    levels = intervals.model_offsets(model)[0]
    plot_forecast(forecasts, truth, info, out_dir / "forecast.png", quantiles.get("model"))
    plot_error_by_horizon(metrics, info, out_dir / "error_by_horizon.png")
    report = report_text(forecasts, truth, inputs, info, info.linear.alpha)
    report += _interval_text(metrics, levels)
    return Evaluation(
        test=metrics.pop("model"),
        baselines=metrics,
        plots={
            "Forecast against truth (test period)": "forecast.png",
            "Error by horizon step (test split)": "error_by_horizon.png",
        },
        report=report,
    )


def scored(model, test: tuple, validation: tuple, info: ForecastingInfo):
    """``(forecasts, quantiles, metrics)`` of the model and every baseline on ``test``, by
    name; quantiles (empty without quantile levels) as ``evaluate`` describes."""
    inputs, truth = test
    forecasts = {"model": model.predict(inputs, verbose=0, batch_size=1024).astype(np.float64)}
    strict_json.require_finite_outputs(forecasts["model"])
    forecasts |= baseline_forecasts(inputs, info)
    metrics = {name: forecast_metrics(f, truth, inputs, info) for name, f in forecasts.items()}
    levels, offsets = intervals.model_offsets(model)
    quantiles = {}
    if levels:
        quantiles = {"model": intervals.apply(forecasts["model"], inputs, info, offsets)}
        quantiles |= _baseline_quantiles(forecasts, validation, info, levels)
        for name, values in quantiles.items():
            metrics[name] |= intervals.interval_metrics(values, truth, levels)
    return forecasts, quantiles, metrics


def baseline_forecasts(inputs: np.ndarray, info: ForecastingInfo) -> dict[str, np.ndarray]:
    """Every baseline's forecasts of the windows ``inputs``."""
    return {
        "persistence": persistence(inputs, info),
        "seasonal_naive": seasonal_naive(inputs, info),
        "linear": linear.predict(info.linear, inputs, info),
        "train_mean": train_mean(inputs, info),
    }


def _baseline_quantiles(forecasts: dict, validation: tuple, info: ForecastingInfo, levels):
    """Each baseline's quantiles: its forecast plus its validation errors' quantiles."""
    inputs_val, truth_val = validation
    on_validation = baseline_forecasts(inputs_val, info)
    return {
        name: intervals.empirical(on_validation[name], truth_val, forecasts[name], levels)
        for name in on_validation
    }


def _interval_text(metrics: dict, levels) -> str:
    """Markdown: the coverage of each interval on the test split against its nominal level."""
    if not levels:
        return ""
    nominal = levels[-1] - levels[0]
    rows = [
        f"| {name} | {m['interval_coverage']:.3f} | {m['interval_width']:.4g} | "
        f"{m['pinball_loss']:.4g} |"
        for name, m in metrics.items()
    ]
    return "\n".join(
        [
            "## Intervals",
            "",
            f"The interval from quantile {levels[0]:g} to {levels[-1]:g} should cover "
            f"{nominal:.0%} of the test values. The model's quantiles are its forecast plus "
            "offsets calibrated on the validation split, scaled by each window's typical "
            "one-step change; each baseline's are its forecast plus the empirical quantiles "
            "of its own validation errors (for persistence: the classic residual interval). "
            f"Pinball loss: averaged over the levels {', '.join(f'{q:g}' for q in levels)}.",
            "",
            "| forecast | coverage | mean width | pinball loss |",
            "| --- | --- | --- | --- |",
            *rows,
            "",
        ]
    )


def plot_forecast(
    forecasts: dict, truth: np.ndarray, info: ForecastingInfo, path: Path, quantiles=None
) -> None:
    """Truth beside the model's (and persistence's) first- and last-step forecasts, with the
    model's interval (lowest to highest quantile) shaded where it gives one."""
    targets = info.target_columns[:4]
    steps = sorted({1, info.horizon})
    figure, axes = plt.subplots(
        len(targets), len(steps), figsize=(7 * len(steps), 2.8 * len(targets)), squeeze=False
    )
    period = info.split_periods["test"]
    unit = " (log return)" if info.transform == "log_return" else ""
    for row, target in enumerate(targets):
        for col, step in enumerate(steps):
            axis = axes[row][col]
            axis.plot(truth[:, step - 1, row], color="black", lw=1.2, label="truth")
            axis.plot(forecasts["model"][:, step - 1, row], lw=1.0, label="model")
            if quantiles is not None:
                band = quantiles[:, step - 1, row]
                x = np.arange(len(band))
                axis.fill_between(x, band[:, 0], band[:, -1], alpha=0.25, label="interval")
            axis.plot(
                forecasts["persistence"][:, step - 1, row], lw=0.8, alpha=0.6, label="persistence"
            )
            axis.set_title(f"{target}{unit}, {step} step(s) ahead")
            axis.set_xlabel(f"test window, in time order (split {period.first} to {period.last})")
    _save(figure, path)


def plot_error_by_horizon(metrics: dict, info: ForecastingInfo, path: Path) -> None:
    """MAE (one target) or MASE (several) of the model and every baseline per forecast step."""
    key = "mae" if len(info.target_columns) == 1 else "mase"
    horizon = info.horizon
    figure, axis = plt.subplots(figsize=(6.5, 3.8))
    steps = np.arange(1, horizon + 1)
    for name, values in metrics.items():
        errors = [values[f"{key}_step_{s}"] if horizon > 1 else values[key] for s in steps]
        errors = [np.nan if e is None else e for e in errors]  # an undefined MASE
        axis.plot(steps, errors, marker="o", lw=2.0 if name == "model" else 1.0, label=name)
    axis.set_xlabel("forecast step")
    axis.set_ylabel(key.upper())
    axis.set_xticks(steps)
    axis.set_title(f"Test {key.upper()} by horizon step")
    _save(figure, path)


def _save(figure, path: Path) -> None:
    """Grid and legend on every axis, then the figure written to ``path`` and closed."""
    for axis in figure.axes:
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# === Report ===


def report_text(forecasts, truth, inputs, info: ForecastingInfo, ridge_alpha) -> str:
    """Markdown: how the model compares with each baseline, and whether the gap is real."""
    scale = np.asarray(info.mase_scale, dtype=np.float64)
    scaled = "MASE" if mase_defined(scale) else "MAE"
    if not mase_defined(scale):
        scale = np.ones_like(scale)
    per_window = {n: (np.abs(f - truth) / scale).mean(axis=(1, 2)) for n, f in forecasts.items()}
    model_mae = float(np.mean(np.abs(forecasts["model"] - truth)))
    lines = [
        "## The model against the baselines",
        "",
        "Errors are in target units; MASE divides them by the training split's mean error of "
        "one-step persistence, so it is comparable across targets. The difference is the "
        f"model's {scaled} minus the baseline's on the same windows, with two naive standard "
        "errors (they ignore the correlation of neighbouring windows, so they are too narrow)."
        + ("" if scaled == "MASE" else f" MASE is undefined here: {MASE_UNDEFINED}."),
        "",
        f"| baseline | its MAE | model's MAE vs it | {scaled} difference ± 2 SE | verdict |",
        "| --- | --- | --- | --- | --- |",
        *_baseline_rows(forecasts, truth, per_window, model_mae),
        "",
        f"Model MAE {model_mae:.4g}, {scaled} {float(per_window['model'].mean()):.3f}. "
        "Persistence: "
        + (
            "the last price held (a zero log return), i.e. the random walk. "
            if info.transform == "log_return"
            else "the last observed value. "
        )
        + f"Seasonal naive: the value {info.seasonal_period} steps earlier "
        f"(frequency: {info.frequency}). Linear: ridge regression on the same window "
        f"(alpha {ridge_alpha:g}, chosen on the validation split); the default model "
        "(anchor=linear) starts from it and learns a correction.",
        "",
    ]
    if info.transform == "log_return":
        lines += _returns_text(forecasts, truth, inputs, info, per_window)
    if len(info.target_columns) > 1:
        lines += _per_target_table(forecasts, truth, info)
    lines += _data_text(info)
    return "\n".join(lines)


def _baseline_rows(forecasts, truth, per_window, model_mae: float) -> list[str]:
    """One table row per baseline: its MAE, the model's relative to it, the MASE difference."""
    rows = []
    for name in forecasts:
        if name == "model":
            continue
        mae = float(np.mean(np.abs(forecasts[name] - truth)))
        mean, se = _mean_and_se(per_window["model"] - per_window[name])
        rows.append(
            f"| {name} | {mae:.4g} | {_relative(model_mae, mae)} | "
            f"{mean:+.4f} ± {2 * se:.4f} | {_verdict(mean, se)} |"
        )
    return rows


def _relative(value: float, reference: float) -> str:
    """``value`` relative to ``reference`` in percent; ``n/a`` when the reference is zero."""
    if not reference > 0:
        return "n/a (its error is zero)"
    return f"{100 * (value / reference - 1):+.1f} %"


def _mean_and_se(difference: np.ndarray) -> tuple[float, float]:
    """The mean of per-window differences and its naive standard error (0 for one window)."""
    if len(difference) < 2:
        return float(difference.mean()), 0.0
    return float(difference.mean()), float(difference.std(ddof=1) / np.sqrt(len(difference)))


def _verdict(mean: float, se: float) -> str:
    if abs(mean) <= 2 * se:
        return "no clear difference (within 2 SE)"
    return "model better" if mean < 0 else "model worse"


def _returns_text(forecasts, truth, inputs, info: ForecastingInfo, per_window) -> list[str]:
    """Markdown on returns: the random walk's errors, in returns and prices, and direction."""
    model, walk = forecasts["model"], forecasts["persistence"]
    true_price = implied_prices(truth, inputs, info)
    price_mae = float(np.mean(np.abs(implied_prices(model, inputs, info) - true_price)))
    walk_price_mae = float(np.mean(np.abs(implied_prices(walk, inputs, info) - true_price)))
    skill = _skill_text(*_mean_and_se(per_window["model"] - per_window["persistence"]))
    return [
        "## Returns: does the model beat the random walk?",
        "",
        f"{skill} Test MAE of log returns: model {float(np.mean(np.abs(model - truth))):.5f}, "
        f"random walk {float(np.mean(np.abs(walk - truth))):.5f}. "
        f"Price level (each window's last price moved by the forecast returns): model MAE "
        f"{price_mae:.4g}, random walk {walk_price_mae:.4g} "
        f"({_relative(price_mae, walk_price_mae)}).",
        "",
        _direction_text(model, truth),
        "",
    ]


def _skill_text(mean: float, se: float) -> str:
    """Whether the model's return errors differ from the random walk's beyond noise."""
    if mean < -2 * se:
        return (
            "The model's return errors are smaller than the random walk's by more than two "
            "(naive) standard errors. Treat even this with caution: one test period, "
            "overlapping windows, no transaction costs."
        )
    if mean > 2 * se:
        return "The model is worse than the random walk: it has no forecasting skill here."
    return (
        "The model does not beat the random walk: the difference in error is within noise, "
        "as it is for almost every model of daily returns. It shows no forecasting skill."
    )


def _direction_text(model: np.ndarray, truth: np.ndarray) -> str:
    """The model's directional accuracy beside always answering 'up' and chance."""
    direction = float(np.mean((model > 0) == (truth > 0)))
    up = float(np.mean(truth > 0))
    direction_se = math.sqrt(max(up * (1 - up), 1e-12) / truth.size)
    return (
        f"Directional accuracy (up / not up): model {direction:.3f}; the test period went up on "
        f"{up:.3f} of the steps, so always answering 'up' scores {up:.3f}, and chance "
        f"accuracy spans ± {2 * direction_se:.3f} (two standard errors): "
        + (
            "the model's direction calls are no better than chance."
            if direction <= max(up, 1 - up) + 2 * direction_se
            else "the model calls the direction better than chance on this test period."
        )
    )


def _per_target_table(forecasts, truth, info: ForecastingInfo) -> list[str]:
    targets = info.target_columns
    lines = [
        "## MAE per target (target units)",
        "",
        "| forecast | " + " | ".join(targets) + " |",
        "| --- |" + " --- |" * len(targets),
    ]
    for name, predicted in forecasts.items():
        errors = np.mean(np.abs(predicted - truth), axis=(0, 1))
        lines.append(f"| {name} | " + " | ".join(f"{e:.4g}" for e in errors) + " |")
    return lines + [""]


def _data_text(info: ForecastingInfo) -> list[str]:
    periods = info.split_periods
    lines = [
        "## Data",
        "",
        f"Window of {info.window} steps of {', '.join(info.feature_columns)} "
        f"(frequency: {info.frequency}) -> the next {info.horizon} step(s) of "
        f"{', '.join(info.target_columns)}"
        + (" as log returns" if info.transform == "log_return" else "")
        + ". Chronological splits, every window inside one split; normalisation statistics "
        "from the training split only.",
        "",
        "| split | first | last | rows |",
        "| --- | --- | --- | --- |",
        *(f"| {s} | {p.first} | {p.last} | {p.rows:,} |" for s, p in periods.items()),
        "",
    ]
    if info.notes:
        lines += ["Found in the data: " + "; ".join(info.notes) + ".", ""]
    return lines
