"""Settings of the speech-to-text pipeline. Imports no TensorFlow."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from pipelines.config_base import BaseConfig, check_split_fractions
from pipelines.errors import UserError

SAMPLE_RATE = 16000  # Hz: the rate of the model, of `predict` and of the serving export

SUMMARY = "speech to text: audio -> transcript, CTC over a bidirectional RNN (built-in: espeak-ng)"

DATA_HELP = """\
data (--data SPEC); every source is resampled to 16000 Hz mono in the data layer (the rate the
model, `predict` and the serving export expect); transcripts are lower-cased to a-z, space and
apostrophe (digits spelled out with num2words):
  builtin           digit strings ("three one four") and number phrases ("two hundred and
                    six") synthesised offline by the espeak-ng engine bundled in the
                    espeakng-loader wheel (real text-to-speech, exact transcripts), many
                    voice variants x English accents, random rate, pitch and gain, background
                    noise at a random SNR; the test and validation voice variants are disjoint
                    from the training ones (settings builtin_test_voices /
                    builtin_validation_voices); cached after the first run.
  fsdd:DIR          the Free Spoken Digit Dataset layout, DIR/{digit}_{speaker}_{index}.wav
                    (8 kHz, e.g. ../shared/data/fsdd/recordings): real recordings, made into
                    multi-digit utterances by concatenating one speaker's clips with short
                    gaps; whole speakers held out for test (fsdd_test_speakers).
  manifest:CSV      your own recordings: a CSV with a header holding the columns `path`
                    (audio file, relative to the CSV's folder) and `transcript`
                    (--set path_column=... transcript_column=... to rename); seeded split.
  ljspeech:DIR      the LJSpeech layout: DIR/metadata.csv (id|text|normalized text) and
                    DIR/wavs/ID.wav; seeded split.
  tfds:librispeech  TensorFlow Datasets (needs internet): LibriSpeech, splits train_clean100 /
                    dev_clean / test_clean, resampled from 16000 Hz.
  tfds:speech_commands  TensorFlow Datasets (needs internet): Speech Commands, its word labels
                    as transcripts (_silence_ and _unknown_ left out), its own splits.
  Audio: any format libsndfile reads (wav, flac, ogg); several channels are averaged; a file
  that cannot be decoded, is truncated, empty, silent or below 8000 Hz is an error naming it.
  Utterances longer than max_seconds are counted, reported and left out."""


@dataclasses.dataclass(frozen=True)
class SpeechToTextConfig(BaseConfig):
    """Every setting of the speech-to-text pipeline."""

    bidirectional: bool = True
    max_seconds: float = 6.0  # longest utterance (data and serving bound)
    n_mels: int = 40  # log-mel bands, 25 ms windows every 10 ms
    conv_filters: int = 96  # two 1-D convolutions; the first keeps every third frame
    spec_augment: bool = True  # time and frequency masks while training
    time_masks: int = 2
    time_mask_frames: int = 10
    freq_masks: int = 2
    freq_mask_bands: int = 6
    beam_width: int = 16
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    max_examples: int = 0  # 0 keeps all (manifest, ljspeech, tfds)
    path_column: str = "path"
    transcript_column: str = "transcript"
    builtin_utterances: int = 3000  # all splits together
    builtin_max_digits: int = 5
    builtin_snr_db: tuple[float, ...] = (8.0, 30.0)  # noise at a random SNR in this range
    builtin_test_voices: tuple[str, ...] = ("m3", "f4", "klatt2", "david", "linda", "norbert")
    builtin_validation_voices: tuple[str, ...] = ("m6", "f2", "Gene", "quincy")
    fsdd_utterances: int = 3000  # all splits together
    fsdd_max_digits: int = 5
    fsdd_test_speakers: tuple[str, ...] = ("theo",)

    def __post_init__(self) -> None:
        super().__post_init__()
        positive = ("n_mels", "conv_filters", "beam_width", "builtin_utterances")
        for key in (*positive, "builtin_max_digits", "fsdd_utterances", "fsdd_max_digits"):
            if getattr(self, key) < 1:
                raise UserError(f"setting {key!r} must be at least 1, got {getattr(self, key)}")
        if not 0.5 <= self.max_seconds <= 60:
            raise UserError(f"setting 'max_seconds' must be in [0.5, 60], got {self.max_seconds}")
        for key in ("time_masks", "time_mask_frames", "freq_masks", "freq_mask_bands"):
            if getattr(self, key) < 0:
                raise UserError(f"setting {key!r} must be >= 0, got {getattr(self, key)}")
        if len(self.builtin_snr_db) != 2 or self.builtin_snr_db[0] > self.builtin_snr_db[1]:
            raise UserError("setting 'builtin_snr_db' must be two numbers LOW,HIGH (dB)")
        if set(self.builtin_test_voices) & set(self.builtin_validation_voices):
            raise UserError(
                "settings 'builtin_test_voices' and 'builtin_validation_voices' overlap"
            )
        if not self.fsdd_test_speakers:
            raise UserError("setting 'fsdd_test_speakers' must name at least one speaker")
        check_split_fractions(self.validation_fraction, self.test_fraction)

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
            "max_trials": 2,
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
            "max_trials": 12,
        },
    }


CONFIG_CLASS = SpeechToTextConfig
