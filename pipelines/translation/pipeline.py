"""The translation pipeline: wires config, data, model and evaluation for the runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from pipelines.base import Pipeline
from pipelines.errors import UserError
from pipelines.export import request_checks, string_input
from pipelines.translation import data, model, subwords
from pipelines.translation.data import TranslationInfo

# What serving_default takes in one request, beside data.MAX_TEXT_BYTES for each text: each
# text is beam-searched, so a request holds fewer texts than sentiment's.
MAX_SERVING_TEXTS = 256  # texts per request
MAX_SERVING_BYTES = 1024 * 1024  # UTF-8 bytes of all the texts of one request


class TranslationPipeline(Pipeline):
    """Sequence to sequence (many-to-many, unequal lengths) with attention and beam search."""

    name = "translation"
    info_class = TranslationInfo

    def make_dataset(self, split, batch_size: int, shuffle: bool = False, seed: int = 0):
        """((source strings, target ids one step behind), target ids) batches; the model
        segments the sources itself."""
        inputs, ids = split
        dataset = tf.data.Dataset.from_tensor_slices(
            ((inputs["source"].astype(str), ids[:, :-1]), ids[:, 1:])
        )
        if shuffle:
            dataset = dataset.shuffle(len(ids), seed=seed, reshuffle_each_iteration=True)
        return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    def export(self, keras_model, info: TranslationInfo, path: Path) -> None:
        """``serving_default``: ``text`` string [batch] -> ``translation`` string [batch]
        (beam search inside, with the run's beam width and length penalty). A text over
        ``data.MAX_TEXT_BYTES`` bytes, empty or over ``max_source_length`` pieces, or a
        request over ``serving_limits``, ends the call with an InvalidArgumentError saying so."""
        translate = model.make_translate(keras_model, info, info.beam_width, info.length_penalty)
        limits = self.serving_limits(info)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(text):
            with tf.control_dependencies(request_checks({"text": text}, limits, "translation")):
                text = tf.identity(text)
            return {"translation": translate(text)}

        self.write_serving_export(keras_model, {"serving_default": serve}, info, path, limits)

    def serving_example(self, info: TranslationInfo) -> dict[str, Any]:
        """Two short sentences of the source vocabulary's most frequent whole-word pieces."""
        words = [
            piece[1:]
            for piece in info.source_vocabulary
            if piece.startswith(subwords.MARKER) and piece[1:].isalpha()
        ][:4] or ["hello"]
        return {"text": [" ".join(words[:2]), words[-1]]}

    def serving_limits(self, info: TranslationInfo) -> dict[str, Any]:
        """Texts per request; UTF-8 bytes per text and over all the texts of a request."""
        return {
            "max_items": MAX_SERVING_TEXTS,
            "inputs": {"text": string_input(data.MAX_TEXT_BYTES, MAX_SERVING_BYTES)},
        }

    def predict(self, keras_model, inputs: list[str], info: TranslationInfo) -> list[str]:
        """``translation<TAB>input`` per input, by beam search."""
        for number, text in enumerate(inputs, start=1):
            problem = data.input_problem(text, info)
            if problem:
                raise UserError(f"input {number} {problem}")
        translate = model.make_translate(keras_model, info, info.beam_width, info.length_penalty)
        out = translate(tf.constant(np.asarray(inputs, dtype=object).astype(str))).numpy()
        return [f"{t.decode()}\t{text}" for t, text in zip(out, inputs, strict=True)]


PIPELINE = TranslationPipeline()
