"""Speech-to-text over files: a folder of audio files or a manifest CSV in, ``path`` and
``transcript`` out (``python -m pipelines predict RUN_DIR --input PATH --output PATH``).

Audio at any rate is decoded and resampled to the model's rate as ``predict`` does
(``data.read_audio``); a file's declared length is checked against ``max_seconds`` before it
is decoded, so a long recording costs a header read, not its samples.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.errors import UserError
from pipelines.file_inputs import TracedOnce, input_files, reason_of
from pipelines.media_limits import audio_header, check_audio_duration, over_limit
from pipelines.predict_files import BadItem, Item, read_table_rows
from pipelines.speech_to_text import data, evaluate, model
from pipelines.speech_to_text.config import SpeechToTextConfig
from pipelines.speech_to_text.data import SpeechToTextInfo
from pipelines.speech_to_text.language_model import WordNgramModel

OUTPUT = "table"
# The audio files a folder is read for (what libsndfile decodes); other files are passed over.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au")
MANIFEST_SUFFIX = ".csv"

_transcriber = TracedOnce(
    lambda keras_model, info: model.make_transcribe(keras_model, info, info.beam_width)
)

_candidates = TracedOnce(
    lambda keras_model, info: model.make_candidates(keras_model, info, info.beam_width)
)


# The run's language model, built once for the model in use.
_language_model = TracedOnce(
    lambda keras_model, info: WordNgramModel.from_json(info.language_model)
)


@dataclasses.dataclass(frozen=True)
class Recording:
    """One decoded recording: its path as the output names it, its samples at the model rate."""

    path: str
    audio: np.ndarray


def read_items(
    path: Path, config: SpeechToTextConfig, info: SpeechToTextInfo
) -> Iterator[Item | BadItem]:
    """The recordings of a folder (key: the file's path), of one audio file, or of a manifest
    CSV (key: ``line N``; the audio path, relative to the CSV, in the ``path_column``, the
    other columns kept); decoded one at a time."""
    if path.is_file() and path.suffix.lower() == MANIFEST_SUFFIX:
        yield from _manifest_items(path, config, info)
        return
    if path.is_file() and path.suffix.lower() not in AUDIO_SUFFIXES:
        raise UserError(
            f"--input {path}: expected a folder of audio files, an audio file "
            f"({', '.join(AUDIO_SUFFIXES)}) or a manifest {MANIFEST_SUFFIX}"
        )
    for file, reason in input_files(path, AUDIO_SUFFIXES, "audio files"):
        if reason:
            yield BadItem(str(file), reason)
            continue
        try:
            audio = read_recording(file, config, info)
        except UserError as err:
            yield BadItem(str(file), reason_of(err, file))
            continue
        yield Item(str(file), Recording(str(file), audio), {})


def predict_items(
    keras_model, items: list[Item], config: SpeechToTextConfig, info: SpeechToTextInfo
) -> list[dict[str, Any]]:
    """``{"path", "transcript"}`` per recording (``transcribe_recordings``)."""
    texts = transcribe_recordings(keras_model, [item.value.audio for item in items], info)
    return [
        {"path": item.value.path, "transcript": text}
        for item, text in zip(items, texts, strict=True)
    ]


def transcribe_recordings(keras_model, audio: list[np.ndarray], info: SpeechToTextInfo):
    """The transcripts of the recordings: the export's decoder, or, when the run holds a
    language model (open-vocabulary data), the beam candidates rescored with it."""
    if not (info.language_model and info.lm_weight > 0):
        return evaluate.transcribe_batches(_transcriber(keras_model, info), audio, info.max_samples)
    language_model = _language_model(keras_model, info)
    candidates = _candidates(keras_model, info)
    return evaluate.rescore_all(candidates, audio, info.max_samples, language_model, info.lm_weight)


def read_recording(path: Path, config: SpeechToTextConfig, info: SpeechToTextInfo) -> np.ndarray:
    """A file's audio, mono float32 at ``info.sample_rate``; UserError naming the file for
    one whose header declares more than the model's ``max_seconds`` or the rate and channels
    ``config`` allows (before decoding), shorter than the model's shortest input, or one
    ``data.read_audio`` refuses."""
    limits = config.audio_limits(info.max_seconds)
    header = audio_header(path)
    if header is not None:
        check_audio_duration(path, header, limits)
    audio = data.read_audio(path, info.sample_rate, limits)
    if len(audio) > info.max_samples:
        seconds = len(audio) / info.sample_rate
        raise over_limit(path, "duration", seconds, info.max_seconds, "max_seconds", " s")
    if len(audio) < model.MIN_SAMPLES:
        raise UserError(
            f"{path}: {len(audio)} samples at {info.sample_rate} Hz, shorter than the "
            f"{model.MIN_SAMPLES} the model reads"
        )
    return audio


# === The manifest CSV ===


def _manifest_items(
    path: Path, config: SpeechToTextConfig, info: SpeechToTextInfo
) -> Iterator[Item | BadItem]:
    """One item per row of the manifest, read as it streams (``read_table_rows``)."""
    column = config.path_column
    names, rows = read_table_rows(path, ",")
    if column not in names:
        raise UserError(
            f"{path}: no column {column!r} (set path_column=...; columns: {', '.join(names)})"
        )
    for row in rows:
        if isinstance(row, BadItem):
            yield row
            continue
        line, kept = row
        key, written = f"line {line}", kept.pop(column).strip()
        if not written:
            yield BadItem(key, f"empty {column!r}")
            continue
        try:
            audio = read_recording(path.parent / written, config, info)
        except UserError as err:
            yield BadItem(key, str(err))
            continue
        yield Item(key, Recording(written, audio), kept)
