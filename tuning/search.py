"""Running a Keras Tuner search (random, Bayesian, Hyperband) that resumes where it stopped."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import keras
import keras_tuner
import pandas as pd

TUNERS = ("random", "bayesian", "hyperband")


def make_tuner(
    hypermodel: keras_tuner.HyperModel,
    tuner_name: str,
    max_trials: int,
    epochs: int,
    directory: Path,
    seed: int,
    resume: bool,
) -> keras_tuner.Tuner:
    """A tuner minimising validation loss; ``resume`` reloads the project in ``directory``.

    Hyperband decides its own number of trials from ``epochs`` (its ``max_epochs``).
    """
    common = {
        "objective": "val_loss",
        "directory": str(directory),
        "project_name": "search",
        "overwrite": not resume,
        "seed": seed,
    }
    if tuner_name == "random":
        return keras_tuner.RandomSearch(hypermodel, max_trials=max_trials, **common)
    if tuner_name == "bayesian":
        return keras_tuner.BayesianOptimization(hypermodel, max_trials=max_trials, **common)
    if tuner_name == "hyperband":
        return keras_tuner.Hyperband(
            hypermodel, max_epochs=max(epochs, 2), factor=3, hyperband_iterations=1, **common
        )
    raise ValueError(f"unknown tuner {tuner_name!r}; choose one of {', '.join(TUNERS)}")


def run_search(
    hypermodel: keras_tuner.HyperModel,
    *,
    tuner_name: str,
    max_trials: int,
    epochs: int,
    directory: Path,
    seed: int = 0,
    resume: bool = False,
    patience: int = 2,
    workers: int = 0,
    worker_command: list[str] | None = None,
) -> dict[str, Any]:
    """Search, write ``trials.csv`` and ``best_hyperparameters.json``; return the best values.

    With ``workers`` > 0 this process is the chief oracle of Keras Tuner's distributed
    mode and ``worker_command`` (``python -m tuning.worker RUN``) runs in that many
    local worker processes (``tuning.distributed``); their logs go to ``workers/``.

    A search resumed after a kill keeps its finished trials; Keras Tuner runs the
    interrupted one again (its oracle queues unfinished trials for retry on reload).
    """
    directory.mkdir(parents=True, exist_ok=True)
    tuner = make_tuner(hypermodel, tuner_name, max_trials, epochs, directory, seed, resume)
    if workers:
        from tuning.distributed import distributed_search

        distributed_search(
            lambda: search(tuner, epochs, seed, patience),
            worker_command,
            workers,
            directory / "workers",
        )
    else:
        search(tuner, epochs, seed, patience)
    write_trials_csv(tuner, directory / "trials.csv")
    best = tuner.get_best_hyperparameters(1)[0].values
    best = {key: value for key, value in best.items() if not key.startswith("tuner/")}
    (directory / "best_hyperparameters.json").write_text(json.dumps(best, indent=2) + "\n")
    return best


def search(tuner: keras_tuner.Tuner, epochs: int, seed: int, patience: int = 2) -> None:
    """``tuner.search`` with early stopping (and the fault tests' kill hook)."""
    from pipelines.resume import KillPoint

    tuner.search(
        epochs=epochs,
        seed=seed,
        callbacks=[
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience),
            KillPoint(),
        ],
        verbose=1 if sys.stdout.isatty() else 2,
    )


def write_trials_csv(tuner: keras_tuner.Tuner, path: Path) -> pd.DataFrame:
    """One row per trial: id, status, score (validation loss), best step and its values."""
    rows = []
    for trial in tuner.oracle.trials.values():
        values = {
            k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")
        }
        rows.append(
            {
                "trial_id": trial.trial_id,
                "status": trial.status,
                "score": trial.score,
                "best_step": trial.best_step,
                **values,
            }
        )
    frame = pd.DataFrame(rows).sort_values("score", na_position="last")
    frame.to_csv(path, index=False)
    return frame
