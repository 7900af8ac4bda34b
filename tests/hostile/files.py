"""Generators of hostile files: small files that declare huge sizes, text in the wrong encoding,
numbers at the edges, and the good tiny data each pipeline's cases start from.

Every function writes into a folder it is given and returns the path it wrote; nothing here
allocates what the file declares.
"""

from __future__ import annotations

import functools
import io
import math
import struct
import subprocess
from pathlib import Path

import numpy as np

from tests.pipelines.test_bad_inputs import _midi_bytes
from tests.pipelines.test_video_activity import moving_square, write_video

SPEECH_RATE = 16000
HUGE_DIMENSION = 60_000  # a frame of 60,000 x 60,000 RGB pixels is some 10 GB
HUGE_COUNT = 0x7FFF_FFF0  # a 32-bit count near its largest value


# === Good tiny data per pipeline (what the hostile variants are made from) ===


def sentiment_rows(rows: int = 30) -> list[str]:
    """A labelled CSV of ``rows`` short texts in two balanced classes, header first."""
    return ["text,label"] + [
        f"{'good' if i % 2 else 'bad'} film number {i},{i % 2}" for i in range(rows)
    ]


def series_rows(rows: int = 200, value=None) -> list[str]:
    """A daily CSV series (date, temp, wind); ``value(i)`` gives temp (a sine by default)."""
    import datetime

    start = datetime.date(2020, 1, 1)
    value = value or (lambda i: f"{10 + math.sin(i):.3f}")
    return ["date,temp,wind"] + [
        f"{start + datetime.timedelta(days=i)},{value(i)},{i % 5}" for i in range(rows)
    ]


def translation_pairs(count: int = 40) -> str:
    """Tab-separated English/French pairs."""
    return "".join(f"word {i}\tmot {i}\n" for i in range(count))


# A real MIDI file of rising notes (pretty_midi), made once.
midi_bytes = functools.cache(_midi_bytes)


def tone(seconds: float = 0.5, rate: int = SPEECH_RATE, seed: int = 0) -> np.ndarray:
    """Speech-like test audio: noisy harmonic bursts."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    envelope = (np.sin(2 * np.pi * 2.5 * t) > 0).astype(np.float32)
    audio = envelope * (np.sin(2 * np.pi * 180 * t) + 0.5 * np.sin(2 * np.pi * 900 * t))
    return (0.3 * audio + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def write_wav(path: Path, audio: np.ndarray, rate: int = SPEECH_RATE, subtype="PCM_16") -> Path:
    """``audio`` as a WAV file (soundfile)."""
    import soundfile

    soundfile.write(str(path), audio, rate, subtype=subtype)
    return path


def speech_manifest(folder: Path, clips: int = 8, bad: Path | None = None) -> Path:
    """A manifest CSV of ``clips`` short recordings (and ``bad``, listed on line 3)."""
    rows = ["path,transcript"]
    for i in range(clips):
        write_wav(folder / f"clip_{i}.wav", tone(0.4 + 0.05 * (i % 4), seed=i))
        rows.append(f"clip_{i}.wav,{i}")
    if bad is not None:
        rows.insert(2, f"{bad.name},two")
    manifest = folder / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


def video_folder(root: Path, clips_per_class: int = 6) -> Path:
    """``root/left/*.mp4`` and ``root/right/*.mp4``: two classes of tiny real videos."""
    for name, direction in (("left", -1), ("right", 1)):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(clips_per_class):
            write_video(root / name / f"clip{i}.mp4", moving_square(direction, seed=i))
    return root


# === Audio that declares huge sizes ===


def _patched(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    return data[:offset] + struct.pack(fmt, value) + data[offset + struct.calcsize(fmt) :]


def wav_declaring(path: Path, what: str) -> Path:
    """A half-second PCM WAV whose header declares ``what``: ``frames`` (a data chunk of
    2 GB), ``rate`` (4 GHz), ``channels`` (65,535) or ``seconds`` (an hour of samples)."""
    buffer = io.BytesIO()
    import soundfile

    soundfile.write(buffer, tone(0.5), SPEECH_RATE, format="WAV", subtype="PCM_16")
    data = buffer.getvalue()
    assert data[36:40] == b"data", "soundfile wrote an unexpected WAV layout"
    if what == "frames":
        data = _patched(_patched(data, 40, "<I", HUGE_COUNT), 4, "<I", HUGE_COUNT + 36)
    elif what == "rate":
        data = _patched(_patched(data, 24, "<I", 4_000_000_000), 28, "<I", 4_000_000_000)
    elif what == "channels":
        data = _patched(_patched(data, 22, "<H", 32_767), 32, "<H", 2 * 32_767)
    elif what == "seconds":
        hour = SPEECH_RATE * 3600 * 2
        data = _patched(_patched(data, 40, "<I", hour), 4, "<I", hour + 36)
    else:
        raise ValueError(what)
    path.write_bytes(data)
    return path


def wav_with(path: Path, value: float) -> Path:
    """A 32-bit float WAV of a tone with ``value`` (NaN, inf, 1e30) in its middle."""
    audio = tone(0.5)
    audio[len(audio) // 2 : len(audio) // 2 + 10] = value
    return write_wav(path, audio, subtype="FLOAT")


# === MIDI that declares huge sizes ===


def _varlen(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _midi(tracks: list[bytes], division: int = 480, declared_tracks: int | None = None) -> bytes:
    count = len(tracks) if declared_tracks is None else declared_tracks
    head = b"MThd" + struct.pack(">IHHH", 6, 1, count, division)
    return head + b"".join(b"MTrk" + struct.pack(">I", len(t)) + t for t in tracks)


END_OF_TRACK = b"\x00\xff\x2f\x00"


def midi_declaring(path: Path, what: str) -> Path:
    """A MIDI file of a few bytes declaring ``what``: ``duration`` (a note held for 2^28 ticks
    at one tick per beat), ``tempo`` (16.7 s a beat for 2^28 ticks), ``tracks`` (65,535 in the
    header, one present), ``chunk`` (a track chunk of 2 GB) or ``events`` (a million notes)."""
    note_on, note_off = b"\x00\x90\x3c\x50", b"\x80\x3c\x00"
    if what == "duration":
        data = _midi([note_on + _varlen(0x0FFF_FFFF) + note_off + END_OF_TRACK], division=1)
    elif what == "tempo":
        tempo = b"\x00\xff\x51\x03\xff\xff\xff"
        data = _midi([tempo + note_on + _varlen(0x0FFF_FFFF) + note_off + END_OF_TRACK], 1)
    elif what == "tracks":
        data = _midi([note_on + b"\x60" + note_off + END_OF_TRACK], declared_tracks=65_535)
    elif what == "chunk":
        track = note_on + b"\x60" + note_off + END_OF_TRACK
        data = _midi([track])[:18] + struct.pack(">I", HUGE_COUNT) + track
    elif what == "events":
        pairs = b"".join(b"\x00\x90\x3c\x50\x01\x80\x3c\x00" for _ in range(500_000))
        data = _midi([pairs + END_OF_TRACK])
    else:
        raise ValueError(what)
    path.write_bytes(data)
    return path


# === Video that declares huge sizes ===


def y4m_declaring(path: Path, width: int = HUGE_DIMENSION, height: int = HUGE_DIMENSION) -> Path:
    """A YUV4MPEG2 stream (ffmpeg reads it whatever the file is named) declaring frames of
    ``width`` x ``height``, followed by a few bytes of one frame."""
    head = f"YUV4MPEG2 W{width} H{height} F25:1 Ip A1:1 C420jpeg\nFRAME\n".encode()
    path.write_bytes(head + b"\x80" * 4096)
    return path


def avi_declaring(path: Path, what: str) -> Path:
    """An uncompressed 16x16 AVI of three frames whose headers declare ``resolution``
    (60,000 x 60,000) or ``frames`` (2^31)."""
    import imageio_ffmpeg

    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi"]
    command += ["-i", "color=c=gray:s=16x16:d=0.3:r=10", "-c:v", "rawvideo", "-pix_fmt", "bgr24"]
    subprocess.run([*command, str(path)], check=True, capture_output=True)
    data = path.read_bytes()
    avih = data.index(b"avih") + 8  # MainAVIHeader
    strf = data.index(b"strf") + 8  # BITMAPINFOHEADER
    strh = data.index(b"strh") + 8  # AVIStreamHeader
    if what == "resolution":
        for offset in (avih + 32, avih + 36, strf + 4, strf + 8):
            data = _patched(data, offset, "<I", HUGE_DIMENSION)
    elif what == "frames":
        data = _patched(_patched(data, avih + 16, "<I", HUGE_COUNT), strh + 32, "<I", HUGE_COUNT)
    else:
        raise ValueError(what)
    path.write_bytes(data)
    return path


# === Text that is too large for its size ===


def giant_line(path: Path, header: str, megabytes: int = 24) -> Path:
    """``header`` then one line of ``megabytes`` MB with no line break."""
    with path.open("wb") as stream:
        stream.write(header.encode() + b"\n")
        block = b"w" * (1 << 20)
        for _ in range(megabytes):
            stream.write(block)
    return path


def giant_header(path: Path, columns: int = 300_000, body: str = "") -> Path:
    """A CSV header of ``columns`` columns (then ``body``)."""
    path.write_text(",".join(f"c{i}" for i in range(columns)) + "\n" + body)
    return path


# === Experiment files ===


def experiment(pipeline: str, out: Path, data: str, extra: str = "") -> str:
    """A small experiment file's YAML text."""
    return f"pipeline: {pipeline}\npreset: smoke\ndata: '{data}'\nout: '{out}'\n{extra}"


def yaml_deep(pipeline: str, depth: int = 50_000) -> str:
    """An experiment file whose settings nest ``depth`` lists deep."""
    return f"pipeline: {pipeline}\nsettings:\n  units: {'[' * depth}{']' * depth}\n"


def yaml_laughs(pipeline: str, levels: int, width: int = 10) -> str:
    """An experiment file of nested YAML aliases: ``width ** levels`` values once expanded."""
    lines = [f"pipeline: {pipeline}", "x0: &x0 [lol]"]
    for level in range(1, levels + 1):
        items = ", ".join([f"*x{level - 1}"] * width)
        lines.append(f"x{level}: &x{level} [{items}]")
    lines.append(f"settings: {{units: *x{levels}}}")
    return "\n".join(lines) + "\n"


def yaml_huge(path: Path, pipeline: str, megabytes: int = 24) -> Path:
    """A valid experiment file padded with ``megabytes`` MB of comments."""
    with path.open("w") as stream:
        stream.write(f"pipeline: {pipeline}\npreset: smoke\n")
        line = "# " + "x" * 1021 + "\n"
        for _ in range(megabytes * 1024):
            stream.write(line)
    return path
