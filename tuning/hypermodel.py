"""A Keras Tuner HyperModel over any pipeline: the model in ``build``, batch size in ``fit``."""

from __future__ import annotations

from typing import Any

import keras_tuner

from pipelines.base import Pipeline, Splits
from pipelines.config_base import BaseConfig
from tuning.space import SearchSpace


def _with_default(values: tuple, default: Any) -> list:
    return sorted(set(values) | {default}, key=lambda v: (str(type(v)), v))


def _boolean(
    hp: keras_tuner.HyperParameters, name: str, choices: tuple[bool, ...], default: bool
) -> bool:
    """A tuned boolean (``hp.Boolean`` keeps it a bool in trials and best values)."""
    if len(set(choices) | {default}) == 1:
        return hp.Fixed(name, default)
    return hp.Boolean(name, default=default)


class PipelineHyperModel(keras_tuner.HyperModel):
    """Tunes hidden units, dropout, learning rate, cell kind, depth, direction and batch size.

    Args:
        pipeline: the pipeline whose ``build_model`` and ``make_dataset`` are used.
        config: the pipeline config; its values are the defaults of the search.
        splits: the data; trials train on ``train`` and are scored on ``validation``.
        space: the ranges searched.
    """

    def __init__(
        self, pipeline: Pipeline, config: BaseConfig, splits: Splits, space: SearchSpace, **kwargs
    ):
        super().__init__(name=f"{pipeline.name}_hypermodel", **kwargs)
        self.pipeline = pipeline
        self.config = config
        self.splits = splits
        self.space = space

    def build(self, hp: keras_tuner.HyperParameters):
        """A compiled model with this trial's architecture, dropout and learning rate."""
        space, config = self.space, self.config
        low, high = space.dropout
        lr_low, lr_high = space.learning_rate
        tuned = {
            "units": hp.Choice(
                "units", _with_default(space.units, config.units), default=config.units
            ),
            "dropout": hp.Float(
                "dropout",
                min(low, config.dropout),
                max(high, config.dropout),
                default=config.dropout,
            ),
            "learning_rate": hp.Float(
                "learning_rate",
                min(lr_low, config.learning_rate),
                max(lr_high, config.learning_rate),
                sampling="log",
                default=config.learning_rate,
            ),
            "cell": hp.Choice("cell", _with_default(space.cells, config.cell), default=config.cell),
            "depth": hp.Choice(
                "depth", _with_default(space.depths, config.depth), default=config.depth
            ),
            "bidirectional": _boolean(
                hp, "bidirectional", space.bidirectional, config.bidirectional
            ),
        }
        return self.pipeline.build_model(self.config.with_settings(tuned), self.splits.info)

    def fit(self, hp: keras_tuner.HyperParameters, model, *args, seed: int = 0, **kwargs):
        """Train one trial at this trial's batch size; Keras Tuner passes epochs and callbacks."""
        batch_size = hp.Choice(
            "batch_size",
            _with_default(self.space.batch_sizes, self.config.batch_size),
            default=self.config.batch_size,
        )
        train = self.pipeline.make_dataset(self.splits.train, batch_size, shuffle=True, seed=seed)
        validation = self.pipeline.make_dataset(self.splits.validation, batch_size)
        kwargs.setdefault("shuffle", False)  # the dataset is shuffled already
        return model.fit(train, *args, validation_data=validation, **kwargs)
