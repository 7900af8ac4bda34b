"""The video-activity pipeline: wires config, data, model and evaluation for the runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from pipelines.base import Pipeline
from pipelines.errors import UserError
from pipelines.export import number_input, request_checks
from pipelines.video_activity import data
from pipelines.video_activity.data import VideoInfo

# Bounds on what serving_default accepts, checked inside the graph before any allocation
# that grows with the input: a larger request fails with one of these messages.
MAX_SERVING_BATCH = 256
MAX_SERVING_FRAMES = data.MAX_CLIP_FRAMES
MAX_SERVING_SIDE = 4096
MAX_SERVING_PIXELS = 2**26  # batch x sampled frames x height x width, resized at once
MAX_SERVING_VALUES = 2**27  # batch x frames x height x width x 3 as sent (128 MiB of uint8)


class VideoActivityPipeline(Pipeline):
    """Clip classification (many-to-one): a per-frame CNN, then recurrence over the frames."""

    name = "video-activity"
    info_class = VideoInfo

    def export(self, keras_model, info: VideoInfo, path: Path) -> None:
        """``serving_default``: ``frames`` uint8 [batch, frames, height, width, 3] ->
        ``probabilities``, ``label``; frame sampling, resizing and scaling in the graph.
        A request over ``serving_limits`` ends the call with an InvalidArgumentError."""
        class_names = tf.constant(info.class_names)
        frames, size = info.frames, info.frame_size
        spec = tf.TensorSpec([None, None, None, None, 3], tf.uint8, name="frames")
        limits = self.serving_limits(info)

        @tf.function(input_signature=[spec])
        def serve(clips):
            with tf.control_dependencies(request_checks({"frames": clips}, limits, "frames")):
                clips = tf.identity(clips)
            clips = serving_clips(clips, frames, size)
            probabilities = keras_model(clips, training=False)
            label = tf.gather(class_names, tf.argmax(probabilities, axis=-1))
            return {"probabilities": probabilities, "label": label}

        self.write_serving_export(keras_model, {"serving_default": serve}, info, path, limits)

    def serving_example(self, info: VideoInfo) -> dict[str, Any]:
        """Two grey clips of the trained frame count and size."""
        clip = np.full((info.frames, info.frame_size, info.frame_size, 3), 128, np.uint8)
        return {"frames": [clip.tolist(), clip.tolist()]}

    def serving_limits(self, info: VideoInfo) -> dict[str, Any]:
        """Clips per request; values (frames x height x width x 3) per clip and per request.
        A clip is bounded by the request's values, as its frames and sides alone allow more."""
        per_clip = min(MAX_SERVING_FRAMES * MAX_SERVING_SIDE**2 * 3, MAX_SERVING_VALUES)
        return {
            "max_items": MAX_SERVING_BATCH,
            "inputs": {"frames": number_input("uint8", per_clip, MAX_SERVING_VALUES)},
        }

    def predict(self, keras_model, inputs: list[str], info: VideoInfo) -> list[str]:
        """``label<TAB>probability<TAB>file`` for each video file."""
        clips = []
        for name in inputs:
            if not Path(name).is_file():
                raise UserError(f"video file not found: {name}")
            clips.append(data.read_clip(Path(name), info.frames, info.frame_size))
        probabilities = keras_model.predict(np.stack(clips), verbose=0)
        names = info.class_names
        return [
            f"{names[p.argmax()]}\t{p.max():.3f}\t{name}"
            for name, p in zip(inputs, probabilities, strict=True)
        ]


def serving_clips(clips: tf.Tensor, frames: int, size: int) -> tf.Tensor:
    """Check bounds, sample ``frames`` uniformly and resize to ``size``: uint8 in and out."""
    shape = tf.shape(clips, out_type=tf.int64)
    checks = _serving_checks(shape, frames)
    with tf.control_dependencies(checks):
        last = tf.cast(shape[1] - 1, tf.float64)
        indices = tf.cast(
            tf.round(tf.linspace(tf.constant(0.0, tf.float64), last, frames)), tf.int64
        )
        picked = tf.gather(clips, indices, axis=1)
    flat = tf.reshape(picked, tf.stack([-1, shape[2], shape[3], 3]))
    return tf.reshape(data.resize_frames(flat, size), [-1, frames, size, size, 3])


def _serving_checks(shape: tf.Tensor, frames: int) -> list:
    """Assertions that a request's ``shape`` is within the serving bounds."""
    pixels = shape[0] * frames * shape[2] * shape[3]
    return [
        tf.debugging.assert_positive(
            shape[1:4], message="frames: need at least one frame of at least 1x1 pixels"
        ),
        tf.debugging.assert_less_equal(
            shape[0], np.int64(MAX_SERVING_BATCH), message=f"frames: batch > {MAX_SERVING_BATCH}"
        ),
        tf.debugging.assert_less_equal(
            shape[1],
            np.int64(MAX_SERVING_FRAMES),
            message=f"frames: more than {MAX_SERVING_FRAMES} frames per clip",
        ),
        tf.debugging.assert_less_equal(
            shape[2:4],
            np.int64(MAX_SERVING_SIDE),
            message=f"frames: height or width larger than {MAX_SERVING_SIDE} pixels",
        ),
        tf.debugging.assert_less_equal(
            pixels,
            np.int64(MAX_SERVING_PIXELS),
            message=f"frames: batch x {frames} sampled frames x height x width is more than "
            f"{MAX_SERVING_PIXELS} pixels; send fewer or smaller clips per request",
        ),
    ]


PIPELINE = VideoActivityPipeline()
