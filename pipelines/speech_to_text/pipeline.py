"""The speech-to-text pipeline: wires config, data, model and evaluation for the runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from pipelines.base import Pipeline, Splits
from pipelines.export import EXTRA_FOLDER, number_input, request_checks
from pipelines.speech_to_text import decoding, evaluate, files, model
from pipelines.speech_to_text.config import (
    SpeechToTextConfig,
)
from pipelines.speech_to_text.data import SpeechToTextInfo

# What serving_default takes in one request, beside the run's max_samples for each clip.
MAX_SERVING_CLIPS = 128  # clips per request
MAX_SERVING_SAMPLES = 2**22  # samples of the padded [clips, samples] request (16 MiB float32)
LEXICON_FILE = "lexicon.txt"  # the export's lexicon, one word a line, in assets.extra


class SpeechToTextPipeline(Pipeline):
    """Audio to characters (many-to-many, unaligned) with CTC over a bidirectional RNN."""

    name = "speech-to-text"
    info_class = SpeechToTextInfo

    def load_data(self, config: SpeechToTextConfig, spec, seed: int) -> Splits:
        """The splits; a lexicon file (``lexicon=PATH``) is read first, so that a bad one
        ends the run before any audio is decoded."""
        if config.lexicon not in decoding.LEXICON_CHOICES:
            decoding.read_lexicon(Path(config.lexicon))
        return super().load_data(config, spec, seed)

    def epoch_callbacks(self, splits: Splits, config: SpeechToTextConfig) -> list:
        """``val_cer``: the greedy character error rate on the validation split, each epoch."""
        return [evaluate.ValidationCER(splits)]

    def make_dataset(self, split, batch_size: int, shuffle: bool = False, seed: int = 0):
        """(audio [batch, samples], character ids [batch, longest]) batches of similar length,
        padded to ``model.bucket_lengths`` (few distinct shapes for the compiled kernels);
        shuffled training batches are all full."""
        inputs, ids = split
        audio = list(inputs["audio"])
        lengths = np.array([len(a) for a in audio], np.int64)
        flat = tf.RaggedTensor.from_row_lengths(np.concatenate(audio).astype(np.float32), lengths)
        dataset = tf.data.Dataset.from_tensor_slices((flat, ids))
        dataset = dataset.map(lambda a, y: (a, y))  # ragged rows -> dense tensors
        if shuffle:
            dataset = dataset.shuffle(len(ids), seed=seed, reshuffle_each_iteration=True)
        bounds = model.bucket_lengths(max(int(lengths.max()), model.MIN_SAMPLES))
        dataset = dataset.bucket_by_sequence_length(
            lambda a, y: tf.shape(a)[0],
            bucket_boundaries=[b + 1 for b in bounds],
            bucket_batch_sizes=[batch_size] * (len(bounds) + 1),
            pad_to_bucket_boundary=True,
            drop_remainder=shuffle and len(ids) >= 4 * batch_size,
        )
        return dataset.prefetch(tf.data.AUTOTUNE)

    def export(self, keras_model, info: SpeechToTextInfo, path: Path) -> None:
        """``serving_default``: ``audio`` float32 [batch, samples] at 16000 Hz (zero-padded at
        the end) -> ``transcript`` string [batch], features and beam search (constrained to
        ``info.lexicon``, which is written to ``assets.extra/lexicon.txt``) inside. A request
        over ``serving_limits`` ends the call with an InvalidArgumentError saying so."""
        transcribe = model.make_transcribe(keras_model, info, info.beam_width)
        limits = self.serving_limits(info)

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="audio")])
        def serve(audio):
            checks = request_checks({"audio": audio}, limits, "speech-to-text")
            with tf.control_dependencies(checks):
                audio = tf.identity(audio)
            return {"transcript": transcribe(audio)}

        self.write_serving_export(keras_model, {"serving_default": serve}, info, path, limits)
        if info.lexicon:
            extra = path / EXTRA_FOLDER
            extra.mkdir(exist_ok=True)
            (extra / LEXICON_FILE).write_text("\n".join(info.lexicon) + "\n", encoding="utf-8")

    def serving_example(self, info: SpeechToTextInfo) -> dict[str, Any]:
        """Two half-second tones at the model's sample rate."""
        time = np.arange(info.sample_rate // 2) / info.sample_rate
        tone = (0.3 * np.sin(2 * np.pi * 220 * time)).astype(np.float32)
        return {"audio": [tone.tolist(), tone.tolist()]}

    def serving_limits(self, info: SpeechToTextInfo) -> dict[str, Any]:
        """Clips per request; samples per clip (``max_seconds``) and over the whole padded
        request."""
        return {
            "max_items": MAX_SERVING_CLIPS,
            "inputs": {"audio": number_input("float32", info.max_samples, MAX_SERVING_SAMPLES)},
        }

    def predict(self, keras_model, inputs: list[str], info: SpeechToTextInfo) -> list[str]:
        """``transcript<TAB>file`` per audio file (any rate: resampled to 16000 Hz), decoded
        as prediction over files does (``files.transcribe_recordings``)."""
        config = SpeechToTextConfig()  # the rate and channel bounds; max_seconds is the run's
        audio = [files.read_recording(Path(p), config, info) for p in inputs]
        texts = files.transcribe_recordings(keras_model, audio, info)
        return [f"{t}\t{p}" for t, p in zip(texts, inputs, strict=True)]


PIPELINE = SpeechToTextPipeline()
