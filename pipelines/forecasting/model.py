"""The forecasting model: a window in original units -> (log returns) -> normalisation ->
recurrent stack -> dense head -> the next ``horizon`` steps of every target in original units."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

import layers  # noqa: F401  (registers the recurrent layers a saved model names)
from pipelines.forecasting.config import ForecastingConfig
from pipelines.forecasting.data import ForecastingInfo
from pipelines.training import compile_model, recurrent_stack_from

# === Layers ===


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

    Args:
        horizon: forecast steps.
        scale: per-target standard deviation of the training targets.
        offset: per-target value added (the training mean, or zero around persistence).
        anchor_columns: window columns whose last value is added per target, or None.

    Call arguments:
        outputs: ``[batch, horizon * targets]``.
        window: ``[batch, steps, features]``, the raw input window.

    Returns ``[batch, horizon, targets]``.
    """

    def __init__(self, horizon: int, scale, offset, anchor_columns=None, **kwargs):
        super().__init__(**kwargs)
        self.horizon = int(horizon)
        self.scale = [float(v) for v in scale]
        self.offset = [float(v) for v in offset]
        self.anchor_columns = None if anchor_columns is None else [int(c) for c in anchor_columns]

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
    ``forecast`` [batch, horizon, targets] in original units (log returns for stocks)."""
    targets = info.target_indices
    log_returns = info.transform == "log_return"
    window = keras.Input(shape=(info.window, len(info.feature_columns)), name="window")
    x = LogReturns(targets, name="log_returns")(window) if log_returns else window
    x = keras.layers.Normalization(
        mean=np.asarray(info.feature_mean),
        variance=np.asarray(info.feature_variance),
        name="normalize",
    )(x)
    x = recurrent_stack_from(config, x)
    x = keras.layers.Dropout(config.dropout, name="head_dropout")(x)
    x = keras.layers.Dense(info.horizon * len(targets), name="head")(x)
    residual = config.residual
    forecast = ForecastOutput(
        info.horizon,
        scale=info.target_std,
        # Around persistence: the last level, or a zero return (the random walk) for prices.
        offset=[0.0] * len(targets) if residual else info.target_mean,
        anchor_columns=targets if residual and not log_returns else None,
        name="forecast",
    )(x, window)
    model = keras.Model(window, forecast, name="forecasting")
    compile_model(model, config, loss=ScaledMeanSquaredError(info.target_std), metrics=["mae"])
    return model
