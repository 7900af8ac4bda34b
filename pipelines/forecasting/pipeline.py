"""The forecasting pipeline: wires config, data, model and evaluation for the runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf

from pipelines.base import Evaluation, Pipeline, Splits
from pipelines.errors import UserError
from pipelines.export import number_input, request_checks
from pipelines.forecasting import backtest, data, intervals
from pipelines.forecasting.data import ForecastingInfo
from pipelines.tables import read_table_with_lines

# What serving_default takes in one request; each window has exactly the model's shape.
MAX_SERVING_WINDOWS = 4096  # windows per request
MAX_SERVING_VALUES = 2**24  # values of all the windows of one request (64 MiB of float32)


class ForecastingPipeline(Pipeline):
    """Forecasting the next ``horizon`` steps of one or more series from a window of the past."""

    name = "forecasting"
    info_class = ForecastingInfo

    def load_data(self, config, spec, seed: int) -> Splits:
        """The splits; with ``backtest_folds``, checked to leave each fold a window, before
        any training."""
        splits = super().load_data(config, spec, seed)
        if config.backtest_folds:
            windows = sum(splits.sizes().values())
            backtest.fold_starts(len(splits.train[1]), windows, config)
        return splits

    def evaluate(self, model, splits: Splits, config, out_dir: Path) -> Evaluation:
        """Calibrate the model's quantiles on the validation split, evaluate it, and with
        ``backtest_folds`` add the rolling-origin backtest."""
        intervals.calibrate_model(model, splits.validation, splits.info)
        evaluation = super().evaluate(model, splits, config, out_dir)
        if not config.backtest_folds:
            return evaluation
        summary = backtest.backtest(model, splits, config, out_dir)
        return backtest.merged(evaluation, summary, config)

    def export(self, keras_model, info: ForecastingInfo, path: Path) -> None:
        """``serving_default``: ``window`` float32 [batch, steps, features] in original units
        -> ``forecast`` [batch, horizon, targets] in original units, and where the run has
        quantile levels ``quantiles`` [batch, horizon, targets, levels] (``intervals``).

        ``steps`` and ``features`` must be the model's (``window`` and the feature columns),
        and every value finite, and the request within ``serving_limits``: otherwise the call
        ends with an InvalidArgumentError that says which, before the model runs."""
        steps, features = info.window, len(info.feature_columns)
        columns = ", ".join(info.feature_columns)
        limits = self.serving_limits(info)
        levels, offsets = intervals.model_offsets(keras_model)

        @tf.function(input_signature=[tf.TensorSpec([None, None, None], tf.float32, name="window")])
        def serve(window):
            shape = tf.shape(window)
            checks = [
                tf.debugging.assert_equal(
                    shape[1],
                    steps,
                    message=f"forecasting: a window must have exactly {steps} steps (window)",
                ),
                tf.debugging.assert_equal(
                    shape[2],
                    features,
                    message=f"forecasting: a window must have {features} features ({columns})",
                ),
                *request_checks({"window": window}, limits, "forecasting"),
            ]
            with tf.control_dependencies(checks):
                finite = tf.debugging.assert_all_finite(
                    window, message="forecasting: the window has NaN or infinite values"
                )
            window = tf.ensure_shape(finite, [None, steps, features])
            forecast = keras_model(window, training=False)
            if not levels:
                return {"forecast": forecast}
            return {"forecast": forecast, "quantiles": _quantiles(forecast, window, info, offsets)}

        self.write_serving_export(keras_model, {"serving_default": serve}, info, path, limits)

    def serving_example(self, info: ForecastingInfo) -> dict[str, Any]:
        """Two windows of ones, in the inputs' original units."""
        window = [[1.0] * len(info.feature_columns)] * info.window
        return {"window": [window, window]}

    def serving_limits(self, info: ForecastingInfo) -> dict[str, Any]:
        """Windows per request; values per window (``window`` steps x features) and over
        all the windows of a request."""
        values = info.window * len(info.feature_columns)
        return {
            "max_items": MAX_SERVING_WINDOWS,
            "inputs": {"window": number_input("float32", values, MAX_SERVING_VALUES)},
        }

    def predict(self, keras_model, inputs: list[str], info: ForecastingInfo) -> list[str]:
        """For each CSV (the model's columns, and its time column where present): the
        forecast after its last ``window`` rows."""
        lines = []
        for path in inputs:
            window, last_time = _last_window(Path(path), info)
            forecast = keras_model.predict(window[None], verbose=0)[0]
            lines.append(f"{path}\tafter {last_time}\t{_describe(forecast, window, info)}")
        return lines


def _quantiles(forecast, window, info: ForecastingInfo, offsets: np.ndarray):
    """``intervals.apply`` in the graph: ``[batch, horizon, targets, levels]``."""
    prices = tf.gather(window, info.target_indices, axis=-1)
    if info.transform == "log_return":
        change = tf.abs(tf.math.log(prices[:, 1:] / prices[:, :-1]))
    else:
        change = tf.abs(prices[:, 1:] - prices[:, :-1])
    floor = intervals.MIN_CHANGE_FRACTION * np.asarray(intervals.step_scale(info))
    typical = tf.maximum(tf.reduce_mean(change, axis=1), tf.constant(floor, tf.float32))
    scaled = tf.constant(np.moveaxis(offsets, 0, -1), tf.float32)  # [horizon, targets, levels]
    return forecast[..., None] + scaled[None] * typical[:, None, :, None]


def _last_window(path: Path, info: ForecastingInfo) -> tuple[np.ndarray, str]:
    """The file's last ``window`` rows of the model's columns, in time order, and the time
    of the last; UserError naming the file and lines of a missing or bad value."""
    frame, file_lines = read_table_with_lines(path, ",")
    columns, steps = info.feature_columns, info.window
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserError(
            f"{path}: no column {missing[0]!r}; the model reads {', '.join(columns)} "
            f"(columns: {', '.join(map(str, frame.columns))})"
        )
    frame, lines, last_time = _in_time_order(frame, np.asarray(file_lines, dtype=int), info)
    if len(frame) < steps:
        raise UserError(f"{path}: {len(frame)} rows; the model needs the last {steps}")
    tail = frame[columns].iloc[-steps:]
    values = pd.DataFrame({c: data.to_numbers(tail[c]) for c in columns})
    bad = (values.isna() | np.isinf(values) | (values.abs() > np.finfo(np.float32).max)).any(axis=1)
    bad = bad.to_numpy()
    if bad.any():
        rows = ", ".join(f"line {n}" for n in lines[-steps:][bad][:5])
        raise UserError(
            f"{path}: missing, non-numeric or infinite values in the last window at {rows}"
        )
    return values.to_numpy(dtype=np.float32), last_time


def _in_time_order(frame: pd.DataFrame, lines: np.ndarray, info: ForecastingInfo):
    """Rows sorted by the time column where every value parses; the last row's time as text
    (its line where there is no usable time column)."""
    last_time = f"line {lines[-1]}" if len(lines) else "line 1"
    if info.time_column not in frame.columns:
        return frame, lines, last_time
    column = frame[info.time_column].str.strip()
    times = pd.to_datetime(column, format=info.time_format or None, errors="coerce")
    if not times.notna().all():
        return frame, lines, last_time
    order = np.argsort(times.to_numpy(), kind="stable")
    return frame.iloc[order], lines[order], data.time_text(times.iloc[order[-1]])


def _describe(forecast: np.ndarray, window: np.ndarray, info: ForecastingInfo) -> str:
    """The forecast of each target as text; for log returns also the prices they imply."""
    parts = []
    for t, name in enumerate(info.target_columns):
        values = ", ".join(f"{v:.4g}" for v in forecast[:, t])
        if info.transform == "log_return":
            last = window[-1, info.target_indices[t]]
            prices = ", ".join(f"{p:.4g}" for p in last * np.exp(np.cumsum(forecast[:, t])))
            parts.append(f"{name}: log return {values} (price {prices})")
        else:
            parts.append(f"{name}: {values}")
    return "; ".join(parts)


PIPELINE = ForecastingPipeline()
