"""Translation over a file: one sentence per line in; ``source`` and ``translation`` out.

Blank lines are ignored. A line longer than ``data.MAX_TEXT_BYTES``, with no words or with
more subword pieces than the model's ``max_source_length`` is a bad row. Translations come from the
same beam search as the serving export (the run's beam width and length penalty).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import tensorflow as tf

from pipelines.errors import UserError
from pipelines.predict_files import BadItem, Item, read_lines
from pipelines.translation import data, model
from pipelines.translation.config import TranslationConfig
from pipelines.translation.data import TranslationInfo

OUTPUT = "table"

# The beam search of each loaded model, built (and traced) once for all its batches.
_TRANSLATORS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def read_items(
    path: Path, config: TranslationConfig, info: TranslationInfo
) -> Iterator[Item | BadItem]:
    """Each non-blank line of ``path`` as a sentence to translate."""
    if not path.is_file():
        raise UserError(f"{path}: translation predicts over a file of sentences, not a folder")
    for entry in read_lines(path, data.MAX_TEXT_BYTES, config.encoding):
        if isinstance(entry, BadItem):
            yield entry
            continue
        line, text = entry
        if not text.strip():
            continue
        problem = data.input_problem(text, info)
        if problem:
            yield BadItem(f"line {line}", f"the sentence {problem}")
        else:
            yield Item(f"line {line}", text, {"source": text})


def predict_items(
    keras_model, items: list[Item], config: TranslationConfig, info: TranslationInfo
) -> list[dict[str, Any]]:
    """Each sentence's ``translation``."""
    translate = _translator(keras_model, info)
    out = translate(tf.constant([item.value for item in items], dtype=tf.string)).numpy()
    return [{"translation": text.decode("utf-8")} for text in out]


def _translator(keras_model, info: TranslationInfo) -> Callable:
    """The model's beam search, made once per model."""
    cached = _TRANSLATORS.get(keras_model)
    if cached is None or cached[0] is not info:
        translate = model.make_translate(keras_model, info, info.beam_width, info.length_penalty)
        cached = _TRANSLATORS[keras_model] = (info, translate)
    return cached[1]
