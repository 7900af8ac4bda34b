"""The default forecasting model is robust to level and trend: it starts as the linear
forecast, reads each window by its own level and spread, and on real series of each shape
(trend and yearly cycle, weather, random-walk prices) ends at least as good as the baselines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# Small and short, so each case trains in seconds; the default preset only trains longer.
QUICK = ("units=8", "epochs=4", "patience=2")


def quick_config(*overrides: str):
    from pipelines.forecasting.config import ForecastingConfig

    return ForecastingConfig.from_preset("smoke").with_overrides([*QUICK, *overrides])


def write_co2_csv(path: Path) -> Path:
    """Weekly Mauna Loa CO2 1958-2001 (statsmodels' bundled copy, public domain) as a user's
    CSV: a long upward trend and a yearly cycle, with the source's missing weeks left empty."""
    co2 = pytest.importorskip("statsmodels.datasets.co2", reason="statsmodels is not installed")
    frame = co2.load_pandas().data
    frame.index.name = "date"
    frame.to_csv(path, date_format="%Y-%m-%d")
    return path


def trained_errors(splits, config) -> dict[str, float]:
    """Test MAE of the model trained as the runner does (early stopping on the validation
    loss, best weights kept) beside persistence's and the linear forecast's."""
    import keras

    from pipelines.forecasting import linear
    from pipelines.forecasting.evaluate import persistence
    from pipelines.forecasting.model import build_model

    keras.utils.set_random_seed(0)
    info = splits.info
    model = build_model(config, info)
    stopping = keras.callbacks.EarlyStopping(patience=config.patience, restore_best_weights=True)
    model.fit(
        *splits.train,
        validation_data=splits.validation,
        epochs=config.epochs,
        batch_size=config.batch_size,
        callbacks=[stopping],
        verbose=0,
    )
    inputs, truth = splits.test
    forecasts = {
        "model": model.predict(inputs, verbose=0),
        "persistence": persistence(inputs, info),
        "linear": linear.predict(info.linear, inputs, info),
    }
    return {name: float(np.mean(np.abs(f - truth))) for name, f in forecasts.items()}


# === How the model is built ===


def test_untrained_model_is_its_anchor(tmp_path):
    from pipelines.forecasting import linear
    from pipelines.forecasting.data import load_csv
    from pipelines.forecasting.evaluate import persistence
    from pipelines.forecasting.model import build_model

    path = write_co2_csv(tmp_path / "co2.csv")
    config = quick_config("target_columns=co2", "missing=interpolate", "window=52")
    splits = load_csv(config, str(path), seed=0)
    inputs, info = splits.test[0], splits.info
    anchored = build_model(config, info).predict(inputs, verbose=0)
    np.testing.assert_allclose(anchored, linear.predict(info.linear, inputs, info), rtol=1e-5)
    on_last = build_model(config.with_settings({"anchor": "persistence"}), info)
    np.testing.assert_allclose(on_last.predict(inputs, verbose=0), persistence(inputs, info))


def test_window_scaling_reads_the_shape_not_the_level_or_scale():
    from pipelines.forecasting.model import WindowScaling

    rng = np.random.default_rng(0)
    window = rng.normal(size=(3, 20, 2)).astype(np.float32)
    scaling = WindowScaling([1e-3, 1e-3])
    moved = window * np.float32(40.0) + np.float32(300.0)
    np.testing.assert_allclose(scaling(moved), scaling(window), atol=1e-4)
    flat = np.ones((1, 20, 2), dtype=np.float32)
    assert np.all(np.isfinite(scaling(flat)))


def test_linear_weights_are_bounded_before_windows_are_cut(tmp_path):
    import pandas as pd

    from pipelines.errors import UserError
    from pipelines.forecasting import linear
    from pipelines.forecasting.data import load_csv

    columns, window, rows = 50, 20, 2000
    horizon = linear.MAX_LINEAR_WEIGHTS // (columns * window) + 1
    values = np.random.default_rng(0).normal(size=(rows, columns))
    frame = pd.DataFrame(values, columns=[f"c{i}" for i in range(columns)])
    frame.insert(0, "date", pd.date_range("2020-01-01", periods=rows, freq="D").astype(str))
    frame.to_csv(tmp_path / "wide.csv", index=False)
    config = quick_config("target_columns=c0", f"window={window}").with_settings(
        {"horizon": horizon, "validation_fraction": 0.3, "test_fraction": 0.3}
    )
    with pytest.raises(UserError, match="linear part of the model would have"):
        load_csv(config, str(tmp_path / "wide.csv"), seed=0)


# === Real series of each shape ===


def test_trend_and_yearly_cycle_at_least_as_good_as_the_best_baseline(tmp_path):
    """Weekly CO2: the issue's case, where the old default lost to both baselines."""
    from pipelines.forecasting.data import load_csv

    path = write_co2_csv(tmp_path / "co2.csv")
    config = quick_config("target_columns=co2", "missing=interpolate", "window=52")
    errors = trained_errors(load_csv(config, str(path), seed=0), config)
    assert errors["linear"] < errors["persistence"]
    # Within float32 round-off of the best baseline (the model starts as the linear forecast).
    assert errors["model"] <= min(errors["linear"], errors["persistence"]) * 1.002, errors


def test_random_walk_prices_within_two_percent_of_persistence():
    from pipelines.forecasting.data import load_builtin

    config = quick_config()
    errors = trained_errors(load_builtin(config, "stock", seed=0), config)
    assert errors["model"] <= errors["persistence"] * 1.02, errors
