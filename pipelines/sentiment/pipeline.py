"""The sentiment pipeline: wires config, data, model and evaluation for the runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from pipelines.base import Pipeline
from pipelines.errors import UserError
from pipelines.export import write_export
from pipelines.sentiment import data
from pipelines.sentiment.data import SentimentInfo


class SentimentPipeline(Pipeline):
    """Text classification (many-to-one) with a recurrent model over word embeddings."""

    name = "sentiment"
    info_class = SentimentInfo

    def export(self, keras_model, info: SentimentInfo, path: Path) -> None:
        """``serving_default``: ``text`` string [batch] -> ``probabilities``, ``label``.

        A text longer than ``data.MAX_TEXT_BYTES`` UTF-8 bytes ends the call with an
        InvalidArgumentError saying so, before the model reads it."""
        class_names = tf.constant(info.class_names)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(text):
            check = tf.debugging.assert_less_equal(
                tf.strings.length(text),
                data.MAX_TEXT_BYTES,
                message=f"sentiment: an input text is longer than {data.MAX_TEXT_BYTES} bytes",
            )
            with tf.control_dependencies([check]):
                text = tf.identity(text)
            probabilities = keras_model(text, training=False)
            label = tf.gather(class_names, tf.argmax(probabilities, axis=-1))
            return {"probabilities": probabilities, "label": label}

        write_export(keras_model, {"serving_default": serve}, path)

    def serving_example(self, info: SentimentInfo) -> dict[str, Any]:
        """Two short texts."""
        return {"text": ["a gorgeous, witty film", "a dull and tedious mess"]}

    def predict(self, keras_model, inputs: list[str], info: SentimentInfo) -> list[str]:
        for i, text in enumerate(inputs):
            size = len(text.encode("utf-8", errors="surrogateescape"))
            if size > data.MAX_TEXT_BYTES:
                raise UserError(
                    f"input {i + 1} is {size:,} bytes long, more than the "
                    f"{data.MAX_TEXT_BYTES:,} a text may have"
                )
        probabilities = keras_model.predict(np.asarray(inputs, dtype=object), verbose=0)
        names = info.class_names
        return [
            f"{names[p.argmax()]}\t{p.max():.3f}\t{text}"
            for text, p in zip(inputs, probabilities, strict=True)
        ]


PIPELINE = SentimentPipeline()
