"""Settings of the translation pipeline. Imports no TensorFlow."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from pipelines.config_base import BaseConfig, check_split_fractions
from pipelines.errors import UserError

SUMMARY = "machine translation: sentence -> sentence, with attention (built-in: numbers en -> fr)"

DATA_HELP = """\
data (--data SPEC):
  builtin           English number phrases -> French number phrases (0..builtin_max_number),
                    generated exactly by num2words 0.5.14 (real language: reordering,
                    agreement, "quatre-vingt-dix-sept"); test numbers are disjoint from
                    training numbers; deterministic under the seed.
  tatoeba:PATH      sentence pairs, english<TAB>french[<TAB>attribution] (manythings format,
                    e.g. ../shared/data/tatoeba/fra.txt); a truncated last line is counted
                    and skipped; seeded train/validation/test split.
  scan:DIR          SCAN (Lake & Baroni 2018) with its official split: DIR/simple_split/
                    tasks_{train,test}_simple.txt, lines "IN: ... OUT: ..."; --set
                    scan_split=length_split reads DIR/length_split/tasks_*_length.txt.
  tsv:PATH          your own pairs, source<TAB>target, one pair per line, no header.
  tfds:NAME/CONFIG  TensorFlow Datasets translation set (needs internet), its supervised keys
                    as (source, target), its own splits, e.g. tfds:ted_hrlr_translate/pt_to_en.
  Text is lower-cased and punctuation split off; sequences longer than max_source_length /
  max_target_length tokens are counted and reported, and left out of training and test."""


@dataclasses.dataclass(frozen=True)
class TranslationConfig(BaseConfig):
    """Every setting of the translation pipeline."""

    embedding_dim: int = 64
    attention: str = "luong"  # luong: multiplicative (keras Attention); bahdanau: additive
    max_source_length: int = 24  # tokens
    max_target_length: int = 24  # tokens, without the start and end tokens
    max_vocabulary: int = 20000  # per side, most frequent training tokens
    beam_width: int = 4
    length_penalty: float = 0.6  # GNMT alpha: score / ((5 + length) / 6) ** alpha
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    max_examples: int = 0  # 0 keeps all
    builtin_max_number: int = 9999  # built-in numbers are 0..this
    scan_split: str = "simple_split"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.attention not in ("luong", "bahdanau"):
            raise UserError(
                f"setting 'attention' must be luong or bahdanau, got {self.attention!r}"
            )
        for key in ("embedding_dim", "max_source_length", "max_target_length", "beam_width"):
            if getattr(self, key) < 1:
                raise UserError(f"setting {key!r} must be at least 1, got {getattr(self, key)}")
        if self.max_vocabulary < 8 or self.builtin_max_number < 100:
            raise UserError("settings 'max_vocabulary' >= 8 and 'builtin_max_number' >= 100")
        if self.length_penalty < 0:
            raise UserError(f"setting 'length_penalty' must be >= 0, got {self.length_penalty}")
        if self.scan_split not in ("simple_split", "length_split"):
            raise UserError("setting 'scan_split' must be simple_split or length_split")
        check_split_fractions(self.validation_fraction, self.test_fraction)

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "max_examples": 300,
            "epochs": 1,
            "units": 16,
            "embedding_dim": 8,
            "beam_width": 3,
            "tune_epochs": 1,
            "max_trials": 2,
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
            "max_trials": 12,
        },
    }


CONFIG_CLASS = TranslationConfig
