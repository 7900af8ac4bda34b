"""Numbers at the edges: strict JSON, undefined metrics, values near the float32 limits,
non-finite model outputs and splits too small to stratify.

Every JSON the project writes is strict (no ``NaN``/``Infinity``); a metric that cannot be
computed is ``null`` with a ``<metric>_reason`` beside it.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines import report, rundir, strict_json
from pipelines.errors import UserError


def _strict_load(path: Path):
    """``json.load`` that fails on NaN, Infinity and -Infinity."""

    def refuse(constant):
        raise AssertionError(f"{path} holds {constant}")

    return json.loads(path.read_text(), parse_constant=refuse)


def _run(args: list[str]) -> tuple[int, str]:
    from pipelines.cli import main

    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        status = main(args)
    return status, stderr.getvalue()


def _one_error(status: int, stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert status == 2, stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr[-3000:]
    return lines[0]


def _daily_csv(path: Path, values) -> Path:
    days = pd.date_range("2020-01-01", periods=len(values), freq="D").strftime("%Y-%m-%d")
    path.write_text(
        "date,temp\n" + "".join(f"{d},{v}\n" for d, v in zip(days, values, strict=True))
    )
    return path


# === Strict JSON ===


def test_dumps_refuses_non_finite_numbers_naming_the_key():
    with pytest.raises(ValueError, match=r"\$\.test\.mape is not a finite number"):
        strict_json.dumps({"test": {"mae": 1.0, "mape": float("nan")}})
    with pytest.raises(ValueError, match=r"\$\.history\[1\]"):
        strict_json.dumps({"history": [1.0, np.float32("inf")]})
    assert json.loads(strict_json.dumps({"a": np.float32(0.5), "b": (1, 2)})) == {
        "a": 0.5,
        "b": [1, 2],
    }


def test_write_json_writes_strict_json_or_nothing(tmp_path):
    path = tmp_path / "metrics.json"
    with pytest.raises(ValueError, match="metrics.json"):
        rundir.write_json(path, {"test": {"loss": float("inf")}})
    assert not path.exists() and not list(tmp_path.iterdir())
    rundir.write_json(path, {"test": {"loss": np.float64(0.25)}})
    assert _strict_load(path) == {"test": {"loss": 0.25}}


def test_an_undefined_metric_is_null_with_its_reason():
    metrics = strict_json.defined_metrics(
        {"mae": 1.5, "mape": float("nan"), "other": float("inf")},
        {"mape": "the test targets include zeros"},
    )
    assert metrics == {
        "mae": 1.5,
        "mape": None,
        "mape_reason": "undefined: the test targets include zeros",
        "other": None,
        "other_reason": "undefined: not a finite number on this test split",
    }
    json.loads(strict_json.dumps(metrics))


def test_the_metrics_table_shows_an_undefined_metric_as_n_a_with_its_reason():
    undefined = strict_json.undefined("mase", "the series is constant")
    metrics = {
        "test": {"mae": 0.0, **undefined},
        "baselines": {"persistence": {"mae": 0.0, **undefined}},
    }
    table = report.metrics_table(metrics)
    assert "mase_reason" not in table.splitlines()[0]
    assert table.count("n/a") == 3  # two cells and the note
    assert "n/a: mase is undefined: the series is constant" in table


def test_non_finite_model_outputs_are_a_clear_error():
    strict_json.require_finite_outputs(np.ones((3, 2), np.float32))
    strict_json.require_finite_outputs(np.array([b"text"]))  # not numbers: nothing to check
    outputs = np.ones((4, 2), np.float32)
    outputs[1, 0] = np.nan
    with pytest.raises(UserError) as caught:
        strict_json.require_finite_outputs(outputs)
    assert str(caught.value) == (
        "the trained model produced non-finite outputs on the test split (1 of 8 values are "
        "NaN or infinite); try a lower learning_rate"
    )


class _NaNModel:
    """Stands in for a trained Keras model whose weights diverged."""

    def predict(self, inputs, **kwargs):
        return np.full((len(inputs), 1, 1), np.nan, np.float32)


def test_forecasting_evaluation_refuses_a_model_with_non_finite_outputs(tmp_path):
    from pipelines.forecasting import data, evaluate
    from pipelines.forecasting.config import ForecastingConfig

    csv = _daily_csv(tmp_path / "temp.csv", [10 + math.sin(i) for i in range(300)])
    config = ForecastingConfig.from_preset("smoke").with_overrides(["target_columns=temp"])
    splits = data.load_csv(config, str(csv), seed=0)
    with pytest.raises(UserError, match="non-finite outputs on the test split"):
        evaluate.evaluate(_NaNModel(), splits, config, tmp_path)
    assert not (tmp_path / "forecast.png").exists()


# === Forecasting: a constant series, values near the float32 limits ===


def test_a_constant_series_runs_and_reports_mase_as_undefined(tmp_path):
    csv = _daily_csv(tmp_path / "constant.csv", [5.0] * 300)
    out = tmp_path / "run"
    status, stderr = _run(
        ["run", "forecasting", "--preset", "smoke", "--data", f"csv:{csv}", "--out", str(out)]
        + ["--set", "target_columns=temp"]
    )
    assert status == 0, stderr[-3000:]
    metrics = _strict_load(out / "metrics.json")
    for values in [metrics["test"], *metrics["baselines"].values()]:
        assert values["mase"] is None
        assert "constant series" in values["mase_reason"]
        assert math.isfinite(values["mae"]) and math.isfinite(values["rmse"])
    assert metrics["baselines"]["persistence"]["mae"] == 0.0
    info = _strict_load(out / "data_info.json")["fields"]
    assert info["feature_variance"] == [1.0]  # the scaled form of a constant is defined
    assert info["mase_scale"] == [0.0]
    text = (out / "report.md").read_text()
    assert "n/a" in text and "nan" not in text.lower().replace("nanosecond", "")
    for path in out.rglob("*.json"):
        _strict_load(path)


def test_values_beyond_float32_name_the_file_line_column_and_value(tmp_path):
    values = [10 + math.sin(i) for i in range(300)]
    values[16] = "1e39"
    csv = _daily_csv(tmp_path / "big.csv", values)
    out = tmp_path / "run"
    error = _one_error(
        *_run(
            ["run", "forecasting", "--preset", "smoke", "--data", f"csv:{csv}", "--out", str(out)]
            + ["--set", "target_columns=temp"]
        )
    )
    assert str(csv) in error and "column 'temp'" in error and "line 18" in error
    assert "1e+39: outside float32 range" in error
    assert not out.exists() and not Path(f"{out}.partial").exists()


def test_values_near_the_float32_limit_whose_spread_overflows_are_refused(tmp_path):
    csv = _daily_csv(tmp_path / "huge.csv", [(-1) ** i * 3e38 for i in range(300)])
    out = tmp_path / "run"
    error = _one_error(
        *_run(
            ["run", "forecasting", "--preset", "smoke", "--data", f"csv:{csv}", "--out", str(out)]
            + ["--set", "target_columns=temp"]
        )
    )
    assert f"{csv}: column 'temp' varies too much for float32" in error
    assert not out.exists() and not Path(f"{out}.partial").exists()


def test_a_label_that_is_not_a_number_names_the_line_and_column(tmp_path):
    values = [10 + math.sin(i) for i in range(300)]
    values[40] = "n/a?"
    csv = _daily_csv(tmp_path / "text.csv", values)
    error = _one_error(
        *_run(
            ["run", "forecasting", "--preset", "smoke", "--data", f"csv:{csv}"]
            + ["--out", str(tmp_path / "run"), "--set", "target_columns=temp"]
        )
    )
    assert "target column 'temp' is not numeric at line 42 (e.g. 'n/a?')" in error


# === Classification: more classes than a small split can stratify ===


def test_more_classes_than_the_test_split_can_hold_is_a_clear_error(tmp_path):
    rows = "".join(f"text number {i} of class {i % 8},class{i % 8}\n" for i in range(40))
    csv = tmp_path / "classes.csv"
    csv.write_text("text,label\n" + rows)
    out = tmp_path / "run"
    error = _one_error(
        *_run(["run", "sentiment", "--preset", "smoke", "--data", f"csv:{csv}", "--out", str(out)])
    )
    assert "cannot split 40 examples of 8 classes" in error
    assert "fewer items than there are classes" in error
    assert not out.exists() and not Path(f"{out}.partial").exists()


def _diverging_fit(tmp_path: Path, divergence_is_error: bool):
    import keras
    import tensorflow as tf

    from pipelines.trainer import Trainer

    features = np.ones((16, 3), dtype=np.float32)
    targets = np.full((16, 1), np.nan, dtype=np.float32)  # every loss is NaN
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    trainer = Trainer(
        tmp_path / "run", epochs=3, patience=2, divergence_is_error=divergence_is_error, verbose=0
    )
    (tmp_path / "run").mkdir()
    data = tf.data.Dataset.from_tensor_slices((features, targets)).batch(8)
    return trainer.fit(model, data, data)


def test_a_training_whose_loss_is_not_finite_ends_with_a_clear_error(tmp_path):
    with pytest.raises(UserError, match=r"training diverged: the loss is nan at epoch 1; try a"):
        _diverging_fit(tmp_path, divergence_is_error=True)
    for written in (tmp_path / "run").rglob("*.json"):
        json.loads(written.read_text(), parse_constant=_not_json)


def _not_json(name: str):
    raise AssertionError(f"{name} written into a JSON file")


def test_a_search_trial_whose_loss_is_not_finite_is_scored_not_raised(tmp_path):
    result = _diverging_fit(tmp_path, divergence_is_error=False)
    assert math.isnan(result.history.history["loss"][0])
