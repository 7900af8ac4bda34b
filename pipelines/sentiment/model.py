"""The sentiment model: strings -> TextVectorization -> embedding -> recurrent stack -> softmax."""

from __future__ import annotations

import keras

from layers.pooling import MaskedAttentionPooling1D, MaskedGlobalMaxPooling1D
from pipelines.progress import log
from pipelines.sentiment.config import SentimentConfig
from pipelines.sentiment.data import SentimentInfo
from pipelines.training import compile_model, recurrent_stack_from
from pipelines.word_vectors import GLOVE_DIM, glove_matrix


def build_model(config: SentimentConfig, info: SentimentInfo) -> keras.Model:
    """A compiled classifier that takes a batch of raw strings (``text``)."""
    text = keras.Input(shape=(), dtype="string", name="text")
    vectorize = keras.layers.TextVectorization(
        max_tokens=config.max_tokens,
        output_sequence_length=config.sequence_length,
        vocabulary=info.vocabulary,
        name="vectorize",
    )
    tokens = vectorize(text)
    glove = config.embeddings == "glove-50d"
    embedding = keras.layers.Embedding(
        vectorize.vocabulary_size(),
        GLOVE_DIM if glove else config.embedding_dim,
        mask_zero=True,
        name="embedding",
    )
    embedded = embedding(tokens)
    if config.token_dropout:
        embedded = keras.layers.Dropout(
            config.token_dropout,
            noise_shape=(None, config.sequence_length, 1),
            name="token_dropout",
        )(embedded)
    features = recurrent_stack_from(config, embedded, return_sequences=config.pooling != "last")
    if config.pooling == "max":
        features = MaskedGlobalMaxPooling1D(name="max_pool")(features)
    elif config.pooling == "attention":
        features = MaskedAttentionPooling1D(name="attention_pool")(features)
    elif config.pooling == "mean":
        features = keras.layers.GlobalAveragePooling1D(name="mean_pool")(features)
    features = keras.layers.Dropout(config.dropout, name="head_dropout")(features)
    probabilities = keras.layers.Dense(
        len(info.class_names), activation="softmax", name="probabilities"
    )(features)
    model = keras.Model(text, probabilities, name="sentiment")
    if glove:
        _start_from_glove(embedding, vectorize.get_vocabulary())
    compile_model(model, config, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _start_from_glove(embedding: keras.layers.Embedding, vocabulary: list[str]) -> None:
    """Initialise ``embedding`` with GloVe vectors (fine-tuned in training, not frozen).

    Set as weights rather than as a ``Constant`` initializer, which would write the whole
    matrix into the model's config.
    """
    matrix, coverage = glove_matrix(vocabulary)
    embedding.set_weights([matrix])
    log(f"embedding starts from GloVe 6B 50d: {coverage:.1%} of the vocabulary found")
