"""Small helpers every pipeline's model uses (optimizer with clipping)."""

from __future__ import annotations

import math

import keras

from layers import recurrent_stack
from pipelines.config_base import BaseConfig


def make_optimizer(config: BaseConfig) -> keras.optimizers.Optimizer:
    """Adam at the configured learning rate, clipping gradients by norm when ``clipnorm`` > 0."""
    return keras.optimizers.Adam(
        learning_rate=config.learning_rate, clipnorm=config.clipnorm or None
    )


def learning_rate_schedule(config: BaseConfig, epochs: int) -> keras.callbacks.Callback | None:
    """The callback that sets each epoch's learning rate as ``lr_schedule`` asks, or None.

    The rate depends on the epoch's index alone, so a resumed training continues on the
    same schedule."""
    if config.lr_schedule == "constant":
        return None
    top, floor = config.learning_rate, config.learning_rate / 20

    def cosine(epoch: int, _current: float) -> float:
        return floor + (top - floor) * 0.5 * (1 + math.cos(math.pi * epoch / max(epochs, 1)))

    return keras.callbacks.LearningRateScheduler(cosine)


def compile_model(model: keras.Model, config: BaseConfig, **compile_kwargs) -> None:
    """Compile ``model`` with the configured optimizer."""
    model.compile(optimizer=make_optimizer(config), **compile_kwargs)


def recurrent_stack_from(config: BaseConfig, inputs, **overrides):
    """``layers.recurrent_stack`` over ``inputs`` as the config asks (cell, units, depth,
    bidirectional, dropout, recurrent dropout); ``overrides`` change any of them or add
    ``return_sequences`` and the like."""
    arguments = {
        "cell": config.cell,
        "units": config.units,
        "depth": config.depth,
        "bidirectional": config.bidirectional,
        "dropout": config.dropout,
        "recurrent_dropout": config.recurrent_dropout,
    }
    return recurrent_stack(inputs, **(arguments | overrides))
