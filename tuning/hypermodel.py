"""A Keras Tuner HyperModel over any pipeline: the model in ``build``, batch size in ``fit``."""

from __future__ import annotations

from pathlib import Path

import keras_tuner

from pipelines import training
from pipelines.base import Pipeline, Splits
from pipelines.config_base import BaseConfig
from pipelines.progress import log
from pipelines.trainer import Trainer
from tuning.space import FIT_SETTINGS, SearchSpace, declare


class PipelineHyperModel(keras_tuner.HyperModel):
    """Tunes the settings of a declared search space: the model's in ``build``, the batch
    size in ``fit``.

    Args:
        pipeline: the pipeline whose ``build_model`` and ``make_dataset`` are used.
        config: the pipeline config; its values are the search's first guesses and hold
            every setting that is not tuned.
        splits: the data; trials train on ``train`` and are scored on ``validation``.
        space: setting name -> ``tuning.space.Dimension``.
    """

    def __init__(
        self, pipeline: Pipeline, config: BaseConfig, splits: Splits, space: SearchSpace, **kwargs
    ):
        super().__init__(name=f"{pipeline.name}_hypermodel", **kwargs)
        self.pipeline = pipeline
        self.config = config
        self.splits = splits
        self.space = space

    def tuned_config(self, hp: keras_tuner.HyperParameters) -> BaseConfig:
        """The config with this trial's values of every active tuned setting."""
        values = {}
        for name, dimension in self.space.items():
            if name in FIT_SETTINGS:
                continue
            value = declare(hp, name, dimension, getattr(self.config, name))
            if value is not None:  # inactive conditional settings keep the config's value
                values[name] = value
        return self.config.with_settings(values)

    def build(self, hp: keras_tuner.HyperParameters):
        """A compiled model with this trial's settings."""
        return self.pipeline.build_model(self.tuned_config(hp), self.splits.info)

    def batch_size(self, hp: keras_tuner.HyperParameters) -> int:
        """This trial's batch size (the config's when it is not tuned)."""
        dimension = self.space.get("batch_size")
        if dimension is None:
            return self.config.batch_size
        return int(declare(hp, "batch_size", dimension, self.config.batch_size))

    def fit(
        self,
        hp: keras_tuner.HyperParameters,
        model,
        *,
        epochs: int = 1,
        initial_epoch: int = 0,
        callbacks=(),
        seed: int = 0,
        patience: int = 2,
        directory: Path | None = None,
        verbose: int | None = None,
    ):
        """Train one trial at its batch size through ``pipelines.trainer.Trainer``.

        Keras Tuner passes ``epochs`` (and Hyperband ``initial_epoch``), its callbacks
        and the trial's folder (``tuning.search``), where the trainer writes the
        trial's ``history.csv`` and TensorBoard logs. A trial keeps no backups: Keras
        Tuner runs an interrupted trial again from its start. Returns Keras's History.
        """
        batch_size = self.batch_size(hp)
        if verbose == 0:  # Keras Tuner's own display is off: one line per trial instead
            values = {k: v for k, v in hp.values.items() if not k.startswith("tuner/")}
            log(f"trial: {', '.join(f'{k}={v}' for k, v in values.items())}")
        train = self.pipeline.make_dataset(self.splits.train, batch_size, shuffle=True, seed=seed)
        validation = self.pipeline.make_dataset(self.splits.validation, batch_size)
        trainer = Trainer(
            directory,
            epochs=epochs,
            patience=patience,
            backup_steps=None,
            callbacks=callbacks,
            epoch_callbacks=self.pipeline.epoch_callbacks(self.splits, self.config),
            best_checkpoint=False,
            divergence_is_error=False,
            learning_rate=training.learning_rate_schedule(self.tuned_config(hp), epochs),
            verbose=verbose,
        )
        return trainer.fit(model, train, validation, initial_epoch=initial_epoch).history
