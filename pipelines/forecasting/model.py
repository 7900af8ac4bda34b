"""The forecasting model: a window in original units -> (log returns) -> the linear forecast
(ridge, fit with the data) plus a recurrent network's correction, read from the window scaled
by its own mean and spread -> the next ``horizon`` steps of every target in original units."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

import layers  # noqa: F401  (registers the recurrent layers a saved model names)
from pipelines.forecasting.config import ForecastingConfig
from pipelines.forecasting.data import ForecastingInfo
from pipelines.forecasting.intervals import step_scale
from pipelines.training import compile_model, recurrent_stack_from

MIN_WINDOW_SPREAD = 0.1  # a window's spread floor, as a fraction of the training std

# === Layers ===


@keras.saving.register_keras_serializable(package="rnn_suite")
class WindowScaling(keras.layers.Layer):
    """Each window's features less their mean over the window, divided by their spread
    over the window (at least ``floor``): the shape of the window, not its level or scale.

    Args:
        floor: per feature, the smallest spread divided by (keeps flat windows finite).

    Call arguments:
        window: ``[batch, steps, features]``.

    Returns the same shape.
    """

    def __init__(self, floor, **kwargs):
        super().__init__(**kwargs)
        self.floor = [float(v) for v in floor]

    def call(self, window):
        """``(window - mean) / max(std, floor)``, over the steps of each window."""
        mean = ops.mean(window, axis=1, keepdims=True)
        spread = ops.sqrt(ops.mean(ops.square(window - mean), axis=1, keepdims=True))
        floor = ops.convert_to_tensor(self.floor, dtype=window.dtype)
        return (window - mean) / ops.maximum(spread, floor)

    def get_config(self):
        """The constructor arguments, for saving."""
        return {**super().get_config(), "floor": self.floor}


@keras.saving.register_keras_serializable(package="rnn_suite")
class LogReturns(keras.layers.Layer):
    """Log returns of some columns of a window; the other columns from the second step on.

    Args:
        columns: indices of the price columns (positive values) to turn into log returns.

    Call arguments:
        window: ``[batch, steps, features]`` in original units.

    Returns ``[batch, steps - 1, features]``.
    """

    def __init__(self, columns: list[int], **kwargs):
        super().__init__(**kwargs)
        self.columns = [int(c) for c in columns]

    def call(self, window):
        """Log returns of the price columns, the rest from the second step on."""
        features = ops.shape(window)[-1]
        is_price = ops.sum(ops.one_hot(self.columns, features), axis=0) > 0
        current, previous = window[:, 1:, :], window[:, :-1, :]
        ratio = ops.where(is_price, current / ops.where(is_price, previous, 1.0), 1.0)
        return ops.where(is_price, ops.log(ratio), current)

    def compute_output_shape(self, input_shape):
        """One step fewer than the window."""
        steps = None if input_shape[1] is None else input_shape[1] - 1
        return (input_shape[0], steps, input_shape[2])

    def get_config(self):
        """The constructor arguments, for saving."""
        return {**super().get_config(), "columns": self.columns}


@keras.saving.register_keras_serializable(package="rnn_suite")
class ForecastOutput(keras.layers.Layer):
    """Turns the head's normalised output into forecasts in target units.

    ``forecast = output * scale + offset``, plus the window's last value of each target
    when ``anchor_columns`` are given (the model then learns a correction to persistence).
    It also holds the forecast's quantiles as calibrated offsets (``interval_offsets``,
    set after training by ``pipelines.forecasting.intervals``), which ``quantiles_of``
    applies; the forecast itself does not use them.

    Args:
        horizon: forecast steps.
        scale: per-target standard deviation of the training targets.
        offset: per-target value added (the training mean, or zero around persistence).
        anchor_columns: window columns whose last value is added per target, or None.
        quantiles: the quantile levels the model gives beside its forecast, increasing.

    Call arguments:
        outputs: ``[batch, horizon * targets]``.
        window: ``[batch, steps, features]``, the raw input window.

    Returns ``[batch, horizon, targets]``.
    """

    def __init__(self, horizon: int, scale, offset, anchor_columns=None, quantiles=(), **kwargs):
        super().__init__(**kwargs)
        self.horizon = int(horizon)
        self.scale = [float(v) for v in scale]
        self.offset = [float(v) for v in offset]
        self.anchor_columns = None if anchor_columns is None else [int(c) for c in anchor_columns]
        self.quantiles = [float(q) for q in quantiles]
        self.interval_offsets = self.add_weight(
            shape=(len(self.quantiles), self.horizon, len(self.scale)),
            initializer="zeros",
            trainable=False,
            name="interval_offsets",
        )

    def call(self, outputs, window):
        """The forecast in target units, anchored on the window's last values if asked."""
        targets = len(self.scale)
        forecast = ops.reshape(outputs, (-1, self.horizon, targets))
        forecast = forecast * ops.convert_to_tensor(self.scale, dtype=forecast.dtype)
        forecast = forecast + ops.convert_to_tensor(self.offset, dtype=forecast.dtype)
        if self.anchor_columns is not None:
            last = ops.take(window[:, -1, :], self.anchor_columns, axis=-1)
            forecast = forecast + ops.expand_dims(ops.cast(last, forecast.dtype), 1)
        return forecast

    def compute_output_shape(self, outputs_shape, window_shape):
        """``[batch, horizon, targets]``."""
        return (outputs_shape[0], self.horizon, len(self.scale))

    def get_config(self):
        """The constructor arguments, for saving."""
        return {
            **super().get_config(),
            "horizon": self.horizon,
            "scale": self.scale,
            "offset": self.offset,
            "anchor_columns": self.anchor_columns,
            "quantiles": self.quantiles,
        }


@keras.saving.register_keras_serializable(package="rnn_suite")
class ScaledMeanSquaredError(keras.losses.Loss):
    """Mean squared error of ``(true - predicted) / scale``: targets in different units
    weigh alike (``scale``: each target's training standard deviation)."""

    def __init__(self, scale, name: str = "scaled_mse", **kwargs):
        super().__init__(name=name, **kwargs)
        self.scale = [float(v) for v in scale]

    def call(self, y_true, y_pred):
        """Per example, the mean squared error in units of each target's scale."""
        scale = ops.convert_to_tensor(self.scale, dtype=y_pred.dtype)
        error = (ops.cast(y_true, y_pred.dtype) - y_pred) / scale
        return ops.mean(ops.square(error), axis=(-2, -1))

    def get_config(self):
        """The constructor arguments, for saving."""
        return {"scale": self.scale, **super().get_config()}


# === Functional model ===


def build_model(config: ForecastingConfig, info: ForecastingInfo) -> keras.Model:
    """A compiled model: ``window`` [batch, steps, features] in original units ->
    ``forecast`` [batch, horizon, targets] in original units (log returns for stocks).

    Anchored (``anchor`` linear or persistence), the network reads each window scaled by its
    own mean and spread, so a level or trend outside the training range looks familiar, and
    its zero-initialised head adds a correction to the anchor: at the start of training the
    model is the anchor itself."""
    targets = info.target_indices
    log_returns = info.transform == "log_return"
    window = keras.Input(shape=(info.window, len(info.feature_columns)), name="window")
    x = LogReturns(targets, name="log_returns")(window) if log_returns else window
    normalised = keras.layers.Normalization(
        mean=np.asarray(info.feature_mean),
        variance=np.asarray(info.feature_variance),
        name="normalize",
    )(x)
    outputs = info.horizon * len(targets)
    if config.anchor == "none":
        head = _network_head(config, normalised, outputs, "glorot_uniform")
        scale, offset, anchor_columns = info.target_std, info.target_mean, None
    else:
        floor = MIN_WINDOW_SPREAD * np.sqrt(np.asarray(info.feature_variance))
        scaled = WindowScaling(floor.tolist(), name="window_scaling")(x)
        head = _network_head(config, scaled, outputs, "zeros")
        scale, offset = step_scale(info), [0.0] * len(targets)
        # Around persistence: the last level, or a zero return (the random walk) for prices.
        anchor_columns = None if log_returns else targets
        if config.anchor == "linear":
            flat = keras.layers.Flatten(name="flatten_window")(normalised)
            # Zero (persistence) until set_linear_weights puts the record's forecast in.
            linear = keras.layers.Dense(
                outputs, kernel_initializer="zeros", trainable=False, name="linear"
            )(flat)
            head = keras.layers.Add(name="linear_plus_network")([linear, head])
    forecast = ForecastOutput(
        info.horizon,
        scale=scale,
        offset=offset,
        anchor_columns=anchor_columns,
        quantiles=config.quantiles,
        name="forecast",
    )(head, window)
    model = keras.Model(window, forecast, name="forecasting")
    if config.anchor == "linear":
        set_linear_weights(model, info)
    compile_model(model, config, loss=ScaledMeanSquaredError(scale), metrics=["mae"])
    return model


def _network_head(config: ForecastingConfig, inputs, outputs: int, initializer: str):
    """Recurrent stack, dropout and a dense layer of ``outputs`` values."""
    x = recurrent_stack_from(config, inputs)
    x = keras.layers.Dropout(config.dropout, name="head_dropout")(x)
    return keras.layers.Dense(
        outputs, kernel_initializer=initializer, bias_initializer="zeros", name="head"
    )(x)


def set_linear_weights(model: keras.Model, info: ForecastingInfo) -> None:
    """Put the data record's ridge forecast into the model's ``linear`` layer, in units of
    the step scale (ForecastOutput multiplies by it); a record without one leaves it zero."""
    if info.linear is None:
        return
    unit = np.tile(np.asarray(step_scale(info), dtype=np.float64), info.horizon)
    weights = np.asarray(info.linear.weights, dtype=np.float64) / unit
    bias = np.asarray(info.linear.bias, dtype=np.float64) / unit
    model.get_layer("linear").set_weights([weights.astype(np.float32), bias.astype(np.float32)])
