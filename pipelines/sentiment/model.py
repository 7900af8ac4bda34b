"""The sentiment model: strings -> TextVectorization -> embedding -> recurrent stack -> softmax."""

from __future__ import annotations

from typing import Any

import keras

from layers import recurrent_stack
from layers.pooling import MaskedGlobalMaxPooling1D
from pipelines.sentiment.config import SentimentConfig
from pipelines.training import compile_model


def build_model(config: SentimentConfig, info: dict[str, Any]) -> keras.Model:
    """A compiled classifier that takes a batch of raw strings (``text``)."""
    text = keras.Input(shape=(), dtype="string", name="text")
    vectorize = keras.layers.TextVectorization(
        max_tokens=config.max_tokens,
        output_sequence_length=config.sequence_length,
        vocabulary=info["vocabulary"],
        name="vectorize",
    )
    tokens = vectorize(text)
    embedded = keras.layers.Embedding(
        vectorize.vocabulary_size(), config.embedding_dim, mask_zero=True, name="embedding"
    )(tokens)
    if config.token_dropout:
        embedded = keras.layers.Dropout(
            config.token_dropout,
            noise_shape=(None, config.sequence_length, 1),
            name="token_dropout",
        )(embedded)
    features = recurrent_stack(
        embedded,
        cell=config.cell,
        units=config.units,
        depth=config.depth,
        bidirectional=config.bidirectional,
        dropout=config.dropout,
        recurrent_dropout=config.recurrent_dropout,
        return_sequences=config.pooling != "last",
    )
    if config.pooling == "max":
        features = MaskedGlobalMaxPooling1D(name="max_pool")(features)
    elif config.pooling == "mean":
        features = keras.layers.GlobalAveragePooling1D(name="mean_pool")(features)
    features = keras.layers.Dropout(config.dropout, name="head_dropout")(features)
    probabilities = keras.layers.Dense(
        len(info["class_names"]), activation="softmax", name="probabilities"
    )(features)
    model = keras.Model(text, probabilities, name="sentiment")
    compile_model(model, config, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
