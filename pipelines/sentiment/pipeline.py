"""The sentiment pipeline: wires config, data, model and evaluation for the runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from pipelines.base import Pipeline
from pipelines.errors import UserError
from pipelines.export import request_checks, string_input
from pipelines.sentiment import data
from pipelines.sentiment.data import SentimentInfo

# What serving_default takes in one request, beside data.MAX_TEXT_BYTES for each text.
MAX_SERVING_TEXTS = 1024  # texts per request
MAX_SERVING_BYTES = 4 * 1024 * 1024  # UTF-8 bytes of all the texts of one request


class SentimentPipeline(Pipeline):
    """Text classification (many-to-one) with a recurrent model over word embeddings."""

    name = "sentiment"
    info_class = SentimentInfo

    def export(self, keras_model, info: SentimentInfo, path: Path) -> None:
        """``serving_default``: ``text`` string [batch] -> ``probabilities``, ``label``.

        A text longer than ``data.MAX_TEXT_BYTES`` UTF-8 bytes, or a request over
        ``serving_limits``, ends the call with an InvalidArgumentError saying so, before the
        model reads it."""
        class_names = tf.constant(info.class_names)
        limits = self.serving_limits(info)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(text):
            check = tf.debugging.assert_less_equal(
                tf.strings.length(text),
                data.MAX_TEXT_BYTES,
                message=f"sentiment: an input text is longer than {data.MAX_TEXT_BYTES} bytes",
            )
            checks = [check, *request_checks({"text": text}, limits, "sentiment")]
            with tf.control_dependencies(checks):
                text = tf.identity(text)
            probabilities = keras_model(text, training=False)
            label = tf.gather(class_names, tf.argmax(probabilities, axis=-1))
            return {"probabilities": probabilities, "label": label}

        self.write_serving_export(keras_model, {"serving_default": serve}, info, path, limits)

    def serving_example(self, info: SentimentInfo) -> dict[str, Any]:
        """Two short texts."""
        return {"text": ["a gorgeous, witty film", "a dull and tedious mess"]}

    def serving_limits(self, info: SentimentInfo) -> dict[str, Any]:
        """Texts per request; UTF-8 bytes per text and over all the texts of a request."""
        return {
            "max_items": MAX_SERVING_TEXTS,
            "inputs": {"text": string_input(data.MAX_TEXT_BYTES, MAX_SERVING_BYTES)},
        }

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
