"""Rolling-origin backtest: the period after the training split is cut into ``backtest_folds``
folds of consecutive windows; at each fold's start a model is trained on every window
before it (``retrain``: a new model; ``refit``: the run's model trained on from its
weights), its last ``validation_fraction`` held out for early stopping and calibration,
and the fold is scored, the model beside every baseline (the linear one fit again on the
same windows). Normalisation stays the run's: its training split precedes every cutoff.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from pipelines.base import Evaluation, Splits
from pipelines.errors import UserError
from pipelines.forecasting import evaluate, intervals, linear
from pipelines.forecasting.model import build_model, set_linear_weights
from pipelines.plotting import plt
from pipelines.progress import log

# The metrics given per fold, with their mean and spread over the folds.
FOLD_METRICS = ("mae", "rmse", "mase", "interval_coverage", "pinball_loss")
PLOT = "backtest.png"


def backtest(model, splits: Splits, config, out_dir: Path) -> dict[str, dict[str, float]]:
    """Per forecast (``model`` and each baseline), ``backtest_METRIC_fold_K``, ``_mean`` and
    ``_std`` (the spread over the folds); writes ``backtest.png``."""
    inputs = np.concatenate([splits.train[0], splits.validation[0], splits.test[0]])
    truth = np.concatenate([splits.train[1], splits.validation[1], splits.test[1]])
    starts = fold_starts(len(splits.train[1]), len(truth), config)
    folds = []
    for k, (start, stop) in enumerate(zip(starts, [*starts[1:], len(truth)], strict=True)):
        log(f"backtest: fold {k + 1}/{len(starts)} ({config.backtest_mode}), windows {start}..")
        folds.append(_fold(model, inputs, truth, start, stop, splits.info, config))
    _plot(folds, config, out_dir / PLOT)
    return _summary(folds)


def fold_starts(train_windows: int, windows: int, config) -> list[int]:
    """The first window of each fold; UserError when a fold would have no window."""
    folds = config.backtest_folds
    size = (windows - train_windows) // folds
    if size < 1:
        raise UserError(
            f"setting 'backtest_folds' ({folds}) is more than the {windows - train_windows} "
            "windows after the training split; lower backtest_folds"
        )
    return [train_windows + k * size for k in range(folds)]


def merged(evaluation: Evaluation, summary: dict, config) -> Evaluation:
    """``evaluation`` with the backtest's metrics, plot and table added."""
    evaluation.test |= summary.pop("model")
    for name, values in summary.items():
        evaluation.baselines[name] |= values
    evaluation.plots[f"Backtest: MAE per fold ({config.backtest_mode})"] = PLOT
    evaluation.report += _table(evaluation, config)
    return evaluation


def _fold(model, inputs, truth, start: int, stop: int, info, config) -> dict[str, dict]:
    """Metrics of the model trained on the windows before ``start`` and of each baseline,
    on the windows ``[start, stop)``."""
    held = max(1, int(start * config.validation_fraction))
    train = (inputs[: start - held], truth[: start - held])
    validation = (inputs[start - held : start], truth[start - held : start])
    fold_info = info.replace(linear=linear.fit(train, validation, info))
    fold_model = _fold_model(model, fold_info, config)
    stopping = keras.callbacks.EarlyStopping(patience=config.patience, restore_best_weights=True)
    fold_model.fit(
        *train,
        validation_data=validation,
        epochs=config.epochs,
        batch_size=config.batch_size,
        callbacks=[stopping],
        verbose=0,
    )
    intervals.calibrate_model(fold_model, validation, fold_info)
    test = (inputs[start:stop], truth[start:stop])
    return evaluate.scored(fold_model, test, validation, fold_info)[2]


def _fold_model(model, info, config):
    """A new model (retrain), or one with the run's weights (refit), on the fold's linear
    forecast."""
    fold_model = build_model(config, info)
    if config.backtest_mode == "refit":
        fold_model.set_weights(model.get_weights())
        if config.anchor == "linear":
            set_linear_weights(fold_model, info)
    return fold_model


def _summary(folds: list[dict]) -> dict[str, dict[str, float]]:
    """Per forecast, each metric per fold, its mean and its standard deviation."""
    summary = {}
    for name in folds[0]:
        values = {}
        for metric in FOLD_METRICS:
            scores = [fold[name].get(metric) for fold in folds]
            if any(score is None for score in scores):
                continue  # not measured (no quantiles) or undefined (MASE of a flat series)
            for k, score in enumerate(scores):
                values[f"backtest_{metric}_fold_{k + 1}"] = float(score)
            values[f"backtest_{metric}_mean"] = float(np.mean(scores))
            values[f"backtest_{metric}_std"] = float(np.std(scores))
        summary[name] = values
    return summary


def _plot(folds: list[dict], config, path: Path) -> None:
    """MAE of the model and every baseline on each fold, on a log scale."""
    figure, axis = plt.subplots(figsize=(6.5, 3.8))
    numbers = np.arange(1, len(folds) + 1)
    for name in folds[0]:
        errors = [fold[name]["mae"] for fold in folds]
        axis.plot(numbers, errors, marker="o", lw=2.0 if name == "model" else 1.0, label=name)
    axis.set_xlabel("fold (in time order)")
    axis.set_ylabel("MAE (log scale)")
    axis.set_yscale("log")  # the climatology's errors can dwarf the others'
    axis.set_xticks(numbers)
    axis.set_title(f"Rolling-origin backtest ({config.backtest_mode}): MAE per fold")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _table(evaluation: Evaluation, config) -> str:
    """Markdown: each forecast's backtest MAE, mean ± spread over the folds."""
    rows = [("model", evaluation.test), *evaluation.baselines.items()]
    lines = [
        "## Rolling-origin backtest",
        "",
        f"{config.backtest_folds} folds after the training split; at each fold's start the "
        f"model is {'trained anew' if config.backtest_mode == 'retrain' else 'trained on'} "
        "on every window before it. MAE per fold, then its mean ± standard deviation.",
        "",
        "| forecast | "
        + " | ".join(f"fold {k + 1}" for k in range(config.backtest_folds))
        + " | mean ± spread |",
        "| --- |" + " --- |" * (config.backtest_folds + 1),
    ]
    for name, metrics in rows:
        folds = [metrics[f"backtest_mae_fold_{k + 1}"] for k in range(config.backtest_folds)]
        mean, spread = metrics["backtest_mae_mean"], metrics["backtest_mae_std"]
        lines.append(
            f"| {name} | "
            + " | ".join(f"{v:.4g}" for v in folds)
            + f" | {mean:.4g} ± {spread:.2g} |"
        )
    return "\n".join([*lines, ""])
