"""Video data: the generated built-in clips, a UCF101-style folder of videos, and TFDS UCF101.

Every source returns clips as uint8 ``[clips, frames, frame_size, frame_size, 3]``:
frames sampled uniformly over the clip (``frame_indices``), then resized with
``resize_frames``, the same two steps the serving export runs inside its graph.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np
from scipy import ndimage
from sklearn.model_selection import train_test_split

from pipelines.base import Splits
from pipelines.errors import UserError
from pipelines.file_inputs import folder_files
from pipelines.media_limits import check_at_most, over_limit
from pipelines.progress import bar, log
from pipelines.records import DataInfo
from pipelines.splitting import SPLIT_NAMES, sample_indices, split_indices
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
BUILTIN_NAME = "builtin_digit_motion"
BUILTIN_SOURCE = (
    "GENERATED clips (not recorded video): real handwritten digits from scikit-learn's "
    "load_digits perform 8 activities that differ only in motion over time, in pairs that "
    "are each other's reverse in time; noise, background clutter, camera jitter, varying speed"
)
_RESIZE_CHUNK = 64  # most frames resized at once while decoding
DECODE_CHUNK_BYTES = 256 * 2**20  # decoded frames held at once, with their float32 copies
MAX_DECODED_CLIP_BYTES = 2**30  # one clip's resized frames, all held before sampling
DEFAULT_MAX_FRAME_PIXELS = VideoConfig.model_fields["max_frame_pixels"].default
# The most frames a video may have, in a data folder, `predict` or the serving export: an
# activity clip is seconds long; a longer video is an error naming it, not a slow decode.
MAX_CLIP_FRAMES = 10_000


@dataclasses.dataclass(frozen=True)
class VideoInfo(DataInfo):
    """What the video model is built from and what its evaluation reports.

    Attributes:
        generated: whether the clips are generated (the built-in data), not recorded.
        class_names: the activity of each output class, in output order.
        pairs: class indices of the pairs that are each other's reverse in time
            (built-in data; empty otherwise).
        frames: frames sampled from each clip, the model's time steps.
        frame_size: the side in pixels each frame is resized to.
        skipped_files: one reason per video skipped under ``skip_bad_files``.
    """

    generated: bool
    class_names: list[str]
    pairs: list[list[int]]
    frames: int
    frame_size: int
    skipped_files: list[str] = dataclasses.field(default_factory=list)


# === Loaders (named by config.DATA_SOURCES) ===


def load_builtin(config: VideoConfig, argument: str, seed: int) -> Splits:
    """The generated digit-motion clips, drawn and split with ``seed``."""
    check_clip_memory(config.clips_per_class * len(CLASS_NAMES), config, "builtin")
    clips, targets = generate_clips(config, seed)
    info = _info(BUILTIN_NAME, BUILTIN_SOURCE, CLASS_NAMES, config, generated=True, pairs=PAIRS)
    return _split(clips, targets, config, seed, info)


def load_folder(config: VideoConfig, path: str, seed: int) -> Splits:
    """A UCF101-style folder of videos, sampled (``max_examples``) and split with ``seed``."""
    clips, targets, class_names, skipped = read_folder(
        Path(path), config, max_examples=config.max_examples, seed=seed
    )
    info = _info(Path(path).name, f"video folder {path}", class_names, config, skipped=skipped)
    return _split(clips, targets, config, seed, info)


def load_test_folder(config: VideoConfig, path: str, info: VideoInfo):
    """Every clip of a folder as test data, at the trained model's frames and frame size,
    labels mapped onto its classes."""
    config = config.with_settings({"frames": info.frames, "frame_size": info.frame_size})
    clips, targets, class_names, _ = read_folder(Path(path), config, min_classes=1)
    unknown = sorted(set(class_names) - set(info.class_names))
    if unknown:
        raise UserError(f"{path}: classes {unknown[:5]} are not among the model's classes")
    index = {name: i for i, name in enumerate(info.class_names)}
    return clips, np.array([index[class_names[t]] for t in targets], dtype=np.int32)


def load_tfds(config: VideoConfig, name: str, seed: int) -> Splits:
    """A TensorFlow Datasets video set (needs internet): its own train/test split, each
    sampled to ``max_examples``; validation carved from train with ``seed``."""
    import tensorflow_datasets as tfds

    try:
        train, test = tfds.load(name, split=["train", "test"])
        class_names = list(tfds.builder(name).info.features["label"].names)
    except Exception as err:  # TFDS raises many types for a bad name or no network
        raise UserError(
            f"tfds:{name}: could not load ({type(err).__name__}: {str(err).splitlines()[0][:200]})"
        ) from None
    train_x, train_y = _tfds_arrays(train, config, seed, f"tfds:{name}")
    test_x, test_y = _tfds_arrays(test, config, seed, f"tfds:{name}")
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
        info=_info(name, source, class_names, config),
    )


def check_clip_memory(count: int, config: VideoConfig, source: str) -> None:
    """UserError when ``count`` decoded clips would not fit in ``memory_limit_gb``."""
    needed = count * config.clip_bytes() / 2**30
    if needed > config.memory_limit_gb:
        raise UserError(
            f"{source}: {count:,} clips of {config.frames} frames of {config.frame_size}x"
            f"{config.frame_size} pixels need about {needed:,.1f} GiB of memory, more than "
            f"setting 'memory_limit_gb' ({config.memory_limit_gb:g}); lower clips_per_class "
            "or max_examples, frames or frame_size, or raise memory_limit_gb"
        )


def _info(
    name: str,
    source: str,
    class_names: list[str],
    config: VideoConfig,
    *,
    generated: bool = False,
    pairs: list[list[int]] | None = None,
    skipped: list[str] | None = None,
) -> VideoInfo:
    return VideoInfo(
        name=name,
        source=source,
        generated=generated,
        class_names=list(class_names),
        pairs=[list(pair) for pair in pairs or []],
        frames=config.frames,
        frame_size=config.frame_size,
        skipped_files=list(skipped or []),
    )


def _split(clips, targets, config: VideoConfig, seed: int, info: VideoInfo) -> Splits:
    """A seeded stratified train/validation/test split of the clips."""
    fractions = (config.validation_fraction, config.test_fraction)
    parts = split_indices(
        len(targets), *fractions, seed, stratify=targets, what="clips", source=info.source
    )
    train, validation, test = ((clips[parts[k]], targets[parts[k]]) for k in SPLIT_NAMES)
    return Splits(train=train, validation=validation, test=test, info=info)


# === Frames: sampling and resizing (the export does the same in its graph) ===


def frame_indices(count: int, frames: int) -> np.ndarray:
    """``frames`` indices spread uniformly over ``count`` frames (repeats if fewer)."""
    return np.round(np.linspace(0.0, count - 1.0, frames)).astype(np.int64)


def resize_frames(frames, size: int):
    """uint8 ``[n, h, w, 3]`` -> uint8 ``[n, size, size, 3]`` (bilinear, antialiased)."""
    import tensorflow as tf

    resized = tf.image.resize(tf.cast(frames, tf.float32), (size, size), antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def read_clip(
    path: Path, frames: int, size: int, max_pixels: int = DEFAULT_MAX_FRAME_PIXELS
) -> np.ndarray:
    """Decode a video file to uint8 ``[frames, size, size, 3]``; UserError naming the file.

    The container's declared frame size and length are checked first (``max_pixels``, the
    setting ``max_frame_pixels``; ``MAX_CLIP_FRAMES``; ``MAX_DECODED_CLIP_BYTES``), and the
    frames are decoded a few at a time, as many as ``DECODE_CHUNK_BYTES`` holds at their
    size, so that memory follows the resized clip."""
    reader = _open_video(path)
    try:
        pixels = _check_header(reader.get_meta_data(), path, size, max_pixels)
        clip = _resized_frames(reader, path, size, _chunk_frames(pixels))
    finally:
        reader.close()
    return clip[frame_indices(len(clip), frames)]


def _check_header(meta: dict, path: Path, size: int, max_pixels: int) -> int:
    """The pixels of a frame, as the container declares them; UserError for a frame size,
    a length or a resized clip over its limit."""
    width, height = meta.get("size") or meta.get("source_size") or (0, 0)
    pixels = int(width) * int(height)
    check_at_most(path, "frame size", pixels, max_pixels, "max_frame_pixels", " pixels")
    declared = _declared_frames(meta)
    check_at_most(path, "length", declared, MAX_CLIP_FRAMES, "MAX_CLIP_FRAMES", " frames")
    _check_clip_bytes(path, declared, size)
    return pixels


def _declared_frames(meta: dict) -> int:
    """Frames the container declares: its count, or its duration times its rate."""
    count = meta.get("nframes")
    if isinstance(count, int | float) and math.isfinite(count) and count > 0:
        return int(count)
    seconds, fps = meta.get("duration"), meta.get("fps")
    numbers = isinstance(seconds, int | float) and isinstance(fps, int | float)
    if numbers and math.isfinite(seconds * fps) and seconds * fps > 0:
        return round(seconds * fps)
    return 0


def _check_clip_bytes(path: Path, count: int, size: int) -> None:
    """UserError when ``count`` frames resized to ``size`` exceed ``MAX_DECODED_CLIP_BYTES``."""
    clip_bytes = count * size * size * 3
    check_at_most(
        path, "decoded clip", clip_bytes, MAX_DECODED_CLIP_BYTES, "MAX_DECODED_CLIP_BYTES", " bytes"
    )


def _chunk_frames(pixels: int) -> int:
    """Frames decoded before each resize: as many as ``DECODE_CHUNK_BYTES`` holds (the
    resize works in float32), at least one, at most ``_RESIZE_CHUNK``."""
    per_frame = max(pixels, 1) * 3 * (1 + 4 + 4)
    return max(1, min(_RESIZE_CHUNK, DECODE_CHUNK_BYTES // per_frame))


def _open_video(path: Path):
    """imageio's ffmpeg reader of ``path``; UserError for an empty or unreadable file."""
    import imageio.v2 as imageio

    if path.is_file() and path.stat().st_size == 0:
        raise UserError(f"{path}: the video file is empty (0 bytes)")
    try:
        return imageio.get_reader(str(path), format="ffmpeg")
    except Exception as err:  # imageio raises OSError, RuntimeError, ... for a bad file
        if "does not contain any stream" in str(err):
            raise UserError(f"{path}: the video has no frames (no video stream)") from None
        raise UserError(f"{path}: not a readable video ({_reason(err)})") from None


def _resized_frames(reader, path: Path, size: int, chunk_frames: int) -> np.ndarray:
    """Every frame of ``reader``, resized ``chunk_frames`` at a time; UserError as soon as
    more are decoded than the header's limits allow (a header may understate the length)."""
    resized, chunk = [], []
    try:
        for count, frame in enumerate(reader, 1):
            if count > MAX_CLIP_FRAMES:
                raise over_limit(
                    path, "length", count, MAX_CLIP_FRAMES, "MAX_CLIP_FRAMES", " frames"
                )
            _check_clip_bytes(path, count, size)
            chunk.append(_rgb(frame))
            if len(chunk) == chunk_frames:
                resized.append(resize_frames(np.stack(chunk), size).numpy())
                chunk = []
    except UserError:
        raise
    except Exception as err:
        raise UserError(f"{path}: cannot decode the video ({_reason(err)})") from None
    if chunk:
        resized.append(resize_frames(np.stack(chunk), size).numpy())
    if not resized:
        raise UserError(f"{path}: the video has no frames")
    return np.concatenate(resized)


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


def read_folder(
    root: Path, config: VideoConfig, min_classes: int = 2, max_examples: int = 0, seed: int = 0
):
    """Clips, targets, class names and skipped files of ``root/class_name/*.mp4|avi|...``.

    With ``max_examples``, a seeded sample of that many videos is decoded, not all.
    """
    files = _video_files(root, min_classes)
    listed = [(label, path) for label, paths in enumerate(files.values()) for path in paths]
    listed = [listed[i] for i in sample_indices(len(listed), max_examples, seed)]
    check_clip_memory(len(listed), config, str(root))
    clips, targets, skipped = [], [], []
    log(f"decoding {len(listed)} videos from {root}")
    for label, path in bar(listed, description="decoding videos", unit=" videos"):
        try:
            clips.append(read_clip(path, config.frames, config.frame_size, config.max_frame_pixels))
            targets.append(label)
        except UserError as err:
            if not config.skip_bad_files:
                raise
            skipped.append(str(err))
    if skipped:
        log(f"skipped {len(skipped)} unreadable or empty videos (skip_bad_files)")
    if len(set(targets)) < min_classes:
        raise UserError(f"{root}: fewer than {min_classes} classes have a readable video")
    return np.stack(clips), np.array(targets, dtype=np.int32), list(files), skipped


def _video_files(root: Path, min_classes: int) -> dict[str, list[Path]]:
    """The videos of each class folder of ``root`` (its direct subfolders), walked by
    ``folder_files``: links out of ``root`` and what is not a regular file passed over."""
    if not root.is_dir():
        raise UserError(f"data folder not found: {root}")
    files: dict[str, list[Path]] = {}
    for path in folder_files(root, VIDEO_EXTENSIONS, max_depth=2):
        relative = path.relative_to(root)
        if len(relative.parts) == 2:
            files.setdefault(_class_name(root / relative.parts[0]), []).append(path)
    files = dict(sorted(files.items()))
    if len(files) < min_classes:
        found = f"one class ({next(iter(files))!r})" if files else "no class folders"
        raise UserError(
            f"{root}: found videos of {found}; need {min_classes} or more class folders "
            f"of videos ({', '.join(VIDEO_EXTENSIONS)})"
        )
    return files


def _class_name(folder: Path) -> str:
    """A class folder's name, which becomes a label in outputs and plots: it must be text."""
    try:
        folder.name.encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(folder.name).decode("utf-8", "backslashreplace")
        raise UserError(
            f"{folder.parent / shown}: a class folder's name must be UTF-8 text (it names the "
            "class in outputs); rename the folder"
        ) from None
    return folder.name


# === tfds: (UCF101) ===


def _tfds_arrays(dataset, config: VideoConfig, seed: int, source: str):
    """Clips and labels of one TFDS split: a seeded sample of ``max_examples``, chosen before
    decoding where the split's size is known; clips without frames are left out."""
    count = int(dataset.cardinality())
    wanted = None
    if count >= 0:
        wanted = set(sample_indices(count, config.max_examples, seed).tolist())
        check_clip_memory(len(wanted), config, source)
    clips, labels = [], []
    examples = dataset.as_numpy_iterator()
    total = count if count >= 0 else None
    for i, example in enumerate(bar(examples, description="decoding clips", total=total)):
        video = example["video"]
        if (wanted is not None and i not in wanted) or len(video) == 0:
            continue
        picked = video[frame_indices(len(video), config.frames)]
        clips.append(resize_frames(_rgb_video(picked), config.frame_size).numpy())
        labels.append(int(example["label"]))
    if not clips:
        raise UserError(f"{source}: the split has no clip with frames")
    clips, labels = np.stack(clips), np.array(labels, dtype=np.int32)
    if wanted is None:  # the size was unknown beforehand: sample what was decoded
        keep = sample_indices(len(labels), config.max_examples, seed)
        clips, labels = clips[keep], labels[keep]
    return clips, labels


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
    for i, target in enumerate(bar(targets, description="rendering clips", unit=" clips")):
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
