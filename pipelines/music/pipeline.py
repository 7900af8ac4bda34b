"""The music pipeline: wires config, data, model and evaluation for the runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from pipelines.base import Pipeline
from pipelines.errors import UserError
from pipelines.export import write_export
from pipelines.music import data, evaluate, model
from pipelines.music.config import MusicConfig
from tuning.space import SearchSpace


class MusicPipeline(Pipeline):
    """Music generation: next-event prediction (teacher forcing), generation from a primer."""

    name = "music"
    config_class = MusicConfig
    search_space = SearchSpace(
        units=(64, 128, 256), batch_sizes=(16, 32, 64), dropout=(0.0, 0.3), bidirectional=(False,)
    )
    data = data
    model = model
    evaluation = evaluate

    def export(self, keras_model, info: dict[str, Any], path: Path) -> None:
        """``serving_default``: ``primer`` -> next-step ``probabilities`` [batch, vocab]
        (token model: int32 tokens [batch, steps]; frame model: float32 [batch, steps, 88]).
        ``generate``: ``primer``, ``steps``, ``temperature``, ``top_k``, ``seed`` int32 [2]
        -> ``tokens`` int32 [batch, steps * 4] (frame model: ``frames`` [batch, steps, 88])."""
        frame = info["kind"] == "frame"
        primer_spec = model.generate_signature(info)[0]
        sample = model.make_generate(keras_model, info)

        @tf.function(input_signature=[primer_spec])
        def serve(primer):
            with tf.control_dependencies(_primer_checks(primer, info)):
                primer = tf.identity(primer)
            if frame:
                silence = tf.zeros_like(primer[:, :1])
                primer = tf.concat([silence, primer], axis=1)
            return {"probabilities": keras_model(primer, training=False)[:, -1]}

        @tf.function(input_signature=model.generate_signature(info))
        def generate(primer, steps, temperature, top_k, seed):
            checks = _primer_checks(primer, info) + [
                tf.debugging.assert_positive(steps, message="music: steps must be at least 1"),
                tf.debugging.assert_less_equal(
                    steps,
                    data.MAX_GENERATE_STEPS,
                    message=f"music: steps is more than {data.MAX_GENERATE_STEPS} "
                    "(the longest continuation the export generates)",
                ),
                tf.debugging.assert_positive(temperature, message="music: temperature must be > 0"),
            ]
            with tf.control_dependencies(checks):
                primer = tf.identity(primer)
            events = sample(primer, steps, temperature, top_k, seed)
            return {"frames" if frame else "tokens": events}

        write_export(keras_model, {"serving_default": serve, "generate": generate}, path)

    def predict(self, keras_model, inputs: list[str], info: dict[str, Any]) -> list[str]:
        """For each MIDI or MusicXML file: its first 16 steps as a primer, 64 steps sampled
        (seed 0), written beside it as ``NAME.continued.mid``."""
        if info["kind"] == "frame":
            raise UserError("predict works with token-model runs (builtin, midi:, musicxml:)")
        spq = info["steps_per_quarter"]
        generate = tf.function(
            model.make_generate(keras_model, info),
            input_signature=model.generate_signature(info),
        )
        lines = []
        for name in inputs:
            path = Path(name)
            if not path.is_file():
                raise UserError(f"file not found: {path}")
            if path.suffix.lower() in data.MIDI_SUFFIXES:
                notes = data.read_midi(path)
            elif path.suffix.lower() in data.MUSICXML_SUFFIXES:
                notes = data.read_musicxml(path)
            else:
                raise UserError(f"{path}: expected a MIDI (.mid) or MusicXML (.musicxml) file")
            primer = data.notes_to_steps(notes, spq, str(path))[:16]
            tokens = generate(
                tf.constant(primer.reshape(1, -1)),
                tf.constant(64),
                tf.constant(1.0),
                tf.constant(0),
                tf.constant([0, 0], tf.int32),
            ).numpy()[0]
            whole = np.concatenate([primer, data.tokens_to_steps(tokens)])
            out = path.with_name(path.stem + ".continued.mid")
            data.write_midi(data.steps_to_notes(whole, spq), out)
            lines.append(f"{path}\t{len(primer)} primer steps + 64 generated\t{out}")
        return lines


def _primer_checks(primer, info: dict[str, Any]) -> list:
    """Assertions that end a serving call with a clear error for a primer the model cannot
    read: empty, longer than ``MAX_PRIMER_STEPS`` steps, or tokens outside the vocabulary."""
    frame = info["kind"] == "frame"
    length = tf.shape(primer)[1]
    limit = data.MAX_PRIMER_STEPS * (1 if frame else info["voices"])
    unit = "frames" if frame else "tokens"
    checks = [
        tf.debugging.assert_positive(length, message="music: the primer is empty"),
        tf.debugging.assert_less_equal(
            length,
            limit,
            message=f"music: the primer is longer than {limit} {unit} "
            f"({data.MAX_PRIMER_STEPS} steps)",
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
                info["vocab_size"],
                message=f"music: a primer token is >= the vocabulary size {info['vocab_size']}",
            ),
        ]
    return checks


PIPELINE = MusicPipeline()
