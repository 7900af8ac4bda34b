"""Untrained exports in TensorFlow Serving's layout (``MODELS/NAME/N/``) for the server tests
and ``bench/serve.py``: each built from one of a pipeline's presets (the small smoke preset
unless told otherwise) and a hand-made data record, so no training run is needed.
``python -m tests.serving.exports FOLDER`` writes them all."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

SPEECH_RATE = 16000


def _sentiment(preset: str):
    from pipelines.sentiment.config import SentimentConfig
    from pipelines.sentiment.data import SentimentInfo

    info = SentimentInfo("toy", "test", ["neg", "pos"], ["good", "bad", "film", "dull", "witty"])
    return "sentiment", SentimentConfig.from_preset(preset), info


def _forecasting(preset: str):
    from pipelines.forecasting.config import ForecastingConfig
    from pipelines.forecasting.data import ForecastingInfo

    config = ForecastingConfig.from_preset(preset).with_settings({"window": 8})
    info = ForecastingInfo(
        name="series",
        source="test",
        time_column="date",
        time_format="",
        frequency="D",
        seasonal_period=7,
        feature_columns=["temp", "wind"],
        target_columns=["temp"],
        target_indices=[0],
        transform="none",
        window=8,
        horizon=1,
        feature_mean=[10.0, 2.0],
        feature_variance=[4.0, 1.0],
        target_mean=[10.0],
        target_std=[2.0],
        mase_scale=[1.0],
        split_periods={},
        notes=[],
    )
    return "forecasting", config, info


def _speech(preset: str):
    from pipelines.speech_to_text import data
    from pipelines.speech_to_text.config import SpeechToTextConfig

    config = SpeechToTextConfig.from_preset(preset)
    info = data.SpeechToTextInfo(
        name="tones",
        source="test tones",
        sample_rate=SPEECH_RATE,
        vocabulary=data.VOCABULARY,
        max_seconds=3.0,
        max_samples=3 * SPEECH_RATE,
        beam_width=4,
        n_mels=config.n_mels,
    )
    return "speech_to_text", config, info


def _music(preset: str):
    from pipelines.music import data
    from pipelines.music.config import MusicConfig

    info = data.MusicInfo(
        name="chords",
        source="no data",
        kind="token",
        vocab_size=data.VOCAB,
        voices=data.VOICES,
        keys=data.KEYS,
        lowest_pitch=data.LOWEST,
        steps_per_quarter=2,
        transpose=0,
        pieces={},
        test_pieces=[],
    )
    return "music", MusicConfig.from_preset(preset), info


def _translation(preset: str):
    from pipelines.translation import data
    from pipelines.translation.config import TranslationConfig

    words = ["one", "two", "three", "hundred", "and"]
    info = data.TranslationInfo(
        name="numbers",
        source="test",
        source_vocabulary=words,
        target_vocabulary=[*data.RESERVED, "un", "deux", "trois", "cent", "et"],
        over_length={},
        max_source_length=8,
        max_target_length=8,
        beam_width=2,
        length_penalty=0.6,
    )
    return "translation", TranslationConfig.from_preset(preset), info


def _video(preset: str):
    from pipelines.video_activity import data
    from pipelines.video_activity.config import VideoConfig

    config = VideoConfig.from_preset(preset)
    info = data.VideoInfo(
        name="clips",
        source="test",
        generated=True,
        class_names=["up", "down", "still"],
        pairs=[],
        frames=config.frames,
        frame_size=config.frame_size,
    )
    return "video_activity", config, info


BUILDERS = {
    "sentiment": _sentiment,
    "forecasting": _forecasting,
    "speech": _speech,
    "music": _music,
    "translation": _translation,
    "video": _video,
}


# The registry name of each pipeline -> its key in ``BUILDERS``.
KIND_OF_PIPELINE = {
    "sentiment": "sentiment",
    "forecasting": "forecasting",
    "speech-to-text": "speech",
    "music": "music",
    "translation": "translation",
    "video-activity": "video",
}


def record(pipeline_name: str, preset: str = "smoke"):
    """``(pipeline module name, config of ``preset``, hand-made data info)`` of a pipeline given
    by its registry name: what a test needs to build and export a model without data."""
    return BUILDERS[KIND_OF_PIPELINE[pipeline_name]](preset)


def export(kind: str, path: Path, preset: str = "smoke") -> dict[str, Any]:
    """Write the ``kind`` export (a key of ``BUILDERS``) of ``preset``'s model to ``path``;
    its ``serving_example``."""
    from pipelines import registry

    pipeline_name, config, info = BUILDERS[kind](preset)
    pipeline = registry.load_pipeline(pipeline_name)
    model = pipeline.build_model(config, info)
    pipeline.export(model, info, path)
    return pipeline.serving_example(info)


if __name__ == "__main__":
    root = Path(sys.argv[1])
    for name in sys.argv[2:] or list(BUILDERS):
        export(name, root / name / "1")
