"""Forecasting quantiles (calibrated, never crossing, scored by coverage and pinball loss)
and ``predict --anomalies`` (points outside the interval flagged in the output CSV)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from pipelines.errors import UserError
from tests.helpers import run_cli, smoke_run_dir


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> Path:
    """The shared smoke run of the built-in weather data."""
    return smoke_run_dir(tmp_path_factory, "forecasting")


def weather_csv(path: Path, rows: int) -> Path:
    """The last ``rows`` days of the built-in weather series as a user's CSV."""
    from pipelines.forecasting.data import builtin_series

    series = builtin_series("weather")
    frame = series.frame.tail(rows).copy()
    frame.index.name = series.time_column
    frame.to_csv(path, date_format="%Y-%m-%d")
    return path


def test_interval_metrics_of_a_known_case():
    from pipelines.forecasting import intervals

    truth = np.array([0.0, 1.0, 2.0, 10.0]).reshape(4, 1, 1)
    quantiles = np.tile(np.array([0.5, 1.5, 2.5]), (4, 1, 1, 1))  # [4, 1, 1, 3]
    metrics = intervals.interval_metrics(quantiles, truth, [0.1, 0.5, 0.9])
    assert metrics["interval_coverage"] == 0.5  # 1 and 2 inside [0.5, 2.5]
    assert metrics["interval_width"] == pytest.approx(2.0)
    # Pinball of truth 10 at level 0.9 and quantile 2.5: 0.9 * 7.5, and so on.
    error = truth[..., None] - quantiles
    levels = np.array([0.1, 0.5, 0.9])
    expected = np.maximum(levels * error, (levels - 1) * error).mean()
    assert metrics["pinball_loss"] == pytest.approx(expected)


def test_calibrated_quantiles_cover_as_asked_and_scale_with_the_window():
    """Noise whose size changes from window to window: the calibrated 80 % interval covers
    about 80 % of fresh windows, and a calm window gets a narrower interval."""
    from types import SimpleNamespace

    from pipelines.forecasting import intervals

    info = SimpleNamespace(
        target_indices=[0], transform="none", mase_scale=[1.0], target_std=[1.0], horizon=1
    )
    rng = np.random.default_rng(0)

    def windows(n):
        size = rng.choice([0.2, 1.0, 5.0], size=n)
        inputs = np.cumsum(rng.normal(size=(n, 20, 1)) * size[:, None, None], axis=1)
        truth = inputs[:, -1:, :] + rng.normal(size=(n, 1, 1)) * size[:, None, None]
        return inputs, truth, inputs[:, -1:, :]  # persistence as the forecast

    levels = [0.1, 0.5, 0.9]
    inputs, truth, forecast = windows(3000)
    offsets = intervals.calibrate(forecast, truth, inputs, info, levels)
    inputs, truth, forecast = windows(3000)
    quantiles = intervals.apply(forecast, inputs, info, offsets)
    assert np.all(np.diff(quantiles, axis=-1) >= 0)
    coverage = intervals.interval_metrics(quantiles, truth, levels)["interval_coverage"]
    assert 0.76 <= coverage <= 0.84
    width = quantiles[..., -1] - quantiles[..., 0]
    calm = intervals.window_change(inputs, info)[:, 0] < 0.5
    assert width[calm].mean() < width[~calm].mean() / 3


def test_anomalies_flag_points_outside_the_interval(smoke_run, tmp_path):
    from pipelines import runner
    from pipelines.predict_files import predict_files

    _, _, info, _ = runner.load_run(str(smoke_run))
    rows, target = 120, info.target_columns[0]
    source = weather_csv(tmp_path / "weather.csv", rows)
    out = tmp_path / "flags.csv"
    predict_files(smoke_run, source, out, options={"anomalies": True})
    with out.open(newline="") as file:
        flagged = list(csv.DictReader(file))
    assert len(flagged) == rows - info.window  # every point after a full window
    assert {f"{target}_q10", f"{target}_q90", f"{target}_actual", "anomaly"} <= set(flagged[0])
    with source.open(newline="") as file:
        actual = [row[target] for row in csv.DictReader(file)][info.window :]
    assert [float(row[f"{target}_actual"]) for row in flagged] == [float(v) for v in actual]
    for row in flagged:
        value, low, high = (float(row[f"{target}{s}"]) for s in ("_actual", "_q10", "_q90"))
        assert (row["anomaly"] == "true") == (not low <= value <= high)
    share = np.mean([row["anomaly"] == "true" for row in flagged])
    assert 0.05 <= share <= 0.4  # an 80 % interval leaves about a fifth outside
    plot = tmp_path / "flags.csv.anomalies.png"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "again.csv.anomalies.png").write_text("a user's file")
    with pytest.raises(UserError, match="anomalies.png already exists"):
        predict_files(smoke_run, source, tmp_path / "again.csv", options={"anomalies": True})
    assert not (tmp_path / "again.csv").exists()


def test_anomalies_need_a_run_with_quantiles(tmp_path):
    from pipelines.forecasting import files
    from pipelines.forecasting.config import ForecastingConfig

    config = ForecastingConfig.from_preset("smoke").with_overrides(["quantiles="])
    source = weather_csv(tmp_path / "weather.csv", 40)
    with pytest.raises(UserError, match="--anomalies: the run gives no interval"):
        next(files.read_items(source, config, None, anomalies=True))


def test_anomalies_flag_is_declared_on_predict():
    result = run_cli("predict", "--help")
    assert result.returncode == 0 and "--anomalies" in result.stdout
