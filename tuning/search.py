"""Running a Keras Tuner search (random, Bayesian, Hyperband) that resumes where it stopped."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import keras_tuner
import pandas as pd

from pipelines import progress, strict_json
from pipelines.errors import UserError
from tuning.space import Objective

TUNERS = ("random", "bayesian", "hyperband")


class _TrialFolders:
    """Hands ``HyperModel.fit`` its trial's folder (``directory=``) for the trainer's files."""

    def run_trial(self, trial, *args, **kwargs):
        folder = Path(self.get_trial_dir(trial.trial_id))
        return super().run_trial(trial, *args, directory=folder, **kwargs)


class _RandomSearch(_TrialFolders, keras_tuner.RandomSearch):
    """``keras_tuner.RandomSearch`` with a folder per trial for the trainer."""


class _BayesianOptimization(_TrialFolders, keras_tuner.BayesianOptimization):
    """``keras_tuner.BayesianOptimization`` with a folder per trial for the trainer."""


class _Hyperband(_TrialFolders, keras_tuner.Hyperband):
    """``keras_tuner.Hyperband`` with a folder per trial for the trainer."""


def make_tuner(
    hypermodel: keras_tuner.HyperModel,
    tuner_name: str,
    max_trials: int,
    epochs: int,
    directory: Path,
    seed: int,
    resume: bool,
    objective: Objective | None = None,
) -> keras_tuner.Tuner:
    """A tuner optimising ``objective`` (default: minimise ``val_loss``); ``resume``
    reloads the project in ``directory``.

    Hyperband decides its own number of trials from ``epochs`` (its ``max_epochs``).
    Each trial's ``HyperModel.fit`` gets its trial folder as ``directory``.
    """
    objective = objective or Objective()
    common = {
        "objective": keras_tuner.Objective(objective.name, objective.direction),
        "directory": str(directory),
        "project_name": "search",
        "overwrite": not resume,
        "seed": seed,
    }
    if tuner_name == "random":
        return _RandomSearch(hypermodel, max_trials=max_trials, **common)
    if tuner_name == "bayesian":
        return _BayesianOptimization(hypermodel, max_trials=max_trials, **common)
    if tuner_name == "hyperband":
        return _Hyperband(
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
    objective: Objective | None = None,
    workers: int = 0,
    worker_command: list[str] | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> dict[str, Any]:
    """Search, write ``trials.csv`` and ``best_hyperparameters.json``; return the best values.

    With ``workers`` > 0 this process is the chief oracle of Keras Tuner's distributed
    mode and ``worker_command`` (``python -m tuning.worker RUN``) runs in that many
    local worker processes (``tuning.distributed``); their logs go to ``workers/``.

    A search resumed after a kill keeps its finished trials; Keras Tuner runs the
    interrupted one again (its oracle queues unfinished trials for retry on reload).
    ``callbacks`` go to every trial's fit in this process (Keras Tuner deep-copies them
    for each trial); the worker processes of a distributed search do not get them.
    """
    directory.mkdir(parents=True, exist_ok=True)
    tuner = make_tuner(
        hypermodel, tuner_name, max_trials, epochs, directory, seed, resume, objective
    )
    try:
        if workers:
            from tuning.distributed import distributed_search

            distributed_search(
                lambda: search(tuner, epochs, seed, patience, callbacks),
                worker_command,
                workers,
                directory / "workers",
            )
        else:
            search(tuner, epochs, seed, patience, callbacks)
    except keras_tuner.errors.FatalError as error:
        raise UserError(str(error)) from None
    write_trials_csv(tuner, directory / "trials.csv")
    best = tuner.get_best_hyperparameters(1)[0].values
    best = {key: value for key, value in best.items() if not key.startswith("tuner/")}
    (directory / "best_hyperparameters.json").write_text(strict_json.dumps(best, indent=2) + "\n")
    return best


def search(
    tuner: keras_tuner.Tuner,
    epochs: int,
    seed: int,
    patience: int = 2,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> None:
    """``tuner.search``; each trial trains through ``PipelineHyperModel.fit``'s trainer.

    ``patience`` is the trials' early stopping; ``callbacks`` go to every trial's fit.
    """
    tuner.search(
        epochs=epochs,
        seed=seed,
        patience=patience,
        callbacks=[ObjectiveCheck(tuner.oracle.objective.name), *callbacks],
        verbose=progress.keras_verbose(),
    )


def write_trials_csv(tuner: keras_tuner.Tuner, path: Path) -> pd.DataFrame:
    """One row per trial: id, status, score (the objective), best step and its values,
    best first."""
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
    ascending = tuner.oracle.objective.direction == "min"
    frame = pd.DataFrame(rows).sort_values("score", ascending=ascending, na_position="last")
    frame.to_csv(path, index=False)
    return frame


class ObjectiveCheck(keras.callbacks.Callback):
    """Stop the search at the first epoch whose logs lack the objective, naming what they hold.

    Raises Keras Tuner's ``FatalValueError``, which ends the search instead of being
    retried as a failed trial.
    """

    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.name not in logs:
            found = ", ".join(sorted(k for k in logs if k.startswith("val_")))
            raise keras_tuner.errors.FatalValueError(
                f"tuning.objective: {self.name!r} is not among this pipeline's epoch values "
                f"({found})"
            )
