"""Settings and data sources of the video-activity pipeline. Imports no TensorFlow."""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

from pydantic import Field, model_validator

from pipelines.config_base import (
    BYTES_PER_FLOAT,
    MAX_EPOCHS,
    MAX_EXAMPLES,
    MAX_UNITS,
    BaseConfig,
    count_field,
    with_default,
)
from pipelines.sources import DataSource, DataSources
from tuning.space import space

SUMMARY = "video activity recognition: frames -> activity (built-in: GENERATED digit-motion clips)"

# Caps the video domain sets, tighter than the general ones: every clip is held in memory
# as uint8 [frames, frame_size, frame_size, 3].
MAX_FRAMES = 1_000  # frames sampled per clip
MAX_FRAME_SIZE = 1_024  # pixels per side after resizing
MAX_CLASSES = 1_000  # top_k cannot usefully exceed the number of classes
MAX_CLIPS_PER_CLASS = 100_000  # generated clips per built-in class


class VideoConfig(BaseConfig):
    """Every setting of the video-activity pipeline."""

    frames: int = count_field(12, "frames sampled uniformly from each clip", high=MAX_FRAMES)
    frame_size: int = count_field(
        32, "frames are resized to frame_size x frame_size pixels", low=8, high=MAX_FRAME_SIZE
    )
    recurrence: Literal["rnn", "conv_lstm"] = Field(
        "rnn",
        description="rnn: per-frame CNN -> feature vector -> recurrent stack; "
        "conv_lstm: CNN feature maps -> ConvLSTM",
    )
    # Plain ints and no max_length, which the help would show as a text's: the checks
    # below bound each layer's channels, and frame_size the number of layers.
    conv_filters: tuple[int, ...] = Field(
        (16, 32, 32),
        min_length=1,
        description="channels (1..4096) of each per-frame conv layer; each halves the frame",
    )
    frame_features: int = count_field(
        64, "per-frame feature vector (recurrence=rnn)", high=MAX_UNITS
    )
    conv_lstm_filters: int = count_field(
        16, "ConvLSTM channels (recurrence=conv_lstm)", high=MAX_UNITS
    )
    top_k: int = count_field(2, "top-k accuracy reported beside accuracy", high=MAX_CLASSES)
    baseline_epochs: int = count_field(
        8, "most epochs of the frame-averaging baseline (early stopping)", high=MAX_EPOCHS
    )
    clips_per_class: int = count_field(
        300, "builtin: generated clips of each activity", low=5, high=MAX_CLIPS_PER_CLASS
    )
    noise: float = Field(
        0.06, ge=0.0, lt=1.0, description="builtin: pixel noise std (intensities in [0, 1])"
    )
    validation_fraction: float = with_default(BaseConfig, "validation_fraction", 0.15)
    test_fraction: float = with_default(BaseConfig, "test_fraction", 0.15)
    max_examples: int = count_field(
        0, "folder/tfds: keep a seeded sample of this many clips; 0 keeps all",
        low=0, high=MAX_EXAMPLES,
    )  # fmt: skip
    max_frame_pixels: int = count_field(
        3840 * 2160,
        "most pixels (width x height) a video file's frames may declare; larger ones are "
        "refused from the container's header, before decoding",
        low=64,
        high=7680 * 4320,
    )
    skip_bad_files: bool = Field(
        False, description="folder: skip (and count) unreadable or empty videos"
    )

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
        },
    }

    @model_validator(mode="after")
    def _frame_fits_the_cnn(self) -> Self:
        """Each conv layer has 1..MAX_UNITS channels and halves the frame, which must keep
        at least one pixel."""
        if not all(1 <= filters <= MAX_UNITS for filters in self.conv_filters):
            raise ValueError(
                f"setting 'conv_filters' = {','.join(map(str, self.conv_filters))[:80]}: each "
                f"conv layer needs 1..{MAX_UNITS} channels"
            )
        most = self.frame_size.bit_length() - 1  # halvings that leave a pixel
        if len(self.conv_filters) > most:
            raise ValueError(
                f"setting 'frame_size' ({self.frame_size}) is too small for the "
                f"{len(self.conv_filters):,} layers of 'conv_filters' (each halves it; "
                f"it allows {most}); raise frame_size or drop layers"
            )
        return self

    def sequence_steps(self) -> int:
        """Frames per clip."""
        return self.frames

    def estimated_memory_bytes(self, parameters: int | None = None) -> int:
        """The recurrent stack's estimate plus one batch's per-frame CNN activations (each
        conv layer's conv, norm and ReLU outputs) and, for conv_lstm, its state maps."""
        side, per_frame = self.frame_size, 0
        for filters in self.conv_filters:
            per_frame += 3 * side * side * filters
            side //= 2
        if self.recurrence == "conv_lstm":
            per_frame += 6 * side * side * self.conv_lstm_filters  # four gates, two states
        activations = self.batch_size * self.frames * per_frame
        return super().estimated_memory_bytes(parameters) + BYTES_PER_FLOAT * 2 * activations

    def clip_bytes(self) -> int:
        """Memory of one decoded clip, uint8 ``[frames, frame_size, frame_size, 3]``."""
        return self.frames * self.frame_size * self.frame_size * 3


SPLIT_SETTINGS = ("validation_fraction", "test_fraction")

DATA_SOURCES = DataSources(
    "video-activity",
    DataSource(
        "builtin",
        "load_builtin",
        "GENERATED, not recorded: no labelled human-activity video reaches this machine. "
        "Short clips in which real images (the 1,797 handwritten 8x8 digits bundled with "
        "scikit-learn) perform 8 activities that differ only in motion over time, in pairs "
        "that are each other's reverse in time: move_left/move_right, move_up/move_down, "
        "rotate_clockwise/rotate_anticlockwise, grow/shrink. The second of a pair is a clip "
        "of the first played backwards, so a model that ignores frame order cannot tell the "
        "two apart. Noise, background clutter, camera jitter, varying speed and start "
        "position; seeded (--seed fixes the clips); seeded stratified split.",
        settings=("clips_per_class", "noise", "frames", "frame_size", *SPLIT_SETTINGS),
    ),
    DataSource(
        "folder",
        "load_folder",
        "the UCF101 layout: DIR/class_name/*.avi|mp4|mov|mkv|webm|mpg|mpeg|m4v (two or more "
        "classes). Frames decoded with imageio (imageio-ffmpeg), sampled uniformly to "
        "`frames`, resized to frame_size x frame_size. An unreadable, empty or non-video "
        "file is an error naming it, unless skip_bad_files=true (then skipped and counted "
        "in the report). Seeded stratified split.",
        argument="folder",
        settings=(
            "frames",
            "frame_size",
            "skip_bad_files",
            "max_examples",
            *SPLIT_SETTINGS,
        ),
        test_loader="load_test_folder",
    ),
    DataSource(
        "tfds",
        "load_tfds",
        "a TensorFlow Datasets video set with `video` and `label` features, such as ucf101 "
        "(needs internet); its own train/test split, validation carved from train.",
        argument="name",
        settings=("frames", "frame_size", "max_examples", "validation_fraction"),
    ),
)

SEARCH_SPACE = space(
    units={"choices": [32, 64, 128]},
    batch_size={"choices": [16, 32, 64]},
    frame_features={"choices": [32, 64, 128]},
)

CONFIG_CLASS = VideoConfig
