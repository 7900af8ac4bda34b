"""Sentiment over a file: each text's label and class probabilities, its other columns kept.

In: a CSV (``.csv``), TSV (``.tsv``) or JSON Lines (``.jsonl``) file whose ``text_column``
(the run's setting) holds the text, or any other file as one text per line (blank lines
ignored). Out: a table of the input's columns (``text`` for a file of lines), then
``predicted_label`` and ``probability_CLASS`` for each class of the model.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.errors import UserError
from pipelines.predict_files import (
    BadItem,
    Item,
    printed_float,
    read_json_lines,
    read_lines,
    read_table_rows,
)
from pipelines.sentiment.config import SentimentConfig
from pipelines.sentiment.data import MAX_TEXT_BYTES, SentimentInfo

OUTPUT = "table"
TABLE_DELIMITERS = {".csv": ",", ".tsv": "\t"}  # by the input's extension
JSON_LINES = ".jsonl"
LINE_COLUMN = "text"  # the column a file of one text per line is written back as


def read_items(
    path: Path, config: SentimentConfig, info: SentimentInfo
) -> Iterator[Item | BadItem]:
    """The texts of ``path``, one row at a time (see the module's docstring for formats)."""
    if not path.is_file():
        raise UserError(
            f"{path}: sentiment predicts over a file (CSV, TSV, JSON Lines or one text per "
            "line), not a folder"
        )
    suffix = path.suffix.lower()
    if suffix in TABLE_DELIMITERS:
        yield from _table_items(path, TABLE_DELIMITERS[suffix], config.text_column, config.encoding)
    elif suffix == JSON_LINES:
        yield from _json_items(path, config.text_column, config.encoding)
    else:
        yield from _line_items(path, config.encoding)


def predict_items(
    model, items: list[Item], config: SentimentConfig, info: SentimentInfo
) -> list[dict[str, Any]]:
    """``predicted_label`` and ``probability_CLASS`` per class for each item's text."""
    texts = np.asarray([item.value for item in items], dtype=object)
    probabilities = np.asarray(model.predict_on_batch(texts))
    names = info.class_names
    return [
        {
            "predicted_label": names[int(row.argmax())],
            **{f"probability_{name}": printed_float(p) for name, p in zip(names, row, strict=True)},
        }
        for row in probabilities
    ]


def _table_items(
    path: Path, delimiter: str, column: str, encoding: str
) -> Iterator[Item | BadItem]:
    header, rows = read_table_rows(path, delimiter, encoding)
    if column not in header:
        raise UserError(
            f"{path}: no column {column!r} (the run's text_column; columns: {', '.join(header)})"
        )
    for row in rows:
        if isinstance(row, BadItem):
            yield row
            continue
        line, values = row
        yield _item(f"line {line}", values[column], values)


def _json_items(path: Path, column: str, encoding: str) -> Iterator[Item | BadItem]:
    for entry in read_json_lines(path, encoding=encoding):
        if isinstance(entry, BadItem):
            yield entry
            continue
        line, values = entry
        text = values.get(column)
        if not isinstance(text, str):
            what = (
                f"no {column!r} key"
                if text is None
                else (f"{column!r} holds a {type(text).__name__}, not a text")
            )
            yield BadItem(f"line {line}", f"{what} (the run's text_column)")
            continue
        yield _item(f"line {line}", text, values)


def _line_items(path: Path, encoding: str) -> Iterator[Item | BadItem]:
    for entry in read_lines(path, MAX_TEXT_BYTES, encoding):
        if isinstance(entry, BadItem):
            yield entry
        elif entry[1].strip():
            line, text = entry
            yield _item(f"line {line}", text, {LINE_COLUMN: text})


def _item(key: str, text: str, kept: dict[str, Any]) -> Item | BadItem:
    """The item of one text, or a BadItem for an empty or over-long one."""
    text = text.strip()
    if not text:
        return BadItem(key, "the text is empty")
    size = len(text.encode("utf-8"))
    if size > MAX_TEXT_BYTES:
        return BadItem(
            key, f"the text is {size:,} bytes long, more than the {MAX_TEXT_BYTES:,} it may have"
        )
    return Item(key, text, kept)
