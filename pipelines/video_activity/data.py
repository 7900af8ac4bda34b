"""Video data: the generated built-in clips, a UCF101-style folder of videos, and TFDS UCF101.

Every source returns clips as uint8 ``[clips, frames, frame_size, frame_size, 3]``:
frames sampled uniformly over the clip (``sample_indices``), then resized with
``resize_frames``, the same two steps the serving export runs inside its graph.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage
from sklearn.model_selection import train_test_split

from pipelines.base import Splits
from pipelines.errors import UserError
from pipelines.progress import log
from pipelines.video_activity.config import VideoConfig

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".m4v")

# The built-in classes, in pairs that are each other's reverse in time.
CLASS_NAMES = [
    "move_left",
    "move_right",
    "move_up",
    "move_down",
    "rotate_clockwise",
    "rotate_anticlockwise",
    "grow",
    "shrink",
]
PAIRS = [[0, 1], [2, 3], [4, 5], [6, 7]]
BUILTIN_SOURCE = (
    "GENERATED clips (not recorded video): real handwritten digits from scikit-learn's "
    "load_digits perform 8 activities that differ only in motion over time, in pairs that "
    "are each other's reverse in time; noise, background clutter, camera jitter, varying speed"
)
_RESIZE_CHUNK = 64  # frames resized at once while decoding


# === Loading ===


def load_data(config: VideoConfig, spec: str, seed: int) -> Splits:
    """Load the source named by ``spec`` and split it with ``seed``."""
    kind, sep, rest = spec.partition(":")
    if spec == "builtin":
        clips, targets = generate_clips(config, seed)
        info = _info("builtin_digit_motion", BUILTIN_SOURCE, CLASS_NAMES, config, PAIRS)
        return _split(clips, targets, config, seed, info)
    if kind == "folder" and sep and rest:
        clips, targets, class_names, skipped = read_folder(Path(rest), config)
        clips, targets = _sample(clips, targets, config.max_examples, seed)
        info = _info(Path(rest).name, f"video folder {rest}", class_names, config, [], skipped)
        return _split(clips, targets, config, seed, info)
    if kind == "tfds" and sep and rest:
        return _load_tfds(rest, config, seed)
    raise UserError(
        f"unknown data spec {spec!r} for video-activity; use builtin, folder:DIR or tfds:ucf101"
    )


def load_test_data(config: VideoConfig, spec: str, info: dict[str, Any]):
    """Every clip of ``spec`` as test data, labels mapped onto the trained model's classes."""
    config = config.with_settings({"frames": info["frames"], "frame_size": info["frame_size"]})
    kind, sep, rest = spec.partition(":")
    if kind != "folder" or not sep or not rest:
        raise UserError(f"evaluate --data supports folder:DIR for video-activity, got {spec!r}")
    clips, targets, class_names, _ = read_folder(Path(rest), config, min_classes=1)
    unknown = sorted(set(class_names) - set(info["class_names"]))
    if unknown:
        raise UserError(f"{rest}: classes {unknown[:5]} are not among the model's classes")
    index = {name: i for i, name in enumerate(info["class_names"])}
    return clips, np.array([index[class_names[t]] for t in targets], dtype=np.int32)


def _info(name, source, class_names, config, pairs, skipped=()) -> dict[str, Any]:
    return {
        "name": name,
        "source": source,
        "generated": name == "builtin_digit_motion",
        "class_names": list(class_names),
        "pairs": pairs,
        "frames": config.frames,
        "frame_size": config.frame_size,
        "skipped_files": list(skipped),
    }


def _sample(clips, targets, max_examples: int, seed: int):
    if not max_examples or len(targets) <= max_examples:
        return clips, targets
    keep = np.sort(np.random.default_rng(seed).choice(len(targets), max_examples, replace=False))
    return clips[keep], targets[keep]


def _split(clips, targets, config: VideoConfig, seed: int, info: dict[str, Any]) -> Splits:
    held_out = config.validation_fraction + config.test_fraction
    if len(targets) < 10 or np.bincount(targets).min() < 3:
        raise UserError(
            f"{info['source']}: too few clips to split ({len(targets)}; each class needs "
            "at least 3)"
        )
    indices = np.arange(len(targets))
    train, rest = train_test_split(indices, test_size=held_out, random_state=seed, stratify=targets)
    validation, test = train_test_split(
        rest,
        test_size=config.test_fraction / held_out,
        random_state=seed,
        stratify=targets[rest],
    )
    return Splits(
        train=(clips[train], targets[train]),
        validation=(clips[validation], targets[validation]),
        test=(clips[test], targets[test]),
        info=info,
    )


# === Frames: sampling and resizing (the export does the same in its graph) ===


def sample_indices(count: int, frames: int) -> np.ndarray:
    """``frames`` indices spread uniformly over ``count`` frames (repeats if fewer)."""
    return np.round(np.linspace(0.0, count - 1.0, frames)).astype(np.int64)


def resize_frames(frames, size: int):
    """uint8 ``[n, h, w, 3]`` -> uint8 ``[n, size, size, 3]`` (bilinear, antialiased)."""
    import tensorflow as tf

    resized = tf.image.resize(tf.cast(frames, tf.float32), (size, size), antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def read_clip(path: Path, frames: int, size: int) -> np.ndarray:
    """Decode a video file to uint8 ``[frames, size, size, 3]``; UserError naming the file."""
    import imageio.v2 as imageio

    if path.is_file() and path.stat().st_size == 0:
        raise UserError(f"{path}: the video file is empty (0 bytes)")
    try:
        reader = imageio.get_reader(str(path), format="ffmpeg")
    except Exception as err:  # imageio raises OSError, RuntimeError, ... for a bad file
        if "does not contain any stream" in str(err):
            raise UserError(f"{path}: the video has no frames (no video stream)") from None
        raise UserError(f"{path}: not a readable video ({_reason(err)})") from None
    resized, chunk = [], []
    try:
        for frame in reader:
            chunk.append(_rgb(frame))
            if len(chunk) == _RESIZE_CHUNK:
                resized.append(resize_frames(np.stack(chunk), size).numpy())
                chunk = []
    except Exception as err:
        raise UserError(f"{path}: cannot decode the video ({_reason(err)})") from None
    finally:
        reader.close()
    if chunk:
        resized.append(resize_frames(np.stack(chunk), size).numpy())
    if not resized:
        raise UserError(f"{path}: the video has no frames")
    clip = np.concatenate(resized)
    return clip[sample_indices(len(clip), frames)]


def _rgb(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim == 2:
        frame = frame[..., None]
    if frame.shape[-1] == 1:
        frame = np.repeat(frame, 3, axis=-1)
    return frame[..., :3].astype(np.uint8)


def _reason(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    known = [line for line in lines if "Invalid data" in line or "moov atom" in line]
    return (known or lines or [type(err).__name__])[-1][:160]


# === folder:DIR (the UCF101 layout) ===


def read_folder(root: Path, config: VideoConfig, min_classes: int = 2):
    """Clips, targets, class names and skipped files of ``root/class_name/*.mp4|avi|...``."""
    files = _video_files(root, min_classes)
    clips, targets, skipped = [], [], []
    log(f"decoding {sum(len(f) for f in files.values())} videos from {root}")
    for label, (_, paths) in enumerate(files.items()):
        for path in paths:
            try:
                clips.append(read_clip(path, config.frames, config.frame_size))
                targets.append(label)
            except UserError as err:
                if not config.skip_bad_files:
                    raise
                skipped.append(str(err))
    if skipped:
        log(f"skipped {len(skipped)} unreadable or empty videos (skip_bad_files)")
    targets = np.array(targets, dtype=np.int32)
    present = sorted(set(targets.tolist()))
    if len(present) < min_classes:
        raise UserError(f"{root}: fewer than {min_classes} classes have a readable video")
    return np.stack(clips), targets, list(files), skipped


def _video_files(root: Path, min_classes: int) -> dict[str, list[Path]]:
    if not root.is_dir():
        raise UserError(f"data folder not found: {root}")
    files = {
        folder.name: sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
        for folder in sorted(root.iterdir())
        if folder.is_dir()
    }
    files = {name: paths for name, paths in files.items() if paths}
    if len(files) < min_classes:
        found = f"one class ({next(iter(files))!r})" if files else "no class folders"
        raise UserError(
            f"{root}: found videos of {found}; need {min_classes} or more class folders "
            f"of videos ({', '.join(VIDEO_EXTENSIONS)})"
        )
    return files


# === tfds:ucf101 ===


def _load_tfds(name: str, config: VideoConfig, seed: int) -> Splits:
    import tensorflow_datasets as tfds

    try:
        train, test = tfds.load(name, split=["train", "test"])
        class_names = list(tfds.builder(name).info.features["label"].names)
    except Exception as err:  # TFDS raises many types for a bad name or no network
        raise UserError(
            f"tfds:{name}: could not load ({type(err).__name__}: {str(err).splitlines()[0][:200]})"
        ) from None
    train_x, train_y = _sample(*_tfds_arrays(train, config), config.max_examples, seed)
    test_x, test_y = _sample(*_tfds_arrays(test, config), config.max_examples, seed)
    counts = np.bincount(train_y)
    train_x, val_x, train_y, val_y = train_test_split(
        train_x,
        train_y,
        test_size=config.validation_fraction,
        random_state=seed,
        stratify=train_y if counts[counts > 0].min() >= 2 else None,
    )
    source = f"TensorFlow Datasets {name} (train/test as published; validation carved from train)"
    return Splits(
        train=(train_x, train_y),
        validation=(val_x, val_y),
        test=(test_x, test_y),
        info=_info(name, source, class_names, config, []),
    )


def _tfds_arrays(dataset, config: VideoConfig):
    clips, labels = [], []
    for example in dataset.as_numpy_iterator():
        video, label = example["video"], example["label"]
        if len(video) == 0:
            continue
        picked = video[sample_indices(len(video), config.frames)]
        clips.append(resize_frames(_rgb_video(picked), config.frame_size).numpy())
        labels.append(int(label))
    return np.stack(clips), np.array(labels, dtype=np.int32)


def _rgb_video(video: np.ndarray) -> np.ndarray:
    return np.stack([_rgb(frame) for frame in video])


# === builtin: generated digit-motion clips ===


def generate_clips(config: VideoConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``clips_per_class`` clips of each of ``CLASS_NAMES``, seeded; uint8 clips and targets.

    The first class of each pair is rendered; the second is a clip rendered the
    same way and played backwards. Noise and jitter are drawn independently
    per frame, so the set of frames of a clip has the same distribution for
    both classes of a pair: only their order tells them apart.
    """
    from sklearn.datasets import load_digits

    digits = load_digits().images.astype(np.float32) / 16.0
    rng = np.random.default_rng(seed)
    count = config.clips_per_class * len(CLASS_NAMES)
    targets = np.tile(np.arange(len(CLASS_NAMES), dtype=np.int32), config.clips_per_class)
    targets = targets[rng.permutation(count)]
    shape = (count, config.frames, config.frame_size, config.frame_size, 3)
    clips = np.empty(shape, dtype=np.uint8)
    for i, target in enumerate(targets):
        clip = render_clip(rng, digits, int(target) // 2, config)
        clips[i] = clip[::-1] if target % 2 else clip
    return clips, targets


def render_clip(rng: np.random.Generator, digits: np.ndarray, motion: int, config) -> np.ndarray:
    """One clip of ``motion`` (0 left, 1 up, 2 clockwise, 3 grow) as uint8 ``[T, S, S, 3]``."""
    frames, size = config.frames, config.frame_size
    jitter = max(1, size // 24)
    offsets = rng.integers(-jitter, jitter + 1, size=(frames, 2))  # camera jitter (y, x)
    centre, angle, scale = _trajectory(rng, motion, frames, size)
    grid = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5  # (2, S, S): y, x
    alpha = _sprite(digits[rng.integers(len(digits))], grid, centre + offsets, angle, scale)
    background = _background(rng, digits, size, jitter)
    colour = rng.uniform(0.6, 1.0, size=3).astype(np.float32)
    frames_out = np.empty((frames, size, size, 3), dtype=np.float32)
    for t, (dy, dx) in enumerate(offsets):
        view = background[jitter + dy : jitter + dy + size, jitter + dx : jitter + dx + size]
        frames_out[t] = view * (1 - alpha[t, ..., None]) + colour * alpha[t, ..., None]
    frames_out += rng.normal(0.0, config.noise, size=frames_out.shape)
    return (np.clip(frames_out, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def _trajectory(rng, motion: int, frames: int, size: int):
    """Per-frame centre ``(T, 2)``, angle ``(T,)`` in radians and scale ``(T,)``."""
    progress = np.linspace(0.0, 1.0, frames) ** rng.uniform(0.7, 1.4)  # speed varies
    centre = np.tile(size / 2 + rng.uniform(-0.1, 0.1, size=2) * size, (frames, 1))
    angle = np.full(frames, np.deg2rad(rng.uniform(-20, 20)))
    scale = np.full(frames, size / 8 * rng.uniform(0.4, 0.55))
    if motion in (0, 1):  # left (x falls) or up (y falls)
        distance = size * rng.uniform(0.3, 0.5)
        axis = 1 if motion == 0 else 0
        centre[:, 1 - axis] = size / 2 + rng.uniform(-0.15, 0.15) * size
        centre[:, axis] += distance * (0.5 - progress)
    elif motion == 2:  # clockwise on screen (y points down)
        angle += np.deg2rad(rng.uniform(120, 200)) * progress
    else:  # grow
        scale = size / 8 * rng.uniform(0.25, 0.35) * (1 + progress * rng.uniform(0.8, 1.4))
    return centre, angle, scale


def _sprite(digit, grid, centre, angle, scale) -> np.ndarray:
    """The digit drawn at each frame's pose: intensities ``(T, S, S)`` in [0, 1]."""
    rel = grid[None] - centre[:, :, None, None]  # (T, 2, S, S)
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    s = scale[:, None, None]
    # Inverse of "rotate by angle, then scale": screen offset -> digit pixel coordinates.
    v = (cos * rel[:, 0] - sin * rel[:, 1]) / s + 3.5
    u = (sin * rel[:, 0] + cos * rel[:, 1]) / s + 3.5
    alpha = ndimage.map_coordinates(digit, [v, u], order=1, cval=0.0)
    return np.clip(alpha, 0.0, 1.0)


def _background(rng, digits, size: int, jitter: int) -> np.ndarray:
    """A static cluttered scene, ``jitter`` pixels larger on each side than a frame."""
    side = size + 2 * jitter
    coarse = rng.uniform(0.0, 0.45, size=(4, 4, 3)).astype(np.float32)
    scene = ndimage.zoom(coarse, (side / 4, side / 4, 1), order=1)[:side, :side]
    for _ in range(rng.integers(1, 4)):  # coloured rectangles
        y, x = rng.integers(0, side - 3, size=2)
        h, w = rng.integers(2, max(3, size // 3), size=2)
        scene[y : y + h, x : x + w] = rng.uniform(0.0, 0.6, size=3)
    distractor = ndimage.zoom(digits[rng.integers(len(digits))], size / 16, order=1)
    y, x = rng.integers(0, side - distractor.shape[0] + 1, size=2)
    patch = scene[y : y + distractor.shape[0], x : x + distractor.shape[1]]
    patch += 0.35 * distractor[..., None] * (1 - patch)  # a faint static digit
    return scene
