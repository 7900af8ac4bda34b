"""The one training loop: every fit of a run (tuning trials, the final training) goes through it.

``Trainer`` owns the epochs, early stopping on ``val_loss`` (best weights restored),
the best-weights checkpoint, backups of the whole training state every N steps and
at each epoch end (``pipelines.resume.TrainingState``), ``history.csv``, TensorBoard
logs, ``training.json`` and resuming from the last backup. All of them are Keras
callbacks, built in one place:

- ``Trainer.fit`` hands them to ``model.fit``;
- ``Trainer.loop`` calls the very same callbacks, through ``keras.callbacks.CallbackList``,
  around a custom training step: the one run under ``MultiWorkerMirroredStrategy``,
  where ``model.fit`` fails (``pipelines.distributed``).

Files go to ``directory`` (``history.csv``, ``logs/``, ``checkpoints/``, ``backup/``,
``training.json``), and only from the chief: a ``chief=False`` trainer reads the
chief's backup to resume but writes nothing.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import keras
import numpy as np

from pipelines import progress, resume, rundir
from pipelines.errors import UserError
from pipelines.progress import log

# What a weights file takes at most beside the weights themselves (HDF5's own structures);
# the factor leaves room for the file being replaced while the old one still exists.
HDF5_ROOM_FACTOR = 2
HDF5_ROOM_BYTES = 1 << 20


class _NamedCheckpoint(keras.callbacks.ModelCheckpoint):
    """``ModelCheckpoint`` whose failed write (disk full, file-size limit) names its file.

    The room for the weights is checked before each save: a write that fails inside HDF5
    can leave the process to crash at exit instead of ending with the error.
    """

    def on_epoch_end(self, epoch, logs=None):
        with rundir.writing(Path(self.filepath)):
            self._check_room()
            super().on_epoch_end(epoch, logs)

    def on_train_batch_end(self, batch, logs=None):
        with rundir.writing(Path(self.filepath)):
            super().on_train_batch_end(batch, logs)

    def _check_room(self) -> None:
        weights = sum(
            math.prod(weight.shape) * np.dtype(weight.dtype).itemsize
            for weight in self.model.weights
        )
        rundir.check_room(Path(self.filepath), HDF5_ROOM_FACTOR * weights + HDF5_ROOM_BYTES)


@dataclasses.dataclass
class TrainingResult:
    """What a training left: Keras's ``History`` (None when it had finished before) and a summary.

    ``info`` holds ``train_seconds``, ``epochs_run`` and ``train_samples_per_second``.
    """

    history: keras.callbacks.History | None
    info: dict[str, Any]


class CustomSteps(Protocol):
    """The custom training step ``Trainer.loop`` drives.

    ``set`` and ``batches`` follow ``resume.EpochData``: the backup callback points
    them at an epoch and at the steps of it already done before the epoch's batches
    are read.
    """

    def set(self, epoch: int, skip: int) -> None:
        """Serve epoch ``epoch`` from its step ``skip`` on."""

    def batches(self) -> Iterable[Any]:
        """The training batches of the epoch last ``set``."""

    def train_step(self, batch: Any) -> Any:
        """Train on one batch; returns its scalar loss."""

    def validate(self) -> dict[str, float]:
        """The validation values without their ``val_`` prefix, e.g. ``{"loss": 0.4}``."""


class Trainer:
    """Trains a compiled model with early stopping, backups, history, TensorBoard and resume.

    Args:
        directory: the run's (or trial's) folder for the files above; None writes nothing.
        epochs: epochs to train in all (those of a resumed training's backup included).
        patience: epochs without a better ``val_loss`` before stopping early.
        backup_steps: steps between backups inside an epoch (0: only at epoch ends);
            None: no backups, so nothing to resume from.
        callbacks: extra Keras callbacks, called after the trainer's own (so a batch's
            backup is written before they see the batch).
        epoch_callbacks: callbacks that add values to the epoch logs, called first so
            that early stopping, the history and the extra callbacks see those values.
        chief: whether this process writes files (False on multi-worker non-chiefs).
        best_checkpoint: whether to keep ``checkpoints/best.weights.h5``.
        divergence_is_error: end training with a UserError once an epoch's loss is not
            finite (a run's training); a search's trial passes False, so the tuner scores
            that trial instead of the search ending.
        learning_rate: the callback that sets each epoch's learning rate
            (``training.learning_rate_schedule``), or None for a constant rate.
        verbose: Keras's progress display (default ``progress.keras_verbose()``: its bar
            on a terminal, else none); without Keras's display the trainer logs one
            ``[rnn-suite]`` line per epoch.
    """

    def __init__(
        self,
        directory: Path | None,
        *,
        epochs: int,
        patience: int,
        backup_steps: int | None = 0,
        callbacks: Sequence[keras.callbacks.Callback] = (),
        epoch_callbacks: Sequence[keras.callbacks.Callback] = (),
        chief: bool = True,
        best_checkpoint: bool = True,
        divergence_is_error: bool = True,
        learning_rate: keras.callbacks.Callback | None = None,
        verbose: int | None = None,
    ):
        self.directory = None if directory is None else Path(directory)
        self.epochs = epochs
        self.patience = patience
        self.backup_steps = backup_steps
        self.callbacks = list(callbacks)
        self.epoch_callbacks = list(epoch_callbacks)
        self.chief = chief
        self.best_checkpoint = best_checkpoint
        self.divergence_is_error = divergence_is_error
        self.learning_rate = learning_rate
        self.verbose = progress.keras_verbose() if verbose is None else verbose
        self._state: resume.TrainingState | None = None

    @property
    def _writes(self) -> bool:
        return self.chief and self.directory is not None

    def fit(
        self,
        model: keras.Model,
        train: Any,
        validation: Any,
        *,
        data: resume.EpochData | None = None,
        initial_epoch: int = 0,
        examples: int | None = None,
    ) -> TrainingResult:
        """Train with ``model.fit``; a training that had finished before is not repeated.

        ``data`` is the ``EpochData`` behind ``train``, which a resumed run needs to
        continue inside an epoch; ``examples`` (training examples per epoch) gives the
        throughput in the summary.
        """
        callbacks = self._prepare(model, data)
        if callbacks is None:
            return self._finished()
        backed_up = resume.read_state(self._state.directory) if self._state else None
        started = time.perf_counter()
        with warnings.catch_warnings():
            # Keras warns at the end of the first epoch of any dataset of unknown length
            # (bucketed, filtered) that its input "ran out of data", though no step was cut.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            history = model.fit(
                train,
                validation_data=validation,
                epochs=self.epochs,
                initial_epoch=max(initial_epoch, backed_up["epoch"] if backed_up else 0),
                callbacks=callbacks,
                shuffle=False,
                verbose=self.verbose,
            )
        return self._result(history, started, examples)

    def loop(
        self, model: keras.Model, steps: CustomSteps, *, examples: int | None = None
    ) -> TrainingResult:
        """Train with a custom step, calling the callbacks where ``model.fit`` calls them."""
        tracker = keras.metrics.Mean(name="loss")
        callbacks = self._prepare(model, steps, metrics=tracker.variables)
        if callbacks is None:
            return self._finished()
        every = keras.callbacks.CallbackList(
            callbacks,
            add_history=True,
            add_progbar=self.verbose != 0,
            model=model,
            verbose=self.verbose,
            epochs=self.epochs,
            steps=None,
        )
        started = time.perf_counter()
        model.stop_training = False
        every.on_train_begin()  # a backup, if any, is restored here
        logs = None
        for epoch in range(self._state.epoch if self._state else 0, self.epochs):
            logs = _custom_epoch(steps, tracker, every, epoch)
            if model.stop_training:
                break
        every.on_train_end(logs)
        return self._result(model.history, started, examples)

    def _prepare(self, model, data, metrics=None) -> list[keras.callbacks.Callback] | None:
        """This training's callbacks, or None when it had finished (its weights put back)."""
        stopping = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=self.patience, restore_best_weights=True
        )
        best = self._checkpoint()
        self._state = self._training_state(stopping, best, data, metrics)
        if self._state is not None and self._state.restore_finished(model):
            log("training: already finished before the interruption; not repeated")
            return None
        # history.csv is written before the backup, so after a kill it holds every
        # backed-up epoch and at most one more, which _history_logger drops on resume.
        guard = _DivergenceGuard() if self.divergence_is_error else None
        epoch_log = _EpochLog(self.epochs) if self.verbose == 0 else None
        own = [
            self.learning_rate,
            guard,
            self._history_logger(),
            stopping,
            best,
            self._state,
            self._tensorboard(),
            epoch_log,
        ]
        return [*self.epoch_callbacks, *(c for c in own if c is not None), *self.callbacks]

    def _checkpoint(self) -> keras.callbacks.ModelCheckpoint | None:
        if not (self._writes and self.best_checkpoint):
            return None
        (self.directory / "checkpoints").mkdir(parents=True, exist_ok=True)
        return _NamedCheckpoint(
            str(self.directory / "checkpoints" / "best.weights.h5"),
            monitor="val_loss",
            save_best_only=True,
            save_weights_only=True,
        )

    def _training_state(self, stopping, best, data, metrics) -> resume.TrainingState | None:
        if self.backup_steps is None or self.directory is None:
            return None
        return resume.TrainingState(
            self.directory / "backup",
            self.backup_steps,
            stopping,
            best,
            data,
            metrics=metrics,
            write=self.chief,
        )

    def _history_logger(self) -> keras.callbacks.CSVLogger | None:
        """``history.csv``, kept only for the epochs the backup holds."""
        if not self._writes:
            return None
        path = self.directory / "history.csv"
        state = resume.read_state(self.directory / "backup") if self._state else None
        done = state["epoch"] if state else 0
        if done and path.exists():
            path.write_text("".join(path.read_text().splitlines(keepends=True)[: 1 + done]))
        return keras.callbacks.CSVLogger(str(path), append=bool(done))

    def _tensorboard(self) -> keras.callbacks.TensorBoard | None:
        return keras.callbacks.TensorBoard(str(self.directory / "logs")) if self._writes else None

    def _finished(self) -> TrainingResult:
        path = self.directory / "training.json"
        if path.is_file():
            return TrainingResult(None, rundir.read_json(path))
        info = {"train_seconds": None, "epochs_run": self._state.epoch}
        return TrainingResult(None, info | {"train_samples_per_second": None})

    def _result(self, history, started: float, examples: int | None) -> TrainingResult:
        seconds = time.perf_counter() - started
        if self._state is not None:
            epochs = self._state.epoch
        else:
            epochs = history.epoch[-1] + 1 if history.epoch else 0
        info = {
            "train_seconds": round(seconds, 2),
            "epochs_run": epochs,
            "train_samples_per_second": round(epochs * examples / seconds, 1)
            if epochs and examples
            else None,
        }
        if self._writes:
            rundir.write_json(self.directory / "training.json", info)
        return TrainingResult(history, info)


def _custom_epoch(steps: CustomSteps, tracker, callbacks, epoch: int) -> dict[str, float]:
    """One epoch of ``Trainer.loop``; returns the epoch's logs."""
    tracker.reset_state()
    steps.set(epoch, 0)  # the backup callback moves it on to a resumed step
    callbacks.on_epoch_begin(epoch)
    for step, batch in enumerate(steps.batches()):
        callbacks.on_train_batch_begin(step)
        tracker.update_state(steps.train_step(batch))
        callbacks.on_train_batch_end(step, {"loss": tracker.result()})
    logs = {"loss": float(tracker.result())}
    callbacks.on_test_begin()
    validation = steps.validate()
    callbacks.on_test_end(validation)
    logs |= {f"val_{name}": value for name, value in validation.items()}
    callbacks.on_epoch_end(epoch, logs)
    return logs


class _EpochLog(keras.callbacks.Callback):
    """One ``[rnn-suite]`` line per epoch, where Keras's own display is off."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs
        self._started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._started
        progress.log(progress.epoch_line(epoch + 1, self.epochs, seconds, logs or {}))


class _DivergenceGuard(keras.callbacks.Callback):
    """Ends training with a UserError at the end of an epoch whose loss is not finite.

    Called before the history, early stopping and the backup, so a diverged epoch is never
    backed up or taken as the best one."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise UserError(
                f"training diverged: the loss is {float(loss)} at epoch {epoch + 1}; "
                "try a lower learning_rate (--set learning_rate=...)"
            )
