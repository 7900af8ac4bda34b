"""Prediction over files for speech-to-text, video-activity and music: folders and manifests
in, tables or continued files out, bad files reported by path or row under both --on-error
modes, existing outputs and unfinished runs refused."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from pipelines.errors import UserError
from tests.helpers import run_cli, smoke_run_dir

RATE = 16000


# === Inputs ===


def _tone(seconds: float, rate: int = RATE, seed: int = 0) -> np.ndarray:
    """Speech-like audio: noisy harmonic bursts (not silent, not clipped)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    envelope = (np.sin(2 * np.pi * 2.5 * t) > 0).astype(np.float32)
    audio = envelope * (np.sin(2 * np.pi * 180 * t) + 0.5 * np.sin(2 * np.pi * 900 * t))
    return (0.3 * audio + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def _write_audio(path: Path, seconds: float, rate: int = RATE, seed: int = 0) -> Path:
    import soundfile

    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), _tone(seconds, rate, seed), rate)
    return path


def _write_video(path: Path, seed: int = 0) -> Path:
    """A tiny real video (imageio, ffmpeg): a bright square sliding over noise."""
    import imageio.v2 as imageio

    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 60, size=(8, 24, 24, 3), dtype=np.uint8)
    for t in range(8):
        frames[t, 8:16, 4 + t : 12 + t] = 230
    path.parent.mkdir(parents=True, exist_ok=True)
    with imageio.get_writer(str(path), fps=10, macro_block_size=1) as writer:
        for frame in frames:
            writer.append_data(frame)
    return path


def _write_midi(path: Path, seed: int = 0) -> Path:
    """A small four-voice piano MIDI file (pretty_midi)."""
    import pretty_midi

    rng = np.random.default_rng(seed)
    midi = pretty_midi.PrettyMIDI(initial_tempo=120)
    piano = pretty_midi.Instrument(program=0)
    for beat in range(24):
        for base in (72, 64, 55, 48):
            pitch = base + int(rng.integers(-3, 4))
            piano.notes.append(pretty_midi.Note(80, pitch, beat * 0.5, beat * 0.5 + 0.5))
    midi.instruments.append(piano)
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.write(str(path))
    return path


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def _skipped(output: Path) -> list[dict[str, str]]:
    """The rows of the side file that lists what ``--on-error skip`` left out."""
    return _read_csv(output.with_name(output.name + ".skipped.csv"))


def _error_line(result) -> str:
    """The one ``error:`` line a refused command ends with (exit status 2, no traceback)."""
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ")
    return line


def _predict(run: Path, source: Path, output: Path, *flags: str):
    """``python -m pipelines predict RUN --input SOURCE --output OUTPUT FLAGS``."""
    return run_cli("predict", str(run), "--input", str(source), "--output", str(output), *flags)


def _predict_files(run: Path, source: Path, output: Path, **options) -> dict:
    from pipelines.predict_files import predict_files

    return predict_files(str(run), str(source), str(output), **options)


# === Walking an input folder (no model needed) ===


def test_input_folder_walk_stays_inside_and_passes_over_other_files(tmp_path):
    from pipelines.file_inputs import input_files

    folder = tmp_path / "in"
    for name in ("b.wav", "sub/a.wav", "notes.txt"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"x")
    outside = tmp_path / "secret.wav"
    outside.write_bytes(b"x")
    (folder / "out.wav").symlink_to(outside)
    (folder / "in.wav").symlink_to(folder / "b.wav")
    (folder / "linked").symlink_to(tmp_path, target_is_directory=True)
    os.mkfifo(folder / "pipe.wav")
    found = dict(input_files(folder, (".wav",), "audio files"))
    assert found == {
        folder / "b.wav": "",
        folder / "in.wav": "",
        folder / "out.wav": "a link to outside the input folder; not followed",
        folder / "sub" / "a.wav": "",
    }
    with pytest.raises(UserError, match="holds no audio files"):
        list(input_files(folder / "sub", (".flac",), "audio files"))
    with pytest.raises(UserError, match="no such file or folder"):
        list(input_files(tmp_path / "absent", (".wav",), "audio files"))


def test_speech_refuses_long_audio_by_its_header_and_never_opens_a_fifo(tmp_path, monkeypatch):
    from pipelines.speech_to_text import data, files
    from pipelines.speech_to_text.config import SpeechToTextConfig

    info = data.SpeechToTextInfo(
        name="tones",
        source="test tones",
        sample_rate=RATE,
        vocabulary=data.VOCABULARY,
        max_seconds=2.0,
        max_samples=2 * RATE,
        beam_width=1,
        n_mels=16,
    )
    config = SpeechToTextConfig()
    long = _write_audio(tmp_path / "long.flac", 3.0, rate=8000)
    expected = r"long\.flac: duration 3 s exceeds the limit 2 s \(setting 'max_seconds'\)"
    with monkeypatch.context() as patched, pytest.raises(UserError, match=expected):
        patched.setattr(data, "read_audio", pytest.fail)  # the samples are never decoded
        files.read_recording(long, config, info)
    pipe = tmp_path / "pipe.wav"  # a manifest may name one: refused, never opened
    os.mkfifo(pipe)
    with pytest.raises(UserError, match="pipe.wav: audio file not found"):
        files.read_recording(pipe, config, info)


# === Speech-to-text ===


@pytest.fixture(scope="module")
def speech_run(tmp_path_factory) -> Path:
    return smoke_run_dir(tmp_path_factory, "speech-to-text", "--seed", "1")


def test_speech_folder_transcripts_equal_predict_and_bad_file_by_path(speech_run, tmp_path):
    folder = tmp_path / "audio"
    clips = [
        _write_audio(folder / "a.wav", 0.8, seed=1),
        _write_audio(folder / "sub" / "b.flac", 0.6, rate=22050, seed=2),  # resampled
    ]
    (folder / "readme.txt").write_text("not audio; passed over")
    broken = folder / "broken.wav"
    broken.write_bytes(b"RIFF....WAVEnot audio")
    output = tmp_path / "transcripts.csv"

    line = _error_line(_predict(speech_run, folder, output))
    assert str(broken) in line and not output.exists()

    result = _predict(speech_run, folder, output, "--on-error", "skip")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = _read_csv(output)
    assert list(rows[0]) == ["path", "transcript"]
    expected = run_cli("predict", str(speech_run), *map(str, clips))
    assert expected.returncode == 0, expected.stderr[-3000:]
    printed = [line.split("\t") for line in expected.stdout.strip().splitlines()[-2:]]
    assert [(r["transcript"], r["path"]) for r in rows] == [tuple(p) for p in printed]
    assert [(r["key"], bool(r["reason"])) for r in _skipped(output)] == [(str(broken), True)]

    with pytest.raises(UserError, match=f"{output} already exists; add --overwrite"):
        _predict_files(speech_run, folder, output, on_error="skip")
    output.write_text("stale")
    summary = _predict_files(speech_run, folder, output, on_error="skip", overwrite=True)
    assert (summary["predicted"], summary["skipped"]) == (2, 1)
    assert _read_csv(output) == rows


def test_speech_manifest_keeps_columns_and_reports_bad_rows_by_line(speech_run, tmp_path):
    _write_audio(tmp_path / "clips" / "one.wav", 0.7, seed=3)
    _write_audio(tmp_path / "clips" / "two.wav", 0.5, rate=44100, seed=4)
    _write_audio(tmp_path / "clips" / "long.wav", 30.0, seed=5)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "path,transcript,speaker\n"
        "clips/one.wav,one,ann\n"
        "clips/missing.wav,two,bob\n"  # line 3
        "\n"
        "clips/two.wav,three,cy\n"
        "clips/long.wav,four,dee\n"  # line 6: over max_seconds
        "clips/one.wav,five\n"  # line 7: a field short
    )
    output = tmp_path / "out.jsonl"
    with pytest.raises(UserError, match="line 3"):
        _predict_files(speech_run, manifest, output)
    assert not output.exists()

    summary = _predict_files(speech_run, manifest, output, on_error="skip", batch_size=1)
    assert summary

    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["path"] for r in rows] == ["clips/one.wav", "clips/two.wav"]
    assert [(r["speaker"], r["input_transcript"]) for r in rows] == [
        ("ann", "one"),
        ("cy", "three"),
    ]
    assert all(isinstance(r["transcript"], str) for r in rows)
    skipped = {r["key"]: r["reason"] for r in _skipped(output)}
    assert list(skipped) == ["line 3", "line 6", "line 7"]
    assert "missing.wav" in skipped["line 3"] and "max_seconds" in skipped["line 6"]


def test_speech_refuses_an_unfinished_run(speech_run, tmp_path):
    partial = tmp_path / "run.partial"
    shutil.copytree(speech_run, partial, symlinks=True)
    _write_audio(tmp_path / "audio" / "a.wav", 0.5)
    with pytest.raises(UserError, match="--resume"):
        _predict_files(partial, tmp_path / "audio", tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


# === Video activity ===


@pytest.fixture(scope="module")
def video_run(tmp_path_factory) -> Path:
    return smoke_run_dir(tmp_path_factory, "video-activity", "--seed", "1")


def test_video_folder_labels_and_probabilities_and_bad_clip_by_path(video_run, tmp_path):

    folder = tmp_path / "clips"
    clips = [
        _write_video(folder / "left" / "a.mp4", 0),
        _write_video(folder / "right" / "b.avi", 1),
    ]
    broken = folder / "right" / "c.mp4"
    broken.write_bytes(b"not a video")
    output = tmp_path / "labels.csv"

    with pytest.raises(UserError, match=str(broken)):
        _predict_files(video_run, folder, output)
    assert not output.exists()

    _predict_files(video_run, folder, output, on_error="skip", batch_size=1)
    rows = _read_csv(output)
    names = json.loads((video_run / "data_info.json").read_text())["fields"]["class_names"]
    assert list(rows[0]) == ["path", "label", *(f"probability_{n}" for n in names)]
    assert [r["path"] for r in rows] == list(map(str, clips))
    expected = run_cli("predict", str(video_run), *map(str, clips))
    assert expected.returncode == 0, expected.stderr[-3000:]
    printed = [line.split("\t") for line in expected.stdout.strip().splitlines()[-2:]]
    for row, (label, top, _) in zip(rows, printed, strict=True):
        probabilities = [float(row[f"probability_{n}"]) for n in names]
        assert row["label"] == label and abs(max(probabilities) - float(top)) < 1e-3
        assert abs(sum(probabilities) - 1) < 1e-4
    assert [r["key"] for r in _skipped(output)] == [str(broken)]

    with pytest.raises(UserError, match="exists"):
        _predict_files(video_run, folder, output, on_error="skip")
    _predict_files(video_run, folder, output, on_error="skip", overwrite=True)
    assert len(_read_csv(output)) == 2


def test_video_refuses_an_unfinished_run(video_run, tmp_path):
    partial = tmp_path / "run.partial"
    shutil.copytree(video_run, partial, symlinks=True)
    _write_video(tmp_path / "clips" / "a.mp4")
    with pytest.raises(UserError, match="--resume"):
        _predict_files(partial, tmp_path / "clips", tmp_path / "out.csv")


# === Music ===


@pytest.fixture(scope="module")
def music_run(tmp_path_factory) -> Path:
    return smoke_run_dir(tmp_path_factory, "music", "--seed", "1")


def test_music_folder_continues_each_primer_as_predict_does(music_run, tmp_path):
    folder = tmp_path / "primers"
    first = _write_midi(folder / "a.mid", 0)
    _write_midi(folder / "sub" / "b.mid", 1)
    shutil.copy(first, folder / "a.midi")  # differs from a.mid only by its suffix
    broken = folder / "broken.mid"
    broken.write_bytes(b"MThd not midi")
    output = tmp_path / "continued"

    line = _error_line(_predict(music_run, folder, output))
    assert str(broken) in line and not output.exists()

    result = _predict(music_run, folder, output, "--on-error", "skip")
    assert result.returncode == 0, result.stderr[-3000:]
    written = sorted(p.relative_to(output).as_posix() for p in output.rglob("*") if p.is_file())
    assert written == ["a.continued.mid", "a.midi.continued.mid", "sub__b.continued.mid"]
    assert [r["key"] for r in _skipped(output)] == [str(broken)]
    # the same continuation as `predict FILE`, which writes NAME.continued.mid beside it
    alone = tmp_path / "alone" / "a.mid"
    alone.parent.mkdir()
    shutil.copy(first, alone)
    assert run_cli("predict", str(music_run), str(alone)).returncode == 0
    expected = (alone.parent / "a.continued.mid").read_bytes()
    assert (output / "a.continued.mid").read_bytes() == expected
    assert (output / "a.midi.continued.mid").read_bytes() == expected
    import pretty_midi

    notes = pretty_midi.PrettyMIDI(str(output / "sub__b.continued.mid")).instruments[0].notes
    assert notes

    with pytest.raises(UserError, match=f"{output} already exists; add --overwrite"):
        _predict_files(music_run, folder, output, on_error="skip")
    (output / "a.continued.mid").unlink()
    _predict_files(music_run, folder, output, on_error="skip", overwrite=True)
    assert (output / "a.continued.mid").read_bytes() == expected


def test_music_refuses_an_unfinished_run(music_run, tmp_path):
    partial = tmp_path / "run.partial"
    shutil.copytree(music_run, partial, symlinks=True)
    _write_midi(tmp_path / "primers" / "a.mid")
    with pytest.raises(UserError, match="--resume"):
        _predict_files(partial, tmp_path / "primers", tmp_path / "out")
