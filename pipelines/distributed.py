"""Training across processes with ``tf.distribute.MultiWorkerMirroredStrategy``.

Keras 3's ``model.fit`` fails under that strategy (keras-team/keras#20585), so
``train`` is a custom loop: ``strategy.run`` of a step whose loss is
``tf.nn.compute_average_loss`` over the *global* batch, the Keras model and
optimizer (which all-reduce the gradients), early stopping on validation loss,
``history.csv`` and an epoch-level backup for ``--resume``.

Every worker runs the same command with its own ``TF_CONFIG``. Each reads the
same global batches (same seed, same order); the strategy's auto-sharding
gives each worker its slice of every global batch. The chief (task ``chief``,
or ``worker`` 0 when there is none) writes the run directory; every other
worker trains in a temporary folder and leaves only its final weights in
``RUN_DIR.worker-N/model.weights.h5``.

Limits: the last partial global batch of each epoch is dropped, so each
replica gets a full share; Keras clips gradients (``clipnorm``) per replica
before the all-reduce; ``--resume`` needs the chief's run folder readable by
every worker (a shared filesystem), and resumes at an epoch boundary.
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from pipelines import rundir
from pipelines.errors import UserError
from pipelines.progress import log

STATE_FILE = "multiworker.json"


def make_strategy() -> tf.distribute.MultiWorkerMirroredStrategy:
    """The strategy over the cluster of ``TF_CONFIG`` (a single local worker without it).

    Create it before any other TensorFlow work: collectives are configured at startup.
    """
    return tf.distribute.MultiWorkerMirroredStrategy()


def task() -> tuple[bool, int]:
    """``(is_chief, index)`` of this process in ``TF_CONFIG``."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    kind = config.get("task", {}).get("type", "worker")
    index = int(config.get("task", {}).get("index", 0))
    has_chief = "chief" in config.get("cluster", {})
    return kind == "chief" or (not has_chief and kind == "worker" and index == 0), index


def per_example_loss(model: keras.Model):
    """``f(y, prediction)`` -> one loss per example, from the model's compiled loss."""
    loss = model.loss
    if isinstance(loss, dict | list | tuple):
        raise UserError("--distribute multiworker supports models with a single loss")
    function = loss.call if isinstance(loss, keras.losses.Loss) else keras.losses.get(loss)

    def per_example(y, prediction):
        values = tf.convert_to_tensor(function(y, prediction))
        if values.shape.rank and values.shape.rank > 1:
            values = tf.reduce_mean(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)
        return values

    return per_example


class _Loop:
    """The compiled distributed step and the local validation pass."""

    def __init__(self, strategy, model: keras.Model, global_batch: int):
        self.strategy, self.model, self.global_batch = strategy, model, global_batch
        self.loss = per_example_loss(model)
        self.step = tf.function(self._step)
        self.validate_batch = tf.function(self._validate_batch)

    def _replica_step(self, x, y):
        model = self.model
        with tf.GradientTape() as tape:
            prediction = model(x, training=True)
            loss = tf.nn.compute_average_loss(
                self.loss(y, prediction), global_batch_size=self.global_batch
            )
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
        gradients = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        return loss

    def _step(self, batch):
        losses = self.strategy.run(self._replica_step, args=batch)
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    def _validate_batch(self, x, y):
        values = self.loss(y, self.model(x, training=False))
        return tf.reduce_sum(values), tf.cast(tf.size(values), tf.float32)

    def validate(self, dataset) -> float:
        """Mean validation loss, computed locally (every worker holds the same weights)."""
        total = count = 0.0
        for x, y in dataset:
            batch_total, batch_count = self.validate_batch(x, y)
            total, count = total + float(batch_total), count + float(batch_count)
        return total / max(count, 1.0)


def _epoch_data(strategy, pipeline, config, splits, seed: int, epoch: int):
    """Epoch ``epoch``'s global batches, shuffled by ``(seed, epoch)``, full batches only."""
    batch = config.batch_size
    dataset = pipeline.make_dataset(
        splits.train, batch, shuffle=True, seed=seed * 1_000_003 + epoch
    )
    dataset = dataset.filter(lambda x, y: tf.shape(tf.nest.flatten(y)[0])[0] == batch)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


def train(strategy, pipeline, config, splits, partial: Path, seed: int, chief: bool):
    """Train under ``strategy`` with early stopping; returns ``(model, history info)``."""
    if config.batch_size % strategy.num_replicas_in_sync:
        raise UserError(
            f"setting 'batch_size' ({config.batch_size}) must divide evenly among "
            f"{strategy.num_replicas_in_sync} replicas"
        )
    with strategy.scope():
        model = pipeline.build_model(config, splits.info)
        model.optimizer.build(model.trainable_variables)
    loop = _Loop(strategy, model, config.batch_size)
    validation = pipeline.make_dataset(splits.validation, config.batch_size)
    state = _Backup(partial / "backup", model, write=chief)
    stopping = state.restore()
    log(
        f"training under MultiWorkerMirroredStrategy: {strategy.num_replicas_in_sync} "
        f"replicas, global batch {config.batch_size}, from epoch {stopping['epoch']}"
    )
    started = time.perf_counter()
    for epoch in range(stopping["epoch"], config.epochs):
        if stopping["stopped"]:
            break
        losses = [
            float(loop.step(batch))
            for batch in _epoch_data(strategy, pipeline, config, splits, seed, epoch)
        ]
        val_loss = loop.validate(validation)
        row = {"epoch": epoch, "loss": float(np.mean(losses)), "val_loss": val_loss}
        log(f"epoch {epoch + 1}/{config.epochs}: loss {row['loss']:.4f} val_loss {val_loss:.4f}")
        _early_stopping_update(stopping, model, epoch, val_loss, config.patience)
        if chief:
            _append_history(partial / "history.csv", row)
        state.save(stopping)
    weights = stopping["best_weights"] or model.get_weights()
    seconds = time.perf_counter() - started
    # Evaluation, export and prediction run on the chief alone: a copy outside the strategy
    # (a model built in its scope would run collectives with workers that have left).
    plain = pipeline.build_model(config, splits.info)
    plain.set_weights(weights)
    return plain, {"train_seconds": round(seconds, 2), "epochs_run": stopping["epoch"]}


def _early_stopping_update(stopping: dict, model, epoch: int, val_loss: float, patience: int):
    stopping["epoch"] = epoch + 1
    if stopping["best"] is None or val_loss < stopping["best"]:
        stopping.update(best=val_loss, wait=0, best_epoch=epoch, best_weights=model.get_weights())
        return
    stopping["wait"] += 1
    if stopping["wait"] >= patience and epoch > 0:
        stopping["stopped"] = True


def _append_history(path: Path, row: dict[str, Any]) -> None:
    new = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


class _Backup:
    """Epoch-level backup of weights, optimizer and early stopping (written by the chief)."""

    def __init__(self, directory: Path, model: keras.Model, write: bool):
        self.directory, self.model, self.write = directory, model, write

    def _variables(self) -> list:
        return list(self.model.variables) + list(self.model.optimizer.variables)

    def restore(self) -> dict[str, Any]:
        """The early-stopping state, with the model's state put back if a backup exists."""
        path = self.directory / STATE_FILE
        if not path.is_file():
            return {"epoch": 0, "best": None, "wait": 0, "best_epoch": 0, "stopped": False,
                    "best_weights": None}  # fmt: skip
        state = rundir.read_json(path)
        with np.load(self.directory / state["file"]) as arrays:
            for i, variable in enumerate(self._variables()):
                variable.assign(arrays[f"v{i}"])
            best = [arrays[f"best{i}"] for i in range(state.pop("best_weights"))]
        return state | {"best_weights": best or None}

    def save(self, stopping: dict[str, Any]) -> None:
        """Write the backup (chief only): arrays first, then the JSON naming them."""
        if not self.write:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"multiworker-{stopping['epoch']}.npz"
        arrays = {f"v{i}": np.asarray(v) for i, v in enumerate(self._variables())}
        best = stopping["best_weights"] or []
        arrays |= {f"best{i}": np.asarray(w) for i, w in enumerate(best)}
        with open(self.directory / (name + ".tmp"), "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(self.directory / (name + ".tmp"), self.directory / name)
        rundir.write_json(
            self.directory / STATE_FILE,
            {k: v for k, v in stopping.items() if k != "best_weights"}
            | {"file": name, "best_weights": len(best)},
        )
        for old in self.directory.glob("multiworker-*.npz"):
            if old.name != name:
                old.unlink()
