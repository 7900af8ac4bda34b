"""Settings of the music generation pipeline. Imports no TensorFlow and no music21."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from pipelines.config_base import BaseConfig, check_split_fractions
from pipelines.errors import UserError

SUMMARY = "music generation: primer -> continuation (built-in: 371 Bach chorales from music21)"

DATA_HELP = """\
data (--data SPEC):
  builtin           the 371 Bach chorales of music21's bundled corpus (riemenschneider
                    numbering), parsed offline once and cached in ~/.cache/rnn_suite/music
                    ($RNN_SUITE_CACHE); split by piece (validation_fraction, test_fraction,
                    seeded). Real data. Token model (below).
  midi:DIR          your own .mid/.midi files (every file under DIR); token model.
  musicxml:DIR      your own .musicxml/.mxl/.xml files (every file under DIR); token model.
  jsb:PATH          the JSB chorales JSON in the Boulanger-Lewandowski split (keys train/valid/
                    test; a piece is a list of steps, a step a list of MIDI pitches), e.g.
                    ../shared/data/jsb_chorales/jsb-chorales-quarter.json. Frame model (below),
                    evaluated with the published protocol: frame-level NLL per time step.
representation:
  token model       time is cut into steps of 1/steps_per_quarter of a quarter note. A step is
                    the set of pitches sounding in it, highest first, at most 4 (higher ones
                    kept), padded with rests: 4 tokens per step, token 0 = rest, token
                    p - 20 = MIDI pitch p (21..108, the piano). A piece is the flat token stream
                    S A T B S A T B ...; a note held over steps repeats its token (a re-attack of
                    the same pitch in the next step is not distinguished from a hold). The model
                    predicts the next token (teacher forcing); it knows each token's voice slot
                    (position mod 4), so primers start on a step boundary.
  frame model       (jsb:) a step is an 88-key binary vector (MIDI 21..108); the model predicts
                    the next frame with 88 independent sigmoids (multi-label); NLL = Bernoulli
                    NLL summed over keys, averaged over the time steps of the test pieces (the
                    first frame predicted from silence).
  transpose=N       augments the training pieces (only) by every shift in -N..N semitones."""

CELLS_NOT_CAUSAL = "a generative model reads left to right: bidirectional must be false"


@dataclasses.dataclass(frozen=True)
class MusicConfig(BaseConfig):
    """Every setting of the music pipeline."""

    steps_per_quarter: int = 2  # token model time grid: 2 = eighth notes, 4 = sixteenths
    sequence_steps: int = 32  # training window, in time steps (token model: x4 tokens)
    window_stride: int = 16  # steps between training windows of one piece
    transpose: int = 0  # augmentation: training pieces shifted by -N..N semitones
    embedding_dim: int = 32  # token embedding size
    max_pieces: int = 0  # 0 keeps all pieces (builtin/midi/musicxml); tests use a few
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    # Generation after training: from the start of each of the first `generate_pieces`
    # test pieces, `primer_steps` real steps, then `generate_steps` sampled ones.
    generate_pieces: int = 4
    primer_steps: int = 16
    generate_steps: int = 64
    temperature: float = 1.0
    top_k: int = 0  # 0: sample from the whole distribution
    sample_seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.bidirectional:
            raise UserError(f"setting 'bidirectional': {CELLS_NOT_CAUSAL}")
        for key in (
            "steps_per_quarter",
            "sequence_steps",
            "window_stride",
            "embedding_dim",
            "primer_steps",
            "generate_steps",
        ):
            if getattr(self, key) < 1:
                raise UserError(f"setting {key!r} must be at least 1, got {getattr(self, key)}")
        for key in ("transpose", "max_pieces", "generate_pieces", "top_k", "sample_seed"):
            if getattr(self, key) < 0:
                raise UserError(f"setting {key!r} must be at least 0, got {getattr(self, key)}")
        if self.temperature <= 0:
            raise UserError(f"setting 'temperature' must be > 0, got {self.temperature}")
        check_split_fractions(self.validation_fraction, self.test_fraction)

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "max_pieces": 24,
            "units": 16,
            "embedding_dim": 8,
            "epochs": 1,
            "sequence_steps": 16,
            "window_stride": 16,
            "generate_pieces": 2,
            "primer_steps": 8,
            "generate_steps": 16,
            "tune_epochs": 1,
            "max_trials": 2,
        },
        "default": {
            "cell": "lstm",
            "units": 128,
            "dropout": 0.1,
            "epochs": 80,
            "patience": 6,
            "batch_size": 32,
            "learning_rate": 3e-3,
        },
        "full": {
            "cell": "lstm",
            "units": 256,
            "depth": 2,
            "dropout": 0.2,
            "transpose": 3,
            "epochs": 60,
            "patience": 6,
            "batch_size": 32,
            "max_trials": 12,
        },
    }


CONFIG_CLASS = MusicConfig
