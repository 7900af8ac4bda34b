"""Small helpers every pipeline's model uses (optimizer with clipping)."""

from __future__ import annotations

import keras

from pipelines.config_base import BaseConfig


def make_optimizer(config: BaseConfig) -> keras.optimizers.Optimizer:
    """Adam at the configured learning rate, clipping gradients by norm when ``clipnorm`` > 0."""
    return keras.optimizers.Adam(
        learning_rate=config.learning_rate, clipnorm=config.clipnorm or None
    )


def compile_model(model: keras.Model, config: BaseConfig, **compile_kwargs) -> None:
    """Compile ``model`` with the configured optimizer."""
    model.compile(optimizer=make_optimizer(config), **compile_kwargs)
