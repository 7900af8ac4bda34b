"""The linear forecast: ridge regression from the normalised window to the change from
persistence. It is both a baseline and the part of the default model the network corrects,
so it is fit once, with the data, and kept in the data record. Imports no TensorFlow."""

from __future__ import annotations

import dataclasses

import numpy as np
from sklearn.linear_model import Ridge

from pipelines.errors import UserError

# Up to penalties that shrink the window's weights to almost nothing: the drift alone, for returns.
RIDGE_ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6)
# The weights live in data_info.json: (window x features) inputs by (horizon x targets) outputs.
MAX_LINEAR_WEIGHTS = 250_000


@dataclasses.dataclass(frozen=True)
class LinearFit:
    """A fitted linear forecast.

    Attributes:
        weights: ``[window steps x features, horizon x targets]``: the normalised window
            (flattened step by step) to the change from persistence, in target units.
        bias: ``[horizon x targets]``.
        alpha: the ridge penalty chosen on the validation split.
    """

    weights: list[list[float]]
    bias: list[float]
    alpha: float


def transformed_windows(inputs: np.ndarray, target_indices, transform: str) -> np.ndarray:
    """What the model's first layer makes of windows: log returns of the price columns."""
    from pipelines.forecasting.data import transformed_series  # data imports this module

    return transformed_series(inputs.astype(np.float64), target_indices, transform)


def persistence(inputs: np.ndarray, target_indices, transform: str, horizon: int) -> np.ndarray:
    """The last value, held: for returns, the last price held, i.e. a zero return."""
    if transform == "log_return":
        return np.zeros((len(inputs), horizon, len(target_indices)))
    last = inputs[:, -1, target_indices].astype(np.float64)
    return np.repeat(last[:, None, :], horizon, axis=1)


def normalised_inputs(inputs: np.ndarray, info) -> np.ndarray:
    """Windows as the linear forecast reads them: transformed, normalised by the training
    split's statistics (as the model's normalisation layer does), flattened."""
    series = transformed_windows(inputs, info.target_indices, info.transform)
    scaled = (series - np.asarray(info.feature_mean)) / np.sqrt(info.feature_variance)
    return scaled.reshape(len(inputs), -1)


def check_size(window: int, features: int, horizon: int, targets: int, where: str) -> None:
    """UserError when the linear weights (``window`` steps, less one for log returns, of
    ``features`` columns, to ``horizon`` steps of ``targets``) would exceed MAX_LINEAR_WEIGHTS."""
    count = window * features * horizon * targets
    if count > MAX_LINEAR_WEIGHTS:
        raise UserError(
            f"{where}: the linear part of the model would have {count:,} weights (window x "
            f"features x horizon x targets), more than {MAX_LINEAR_WEIGHTS:,}; lower window "
            "or horizon, or name fewer feature_columns or target_columns"
        )


def fit(train: tuple, validation: tuple, info) -> LinearFit:
    """Ridge on ``train`` with each penalty of RIDGE_ALPHAS; the one best on ``validation``
    (mean squared error in units of each target's training standard deviation)."""
    x, y = normalised_inputs(train[0], info), _change(train, info)
    x_val, y_val = normalised_inputs(validation[0], info), _change(validation, info)
    scale = np.tile(np.asarray(info.target_std), info.horizon)
    scores = {}
    for alpha in RIDGE_ALPHAS:
        predicted = Ridge(alpha=alpha).fit(x, y).predict(x_val).reshape(y_val.shape)
        scores[alpha] = float(np.mean(((predicted - y_val) / scale) ** 2))
    alpha = min(scores, key=scores.get)
    model = Ridge(alpha=alpha).fit(x, y)
    weights = np.asarray(model.coef_, dtype=np.float64).reshape(y.shape[1], x.shape[1]).T
    bias = np.asarray(model.intercept_, dtype=np.float64).reshape(-1)
    return LinearFit(weights.tolist(), bias.tolist(), alpha)


def predict(fitted: LinearFit, inputs: np.ndarray, info) -> np.ndarray:
    """Forecasts ``[n, horizon, targets]`` for windows ``[n, steps, features]``."""
    change = normalised_inputs(inputs, info) @ np.asarray(fitted.weights) + fitted.bias
    shape = (len(inputs), info.horizon, len(info.target_indices))
    anchor = persistence(inputs, info.target_indices, info.transform, info.horizon)
    return anchor + change.reshape(shape)


def _change(split: tuple, info) -> np.ndarray:
    """Targets less persistence, flattened to ``[n, horizon x targets]``."""
    inputs, targets = split
    anchor = persistence(inputs, info.target_indices, info.transform, info.horizon)
    return (targets - anchor).reshape(len(inputs), -1)
