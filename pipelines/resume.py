"""Resumable training: the whole training state backed up every few steps.

Keras's ``BackupAndRestore`` restores weights and the epoch, but not the step
inside the epoch, the metric accumulators, early stopping's ``best``/``wait``/
best weights, nor (atomically) the file it writes. ``TrainingState`` backs up
all of it, so a run killed mid-epoch and resumed ends with the same weights
and metrics as one never interrupted:

- ``model.variables`` (weights and every ``SeedGenerator`` state, so dropout
  draws the same masks), the optimizer's variables and the metric accumulators;
- the epoch and the steps done in it, which ``EpochData`` skips on resume;
- early stopping's and the best-checkpoint callback's state.

The shuffling order of epoch ``e`` is a pure function of ``(seed, e)``
(``EpochData``), not of how many epochs this process has iterated.

A backup is ``state-N.npz`` plus ``state.json`` naming it, each written to a
temporary file and renamed, so a kill at any instant leaves the previous
backup or the new one, never a torn one.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from pipelines import rundir

STATE_FILE = "state.json"


def read_state(directory: Path) -> dict[str, Any] | None:
    """The last backup's metadata in ``directory``, or None when there is none."""
    path = Path(directory) / STATE_FILE
    return rundir.read_json(path) if path.is_file() else None


def _gather_all(order: tf.Tensor):
    """A ``Dataset.map`` function that reorders every tensor of an element by ``order``."""

    def gather(*parts):
        reordered = tf.nest.map_structure(lambda part: tf.gather(part, order), parts)
        return reordered if len(parts) > 1 else reordered[0]

    return gather


class EpochData:
    """A training dataset whose epoch ``e`` is shuffled by ``(seed, e)`` and can skip steps.

    ``make_dataset(split, batch_size)`` (unshuffled) is unbatched once; each
    epoch shuffles those examples with a seed made from ``seed`` and the epoch
    variable, batches them and skips ``skip`` batches, all read when Keras
    opens the epoch's iterator (after ``on_epoch_begin``).
    """

    def __init__(self, unshuffled: tf.data.Dataset, size: int, batch_size: int, seed: int):
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.skip = tf.Variable(0, dtype=tf.int64, trainable=False)
        examples = unshuffled.unbatch()

        def one_epoch(_):
            # A stateless permutation of all examples: Dataset.shuffle with a tensor seed
            # fails in graph mode when the global seed is 0 (TF compares the seed pair
            # to (0, 0) in Python).
            order = tf.random.experimental.stateless_shuffle(
                tf.range(size, dtype=tf.int64),
                seed=tf.stack([tf.constant(seed, tf.int64), self.epoch]),
            )
            everything = examples.batch(size)  # one element: the split is in memory anyway
            shuffled = everything.map(_gather_all(order)).unbatch()
            return shuffled.batch(batch_size).skip(self.skip)

        dataset = tf.data.Dataset.range(1).flat_map(one_epoch).prefetch(tf.data.AUTOTUNE)
        # Keras remembers the length of the first epoch it iterates when the dataset does
        # not state one; a resumed (shorter) first epoch would then cut every later epoch
        # short. State the full length: the resumed epoch just ends early.
        steps = -(-size // batch_size)
        dataset.cardinality = lambda: tf.constant(steps, tf.int64)
        self.dataset = dataset

    @staticmethod
    def supports(unshuffled: tf.data.Dataset) -> bool:
        """Whether batches can be taken apart and rebuilt (every dimension but the batch fixed)."""
        shapes = tf.nest.flatten(unshuffled.element_spec)
        return all(None not in spec.shape[1:] for spec in shapes)

    def set(self, epoch: int, skip: int) -> None:
        """Serve epoch ``epoch`` from its step ``skip`` on."""
        self.epoch.assign(epoch)
        self.skip.assign(skip)


class TrainingState(keras.callbacks.Callback):
    """Back up the whole training state every ``save_freq`` steps and each epoch; restore it.

    Args:
        directory: where ``state.json`` and ``state-N.npz`` live.
        save_freq: steps between backups inside an epoch (0: only at epoch ends).
        early_stopping: the run's ``EarlyStopping``, placed before this callback.
        checkpoint: the best-weights ``ModelCheckpoint`` (its ``best`` is restored).
        data: what to point at each epoch and resumed step (``EpochData``, or anything
            with its ``set(epoch, skip)``), or None.
        metrics: the metric accumulators' variables (default: the model's own).
        write: False only restores (a worker that is not the chief writes nothing).
    """

    def __init__(
        self,
        directory,
        save_freq,
        early_stopping,
        checkpoint=None,
        data=None,
        metrics=None,
        write=True,
    ):
        super().__init__()
        self.directory = Path(directory)
        self.save_freq = save_freq
        self.early_stopping = early_stopping
        self.checkpoint = checkpoint
        self.data = data
        self._metrics = None if metrics is None else list(metrics)
        self.write = write
        self.epoch = self.step = self.serial = 0
        self._resume_metrics: list[np.ndarray] | None = None
        self._short_epoch: int | None = None  # the resumed epoch, which ends early
        self._counters: list[tuple[Any, np.ndarray]] = []

    # -- saving -------------------------------------------------------------------------
    def _metric_variables(self) -> list:
        return self._metrics if self._metrics is not None else list(self.model.metrics_variables)

    def _state_variables(self) -> list:
        model = self.model
        optimizer = list(model.optimizer.variables) if model.optimizer else []
        return list(model.variables) + optimizer + self._metric_variables()

    def _save(self, finished: bool = False) -> None:
        if not self.write:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self.serial += 1
        arrays = {f"v{i}": np.asarray(v) for i, v in enumerate(self._state_variables())}
        best = self.early_stopping.best_weights or []
        arrays |= {f"best{i}": np.asarray(w) for i, w in enumerate(best)}
        name = f"state-{self.serial}.npz"
        temporary = self.directory / (name + ".tmp")
        with rundir.writing(temporary), open(temporary, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(temporary, self.directory / name)
        stopping = self.early_stopping
        rundir.write_json(
            self.directory / STATE_FILE,
            {
                "file": name,
                "serial": self.serial,
                "epoch": self.epoch,
                "step": self.step,
                "finished": finished,
                "early_stopping": {
                    "best": _finite_or_none(stopping.best),
                    "wait": stopping.wait,
                    "best_epoch": stopping.best_epoch,
                    "stopped_epoch": stopping.stopped_epoch,
                    "best_weights": len(best),
                },
            },
        )
        for old in self.directory.glob("state-*.npz"):
            if old.name != name:
                old.unlink()

    # -- restoring ----------------------------------------------------------------------
    def _restore(self, state: dict[str, Any]) -> None:
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        variables = self._state_variables()
        metrics_start = len(variables) - len(self._metric_variables())
        with np.load(self.directory / state["file"]) as arrays:
            for i, variable in enumerate(variables[:metrics_start]):
                variable.assign(arrays[f"v{i}"])
            saved = sorted((k for k in arrays.files if k.startswith("v")), key=lambda k: int(k[1:]))
            metrics = [arrays[k] for k in saved[metrics_start:]]
            count = state["early_stopping"]["best_weights"]
            best = [arrays[f"best{i}"] for i in range(count)] or None
        self._restore_early_stopping(state["early_stopping"], best)
        self.epoch, self.step, self.serial = state["epoch"], state["step"], state["serial"]
        # Metric sums of the steps already done in the epoch; added after the first step
        # of the resumed epoch, when Keras has built every metric.
        self._resume_metrics = metrics if self.step else None
        self._short_epoch = self.epoch if self.step else None

    def _restore_early_stopping(self, saved: dict[str, Any], best_weights) -> None:
        stopping = self.early_stopping
        stopping.best = saved["best"]
        stopping.wait = saved["wait"]
        stopping.best_epoch = saved["best_epoch"]
        stopping.stopped_epoch = saved["stopped_epoch"]
        stopping.best_weights = best_weights
        if self.checkpoint is not None and saved["best"] is not None:
            self.checkpoint.best = saved["best"]

    def restore_finished(self, model) -> bool:
        """Put a finished training's final weights into ``model``; False if it had not finished."""
        state = read_state(self.directory)
        if state is None or not state["finished"]:
            return False
        self.set_model(model)
        self._restore(state)
        if self.early_stopping.best_weights is not None:  # stopped, killed before on_train_end
            model.set_weights(self.early_stopping.best_weights)
        return True

    # -- the callback -------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        state = read_state(self.directory)
        if state is not None:
            self._restore(state)

    def on_epoch_begin(self, epoch, logs=None):
        if epoch != self.epoch:
            self.step = 0
        self.epoch = epoch
        if self.data is not None:
            self.data.set(epoch, self.step)

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self._resume_metrics is not None:  # metrics are sums: add the earlier steps'
            for variable, value in zip(self._metric_variables(), self._resume_metrics, strict=True):
                variable.assign(np.asarray(variable) + value)
            self._resume_metrics = None
        if self.epoch == self._short_epoch:
            self._keep_counters()
        if self.save_freq and self.step % self.save_freq == 0:
            self._save()

    def _keep_counters(self) -> None:
        """Note the integer state (seed generators, optimizer steps) after this batch.

        The resumed epoch is shorter than Keras expects, so Keras calls the train
        function once more on the exhausted iterator; that failing call still advances
        these counters, and ``on_epoch_end`` puts them back.
        """
        variables = list(self.model.variables) + list(self.model.optimizer.variables)
        self._counters = [(v, np.asarray(v)) for v in variables if "int" in str(v.dtype)]

    def _put_back_counters(self) -> None:
        for variable, value in self._counters:
            variable.assign(value)
        self._counters, self._short_epoch = [], None

    def on_test_begin(self, logs=None):
        self._put_back_counters()  # before validation, which advances some seeds too

    def on_epoch_end(self, epoch, logs=None):
        self._put_back_counters()
        self.epoch, self.step = epoch + 1, 0
        self._save(finished=bool(self.model.stop_training))

    def on_train_end(self, logs=None):
        self._save(finished=True)


def _finite_or_none(value) -> float | None:
    """A monitored best as strict JSON: a value that is not finite (a diverged epoch's NaN)
    is saved as None, which early stopping reads as "nothing seen yet"."""
    return None if value is None or not math.isfinite(float(value)) else float(value)
