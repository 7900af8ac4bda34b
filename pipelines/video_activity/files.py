"""Video activity over files: a folder of clips in (class subfolders or not), ``path``,
``label`` and one ``probability_CLASS`` column per class out
(``python -m pipelines predict RUN_DIR --input FOLDER --output PATH``).

Each clip is decoded and its frames sampled and resized as ``predict`` and the training data
do (``data.read_clip``), one clip at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.errors import UserError
from pipelines.file_inputs import input_files, reason_of
from pipelines.predict_files import BadItem, Item, printed_float
from pipelines.video_activity import data
from pipelines.video_activity.config import VideoConfig
from pipelines.video_activity.data import VideoInfo

OUTPUT = "table"
PROBABILITY_PREFIX = "probability_"  # + a class name: the column of that class's probability


def read_items(path: Path, config: VideoConfig, info: VideoInfo) -> Iterator[Item | BadItem]:
    """The clips of a folder, walked in sorted order, or one video file (key: the path):
    uint8 ``[frames, frame_size, frame_size, 3]`` each."""
    for file, reason in input_files(path, data.VIDEO_EXTENSIONS, "video files"):
        if reason:
            yield BadItem(str(file), reason)
            continue
        try:
            clip = data.read_clip(file, info.frames, info.frame_size, config.max_frame_pixels)
        except UserError as err:
            yield BadItem(str(file), reason_of(err, file))
            continue
        yield Item(str(file), clip, {})


def predict_items(
    keras_model, items: list[Item], config: VideoConfig, info: VideoInfo
) -> list[dict[str, Any]]:
    """``path``, the most probable ``label`` and every class's probability, per clip."""
    clips = np.stack([item.value for item in items])
    probabilities = keras_model.predict(clips, verbose=0)
    names = info.class_names
    return [
        {
            "path": item.key,
            "label": names[int(row.argmax())],
            **{
                PROBABILITY_PREFIX + name: printed_float(p)
                for name, p in zip(names, row, strict=True)
            },
        }
        for item, row in zip(items, probabilities, strict=True)
    ]
