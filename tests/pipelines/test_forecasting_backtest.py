"""The rolling-origin backtest: folds after the training split, each scored for the model
beside every baseline, per fold and as mean and spread, with a plot and a report table."""

from __future__ import annotations

import numpy as np
import pytest


def config(*overrides: str):
    from pipelines.forecasting.config import ForecastingConfig

    quick = ["units=4", "epochs=1", "patience=1", "backtest_folds=2"]
    return ForecastingConfig.from_preset("smoke").with_overrides([*quick, *overrides])


@pytest.fixture(scope="module")
def weather():
    from pipelines.forecasting.data import load_builtin

    return load_builtin(config(), "weather", seed=0)


@pytest.mark.parametrize("mode", ["retrain", "refit"])
def test_each_fold_scores_the_model_beside_every_baseline(weather, tmp_path, mode):
    from pipelines.base import Evaluation
    from pipelines.forecasting import backtest
    from pipelines.forecasting.evaluate import persistence
    from pipelines.forecasting.model import build_model

    settings = config(f"backtest_mode={mode}")
    model = build_model(settings, weather.info)
    summary = backtest.backtest(model, weather, settings, tmp_path)
    assert set(summary) == {"model", "persistence", "seasonal_naive", "linear", "train_mean"}
    keys = set(summary["model"])
    for metric in backtest.FOLD_METRICS:
        assert {f"backtest_{metric}_fold_{k}" for k in (1, 2)} <= keys
    for values in summary.values():
        assert set(values) == keys
        folds = [values["backtest_mae_fold_1"], values["backtest_mae_fold_2"]]
        assert values["backtest_mae_mean"] == pytest.approx(np.mean(folds))
        assert values["backtest_mae_std"] == pytest.approx(np.std(folds))
    assert (tmp_path / backtest.PLOT).stat().st_size > 0
    # Persistence needs no training: its first fold is the first windows after training.
    starts = backtest.fold_starts(len(weather.train[1]), sum(weather.sizes().values()), settings)
    size = starts[1] - starts[0]
    later = zip(weather.validation, weather.test, strict=True)
    inputs, truth = (np.concatenate(part)[:size] for part in later)
    mae = float(np.mean(np.abs(persistence(inputs, weather.info) - truth)))
    assert summary["persistence"]["backtest_mae_fold_1"] == pytest.approx(mae)
    test = {"mae": 1.0} | summary.pop("model")
    evaluation = backtest.merged(
        Evaluation(test=test, baselines={n: {"mae": 1.0} for n in summary}),
        {"model": test, **summary},
        settings,
    )
    assert "## Rolling-origin backtest" in evaluation.report
    assert all(set(b) == set(evaluation.test) for b in evaluation.baselines.values())


def test_too_many_folds_is_one_error_before_training():
    from pipelines.errors import UserError
    from pipelines.forecasting import backtest

    with pytest.raises(UserError, match="setting 'backtest_folds' \\(2\\) is more than the 1"):
        backtest.fold_starts(100, 101, config())
