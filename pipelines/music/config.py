"""Settings and data sources of the music generation pipeline. Imports no TensorFlow, no music21."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from pipelines.config_base import MAX_EXAMPLES, MAX_STEPS, MAX_UNITS, BaseConfig, count_field
from pipelines.sources import DataSource, DataSources
from tuning.space import space

SUMMARY = "music generation: primer -> continuation (built-in: 371 Bach chorales from music21)"

# The token grid (data.py): each time step is 4 tokens; a token is a rest or one of 88 keys.
VOICES = 4
KEYS = 88
# The longest primer and continuation, in time steps, that generation and the export take.
MAX_PRIMER_STEPS = 4_096
MAX_GENERATE_STEPS = 4_096


class MusicConfig(BaseConfig):
    """Every setting of the music pipeline."""

    bidirectional: Literal[False] = Field(
        False, description="always false: a generative model reads left to right"
    )
    steps_per_quarter: int = count_field(
        2, "token model time grid: steps per quarter note (2: eighths, 4: sixteenths)", high=24
    )
    window_steps: int = count_field(
        32, "training window in time steps (token model: 4 tokens a step)", high=MAX_STEPS // VOICES
    )
    window_stride: int = count_field(
        16, "time steps between the starts of a piece's training windows", high=MAX_STEPS // VOICES
    )
    transpose: int = count_field(
        0, "augment training pieces by every shift in -N..N semitones", low=0, high=12
    )
    embedding_dim: int = count_field(32, "token and voice-slot embedding width", high=MAX_UNITS)
    max_pieces: int = count_field(
        0,
        "keep the first N pieces (builtin, midi, musicxml); 0 keeps all",
        low=0,
        high=MAX_EXAMPLES,
    )
    generate_pieces: int = count_field(
        4, "test pieces continued into MIDI, MusicXML and a piano roll", low=0, high=1_000
    )
    primer_steps: int = count_field(
        16, "real steps from a test piece's start that prime generation", high=MAX_PRIMER_STEPS
    )
    generate_steps: int = count_field(
        64, "steps sampled after each primer", high=MAX_GENERATE_STEPS
    )
    temperature: float = Field(
        1.0, gt=0.0, le=100.0, description="sampling temperature (below 1: more conservative)"
    )
    top_k: int = count_field(
        0, "sample among the k most likely tokens (keys); 0: all", low=0, high=KEYS + 1
    )
    sample_seed: int = count_field(0, "seed of the sampled continuations", low=0, high=2**31 - 1)

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "max_pieces": 24,
            "units": 16,
            "embedding_dim": 8,
            "epochs": 1,
            "window_steps": 16,
            "window_stride": 16,
            "generate_pieces": 2,
            "primer_steps": 8,
            "generate_steps": 16,
            "tune_epochs": 1,
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
        },
    }

    def sequence_steps(self) -> int:
        """Events per training window: 4 tokens a step (the frame model's 1 is fewer)."""
        return self.window_steps * VOICES


TOKEN_SETTINGS = (
    "steps_per_quarter",
    "max_pieces",
    "validation_fraction",
    "test_fraction",
    "transpose",
    "window_steps",
    "window_stride",
)

DATA_SOURCES = DataSources(
    "music",
    DataSource(
        "builtin",
        "load_builtin",
        "the 371 Bach chorales of music21's bundled corpus (riemenschneider numbering), "
        "parsed offline once and cached in ~/.cache/rnn_suite/music ($RNN_SUITE_CACHE); "
        "real data, split by piece with the seed. Token model: time is cut into steps of "
        "1/steps_per_quarter of a quarter note; a step is the set of pitches sounding in it, "
        "highest first, at most 4 (the higher kept), padded with rests: 4 tokens a step, "
        "token 0 = rest, token p - 20 = MIDI pitch p (21..108, the piano). A piece is the "
        "flat stream S A T B S A T B ...; a held note repeats its token (a re-attack of the "
        "same pitch in the next step is not told apart from a hold). The model predicts the "
        "next token (teacher forcing) and knows each token's voice slot (position mod 4), so "
        "primers start on a step boundary.",
        settings=TOKEN_SETTINGS,
        test_loader="load_test_builtin",
    ),
    DataSource(
        "midi",
        "load_midi",
        "your own .mid/.midi files (every file under DIR, non-drum tracks); token model as "
        "builtin, split by piece with the seed.",
        argument="folder",
        settings=TOKEN_SETTINGS,
        test_loader="load_test_midi",
    ),
    DataSource(
        "musicxml",
        "load_musicxml",
        "your own .musicxml/.mxl/.xml files (every file under DIR, ties merged); token model "
        "as builtin, split by piece with the seed.",
        argument="folder",
        settings=TOKEN_SETTINGS,
        test_loader="load_test_musicxml",
    ),
    DataSource(
        "jsb",
        "load_jsb",
        "the JSB chorales JSON in the Boulanger-Lewandowski split (keys train/valid/test; a "
        "piece is a list of steps, a step a list of MIDI pitches), e.g. "
        "../shared/data/jsb_chorales/jsb-chorales-quarter.json; real data, its own split. "
        "Frame model: a step is an 88-key binary vector (MIDI 21..108) and the model "
        "predicts the next frame with 88 independent sigmoids; evaluated with the published "
        "protocol, frame-level NLL per time step (Bernoulli NLL summed over keys, averaged "
        "over the time steps of the test pieces, the first frame predicted from silence).",
        argument="file",
        settings=("window_steps", "window_stride"),
        test_loader="load_test_jsb",
    ),
)

SEARCH_SPACE = space(
    units={"choices": [64, 128, 256]},
    batch_size={"choices": [16, 32, 64]},
    dropout={"min": 0.0, "max": 0.3},
    embedding_dim={"choices": [16, 32, 64]},
    bidirectional=None,  # a generator reads left to right
)

CONFIG_CLASS = MusicConfig
