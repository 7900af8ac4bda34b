"""Settings of the video-activity pipeline. Imports no TensorFlow."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from pipelines.config_base import BaseConfig, check_split_fractions
from pipelines.errors import UserError

SUMMARY = "video activity recognition: frames -> activity (built-in: GENERATED digit-motion clips)"

DATA_HELP = """\
data (--data SPEC):
  builtin       GENERATED, not recorded: no labelled human-activity video reaches this machine.
                Short clips in which real images (the 1,797 handwritten 8x8 digits bundled with
                scikit-learn) perform 8 activities that differ only in motion over time, in pairs
                that are each other's reverse in time: move_left/move_right, move_up/move_down,
                rotate_clockwise/rotate_anticlockwise, grow/shrink. The second of a pair is a
                clip of the first played backwards, so a model that ignores frame order cannot
                tell the two apart. Noise, background clutter, camera jitter, varying speed and
                start position; seeded (--seed fixes the clips).
  folder:DIR    the UCF101 layout: DIR/class_name/*.avi|mp4|mov|mkv|webm|mpg (two or more
                classes). Frames decoded with imageio (imageio-ffmpeg), sampled uniformly to
                `frames`, resized to frame_size x frame_size. An unreadable, empty or non-video
                file is an error naming it, unless --set skip_bad_files=true (then skipped and
                counted in the report).
  tfds:ucf101   TensorFlow Datasets UCF101 (needs internet; its own train/test split).
  Where a source has no split, a seeded stratified split gives train/validation/test
  (validation_fraction, test_fraction)."""

RECURRENCES = ("rnn", "conv_lstm")


@dataclasses.dataclass(frozen=True)
class VideoConfig(BaseConfig):
    """Every setting of the video-activity pipeline."""

    frames: int = 12  # frames sampled uniformly from each clip
    frame_size: int = 32  # frames are resized to frame_size x frame_size
    recurrence: str = "rnn"  # rnn: per-frame CNN -> recurrent stack; conv_lstm: ConvLSTM
    conv_filters: tuple[int, ...] = (16, 32, 32)  # per-frame CNN, each conv halves the size
    frame_features: int = 64  # per-frame feature vector (recurrence=rnn)
    conv_lstm_filters: int = 16  # ConvLSTM channels (recurrence=conv_lstm)
    top_k: int = 2  # reported beside accuracy
    baseline_epochs: int = 8  # the frame-averaging baseline (early stopping on validation loss)
    clips_per_class: int = 300  # built-in data only
    noise: float = 0.06  # built-in data: pixel noise (std, intensities in [0, 1])
    validation_fraction: float = 0.15
    test_fraction: float = 0.15
    max_examples: int = 0  # 0 keeps all; caps folder/tfds clips
    skip_bad_files: bool = False  # folder: skip (and count) unreadable or empty videos

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.recurrence not in RECURRENCES:
            raise UserError(
                f"setting 'recurrence' must be one of {', '.join(RECURRENCES)}, "
                f"got {self.recurrence!r}"
            )
        for key in (
            "frames",
            "frame_size",
            "frame_features",
            "conv_lstm_filters",
            "top_k",
            "baseline_epochs",
        ):
            if getattr(self, key) < 1:
                raise UserError(f"setting {key!r} must be at least 1, got {getattr(self, key)}")
        if self.clips_per_class < 5:
            raise UserError(
                f"setting 'clips_per_class' must be at least 5, got {self.clips_per_class}"
            )
        if not self.conv_filters or min(self.conv_filters) < 1:
            raise UserError("setting 'conv_filters' must be one or more positive integers")
        if self.frame_size < 2 ** len(self.conv_filters):
            raise UserError(
                f"setting 'frame_size' ({self.frame_size}) is too small for "
                f"{len(self.conv_filters)} conv layers (each halves it)"
            )
        if not 0.0 <= self.noise < 1.0:
            raise UserError(f"setting 'noise' must be in [0, 1), got {self.noise}")
        check_split_fractions(self.validation_fraction, self.test_fraction)

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "frames": 6,
            "frame_size": 16,
            "clips_per_class": 12,
            "conv_filters": (4, 8),
            "frame_features": 8,
            "conv_lstm_filters": 4,
            "units": 8,
            "epochs": 1,
            "baseline_epochs": 1,
            "validation_fraction": 0.2,
            "test_fraction": 0.2,
            "tune_epochs": 1,
            "max_trials": 2,
        },
        "default": {
            "epochs": 12,
            "patience": 4,
            "batch_size": 32,
            "learning_rate": 2e-3,
            "dropout": 0.2,
        },
        "full": {
            "clips_per_class": 600,
            "frames": 16,
            "epochs": 40,
            "baseline_epochs": 20,
            "patience": 6,
            "batch_size": 32,
            "learning_rate": 2e-3,
            "dropout": 0.2,
            "depth": 2,
            "max_trials": 12,
        },
    }


CONFIG_CLASS = VideoConfig
