"""The music pipeline: wires config, data, model and evaluation for the runner."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from pipelines.base import Pipeline
from pipelines.errors import UserError
from pipelines.export import number_input, request_checks
from pipelines.music import data, model
from pipelines.music.config import (
    MAX_GENERATE_STEPS,
    MAX_PRIMER_STEPS,
)
from pipelines.music.data import MusicInfo

# What `predict` continues a file with: its first steps as the primer, then sampled steps.
PRIMER_STEPS = 16
CONTINUATION_STEPS = 64

# What serving_default and generate take in one request, beside MAX_PRIMER_STEPS per primer.
MAX_SERVING_PRIMERS = 256  # primers per request
MAX_SERVING_PRIMER_VALUES = 2**22  # tokens (or frame values) of all the primers of a request
# Steps `generate` samples over all the primers of a request (primers x steps): its output
# and the work of its sampling loop grow with their product.
MAX_SERVING_GENERATED_STEPS = 2**18


class MusicPipeline(Pipeline):
    """Music generation: next-event prediction (teacher forcing), generation from a primer."""

    name = "music"
    info_class = MusicInfo

    def export(self, keras_model, info: MusicInfo, path: Path) -> None:
        """``serving_default``: ``primer`` -> next-step ``probabilities`` [batch, vocab]
        (token model: int32 tokens [batch, steps]; frame model: float32 [batch, steps, 88]).
        ``generate``: ``primer``, ``steps``, ``temperature``, ``top_k``, ``seed`` int32 [2]
        -> ``tokens`` int32 [batch, steps * 4] (frame model: ``frames`` [batch, steps, 88]).
        Both bound the primer as ``serving_limits`` declares."""
        frame = info.kind == "frame"
        limits = self.serving_limits(info)

        def checks(primer) -> list:
            """Each primer's bounds, then the request's as a whole."""
            return [
                *_primer_checks(primer, info),
                *request_checks({"primer": primer}, limits, "music"),
            ]

        primer_spec = model.generate_signature(info)[0]
        sample = model.make_generate(keras_model, info)

        @tf.function(input_signature=[primer_spec])
        def serve(primer):
            with tf.control_dependencies(checks(primer)):
                primer = tf.identity(primer)
            if frame:
                silence = tf.zeros_like(primer[:, :1])
                primer = tf.concat([silence, primer], axis=1)
            return {"probabilities": keras_model(primer, training=False)[:, -1]}

        @tf.function(input_signature=model.generate_signature(info))
        def generate(primer, steps, temperature, top_k, seed):
            generate_checks = checks(primer) + [
                tf.debugging.assert_positive(steps, message="music: steps must be at least 1"),
                tf.debugging.assert_less_equal(
                    steps,
                    MAX_GENERATE_STEPS,
                    message=f"music: steps is more than {MAX_GENERATE_STEPS} "
                    "(the longest continuation the export generates)",
                ),
                tf.debugging.assert_positive(temperature, message="music: temperature must be > 0"),
                _generated_steps_check(primer, steps),
            ]
            with tf.control_dependencies(generate_checks):
                primer = tf.identity(primer)
            events = sample(primer, steps, temperature, top_k, seed)
            return {"frames" if frame else "tokens": events}

        self.write_serving_export(
            keras_model, {"serving_default": serve, "generate": generate}, info, path, limits
        )

    def serving_example(self, info: MusicInfo) -> dict[str, Any]:
        """Two primers of two steps: chords as tokens, or the same chords as 88-key frames."""
        first, second = [52, 47, 40, 28], [50, 45, 38, 27]  # tokens of two four-voice chords
        if info.kind == "frame":
            frames = data.steps_to_frames(np.array([first, second], np.int32)).tolist()
            return {"primer": [frames, frames[::-1]]}
        return {"primer": [first + second, second + first]}

    def serving_limits(self, info: MusicInfo) -> dict[str, Any]:
        """Primers per request; values per primer (``MAX_PRIMER_STEPS`` steps of 4 tokens,
        or of 88-key frames) and over all the primers of a request. ``generate`` takes the
        same ``primer`` within the same bounds."""
        if info.kind == "frame":
            dtype, per_step = "float32", info.keys
        else:
            dtype, per_step = "int32", info.voices
        primer = number_input(dtype, MAX_PRIMER_STEPS * per_step, MAX_SERVING_PRIMER_VALUES)
        return {
            "max_items": MAX_SERVING_PRIMERS,
            "inputs": {"primer": primer},
            "max_request_total_generated_steps": MAX_SERVING_GENERATED_STEPS,
        }

    def predict(self, keras_model, inputs: list[str], info: MusicInfo) -> list[str]:
        """For each MIDI or MusicXML file: its first 16 steps as a primer, 64 steps sampled
        (seed 0), written beside it as ``NAME.continued.mid``."""
        if info.kind == "frame":
            raise UserError("predict works with token-model runs (builtin, midi:, musicxml:)")
        spq = info.steps_per_quarter
        outputs = {name: _continuation_path(Path(name)) for name in inputs}
        sample = model.sampler(keras_model, info)
        lines = []
        for name, out in outputs.items():
            path = Path(name)
            primer = data.notes_to_steps(data.read_notes(path), spq, str(path))[:PRIMER_STEPS]
            tokens = sample(primer.reshape(1, -1), CONTINUATION_STEPS)[0]
            whole = np.concatenate([primer, data.tokens_to_steps(tokens)])
            temporary = out.with_name(f".{out.name}.partial")
            data.write_midi(data.steps_to_notes(whole, spq), temporary)
            os.replace(temporary, out)
            lines.append(
                f"{path}\t{len(primer)} primer steps + {CONTINUATION_STEPS} generated\t{out}"
            )
        return lines


def _continuation_path(primer: Path) -> Path:
    """Where ``predict`` writes a primer's continuation; UserError if a file is there."""
    out = primer.with_name(primer.stem + ".continued.mid")
    if out.exists() or out.is_symlink():
        raise UserError(
            f"{out} already exists; remove it, or predict with --input FOLDER --output NEW_FOLDER"
        )
    return out


def _generated_steps_check(primer, steps):
    """The assertion that ``generate`` samples at most ``MAX_SERVING_GENERATED_STEPS`` steps
    over all the primers of a request."""
    total = tf.cast(tf.shape(primer)[0], tf.int64) * tf.cast(steps, tf.int64)
    return tf.debugging.assert_less_equal(
        total,
        np.int64(MAX_SERVING_GENERATED_STEPS),
        message=f"music: primers x steps is more than {MAX_SERVING_GENERATED_STEPS} steps "
        "generated over the whole request (max_request_total_generated_steps; send fewer "
        "primers or steps per request)",
    )


def _primer_checks(primer, info: MusicInfo) -> list:
    """Assertions that end a serving call with a clear error for a primer the model cannot
    read: empty, longer than ``MAX_PRIMER_STEPS`` steps, or tokens outside the vocabulary."""
    frame = info.kind == "frame"
    length = tf.shape(primer)[1]
    limit = MAX_PRIMER_STEPS * (1 if frame else info.voices)
    unit = "frames" if frame else "tokens"
    checks = [
        tf.debugging.assert_positive(length, message="music: the primer is empty"),
        tf.debugging.assert_less_equal(
            length,
            limit,
            message=f"music: the primer is longer than {limit} {unit} ({MAX_PRIMER_STEPS} steps)",
        ),
    ]
    if frame:
        checks.append(
            tf.debugging.assert_all_finite(primer, message="music: the primer has NaN or inf")
        )
    else:
        checks += [
            tf.debugging.assert_non_negative(primer, message="music: a primer token is < 0"),
            tf.debugging.assert_less(
                primer,
                info.vocab_size,
                message=f"music: a primer token is >= the vocabulary size {info.vocab_size}",
            ),
        ]
    return checks


PIPELINE = MusicPipeline()
