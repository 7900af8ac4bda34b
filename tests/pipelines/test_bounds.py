"""Small files that declare huge sizes are refused from their headers, before anything of
that size is allocated, and input folders are walked without leaving them or opening what
is not a regular file.

Each memory case runs in a child process that measures its own peak resident memory
(``VmHWM``; not ``ru_maxrss``, which a process started from pytest inherits from it) after
its imports and after the case: the difference is what the case
allocated at most. Without the bounds the same files take gigabytes (a 1.6 KB WAV whose
header declares 10,000,019 Hz: about 9 GB while resampling; a 3-hour WAV: about 2 GB when
decoded; a 98 KB video of two 7680x4320 frames: about 1.7 GB; a 37-byte MIDI file whose one
note ends at tick 9,900,000: about 250 MB). The end-to-end cases run the CLI in a child and
read its own peak the same way.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from pipelines.errors import UserError
from tests.helpers import REPO, run_cli_with_peak

MiB = 1024  # VmHWM is in KiB
CASE_BOUND_KIB = 64 * MiB  # what one refused file may add to a process's peak
CLI_BOUND_KIB = 1536 * MiB  # a whole CLI process (TensorFlow imported) refusing one file


# === Writing hostile files ===


def wav_header(rate: int, channels: int, data_bytes: int) -> bytes:
    """A 16-bit PCM RIFF/WAVE header declaring ``data_bytes`` of samples."""
    block = channels * 2
    fmt = struct.pack("<HHIIHH", 1, channels, rate, (rate * block) & 0xFFFFFFFF, block, 16)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def tiny_wav(path: Path, rate: int = 16000, channels: int = 1, frames: int = 800) -> Path:
    """A WAV of ``frames`` frames of a square wave, of any declared rate and channels."""
    pair = b"\x00\x10" * channels + b"\x00\xf0" * channels  # every channel alike
    samples = (pair * (frames // 2 + 1))[: frames * channels * 2]
    path.write_bytes(wav_header(rate, channels, len(samples)) + samples)
    return path


def sparse_wav(path: Path, seconds: int, rate: int = 16000) -> Path:
    """A complete mono WAV of ``seconds`` of silence that takes no disk (a sparse file)."""
    data_bytes = seconds * rate * 2
    with path.open("wb") as file:
        file.write(wav_header(rate, 1, data_bytes))
        file.truncate(44 + data_bytes)
    return path


def _vlq(number: int) -> bytes:
    out = [number & 0x7F]
    number >>= 7
    while number:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    return bytes(reversed(out))


def midi_file(path: Path, events: bytes, division: int = 480) -> Path:
    """A format-0 MIDI file of one track of ``events`` (delta-time prefixed)."""
    track = events + b"\x00\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, division)
    path.write_bytes(header + b"MTrk" + struct.pack(">I", len(track)) + track)
    return path


def far_note_midi(path: Path, ticks: int) -> Path:
    """One note that ends ``ticks`` after it starts (a few dozen bytes)."""
    return midi_file(path, b"\x00\x90\x3c\x40" + _vlq(ticks) + b"\x80\x3c\x40", division=1)


def many_notes_midi(path: Path, notes: int) -> Path:
    """``notes`` short notes, 8 bytes each."""
    return midi_file(path, b"\x00\x90\x3c\x40\x01\x80\x3c\x40" * notes)


def video_file(path: Path, width: int, height: int, frames: int) -> Path:
    """A black H.264 clip of ``frames`` frames of ``width`` x ``height`` (a few KB)."""
    import imageio.v2 as imageio
    import numpy as np

    writer = imageio.get_writer(
        str(path), format="ffmpeg", fps=25, codec="libx264", output_params=["-preset", "ultrafast"]
    )
    frame = np.zeros((height, width, 3), np.uint8)
    for _ in range(frames):
        writer.append_data(frame)
    writer.close()
    return path


# === Running a case in a child process ===


def run_child(body: str, cwd: Path) -> dict:
    """Run ``body`` (Python, after the imports it names) in a child; it sets ``result``
    (a dict). Returns that dict with ``added_kib``: the child's peak after the body less its
    peak after the imports."""
    script = textwrap.dedent(
        """
        import json, sys
        from pathlib import Path
        from pipelines.errors import UserError
        {imports}
        def peak_kib():
            status = Path("/proc/self/status").read_text()
            return int(status.split("VmHWM:")[1].split()[0])
        before = peak_kib()
        result = {{}}
        {body}
        after = peak_kib()
        print(json.dumps({{**result, "added_kib": after - before, "peak_kib": after}}))
        """
    )
    imports, _, code = textwrap.dedent(body).partition("\n---\n")
    source = script.format(imports=imports, body=code)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", source], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_cli_peak(args: list[str], cwd: Path) -> tuple[int, str, int]:
    """``python -m pipelines ARGS`` in a child: exit status, stderr, peak resident KiB."""
    done, peak = run_cli_with_peak(*args, cwd=cwd)
    return done.returncode, done.stderr, peak // 1024


def _catch(call: str) -> str:
    """Child code: run ``call`` and record its UserError (or that it returned)."""
    return (
        f"try:\n    {call}\n    result[{call!r}] = 'returned'\n"
        f"except UserError as err:\n    result[{call!r}] = str(err)\n"
    )


# === Audio ===


def test_audio_headers_declaring_huge_sizes_are_refused_before_decoding(tmp_path):
    rate = tiny_wav(tmp_path / "rate.wav", rate=10_000_019)
    channels = tiny_wav(tmp_path / "channels.wav", channels=1024, frames=2)
    long = sparse_wav(tmp_path / "long.wav", seconds=3 * 3600)
    calls = [
        f"data.read_audio(Path({str(path)!r}), 16000, limits)" for path in (rate, channels, long)
    ]
    rows = f"[(Path({str(long)!r}), 'one', 'line 2')]"
    body = (
        "from pipelines.speech_to_text import data\n"
        "from pipelines.speech_to_text.config import SpeechToTextConfig\n"
        "limits = SpeechToTextConfig().audio_limits()\n"
        "---\n"
        + "".join(_catch(call) for call in calls)
        + f"result['training'] = data._read_rows({rows}, limits)['declared_over']\n"
    )
    result = run_child(body, tmp_path)
    assert result[calls[0]] == (
        f"{rate}: sample rate 10,000,019 Hz exceeds the limit 192,000 Hz "
        "(setting 'max_sample_rate')"
    )
    assert result[calls[1]] == (
        f"{channels}: channels 1,024 exceeds the limit 8 (setting 'max_channels')"
    )
    assert result[calls[2]] == (
        f"{long}: duration 10,800 s exceeds the limit 6 s (setting 'max_seconds')"
    )
    assert result["training"] == 1  # counted as over max_seconds, never decoded
    assert result["added_kib"] < CASE_BOUND_KIB, result


def test_a_manifest_naming_a_rate_bomb_ends_in_one_error_line_in_bounded_memory(tmp_path):
    tiny_wav(tmp_path / "bomb.wav", rate=10_000_019)
    rows = "".join(f"bomb.wav,{word}\n" for word in ("one", "two", "three", "four"))
    (tmp_path / "m.csv").write_text("path,transcript\n" + rows)
    status, stderr, peak = run_cli_peak(
        ["run", "speech-to-text", "--preset", "smoke", "--data", "manifest:m.csv"], tmp_path
    )
    assert status == 2, stderr
    assert "Traceback" not in stderr
    [line] = stderr.strip().splitlines()
    assert line.startswith("error: m.csv, line ")
    assert line.endswith(
        "bomb.wav: sample rate 10,000,019 Hz exceeds the limit 192,000 Hz "
        "(setting 'max_sample_rate')"
    )
    assert peak < CLI_BOUND_KIB


def test_a_recording_within_the_limits_still_decodes_in_blocks(tmp_path):
    from pipelines.speech_to_text import data
    from pipelines.speech_to_text.config import SpeechToTextConfig

    limits = SpeechToTextConfig().audio_limits()
    path = tiny_wav(tmp_path / "stereo.wav", rate=8000, channels=2, frames=40_000)
    audio = data.read_audio(path, 16000, limits)
    assert audio.dtype.name == "float32" and len(audio) == 80_000
    with pytest.raises(UserError, match=r"duration 12\.5 s exceeds the limit 6 s"):
        data.read_audio(tiny_wav(tmp_path / "mono.wav", rate=8000, frames=100_000), 16000, limits)


# === MIDI and MusicXML ===


def test_midi_and_musicxml_declaring_huge_lengths_are_refused_before_parsing(tmp_path):
    from pipelines.music import data

    far = far_note_midi(tmp_path / "far.mid", 9_900_000)
    many = many_notes_midi(tmp_path / "many.mid", data.MAX_MIDI_BYTES // 8 + 1)
    bomb = tmp_path / "bomb.mxl"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("score.musicxml", b" " * (data.MAX_MUSICXML_BYTES + 1))
    calls = [f"data.read_notes(Path({str(path)!r}))" for path in (far, many, bomb)]
    body = "from pipelines.music import data\n---\n" + "".join(_catch(call) for call in calls)
    result = run_child(body, tmp_path)
    assert result[calls[0]] == (
        f"{far}: length 9,900,000 ticks exceeds the limit 2,000,000 ticks "
        "(the project's limit MAX_MIDI_TICKS)"
    )
    assert result[calls[1]].startswith(f"{many}: file size ")
    assert result[calls[1]].endswith("(the project's limit MAX_MIDI_BYTES)")
    assert result[calls[2]].startswith(f"{bomb}: unpacked size ")
    assert result[calls[2]].endswith("(the project's limit MAX_MUSICXML_BYTES)")
    assert bomb.stat().st_size < 64 * 1024
    assert result["added_kib"] < CASE_BOUND_KIB, result


def test_a_midi_file_longer_than_a_piece_may_be_is_refused_in_quarter_notes(tmp_path):
    from pipelines.music import data

    path = far_note_midi(tmp_path / "slow.mid", data.MAX_PIECE_STEPS + 1)
    with pytest.raises(UserError, match="quarter notes exceeds the limit 100,000 quarter notes"):
        data.read_midi(path)
    notes = data.read_midi(far_note_midi(tmp_path / "ok.mid", 8))
    assert notes == [(60, 0.0, 8.0)]


# === Video ===


def test_a_video_declaring_huge_frames_is_refused_from_its_header(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    big = video_file(tmp_path / "big.mp4", 7680, 4320, 2)
    long = video_file(tmp_path / "long.mp4", 32, 32, 40)
    calls = [
        f"data.read_clip(Path({str(big)!r}), 12, 32)",
        f"data.read_clip(Path({str(long)!r}), 12, 32)",
    ]
    body = "from pipelines.video_activity import data\ndata.MAX_CLIP_FRAMES = 20\n---\n" + "".join(
        _catch(call) for call in calls
    )
    result = run_child(body, tmp_path)
    assert big.stat().st_size < 1024 * 1024
    assert result[calls[0]] == (
        f"{big}: frame size 33,177,600 pixels exceeds the limit 8,294,400 pixels "
        "(setting 'max_frame_pixels')"
    )
    assert result[calls[1]] == (
        f"{long}: length 40 frames exceeds the limit 20 frames (the project's limit "
        "MAX_CLIP_FRAMES)"
    )
    assert result["added_kib"] < CASE_BOUND_KIB, result


# === Input folders ===


@pytest.fixture
def no_hang():
    """Fail, rather than hang, if a FIFO is ever opened."""

    def _hung(signum, frame):
        raise AssertionError("blocked: a FIFO was opened")

    previous = signal.signal(signal.SIGALRM, _hung)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _hostile_folder(folder: Path, suffix: str, outside: Path) -> None:
    """A FIFO, a link to a file outside, a link to a folder outside, a socket-like entry."""
    folder.mkdir(parents=True, exist_ok=True)
    os.mkfifo(folder / f"pipe{suffix}")
    (folder / f"secret{suffix}").symlink_to(outside)
    (folder / "elsewhere").symlink_to(outside.parent, target_is_directory=True)


def test_training_folders_skip_fifos_and_links_out_with_a_warning(tmp_path, no_hang, capsys):
    from pipelines.file_inputs import folder_files

    outside = tmp_path / "outside" / "x.mid"
    outside.parent.mkdir()
    far_note_midi(outside, 8)
    folder = tmp_path / "in"
    _hostile_folder(folder, ".mid", outside)
    (folder / "sub").mkdir()
    far_note_midi(folder / "sub" / "a.mid", 8)
    (folder / "inside.mid").symlink_to(folder / "sub" / "a.mid")
    assert folder_files(folder, (".mid",)) == [folder / "inside.mid", folder / "sub" / "a.mid"]
    printed = capsys.readouterr().out
    assert f"warning: {folder / 'pipe.mid'}: not a regular file" in printed
    assert f"warning: {folder / 'secret.mid'}: a link to outside the input folder" in printed
    assert f"warning: {folder / 'elsewhere'}: a link to a folder; not followed" in printed


def test_every_folder_loader_uses_the_walker(tmp_path, no_hang):
    from pipelines.music import data as music
    from pipelines.speech_to_text import data as speech
    from pipelines.speech_to_text.config import SpeechToTextConfig
    from pipelines.video_activity import data as video

    outside = tmp_path / "outside" / "x.wav"
    outside.parent.mkdir()
    tiny_wav(outside)
    midi = tmp_path / "midi"
    _hostile_folder(midi, ".mid", outside)
    far_note_midi(midi / "a.mid", 8)
    assert music._files(midi, music.MIDI_SUFFIXES, "MIDI") == [midi / "a.mid"]

    fsdd = tmp_path / "fsdd"
    _hostile_folder(fsdd, ".wav", outside)
    os.mkfifo(fsdd / "1_bob_0.wav")
    tiny_wav(fsdd / "2_bob_0.wav")
    clips = speech.read_fsdd(fsdd, SpeechToTextConfig().audio_limits())
    assert {speaker: sorted(digits) for speaker, digits in clips.items()} == {"bob": [2]}

    videos = tmp_path / "videos"
    for label in ("run", "walk"):
        _hostile_folder(videos / label, ".mp4", outside)
        (videos / label / "clip.mp4").write_bytes(b"x")
    (videos / "linked").symlink_to(videos / "run", target_is_directory=True)
    files = video._video_files(videos, 2)
    assert files == {"run": [videos / "run" / "clip.mp4"], "walk": [videos / "walk" / "clip.mp4"]}


def test_an_input_folder_is_bounded_in_files(tmp_path, monkeypatch):
    from pipelines import file_inputs

    for number in range(4):
        (tmp_path / f"{number}.wav").write_bytes(b"x")
    monkeypatch.setattr(file_inputs, "MAX_INPUT_FILES", 3)
    with pytest.raises(UserError, match="holds more than 3 files of .wav, the limit"):
        list(file_inputs.input_files(tmp_path, (".wav",), "audio files"))
    with pytest.raises(UserError, match="holds more than 3 files"):
        file_inputs.folder_files(tmp_path, (".wav",))


def test_a_jsb_file_of_too_many_steps_is_refused_before_its_frames_are_built(tmp_path):
    from pipelines.music import data

    steps = ",".join(["[]"] * (data.MAX_JSB_STEPS + 1))  # each step 3 bytes, 352 as a frame
    path = tmp_path / "many.json"
    path.write_text(f'{{"train": [[{steps}]], "valid": [[[60]]], "test": [[[60]]]}}')
    big = tmp_path / "big.json"
    with big.open("wb") as file:
        file.truncate(data.MAX_JSB_BYTES + 1)
    calls = [f"data.read_jsb(Path({str(p)!r}))" for p in (path, big)]
    body = "from pipelines.music import data\n---\n" + "".join(_catch(call) for call in calls)
    result = run_child(body, tmp_path)
    assert result[calls[0]] == (
        f"{path}: steps of all pieces 1,000,003 exceeds the limit 1,000,000 (the project's "
        "limit MAX_JSB_STEPS)"
    )
    assert result[calls[1]].startswith(f"{big}: file size 4,194,305 bytes exceeds the limit")
    # The parsed lists of the 3 MB file remain; its 352 MB of frames are never made.
    assert result["added_kib"] < 2 * CASE_BOUND_KIB, result


def test_predict_over_a_folder_reports_a_header_bomb_as_a_bad_file(tmp_path):
    from pipelines.predict_files import BadItem
    from pipelines.speech_to_text import data, files
    from pipelines.speech_to_text.config import SpeechToTextConfig

    info = data.SpeechToTextInfo(
        name="tones",
        source="test tones",
        sample_rate=16000,
        vocabulary=data.VOCABULARY,
        max_seconds=2.0,
        max_samples=2 * 16000,
        beam_width=1,
        n_mels=16,
    )
    folder = tmp_path / "in"
    folder.mkdir()
    tiny_wav(folder / "bomb.wav", rate=10_000_019)
    sparse_wav(folder / "long.wav", seconds=3600)
    found = list(files.read_items(folder, SpeechToTextConfig(), info))
    assert found == [
        BadItem(
            str(folder / "bomb.wav"),
            "sample rate 10,000,019 Hz exceeds the limit 192,000 Hz (setting 'max_sample_rate')",
        ),
        BadItem(
            str(folder / "long.wav"),
            "duration 3,600 s exceeds the limit 2 s (setting 'max_seconds')",
        ),
    ]
