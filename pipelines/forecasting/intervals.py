"""Quantiles beside each forecast, calibrated on the validation split.

For each quantile level, step and target, the offset is the empirical quantile of the
model's validation errors, each divided by its window's typical one-step change: the
offset that minimises the pinball loss of that level on the validation split. A forecast's
quantiles are the forecast plus the offsets times its own window's typical change, so a
calm window gets a narrow interval and a volatile one a wide interval; offsets increase
with the level, so quantiles cannot cross. A baseline's interval comes from the plain
empirical quantiles of its own validation errors. Imports no TensorFlow.
"""

from __future__ import annotations

import numpy as np

from pipelines.forecasting import linear

# A window's typical change is at least this fraction of the training split's.
MIN_CHANGE_FRACTION = 0.1


def step_scale(info) -> list[float]:
    """Per target, the typical change of one step (the training split's persistence error;
    its standard deviation for a constant series)."""
    return [
        float(change) if change > 0 else float(std)
        for change, std in zip(info.mase_scale, info.target_std, strict=True)
    ]


def window_change(inputs: np.ndarray, info) -> np.ndarray:
    """``[n, targets]``: each window's mean absolute one-step change of each target (of its
    log return, for returns), at least MIN_CHANGE_FRACTION of the training split's."""
    series = linear.transformed_windows(inputs, info.target_indices, info.transform)
    series = series[:, :, info.target_indices]
    change = np.abs(series) if info.transform == "log_return" else np.abs(np.diff(series, axis=1))
    floor = MIN_CHANGE_FRACTION * np.asarray(step_scale(info))
    return np.maximum(change.mean(axis=1), floor)


def calibrate(forecast: np.ndarray, truth: np.ndarray, inputs: np.ndarray, info, levels):
    """``[levels, horizon, targets]``: the scaled offsets of the model's quantiles."""
    scaled = (truth - forecast) / window_change(inputs, info)[:, None, :]
    return _increasing(np.quantile(scaled, levels, axis=0))


def apply(forecast: np.ndarray, inputs: np.ndarray, info, offsets: np.ndarray) -> np.ndarray:
    """``[n, horizon, targets, levels]``: the forecast's quantiles."""
    change = window_change(inputs, info)[:, None, :, None]
    return forecast[..., None] + np.moveaxis(np.asarray(offsets), 0, -1) * change


def empirical(forecast_val: np.ndarray, truth_val: np.ndarray, forecast: np.ndarray, levels):
    """``[n, horizon, targets, levels]``: a baseline's quantiles, its forecast plus the plain
    empirical quantiles of its validation errors."""
    offsets = _increasing(np.quantile(truth_val - forecast_val, levels, axis=0))
    return forecast[..., None] + np.moveaxis(offsets, 0, -1)


def interval_metrics(quantiles: np.ndarray, truth: np.ndarray, levels) -> dict[str, float]:
    """Coverage and mean width of the interval from the lowest to the highest quantile,
    and the pinball loss averaged over the levels (target units)."""
    low, high = quantiles[..., 0], quantiles[..., -1]
    error = truth[..., None] - quantiles
    levels = np.asarray(levels)
    pinball = np.maximum(levels * error, (levels - 1) * error)
    return {
        "interval_coverage": float(np.mean((truth >= low) & (truth <= high))),
        "interval_width": float(np.mean(high - low)),
        "pinball_loss": float(np.mean(pinball)),
    }


def calibrate_model(model, validation: tuple, info) -> None:
    """Set the model's quantile offsets from its errors on ``validation`` (nothing to do for
    a model without quantile levels)."""
    layer = model.get_layer("forecast")
    if not layer.quantiles:
        return
    inputs, truth = validation
    forecast = np.asarray(model.predict(inputs, verbose=0, batch_size=1024), dtype=np.float64)
    offsets = calibrate(forecast, truth.astype(np.float64), inputs, info, layer.quantiles)
    layer.interval_offsets.assign(offsets.astype(np.float32))


def model_offsets(model) -> tuple[list[float], np.ndarray]:
    """The model's quantile levels and offsets ``[levels, horizon, targets]``."""
    layer = model.get_layer("forecast")
    return layer.quantiles, np.asarray(layer.interval_offsets.numpy(), dtype=np.float64)


def _increasing(offsets: np.ndarray) -> np.ndarray:
    """Offsets never decreasing along the levels (the first axis)."""
    return np.maximum.accumulate(offsets, axis=0)
