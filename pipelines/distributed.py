"""Training across processes with ``tf.distribute.MultiWorkerMirroredStrategy``.

Keras 3's ``model.fit`` fails under that strategy (keras-team/keras#20585), so
``train`` runs ``pipelines.trainer.Trainer.loop`` around a custom step:
``strategy.run`` of a step whose loss is ``tf.nn.compute_average_loss`` over the
*global* batch, with the Keras model and optimizer (which all-reduce the
gradients). Early stopping, backups, ``history.csv`` and TensorBoard logs are the
trainer's, the same callbacks as a single-process run's.

Every worker runs the same command with its own ``TF_CONFIG``. Each reads the
same global batches (same seed, same order); the strategy's auto-sharding
gives each worker its slice of every global batch. The chief (task ``chief``,
or ``worker`` 0 when there is none) writes the run directory; every other
worker writes nothing there and leaves only its final weights in
``RUN_DIR.worker-N/model.weights.h5``.

Limits: the last partial global batch of each epoch is dropped, so each
replica gets a full share; Keras clips gradients (``clipnorm``) per replica
before the all-reduce; ``--resume`` needs the chief's run folder readable by
every worker (a shared filesystem), from whose last backup every worker
continues.
"""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

from pipelines.errors import UserError
from pipelines.progress import log
from pipelines.trainer import Trainer


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


class _Steps:
    """The custom step under the strategy, each epoch's global batches and local validation.

    Implements ``pipelines.trainer.CustomSteps``: the trainer's backup callback sets
    the epoch and the steps of it already done, and ``batches`` skips those.
    """

    def __init__(self, strategy, pipeline, config, splits, model: keras.Model, seed: int):
        self.strategy, self.model, self.seed = strategy, model, seed
        self.pipeline, self.config, self.splits = pipeline, config, splits
        self.loss = per_example_loss(model)
        self.epoch = self.skip = 0
        self.validation = pipeline.make_dataset(splits.validation, config.batch_size)
        self.step = tf.function(self._step)
        self.validate_batch = tf.function(self._validate_batch)

    def set(self, epoch: int, skip: int) -> None:
        """Serve epoch ``epoch`` from its step ``skip`` on."""
        self.epoch, self.skip = epoch, skip

    def batches(self):
        """The epoch's global batches, shuffled by ``(seed, epoch)``, full batches only."""
        batch = self.config.batch_size
        dataset = self.pipeline.make_dataset(
            self.splits.train, batch, shuffle=True, seed=self.seed * 1_000_003 + self.epoch
        )
        dataset = dataset.filter(lambda x, y: tf.shape(tf.nest.flatten(y)[0])[0] == batch)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        dataset = dataset.skip(self.skip).with_options(options)
        return self.strategy.experimental_distribute_dataset(dataset)

    def train_step(self, batch):
        """One global step; returns the loss averaged over the global batch."""
        return self.step(batch)

    def _replica_step(self, x, y):
        model = self.model
        with tf.GradientTape() as tape:
            prediction = model(x, training=True)
            loss = tf.nn.compute_average_loss(
                self.loss(y, prediction), global_batch_size=self.config.batch_size
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

    def validate(self) -> dict[str, float]:
        """Mean validation loss, computed locally (every worker holds the same weights)."""
        total = count = 0.0
        for x, y in self.validation:
            batch_total, batch_count = self.validate_batch(x, y)
            total, count = total + float(batch_total), count + float(batch_count)
        return {"loss": total / max(count, 1.0)}


def train(strategy, pipeline, config, splits, trainer: Trainer, seed: int):
    """Train under ``strategy`` with ``trainer``; returns ``(model, training info)``.

    The model returned is a copy outside the strategy: evaluation, export and
    prediction run on the chief alone, and a model built in the strategy's scope
    would run collectives with workers that have left.
    """
    if config.batch_size % strategy.num_replicas_in_sync:
        raise UserError(
            f"setting 'batch_size' ({config.batch_size}) must divide evenly among "
            f"{strategy.num_replicas_in_sync} replicas"
        )
    with strategy.scope():
        model = pipeline.build_model(config, splits.info)
        model.optimizer.build(model.trainable_variables)
    log(
        f"training under MultiWorkerMirroredStrategy: {strategy.num_replicas_in_sync} "
        f"replicas, global batch {config.batch_size}, up to {config.epochs} epochs"
    )
    steps = _Steps(strategy, pipeline, config, splits, model, seed)
    result = trainer.loop(model, steps, examples=len(splits.train[1]))
    plain = pipeline.build_model(config, splits.info)
    plain.set_weights(model.get_weights())
    return plain, result.info
