"""The forecasting pipeline: smoke run, serving export, built-in data, the user's CSV, bad CSVs."""

from __future__ import annotations

import contextlib
import io
import json
import math
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers import run_cli, run_python_without_project, run_saved_model_cli, smoke_run_dir

POINT_KEYS = {"mae", "rmse", "mase"}  # also per forecast step where the horizon exceeds one
INTERVAL_KEYS = {"interval_coverage", "interval_width", "pinball_loss"}
METRIC_KEYS = POINT_KEYS | INTERVAL_KEYS
BASELINES = {"persistence", "seasonal_naive", "linear", "train_mean"}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> Path:
    """One smoke run of the built-in weather data through the command line."""
    return smoke_run_dir(tmp_path_factory, "forecasting")


def smoke_config(*overrides: str):
    from pipelines.forecasting.config import ForecastingConfig

    return ForecastingConfig.from_preset("smoke").with_overrides(list(overrides))


def write_daily_csv(path: Path, rows: int = 300, seed: int = 0) -> Path:
    """Two targets with weekly and monthly cycles, a noise feature and a text column."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    frame = pd.DataFrame(
        {
            "day": pd.date_range("2021-03-01", periods=rows, freq="D").strftime("%Y-%m-%d"),
            "level": 20 + 5 * np.sin(2 * np.pi * t / 30) + rng.normal(0, 0.3, rows),
            "cycle": 3 * np.cos(2 * np.pi * t / 7) + rng.normal(0, 0.3, rows),
            "noise": rng.normal(0, 1, rows),
            "note": ["x"] * rows,
        }
    )
    frame.to_csv(path, index=False)
    return path


# === The smoke run and its artifacts ===


def test_run_directory_holds_every_artifact(smoke_run):
    for name in (
        "config.json",
        "data_info.json",
        "metrics.json",
        "history.csv",
        "report.md",
        "model.keras",
        "forecast.png",
        "error_by_horizon.png",
        "learning_curves.png",
        "saved_model",
        "logs",
    ):
        assert (smoke_run / name).exists(), name
    assert not list(smoke_run.parent.glob("*.partial"))
    assert json.loads((smoke_run / "config.json").read_text())["data"] == "builtin"


def test_metrics_sit_beside_baselines_with_the_same_keys(smoke_run):
    metrics = json.loads((smoke_run / "metrics.json").read_text())
    assert metrics["pipeline"] == "forecasting"
    assert metrics["dataset"]["name"] == "seattle_weather"
    assert set(metrics["baselines"]) == BASELINES
    assert set(metrics["test"]) == METRIC_KEYS
    for baseline in metrics["baselines"].values():
        assert set(baseline) == METRIC_KEYS
    splits = metrics["dataset"]["splits"]
    assert splits["train"] > splits["validation"] > 0 and splits["test"] > 0
    report = (smoke_run / "report.md").read_text()
    assert "The model against the baselines" in report and "persistence" in report
    assert "## Intervals" in report and "| model |" in report
    # Daily weather, a seasonal series: the model starts as the linear forecast and keeps up.
    best = min(baseline["mae"] for baseline in metrics["baselines"].values())
    assert metrics["test"]["mae"] <= best * 1.01


def test_saved_model_matches_the_keras_model_in_a_fresh_process(smoke_run, tmp_path):
    import keras

    import pipelines.forecasting.model  # noqa: F401  (registers the custom layers)
    from pipelines.forecasting import intervals
    from pipelines.forecasting.data import load_builtin

    windows = load_builtin(smoke_config(), "", seed=0).test[0][:16]
    expected = keras.models.load_model(smoke_run / "model.keras").predict(windows, verbose=0)
    np.save(tmp_path / "windows.npy", windows)
    # The child blocks the project's packages: the export must need none of our code.
    child = textwrap.dedent(f"""
        import sys
        for name in ("layers", "pipelines", "tuning"):
            sys.modules[name] = None
        import numpy as np, tensorflow as tf
        serve = tf.saved_model.load({str(smoke_run / "saved_model")!r}).signatures[
            "serving_default"]
        out = serve(window=tf.constant(np.load("windows.npy")))
        np.save("forecast.npy", out["forecast"].numpy())
        np.save("quantiles.npy", out["quantiles"].numpy())
    """)
    result = run_python_without_project(child, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    forecast = np.load(tmp_path / "forecast.npy")
    assert forecast.shape == (16, 1, 1) == expected.shape
    np.testing.assert_allclose(forecast, expected, rtol=1e-5, atol=1e-5)
    info = load_builtin(smoke_config(), "", seed=0).info
    model = keras.models.load_model(smoke_run / "model.keras")
    levels, offsets = intervals.model_offsets(model)
    quantiles = np.load(tmp_path / "quantiles.npy")
    assert quantiles.shape == (16, 1, 1, len(levels))
    np.testing.assert_allclose(
        quantiles, intervals.apply(expected, windows, info, offsets), rtol=1e-5, atol=1e-4
    )
    assert np.all(np.diff(quantiles, axis=-1) >= 0)  # they cannot cross


# === Built-in data ===


def test_stock_targets_are_log_returns_of_the_input_prices():
    from pipelines.forecasting.data import load_builtin

    splits = load_builtin(smoke_config(), "stock", seed=0)
    info = splits.info
    assert info.target_columns == ["AAPL", "IBM", "MSFT", "GOOG"]
    assert info.transform == "log_return" and info.frequency == "trading day"
    inputs, targets = splits.test
    assert inputs.shape[1:] == (28, 4) and targets.shape[1:] == (1, 4)
    assert inputs.min() > 0  # prices in, as the export takes them
    # Consecutive windows: the next window's last price is this window's next price.
    expected = np.log(inputs[1:, -1, :].astype(np.float64) / inputs[:-1, -1, :])
    np.testing.assert_allclose(targets[:-1, 0, :], expected, atol=1e-6)
    assert np.abs(targets).max() < 0.5  # daily log returns, not prices


def test_stock_model_saves_loads_and_forecasts_returns(tmp_path):
    import keras

    from pipelines.forecasting.data import load_builtin
    from pipelines.forecasting.evaluate import forecast_metrics
    from pipelines.forecasting.model import build_model

    splits = load_builtin(smoke_config(), "stock", seed=0)
    model = build_model(smoke_config(), splits.info)
    windows = splits.test[0][:8]
    predicted = model.predict(windows, verbose=0)
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras", compile=False).predict(
        windows, verbose=0
    )
    np.testing.assert_allclose(reloaded, predicted, atol=1e-6)
    metrics = forecast_metrics(predicted, splits.test[1][:8], windows, splits.info)
    assert set(metrics) == POINT_KEYS | {"directional_accuracy", "price_mae", "price_rmse"}


def test_jena_through_get_file_offline(tmp_path, monkeypatch):
    import keras

    from pipelines.forecasting.data import load_jena

    times = pd.date_range("2009-01-01 00:10", periods=10 * 144, freq="10min")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "Date Time": times.strftime("%d.%m.%Y %H:%M:%S"),
            "p (mbar)": 990 + rng.normal(0, 1, len(times)),
            "T (degC)": -5 + 3 * np.sin(np.arange(len(times)) / 144 * 2 * np.pi),
            "wv (m/s)": rng.uniform(0, 3, len(times)),
        }
    )
    frame.loc[5, "wv (m/s)"] = -9999.0
    frame = pd.concat([frame, frame.iloc[[40]]])  # a duplicated row, as the real file has
    archive = tmp_path / "jena_climate_2009_2016.csv.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("jena_climate_2009_2016.csv", frame.to_csv(index=False))
    calls = []

    def fake_get_file(fname, origin, **kwargs):
        calls.append(origin)
        return str(archive)

    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    splits = load_jena(smoke_config(), "", seed=0)
    assert calls and calls[0].endswith("jena_climate_2009_2016.csv.zip")
    assert splits.info.frequency == "h" and splits.info.seasonal_period == 24
    assert splits.info.target_columns == ["T (degC)"]
    assert splits.info.feature_columns == ["T (degC)", "p (mbar)", "wv (m/s)"]
    assert sum(p.rows for p in splits.info.split_periods.values()) == 10 * 24
    assert splits.train[0].min() > -100  # the -9999 placeholder is gone


# === Splits and normalisation ===


def test_chronological_splits_do_not_overlap_and_normalise_with_training_rows(tmp_path):
    from pipelines.forecasting.data import load_csv
    from pipelines.forecasting.model import build_model

    rows = 200
    path = tmp_path / "counter.csv"
    pd.DataFrame(
        {
            "date": pd.date_range("2020-01-01", periods=rows, freq="D").strftime("%Y-%m-%d"),
            "row": np.arange(rows, dtype=float),
        }
    ).to_csv(path, index=False)
    config = smoke_config("target_columns=row", "horizon=2")
    splits = load_csv(config, str(path), seed=0)
    seen = {}
    for name in ("train", "validation", "test"):
        inputs, targets = getattr(splits, name)
        rows_used = np.concatenate([inputs.ravel(), targets.ravel()])
        seen[name] = (rows_used.min(), rows_used.max())
        # In time order, consecutive, never shuffled.
        np.testing.assert_array_equal(inputs[:, 0, 0], inputs[0, 0, 0] + np.arange(len(inputs)))
    assert seen["train"][1] < seen["validation"][0] <= seen["validation"][1] < seen["test"][0]
    periods = splits.info.split_periods
    assert periods["train"].last < periods["validation"].first < periods["test"].first
    train_rows = periods["train"].rows
    assert seen["train"] == (0, train_rows - 1)
    # Statistics of the training rows alone, not of the whole series.
    assert splits.info.feature_mean == pytest.approx([(train_rows - 1) / 2])
    assert splits.info.feature_variance == pytest.approx([np.var(np.arange(train_rows))])
    assert splits.info.feature_mean[0] < (rows - 1) / 2 - 10
    normalize = build_model(config, splits.info).get_layer("normalize")
    np.testing.assert_allclose(np.ravel(normalize.mean), [(train_rows - 1) / 2])


# === Settings, sources and the data record ===


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        (["seasonal_period=40"], "setting 'seasonal_period' (40) must be at most setting 'window'"),
        (["target_columns=a,a"], "column 'a' is named twice"),
        (["window=1"], "setting 'window' = 1: input should be greater than or equal to 2"),
        (["missing=skip"], "setting 'missing' = skip: input should be 'error'"),
        (["horizon=20000"], "setting 'horizon' = 20000: input should be less than or equal"),
    ],
)
def test_bad_settings_are_one_error_naming_the_setting(pairs, expected):
    from pipelines.errors import UserError

    with pytest.raises(UserError) as caught:
        smoke_config(*pairs)
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_data_sources_parse_the_builtin_choices_and_name_a_wrong_one():
    from pipelines.errors import UserError
    from pipelines.forecasting.config import DATA_SOURCES

    assert DATA_SOURCES.parse("builtin").argument == ""
    assert DATA_SOURCES.parse("builtin:stock").source.loader == "load_builtin"
    with pytest.raises(UserError, match="'rain' is not one of weather, weather-hourly, stock"):
        DATA_SOURCES.parse("builtin:rain")
    assert all(source.test_loader for source in DATA_SOURCES)


def test_data_record_round_trips_through_json(tmp_path):
    from pipelines.forecasting.data import ForecastingInfo, load_csv

    path = write_daily_csv(tmp_path / "series.csv")
    config = smoke_config("time_column=day", "target_columns=level")
    info = load_csv(config, str(path), seed=0).info
    record = json.loads(json.dumps(info.to_json()))
    assert record["schema"] == "ForecastingInfo"
    assert ForecastingInfo.from_json(record) == info


# === The user's CSV ===


def test_user_csv_with_two_targets_and_a_horizon_of_three(tmp_path):
    from pipelines import runner
    from pipelines.api import run

    path = write_daily_csv(tmp_path / "series.csv")
    settings = {"time_column": "day", "target_columns": ["level", "cycle"], "horizon": 3}
    final = run(
        {"pipeline": "forecasting", "preset": "smoke", "data": f"csv:{path}", "settings": settings},
        out=str(tmp_path / "run"),
    ).run_dir
    record = json.loads((final / "data_info.json").read_text())
    assert record["schema"] == "ForecastingInfo"
    info = record["fields"]
    assert info["target_columns"] == ["level", "cycle"]
    assert info["feature_columns"] == ["level", "cycle", "noise"]  # the text column is skipped
    assert info["frequency"] == "D" and info["seasonal_period"] == 7
    metrics = json.loads((final / "metrics.json").read_text())
    per_step = {f"{k}_step_{s}" for k in POINT_KEYS for s in (1, 2, 3)}
    assert set(metrics["test"]) == METRIC_KEYS | per_step
    assert all(set(b) == set(metrics["test"]) for b in metrics["baselines"].values())
    assert "MAE per target" in (final / "report.md").read_text()

    pipeline, _, info, model = runner.load_run(str(final))
    lines = pipeline.predict(model, [str(path)], info)
    assert lines[0].startswith(f"{path}\tafter 2021-12-25")
    assert "level: " in lines[0] and lines[0].split("cycle: ")[1].count(",") == 2

    with contextlib.redirect_stdout(io.StringIO()):
        evaluation = runner.evaluate_run(str(final), f"csv:{path}", ["time_column=day"])
    metrics = json.loads((evaluation / "metrics.json").read_text())
    assert metrics["dataset"]["splits"]["test"] == 300 - 28 - 3 + 1


def test_missing_values_interpolated_or_their_windows_dropped(tmp_path):
    from pipelines.forecasting.data import load_csv

    path = write_daily_csv(tmp_path / "gappy.csv")
    lines = path.read_text().splitlines()
    cells = lines[10].split(",")
    lines[10] = ",".join([cells[0], "", *cells[2:]])  # an empty cell at line 11 (row 9)
    path.write_text("\n".join(lines) + "\n")
    base = ("time_column=day", "target_columns=level")
    complete = load_csv(smoke_config(*base, "missing=interpolate"), str(path), seed=0)
    assert not np.isnan(complete.train[0]).any()
    dropped = load_csv(smoke_config(*base, "missing=drop"), str(path), seed=0)
    assert len(dropped.train[1]) == len(complete.train[1]) - 10  # windows starting at rows 0-9
    assert "dropped" in " ".join(dropped.info.notes)


def test_irregular_timestamps_filled_when_asked(tmp_path):
    from pipelines.forecasting.data import load_csv

    path = write_daily_csv(tmp_path / "irregular.csv")
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:50] + lines[52:]) + "\n")  # two days missing
    config = smoke_config(
        "time_column=day", "target_columns=level", "gaps=fill", "missing=interpolate"
    )
    splits = load_csv(config, str(path), seed=0)
    assert sum(p.rows for p in splits.info.split_periods.values()) == 300
    ignored = load_csv(
        smoke_config("time_column=day", "target_columns=level", "gaps=ignore"),
        str(path),
        seed=0,
    )
    assert "irregular" in ignored.info.frequency


# === Bad CSVs: one error line naming the file, column and rows; exit status 2 ===


def _daily_rows(count: int) -> list[str]:
    days = pd.date_range("2020-01-01", periods=count, freq="D").strftime("%Y-%m-%d")
    return ["date,temp,wind"] + [f"{d},{10 + math.sin(i):.2f},{i % 5}" for i, d in enumerate(days)]


def _replace_line(rows: list[str], line: int, text: str) -> list[str]:
    return rows[: line - 1] + [text] + rows[line:]


BAD_CSVS = {
    "no_time_column": (
        ["when,temp"] + [f"2020-01-{d:02d},1.0" for d in range(1, 29)],
        "no time column 'date' (set time_column=...; columns: when, temp)",
    ),
    "non_numeric_target": (
        _replace_line(_daily_rows(200), 4, "2020-01-03,warm,1"),
        "target column 'temp' is not numeric at line 4 (e.g. 'warm')",
    ),
    "too_few_rows": (_daily_rows(40), "too few rows for one window"),
    "nan_values": (
        _replace_line(_replace_line(_daily_rows(200), 6, "2020-01-05,NaN,1"), 9, "2020-01-08,,2"),
        "missing values in column(s) 'temp' at line 6, line 9; set missing=interpolate",
    ),
    "bad_timestamp": (
        _replace_line(_daily_rows(200), 3, "yesterday,1.0,1"),
        "has values that are not timestamps at line 3 (e.g. 'yesterday')",
    ),
    "irregular_timestamps": (
        _daily_rows(200)[:21] + _daily_rows(200)[24:],
        "irregular timestamps: 3 missing D steps, in the gap(s) between line 21 (2020-01-20) and "
        "line 22 (2020-01-24); set gaps=fill",
    ),
    "duplicate_timestamps": (
        _replace_line(_daily_rows(200), 5, "2020-01-03,1.0,1"),
        "duplicate timestamps at line 4, line 5 (2020-01-03)",
    ),
    "unknown_target": (_daily_rows(200), "no column 'rain' (set target_columns=..."),
}


@pytest.mark.parametrize("case", sorted(BAD_CSVS))
def test_bad_csv_ends_in_one_error_line_and_no_run_directory(tmp_path, case, capsys):
    from pipelines.cli import main

    rows, expected = BAD_CSVS[case]
    path = tmp_path / f"{case}.csv"
    path.write_text("\n".join(rows) + "\n")
    target = "rain" if case == "unknown_target" else "temp"
    out = tmp_path / "run"
    status = main(
        [
            "run",
            "forecasting",
            "--preset",
            "smoke",
            "--data",
            f"csv:{path}",
            "--set",
            f"target_columns={target}",
            "--out",
            str(out),
        ]
    )
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), lines
    assert expected in lines[0]
    assert not out.exists() and not Path(f"{out}.partial").exists()


def test_bad_csv_exit_status_and_stderr_of_the_real_command(tmp_path):
    path = tmp_path / "nan.csv"
    path.write_text("\n".join(BAD_CSVS["nan_values"][0]) + "\n")
    result = run_cli(
        "run", "forecasting", "--data", f"csv:{path}", "--set", "target_columns=temp", cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {path}: {BAD_CSVS['nan_values'][1]} or missing=drop"
    assert not (tmp_path / "runs").exists()


def test_run_help_lists_the_forecasting_settings_and_data_kinds():
    result = run_cli("run", "forecasting", "--help")
    assert result.returncode == 0
    for text in ("builtin[:weather|weather-hourly|stock]", "csv:PATH", "jena", "target_columns"):
        assert text in result.stdout
    for text in ("horizon", "1..10000", "error|interpolate|drop", "search space", "anchor"):
        assert text in result.stdout


def test_saved_model_cli_answers(smoke_run, tmp_path):
    windows = np.full((2, 28, 4), [10.0, 1.0, 5.0, 3.0], dtype=np.float32)
    np.save(tmp_path / "windows.npy", windows)
    result = run_saved_model_cli(
        smoke_run / "saved_model", "--inputs", f"window={tmp_path / 'windows.npy'}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "forecast" in result.stdout
