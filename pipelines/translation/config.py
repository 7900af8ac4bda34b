"""Settings and data sources of the translation pipeline. Imports no TensorFlow."""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

from pydantic import Field, model_validator

from pipelines.config_base import (
    BYTES_PER_FLOAT,
    MAX_EXAMPLES,
    MAX_UNITS,
    MAX_VOCABULARY,
    BaseConfig,
    count_field,
    encoding_field,
)
from pipelines.sources import DataSource, DataSources
from pipelines.text_files import TextEncoding
from tuning.space import space

SUMMARY = "machine translation: sentence -> sentence, with attention (built-in: numbers en -> fr)"

# The longest sentence, in tokens, either side may be set to: the encoded targets take
# rows x (max_target_length + 2) int32s and beam search runs max_target_length steps.
MAX_SENTENCE_TOKENS = 1_000
# num2words spells every number up to this; the built-in data holds 0..builtin_max_number.
MAX_BUILTIN_NUMBER = 9_999_999
MAX_BEAM_WIDTH = 64


class TranslationConfig(BaseConfig):
    """Every setting of the translation pipeline."""

    embedding_dim: int = count_field(64, "width of the source and target embeddings", high=4096)
    attention: Literal["luong", "bahdanau"] = Field(
        "luong", description="luong: multiplicative (keras Attention); bahdanau: additive"
    )
    max_source_length: int = count_field(
        24,
        "most source subword pieces; longer pairs are counted and left out",
        high=MAX_SENTENCE_TOKENS,
    )
    max_target_length: int = count_field(
        24,
        "most target subword pieces (without start and end); longer pairs are left out",
        high=MAX_SENTENCE_TOKENS,
    )
    max_vocabulary: int = count_field(
        8000,
        "pieces per side: the whole words where every distinct training word fits, else "
        "subwords learned by SentencePiece (BPE) from the training sentences (a soft limit: "
        "small data gives fewer; never fewer than the distinct characters)",
        low=8,
        high=MAX_VOCABULARY,
    )
    beam_width: int = count_field(
        4, "beams of the beam search; 1 decodes greedily", high=MAX_BEAM_WIDTH
    )
    length_penalty: float = Field(
        0.6, ge=0.0, le=10.0, description="GNMT alpha: score / ((5 + length) / 6) ** alpha"
    )
    max_examples: int = count_field(
        0, "keep a seeded sample of this many pairs; 0 keeps all", low=0, high=MAX_EXAMPLES
    )
    encoding: TextEncoding = encoding_field("a file of pairs (tatoeba, tsv, scan)")
    builtin_max_number: int = count_field(
        9999, "builtin: the numbers are 0..this", low=100, high=MAX_BUILTIN_NUMBER
    )
    learning_curve: bool = Field(
        False,
        description="also train on 25 % and 50 % of the training pairs and report the "
        "test BLEU of each (a learning curve; three trainings in all)",
    )
    scan_split: Literal["simple_split", "length_split"] = Field(
        "simple_split", description="scan: which of SCAN's official splits to read"
    )

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "max_examples": 300,
            "epochs": 1,
            "units": 16,
            "embedding_dim": 8,
            "beam_width": 3,
            "tune_epochs": 1,
        },
        "default": {
            "cell": "gru",
            "units": 96,
            "bidirectional": True,
            "epochs": 30,
            "patience": 4,
            "batch_size": 64,
            "learning_rate": 3e-3,
        },
        "full": {
            "cell": "lstm",
            "units": 256,
            "embedding_dim": 128,
            "bidirectional": True,
            "dropout": 0.2,
            "epochs": 40,
            "patience": 5,
        },
    }

    @model_validator(mode="after")
    def _decoder_fits(self) -> Self:
        """The decoder is as wide as the encoder's output: both directions when bidirectional."""
        if self.bidirectional and 2 * self.units > MAX_UNITS:
            raise ValueError(
                f"settings 'units' = {self.units} and 'bidirectional' = true: the decoder would "
                f"have {2 * self.units} units, more than {MAX_UNITS}; lower units"
            )
        return self

    def sequence_steps(self) -> int:
        """Encoder steps plus decoder steps (the target one step behind, end token included)."""
        return self.max_source_length + self.max_target_length + 1

    def estimated_memory_bytes(self, parameters: int | None = None) -> int:
        """The recurrent estimate plus the output layer's logits, softmax and their gradient,
        one vocabulary-wide row per target step."""
        outputs = self.batch_size * (self.max_target_length + 1) * self.max_vocabulary
        return super().estimated_memory_bytes(parameters) + BYTES_PER_FLOAT * 3 * outputs


SOURCES_NOTE = (
    "Over-long pairs are left out of training and test: pairs longer than max_source_length "
    "/ max_target_length pieces are counted and reported. Text is kept as written (case, "
    "punctuation, accents) and cut into subword pieces learned by SentencePiece from the "
    "training sentences; pairs are split by source sentence (no test source in training) and "
    "a test source is scored against all of its references."
)


PAIR_SETTINGS = ("max_source_length", "max_target_length", "max_examples")
FILE_SETTINGS = ("encoding",)  # sources read from the user's text files
SPLIT_SETTINGS = ("validation_fraction", "test_fraction")


def _pairs_file(kind: str, description: str) -> DataSource:
    """A file of tab-separated pairs, read by ``load_KIND`` (``load_test_KIND`` for evaluate)."""
    return DataSource(
        kind,
        f"load_{kind}",
        description,
        argument="file",
        settings=(*PAIR_SETTINGS, *SPLIT_SETTINGS, *FILE_SETTINGS),
        test_loader=f"load_test_{kind}",
    )


DATA_SOURCES = DataSources(
    "translation",
    DataSource(
        "builtin",
        "load_builtin",
        "English number phrases -> French number phrases (0..builtin_max_number), generated "
        "exactly by num2words 0.5.14 (real language: reordering, agreement, "
        '"quatre-vingt-dix-sept"); test numbers are disjoint from training numbers; '
        "deterministic under the seed. evaluate --data builtin: every number.",
        settings=("builtin_max_number", *PAIR_SETTINGS, *SPLIT_SETTINGS),
        test_loader="load_test_builtin",
    ),
    _pairs_file(
        "tatoeba",
        "sentence pairs, english<TAB>french[<TAB>attribution] (manythings format, e.g. "
        "../shared/data/tatoeba/fra.txt); a truncated last line is counted and skipped; "
        "seeded train/validation/test split.",
    ),
    DataSource(
        "scan",
        "load_scan",
        "SCAN (Lake & Baroni 2018) with its official split: DIR/simple_split/"
        'tasks_{train,test}_simple.txt, lines "IN: ... OUT: ..."; --set scan_split='
        "length_split reads DIR/length_split/tasks_*_length.txt; validation carved from train.",
        argument="folder",
        settings=("scan_split", *PAIR_SETTINGS, "validation_fraction", *FILE_SETTINGS),
        test_loader="load_test_scan",
    ),
    _pairs_file(
        "tsv",
        "your own pairs, source<TAB>target, one pair per line, no header; seeded "
        "train/validation/test split.",
    ),
    DataSource(
        "tfds",
        "load_tfds",
        "a TensorFlow Datasets translation set (needs internet), NAME/CONFIG such as "
        "ted_hrlr_translate/pt_to_en; its supervised keys as (source, target), its own "
        "splits (validation carved from train when it has none).",
        argument="name",
        settings=(*PAIR_SETTINGS, "validation_fraction"),
    ),
    note=SOURCES_NOTE,
)

SEARCH_SPACE = space(
    units={"choices": [64, 96, 128, 256]},
    batch_size={"choices": [32, 64, 128]},
    embedding_dim={"choices": [32, 64, 128]},
    attention={"choices": ["luong", "bahdanau"]},
)

CONFIG_CLASS = TranslationConfig
