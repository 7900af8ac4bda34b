"""The translation pipeline: wires config, data, model and evaluation for the runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from pipelines.base import Pipeline
from pipelines.errors import UserError
from pipelines.export import write_export
from pipelines.translation import data, evaluate, model
from pipelines.translation.config import TranslationConfig
from tuning.space import SearchSpace


class TranslationPipeline(Pipeline):
    """Sequence to sequence (many-to-many, unequal lengths) with attention and beam search."""

    name = "translation"
    config_class = TranslationConfig
    search_space = SearchSpace(units=(64, 96, 128, 256), batch_sizes=(32, 64, 128))
    data = data
    model = model
    evaluation = evaluate

    def make_dataset(self, split, batch_size: int, shuffle: bool = False, seed: int = 0):
        """((source strings, target ids one step behind), target ids) batches."""
        inputs, ids = split
        dataset = tf.data.Dataset.from_tensor_slices(
            ((inputs["source"].astype(str), ids[:, :-1]), ids[:, 1:])
        )
        if shuffle:
            dataset = dataset.shuffle(len(ids), seed=seed, reshuffle_each_iteration=True)
        return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    def export(self, keras_model, info: dict[str, Any], path: Path) -> None:
        """``serving_default``: ``text`` string [batch] -> ``translation`` string [batch]
        (beam search inside, with the run's beam width and length penalty)."""
        translate = model.make_translate(
            keras_model, info, info["beam_width"], info["length_penalty"]
        )

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(text):
            check = tf.debugging.assert_less_equal(
                tf.strings.length(text),
                data.MAX_TEXT_BYTES,
                message=f"translation: an input text is longer than {data.MAX_TEXT_BYTES} bytes",
            )
            with tf.control_dependencies([check]):
                text = tf.identity(text)
            return {"translation": translate(text)}

        write_export(keras_model, {"serving_default": serve}, path)

    def predict(self, keras_model, inputs: list[str], info: dict[str, Any]) -> list[str]:
        """``translation<TAB>input`` per input, by beam search."""
        for i, text in enumerate(inputs):
            size = len(text.encode("utf-8", errors="surrogateescape"))
            if size > data.MAX_TEXT_BYTES:
                raise UserError(
                    f"input {i + 1} is {size:,} bytes long, more than the "
                    f"{data.MAX_TEXT_BYTES:,} a text may have"
                )
            words = data.source_tokens([text])[0]
            if not words:
                raise UserError(f"input {i + 1} is empty")
            if len(words) > info["max_source_length"]:
                raise UserError(
                    f"input {i + 1} has {len(words)} tokens, more than max_source_length="
                    f"{info['max_source_length']}"
                )
        translate = model.make_translate(
            keras_model, info, info["beam_width"], info["length_penalty"]
        )
        out = translate(tf.constant(np.asarray(inputs, dtype=object).astype(str))).numpy()
        return [f"{t.decode()}\t{text}" for t, text in zip(out, inputs, strict=True)]


PIPELINE = TranslationPipeline()
