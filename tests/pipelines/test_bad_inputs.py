"""One corpus of bad inputs for every pipeline's loaders, and the bounds of each serving export.

Each bad input must end a run with exactly one ``error: ...`` line on stderr that names the
file, line or key, exit status 2, no traceback and no run directory (finished or partial).
Every case runs in-process through ``pipelines.cli.main``; one case of each error class also
runs as a real child process (``CHILD_CASES``). The corpus reuses the tables of the
pipelines' own test files (``BAD_FILES``, ``BAD_CSVS``) and adds to them.

Decisions the corpus pins down (the same for every pipeline):
- extra columns in a CSV/TSV header are ignored; a row with more or fewer fields than the
  header (a truncated file, a stray delimiter) is an error naming its line;
- a missing column is an error naming the column and the file;
- NaN/empty numbers are missing values (``missing=...``); an infinite number, or one float32
  cannot hold, is an error naming the column and the lines;
- a text over the pipeline's byte limit is an error; within it, tokens past the model's
  ``sequence_length`` / ``max_source_length`` are truncated / counted and left out as
  documented.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import run_cli
from tests.pipelines.test_forecasting import BAD_CSVS
from tests.pipelines.test_sentiment import BAD_FILES
from tests.serving.exports import record


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad input. ``make(folder)`` writes the files and returns ``(data spec, the path the
    error must name)``; ``named`` None means the message must name a ``--set`` key instead."""

    pipeline: str
    name: str
    error_class: str
    make: Callable[[Path], tuple[str, Path | None]]
    expected: str
    settings: tuple[str, ...] = ()


def _file(name: str, content: bytes | str, kind: str):
    def make(folder: Path):
        path = folder / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return f"{kind}:{path}", path

    return make


def _folder_with(name: str, content: bytes | Callable[[Path], None], kind: str):
    """A folder of three good MIDI files (a split needs three pieces) and one bad file."""

    def make(folder: Path):
        music = folder / "music"
        music.mkdir()
        for i in range(3):
            (music / f"good_{i}.mid").write_bytes(_midi_bytes())
        path = music / name
        if callable(content):
            content(path)
        else:
            path.write_bytes(content)
        return f"{kind}:{music}", path

    return make


# === sentiment: CSV/TSV of labelled text ===

SENTIMENT_GOOD = "text,label\n" + "".join(
    f"{w} film number {i},{i % 2}\n" for i, w in enumerate(["good", "bad"] * 15)
)
SENTIMENT_CLASSES = {  # BAD_FILES of test_sentiment.py -> error class
    "empty": "empty file",
    "missing_column": "missing column",
    "one_class": "single class",
    "not_utf8": "wrong encoding",
    "empty_label": "missing value",
}
SENTIMENT_CASES = [
    Case("sentiment", name, SENTIMENT_CLASSES[name], _file(f"{name}.tsv", content, "tsv"), text)
    for name, (content, text) in BAD_FILES.items()
] + [
    Case(
        "sentiment",
        "cut_mid_row",
        "truncated file",
        _file("cut.csv", SENTIMENT_GOOD[:-12], "csv"),
        "line 31: 1 field(s) where the header has 2 (a truncated or short row",
    ),
    Case(
        "sentiment",
        "cut_inside_quotes",
        "truncated file",
        _file("quote.csv", SENTIMENT_GOOD + '"an unfinished, quoted', "csv"),
        "line 32: cannot parse as CSV: the file ends inside a quoted cell",
    ),
    Case(
        "sentiment",
        "extra_field",
        "extra columns",
        _file("extra.csv", SENTIMENT_GOOD + "fine,1,surplus\n", "csv"),
        "line 32: 3 field(s) where the header has 2 (extra fields",
    ),
    Case(
        "sentiment",
        "duplicate_column",
        "extra columns",
        _file("dup.csv", "text,label,text\n" + "a,1,b\n" * 3, "csv"),
        "line 1: the header names column 'text' twice",
    ),
    Case(
        "sentiment",
        "header_only",
        "empty file",
        _file("header.csv", "text,label\n\n", "csv"),
        "no data rows",
    ),
    Case(
        "sentiment",
        "utf16",
        "wrong encoding",
        _file("utf16.csv", SENTIMENT_GOOD.encode("utf-16"), "csv"),
        "not UTF-8 text (bad byte at line 1)",
    ),
    Case(
        "sentiment",
        "nul_byte",
        "wrong encoding",
        _file("nul.csv", SENTIMENT_GOOD.replace("bad film number 3", "bad\x00film"), "csv"),
        "NUL byte at line 5",
    ),
    Case(
        "sentiment",
        "png_named_csv",
        "wrong encoding",
        _file("image.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xd8", "csv"),
        "not UTF-8 text (bad byte at line 1)",
    ),
    Case(
        "sentiment",
        "over_long_text",
        "over-long sequence",
        _file("long.csv", SENTIMENT_GOOD + "w" * 100_001 + ",1\n", "csv"),
        "text at line 32 is 100,001 bytes long, more than the 100,000",
    ),
    Case(
        "sentiment",
        "over_long_cell",
        "over-long sequence",
        _file("cell.csv", SENTIMENT_GOOD + '"' + "w" * 1_000_001 + '",1\n', "csv"),
        "line 32: cannot parse as CSV: a cell longer than 1,000,000 characters",
    ),
    Case(
        "sentiment",
        "text_column_absent",
        "missing column",
        _file("cols.csv", SENTIMENT_GOOD, "csv"),
        "no column 'review' (set text_column=...; columns: text, label)",
        ("text_column=review",),
    ),
]

# === forecasting: CSV series ===


def _series(rows: int = 200) -> list[str]:
    import pandas as pd

    days = pd.date_range("2020-01-01", periods=rows, freq="D").strftime("%Y-%m-%d")
    return ["date,temp,wind"] + [f"{d},{10 + math.sin(i):.2f},{i % 5}" for i, d in enumerate(days)]


def _with_line(line: int, text: str, rows: list[str] | None = None) -> str:
    rows = list(rows or _series())
    rows[line - 1] = text
    return "\n".join(rows) + "\n"


FORECASTING_CLASSES = {  # BAD_CSVS of test_forecasting.py -> error class
    "no_time_column": "missing column",
    "non_numeric_target": "ill-typed value",
    "too_few_rows": "too few rows",
    "nan_values": "NaN value",
    "bad_timestamp": "ill-typed value",
    "irregular_timestamps": "irregular timestamps",
    "duplicate_timestamps": "irregular timestamps",
    "unknown_target": "missing column",
}
FORECASTING_CASES = (
    [
        Case(
            "forecasting",
            name,
            FORECASTING_CLASSES[name],
            _file(f"{name}.csv", "\n".join(rows) + "\n", "csv"),
            text,
            ("target_columns=rain" if name == "unknown_target" else "target_columns=temp",),
        )
        for name, (rows, text) in BAD_CSVS.items()
    ]
    + [
        Case(
            "forecasting",
            name,
            "infinite value",
            _file(f"{name}.csv", _with_line(7, f"2020-01-06,{value},1"), "csv"),
            "column 'temp' has infinite or out-of-range values (beyond +-3.403e+38) at line 7",
            ("target_columns=temp",),
        )
        for name, value in (("inf", "inf"), ("minus_infinity", "-Infinity"), ("overflow", "1e39"))
    ]
    + [
        Case(
            "forecasting",
            "inf_in_a_feature",
            "infinite value",
            _file("feature.csv", _with_line(9, "2020-01-08,1.5,inf"), "csv"),
            "column 'wind' has infinite or out-of-range values",
            ("target_columns=temp",),
        ),
        Case(
            "forecasting",
            "nan_in_a_feature",
            "NaN value",
            _file("nanfeature.csv", _with_line(9, "2020-01-08,1.5,NaN"), "csv"),
            "missing values in column(s) 'wind' at line 9",
            ("target_columns=temp",),
        ),
        Case(
            "forecasting",
            "cut_mid_row",
            "truncated file",
            _file("cut.csv", "\n".join(_series()) + "\n2020-07-19,1", "csv"),
            "line 202: 2 field(s) where the header has 3 (a truncated or short row",
            ("target_columns=temp",),
        ),
        Case(
            "forecasting",
            "extra_field",
            "extra columns",
            _file("extra.csv", _with_line(4, "2020-01-03,1.0,1,7"), "csv"),
            "line 4: 4 field(s) where the header has 3 (extra fields",
            ("target_columns=temp",),
        ),
        Case(
            "forecasting",
            "empty",
            "empty file",
            _file("empty.csv", b"", "csv"),
            "the file is empty",
            ("target_columns=temp",),
        ),
        Case(
            "forecasting",
            "header_only",
            "empty file",
            _file("header.csv", "date,temp,wind\n", "csv"),
            "no data rows",
            ("target_columns=temp",),
        ),
        Case(
            "forecasting",
            "latin1",
            "wrong encoding",
            _file("latin1.csv", _with_line(5, "2020-01-04,1.0,1").encode() + b"caf\xe9\n", "csv"),
            "not UTF-8 text (bad byte at line 202)",
            ("target_columns=temp",),
        ),
        Case(
            "forecasting",
            "frequency_of_a_second",
            "ill-typed value",
            _file("freq.csv", "\n".join(_series()) + "\n", "csv"),
            "a regular s grid from the first to the last timestamp has 17,193,600 steps",
            ("target_columns=temp", "frequency=s"),
        ),
    ]
)

# === music: MIDI, MusicXML, JSB JSON ===


def _midi_bytes(end_seconds: float = 20.0, resolution: int = 220) -> bytes:
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=120, resolution=resolution)
    piano = pretty_midi.Instrument(program=0)
    for beat in range(40):
        piano.notes.append(pretty_midi.Note(80, 60 + beat % 12, beat * 0.5, beat * 0.5 + 0.5))
    piano.notes.append(pretty_midi.Note(80, 48, 0.0, end_seconds))
    midi.instruments.append(piano)
    buffer = io.BytesIO()
    midi.write(buffer)
    return buffer.getvalue()


def _silent_midi(path: Path) -> None:
    import pretty_midi

    pretty_midi.PrettyMIDI().write(str(path))


def _jsb(value) -> str:
    return json.dumps(value)


JSB_GOOD_PIECE = [[60, 64, 67], [62, 65, 69]] * 10
MUSIC_CASES = [
    Case(
        "music",
        "truncated_midi",
        "truncated file",
        _folder_with("cut.mid", _midi_bytes()[:150], "midi"),
        "not a readable MIDI file (EOFError",
    ),
    Case(
        "music",
        "text_named_mid",
        "corrupt MIDI",
        _folder_with("notes.mid", b"these are not MIDI bytes\n", "midi"),
        "not a readable MIDI file",
    ),
    Case(
        "music",
        "empty_mid",
        "empty file",
        _folder_with("empty.mid", b"", "midi"),
        "not a readable MIDI file",
    ),
    Case(
        "music",
        "garbage_after_header",
        "corrupt MIDI",
        _folder_with("broken.mid", b"MThd\x00\x00\x00\x06garbage", "midi"),
        "not a readable MIDI file",
    ),
    Case(
        "music",
        "silent_midi",
        "empty file",
        _folder_with("silent.mid", _silent_midi, "midi"),
        "the MIDI file has no notes",
    ),
    Case(
        "music",
        "over_long_midi",
        "over-long sequence",
        _folder_with("long.mid", _midi_bytes(end_seconds=150_000.0, resolution=24), "midi"),
        "exceeds the limit 2,000,000 ticks",
    ),
    Case(
        "music",
        "broken_musicxml",
        "corrupt MIDI",
        _folder_with("broken.musicxml", b"<score-partwise><part", "musicxml"),
        "not a readable MusicXML file",
    ),
    Case(
        "music",
        "empty_musicxml",
        "empty file",
        _folder_with("empty.musicxml", b"", "musicxml"),
        "not a readable MusicXML file",
    ),
    Case("music", "jsb_empty", "empty file", _file("e.json", b"", "jsb"), "the file is empty"),
    Case(
        "music",
        "jsb_truncated",
        "truncated file",
        _file("cut.json", _jsb({"train": [JSB_GOOD_PIECE]})[:40], "jsb"),
        "not a JSON file (JSONDecodeError",
    ),
    Case(
        "music",
        "jsb_latin1",
        "wrong encoding",
        _file("l1.json", b'{"train": "caf\xe9"}', "jsb"),
        "not UTF-8 text (bad byte at line 1)",
    ),
    Case(
        "music",
        "jsb_a_list",
        "wrong structure",
        _file("list.json", _jsb([JSB_GOOD_PIECE]), "jsb"),
        "expected a JSON object with keys train, valid and test",
    ),
    Case(
        "music",
        "jsb_missing_split",
        "missing column",
        _file("nosplit.json", _jsb({"train": [JSB_GOOD_PIECE], "test": []}), "jsb"),
        "expected a JSON object with keys train, valid and test",
    ),
    Case(
        "music",
        "jsb_split_not_a_list",
        "wrong structure",
        _file("split.json", _jsb({"train": 3, "valid": [], "test": []}), "jsb"),
        "train must be a list of pieces",
    ),
    Case(
        "music",
        "jsb_step_not_a_list",
        "wrong structure",
        _file("step.json", _jsb({"train": [[60, 62]], "valid": [], "test": []}), "jsb"),
        "train piece 0 step 0: 60 is not a list of pitches",
    ),
    Case(
        "music",
        "jsb_pitch_out_of_range",
        "ill-typed value",
        _file("pitch.json", _jsb({"train": [[[60], [130]]], "valid": [], "test": []}), "jsb"),
        "train piece 0 step 1: 130 is not a MIDI pitch in 21..108",
    ),
    Case(
        "music",
        "jsb_fractional_pitch",
        "ill-typed value",
        _file("frac.json", _jsb({"train": [[[60.5]]], "valid": [], "test": []}), "jsb"),
        "train piece 0 step 0: 60.5 is not a MIDI pitch",
    ),
    Case(
        "music",
        "jsb_nan_pitch",
        "NaN value",
        _file("nan.json", '{"train": [[[NaN]]], "valid": [], "test": []}', "jsb"),
        "train piece 0 step 0: nan is not a MIDI pitch",
    ),
    Case(
        "music",
        "jsb_infinite_pitch",
        "infinite value",
        _file("inf.json", '{"train": [[[Infinity]]], "valid": [], "test": []}', "jsb"),
        "train piece 0 step 0: inf is not a MIDI pitch",
    ),
    Case(
        "music",
        "jsb_over_long_piece",
        "over-long sequence",
        _file("long.json", _jsb({"train": [[[]] * 100_001], "valid": [], "test": []}), "jsb"),
        "train piece 0 has 100,001 steps, more than the 100,000",
    ),
]

# === translation: TSV pairs, Tatoeba, SCAN ===

PAIRS = "".join(f"word {i}\tmot {i}\n" for i in range(40))


def _scan(train: bytes | None):
    """A SCAN folder whose simple-split train file holds ``train`` (None: no train file)."""

    def make(folder: Path):
        split = folder / "scan" / "simple_split"
        split.mkdir(parents=True)
        (split / "tasks_test_simple.txt").write_text("IN: jump OUT: I_JUMP\n")
        path = split / "tasks_train_simple.txt"
        if train is not None:
            path.write_bytes(train)
        return f"scan:{folder / 'scan'}", path

    return make


TRANSLATION_CASES = [
    Case("translation", "empty", "empty file", _file("e.tsv", b"", "tsv"), "the file is empty"),
    Case(
        "translation",
        "blank_lines_only",
        "empty file",
        _file("blank.tsv", "\n \n\n", "tsv"),
        "the file is empty",
    ),
    Case(
        "translation",
        "one_column",
        "missing column",
        _file("one.tsv", PAIRS + "thanks merci\n", "tsv"),
        "line 41: expected two tab-separated columns",
    ),
    Case(
        "translation",
        "empty_target",
        "missing value",
        _file("target.tsv", PAIRS + "thanks\t \n" + PAIRS, "tsv"),
        "line 41: expected two tab-separated columns",
    ),
    Case(
        "translation",
        "cut_mid_row",
        "truncated file",
        _file("cut.tsv", PAIRS + "thank you ver", "tsv"),
        "line 41: expected two tab-separated columns",
    ),
    Case(
        "translation",
        "tatoeba_one_truncated_line",
        "truncated file",
        _file("fra.txt", "They did it again.\n", "tatoeba"),
        "line 1: expected two tab-separated columns",
    ),
    Case(
        "translation",
        "latin1",
        "wrong encoding",
        _file("l1.tsv", PAIRS.encode() + b"coffee\tcaf\xe9\n", "tsv"),
        "not UTF-8 text (bad byte at line 41)",
    ),
    Case(
        "translation",
        "nul_byte",
        "wrong encoding",
        _file("nul.tsv", PAIRS + "a\x00b\tc\n", "tsv"),
        "NUL byte at line 41",
    ),
    Case(
        "translation",
        "all_over_long",
        "over-long sequence",
        _file("long.tsv", "".join(f"{'w ' * 30}{i}\tm {i}\n" for i in range(40)), "tsv"),
        "no train pair within the length limits",
    ),
    Case(
        "translation",
        "scan_latin1",
        "wrong encoding",
        _scan(b"IN: jump OUT: I_JUMP\nIN: caf\xe9 OUT: X\n"),
        "not UTF-8 text (bad byte at line 2)",
    ),
    Case(
        "translation",
        "scan_bad_line",
        "wrong structure",
        _scan(b"IN: jump OUT: I_JUMP\njump I_JUMP\n"),
        "line 2: expected 'IN: ... OUT: ...'",
    ),
    Case(
        "translation",
        "scan_empty",
        "empty file",
        _scan(b""),
        "no 'IN: ... OUT: ...' lines (the file is empty)",
    ),
    Case(
        "translation",
        "scan_file_missing",
        "missing file",
        _scan(None),
        "SCAN file not found",
    ),
]
# === --set: unknown keys and ill-typed values, for every pipeline (named key, no file) ===


def _no_file(spec: str = "builtin"):
    return lambda folder: (spec, None)


def _key_not_file(make):
    """The error names the --set key (not necessarily the file)."""
    return lambda folder: (make(folder)[0], None)


SET_CASES = [
    Case(pipeline, f"set_{name}", error_class, _no_file(), expected.format(key=key), (pair,))
    for pipeline, key in (
        ("sentiment", "units"),
        ("forecasting", "window"),
        ("music", "window_steps"),
        ("translation", "beam_width"),
    )
    for name, error_class, pair, expected in (
        ("unknown_key", "unknown --set key", "no_such_key=1", "unknown setting 'no_such_key'"),
        ("not_an_int", "ill-typed --set value", f"{key}=1.5", "setting '{key}' = 1.5: input"),
        (
            "int_overflow",
            "ill-typed --set value",
            f"{key}=99999999999",
            "setting '{key}' = 99999999999: input should be less than",
        ),
        ("nan", "ill-typed --set value", "learning_rate=nan", "'learning_rate' = nan: input"),
        ("inf", "ill-typed --set value", "dropout=-inf", "'dropout' = -inf: input should be"),
        ("bool", "ill-typed --set value", "bidirectional=maybe", "'bidirectional' = maybe: in"),
        ("no_equals", "ill-typed --set value", key, "--set expects KEY=VALUE"),
    )
] + [
    Case(
        "forecasting",
        "set_bad_time_format",
        "ill-typed --set value",
        _key_not_file(_file("t.csv", "\n".join(_series()) + "\n", "csv")),
        "setting 'time_format' is not a usable strftime format: '%Q'",
        ("target_columns=temp", "time_format=%Q"),
    ),
    Case(
        "translation",
        "set_huge_max_target_length",
        "ill-typed --set value",
        _key_not_file(_file("p.tsv", PAIRS, "tsv")),
        "setting 'max_target_length' = 2000000000: input should be less than or equal to 1000",
        ("max_target_length=2000000000",),
    ),
    Case(
        "music",
        "set_huge_steps_per_quarter",
        "ill-typed --set value",
        _key_not_file(_folder_with("ok.mid", _midi_bytes(), "midi")),
        "setting 'steps_per_quarter' = 2000000000: input should be less than or equal to 24",
        ("steps_per_quarter=2000000000",),
    ),
]

# === Extension point: the speech-to-text and video-activity pipelines add their cases ===
# (wrong sample rates, non-audio files named .wav, unreadable video, over-long clips) here,
# as Case(...) entries with their own error classes; the tests below pick them up.


def _audio_manifest(bad: str, write: Callable[[Path], None], header: str = "", row: str = ""):
    """A manifest of four good clips with ``bad`` (written by ``write``) on line 3; the error
    names ``bad``, or the manifest itself when ``header`` or ``row`` is what is wrong."""

    def make(folder: Path):
        from tests.pipelines.test_speech_to_text import _tone_words, _write_wav

        rows = [header or "path,transcript"]
        for i in range(4):
            _write_wav(folder / f"good_{i}.wav", _tone_words(0.5, seed=i))
            rows.append(f"good_{i}.wav,one {i}")
        write(folder / bad)
        rows.insert(2, row or f"{bad},two")
        manifest = folder / "manifest.csv"
        manifest.write_text("\n".join(rows) + "\n")
        return f"manifest:{manifest}", manifest if header or row else folder / bad

    return make


def _wav(seconds: float = 0.5, rate: int = 16000, silent: bool = False, cut: bool = False):
    def write(path: Path):
        from tests.pipelines.test_speech_to_text import _tone_words, _write_wav

        audio = np.zeros(int(seconds * rate), np.float32) if silent else _tone_words(seconds, rate)
        _write_wav(path, audio, rate)
        if cut:
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    return write


SPEECH_TO_TEXT_CASES: list[Case] = [
    Case("speech-to-text", name, error_class, _audio_manifest(file, write), expected)
    for name, error_class, file, write, expected in (
        ("truncated_wav", "truncated file", "cut.wav", _wav(cut=True), "truncated WAV file"),
        ("empty_wav", "empty file", "empty.wav", lambda p: p.write_bytes(b""), "is empty"),
        (
            "text_named_wav",
            "not audio",
            "notes.wav",
            lambda p: p.write_text("not audio\n" * 20),
            "cannot decode audio",
        ),
        (
            "low_rate",
            "wrong sample rate",
            "low.wav",
            _wav(rate=4000),
            "sample rate 4000 Hz is below 8000 Hz",
        ),
        ("silent", "silent audio", "silent.wav", _wav(silent=True), "the audio is silent"),
        ("missing_audio", "missing file", "gone.wav", lambda p: None, "audio file not found"),
    )
] + [
    Case(
        "speech-to-text",
        "no_transcript_column",
        "missing column",
        _audio_manifest("x.wav", _wav(), header="path,text"),
        "no column 'transcript'",
    ),
    Case(
        "speech-to-text",
        "extra_field",
        "extra columns",
        _audio_manifest("x.wav", _wav(), row="x.wav,two,three"),
        "3 field(s) where the header has 2",
    ),
    Case(
        "speech-to-text",
        "set_snr_range_reversed",
        "ill-typed --set value",
        _no_file(),
        "setting 'builtin_snr_db' must be LOW,HIGH",
        ("builtin_snr_db=30,8",),
    ),
]


def _video_folder_with(case: str):
    """test_video_activity.py's folder of tiny real videos with one bad file (``case``)."""

    def make(folder: Path):
        from tests.pipelines.test_video_activity import bad_video_folder

        root, named = bad_video_folder(folder / "videos", case)
        return f"folder:{root}", named

    return make


VIDEO_ACTIVITY_CASES: list[Case] = [
    Case("video-activity", name, error_class, _video_folder_with(name), expected)
    for name, error_class, expected in (
        ("empty", "empty file", "the video file is empty (0 bytes)"),
        ("not_a_video", "unreadable video", "not a readable video"),
        ("truncated", "truncated file", "not a readable video"),
        ("no_frames", "empty file", "the video has no frames"),
        ("one_class", "single class", "found videos of one class ('left')"),
    )
] + [
    Case(
        "video-activity",
        "set_huge_frames",
        "ill-typed --set value",
        _no_file(),
        "setting 'frames' = 2000000000: input should be less than or equal to 1000",
        ("frames=2000000000",),
    ),
    Case(
        "video-activity",
        "set_too_many_conv_layers",
        "ill-typed --set value",
        _no_file(),
        "setting 'frame_size' (16) is too small for the 5 layers of 'conv_filters'",
        ("conv_filters=4,4,4,4,4",),
    ),
]

CORPUS = (
    SENTIMENT_CASES
    + FORECASTING_CASES
    + MUSIC_CASES
    + TRANSLATION_CASES
    + SET_CASES
    + SPEECH_TO_TEXT_CASES
    + VIDEO_ACTIVITY_CASES
)
CASES = {f"{case.pipeline}-{case.name}": case for case in CORPUS}
# Every error class runs once as a real child process too: here, or in a pipeline's own test
# file (the classes that file already runs through `python -m pipelines`).
CHILD_CASES = [
    "sentiment-cut_inside_quotes",  # truncated file
    "forecasting-extra_field",  # extra columns
    "forecasting-inf",  # infinite value
    "music-over_long_midi",  # over-long sequence
    "music-jsb_step_not_a_list",  # wrong structure
    "translation-latin1",  # wrong encoding, with the line
    "forecasting-non_numeric_target",  # ill-typed value in a file
]
SENTIMENT_BAD_FILES = "test_sentiment.py::test_bad_files_end_in_one_error_line_and_no_run_directory"
SPEECH_BAD_AUDIO = (
    "test_speech_to_text.py::"
    "test_bad_input_on_the_command_line_is_one_error_line_and_no_run_directory"
)
CHILD_ELSEWHERE = {
    "not audio": SPEECH_BAD_AUDIO,
    "wrong sample rate": SPEECH_BAD_AUDIO,
    "silent audio": SPEECH_BAD_AUDIO,
    "empty file": SENTIMENT_BAD_FILES,
    "missing column": SENTIMENT_BAD_FILES,
    "single class": SENTIMENT_BAD_FILES,
    "missing value": SENTIMENT_BAD_FILES,
    "NaN value": "test_forecasting.py::test_bad_csv_exit_status_and_stderr_of_the_real_command",
    "corrupt MIDI": "test_music.py::test_corrupt_files_end_in_one_error_line",
    "missing file": "test_sentiment.py::test_missing_file_is_an_error",
    "unknown --set key": "test_cli.py::test_user_mistakes_end_in_one_error_line",
    "ill-typed --set value": "test_cli.py::test_user_mistakes_end_in_one_error_line",
    "unreadable video": (
        "test_video_activity.py::test_bad_videos_end_in_one_error_line_and_no_run_directory"
    ),
}


def _arguments(case: Case, folder: Path) -> tuple[list[str], Path | None, Path]:
    spec, named = case.make(folder)
    out = folder / "out"
    args = ["run", case.pipeline, "--preset", "smoke", "--data", spec, "--out", str(out)]
    if case.settings:
        args += ["--set", *case.settings]
    return args, named, out


def _check(status: int, stderr: str, case: Case, named: Path | None, out: Path) -> None:
    lines = stderr.strip().splitlines()
    assert status == 2, stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr[-3000:]
    assert "Traceback" not in stderr
    assert case.expected in lines[0], lines[0]
    if named is not None:
        assert str(named) in lines[0], lines[0]
    assert not out.exists() and not Path(f"{out}.partial").exists()
    assert not (out.parent / "runs").exists()


def test_the_corpus_covers_every_pipeline_and_class():
    counts = Counter(case.pipeline for case in CORPUS)
    assert set(counts) >= {"sentiment", "forecasting", "music", "translation"}
    assert len(CASES) == len(CORPUS), "case names must be unique per pipeline"
    classes = {case.error_class for case in CORPUS}
    assert classes >= ISSUE_CLASSES
    in_children = {CASES[key].error_class for key in CHILD_CASES}
    assert in_children | set(CHILD_ELSEWHERE) >= ISSUE_CLASSES, ISSUE_CLASSES - in_children


# The classes issue #9 names for these four pipelines (audio and video add theirs).
ISSUE_CLASSES = {
    "empty file",
    "truncated file",
    "wrong encoding",
    "missing column",
    "extra columns",
    "NaN value",
    "infinite value",
    "single class",
    "corrupt MIDI",
    "over-long sequence",
    "unknown --set key",
    "ill-typed --set value",
}


@pytest.mark.parametrize("key", sorted(CASES))
def test_bad_input_ends_in_one_error_line_in_process(key, tmp_path):
    from pipelines.cli import main

    case = CASES[key]
    args, named, out = _arguments(case, tmp_path)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        status = main(args)
    _check(status, stderr.getvalue(), case, named, out)


@pytest.mark.parametrize("key", CHILD_CASES)
def test_bad_input_ends_in_one_error_line_in_a_child_process(key, tmp_path):
    case = CASES[key]
    args, named, out = _arguments(case, tmp_path)
    result = run_cli(*args, cwd=tmp_path, timeout=300)
    _check(result.returncode, result.stderr, case, named, out)


# === Decisions that are not errors ===


def test_extra_header_columns_are_ignored(tmp_path):
    from pipelines.forecasting.config import ForecastingConfig
    from pipelines.forecasting.data import read_csv
    from pipelines.sentiment.config import SentimentConfig
    from pipelines.sentiment.data import _read_table

    path = tmp_path / "extra.csv"
    path.write_text("id,text,label,notes\n1,good,1,x\n2,bad,0,\n\n3,fine,1,y\n")
    texts, labels, _ = _read_table(str(path), ",", SentimentConfig())
    assert list(texts) == ["good", "bad", "fine"] and list(labels) == ["1", "0", "1"]
    series = read_csv(tmp_path / "extra.csv", ForecastingConfig(time_column="id"))
    assert list(series.labels) == ["line 2", "line 3", "line 5"]  # blank line 4 skipped


def test_empty_text_errors_name_the_exact_line_after_blank_lines(tmp_path):
    from pipelines.errors import UserError
    from pipelines.sentiment.config import SentimentConfig
    from pipelines.sentiment.data import _read_table

    path = tmp_path / "blank.csv"
    path.write_text('text,label\n\n"two\nlines",1\n ,0\n')
    with pytest.raises(UserError, match=r"empty text or label at line\(s\) 5$"):
        _read_table(str(path), ",", SentimentConfig())


# === Serving bounds inside each export ===
# The exports are written from untrained models built by each pipeline's build_model (the
# same export code a smoke run calls), then loaded with tf.saved_model.load.


def _export(pipeline_name: str, config, info, path: Path):
    import tensorflow as tf

    from pipelines import registry

    pipeline = registry.load_pipeline(pipeline_name)
    model = pipeline.build_model(config, info)
    pipeline.export(model, info, path)
    return tf.saved_model.load(str(path)), model


def _error(call) -> str:
    import tensorflow as tf

    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
        call()
    return caught.value.message


def test_sentiment_export_bounds_the_text_length(tmp_path):
    import tensorflow as tf

    from pipelines.sentiment.data import MAX_TEXT_BYTES

    export, model = _export(*record("sentiment"), tmp_path)
    serve = export.signatures["serving_default"]
    texts = ["a good film", "w" * MAX_TEXT_BYTES]
    out = serve(text=tf.constant(texts))["probabilities"].numpy()
    np.testing.assert_allclose(out, model.predict(np.array(texts, object), verbose=0), atol=1e-6)
    message = _error(lambda: serve(text=tf.constant(["fine", "w" * (MAX_TEXT_BYTES + 1)])))
    assert f"sentiment: an input text is longer than {MAX_TEXT_BYTES} bytes" in message


def test_forecasting_export_checks_the_window_shape_and_values(tmp_path):
    import tensorflow as tf

    export, model = _export(*record("forecasting"), tmp_path)
    serve = export.signatures["serving_default"]
    window = np.random.default_rng(0).normal(10, 2, (3, 8, 2)).astype(np.float32)
    out = serve(window=tf.constant(window))["forecast"].numpy()
    np.testing.assert_allclose(out, model.predict(window, verbose=0), rtol=1e-5, atol=1e-5)
    too_long = np.zeros((1, 9, 2), np.float32)
    assert "must have exactly 8 steps" in _error(lambda: serve(window=tf.constant(too_long)))
    columns = np.zeros((1, 8, 3), np.float32)
    assert "must have 2 features (temp, wind)" in _error(lambda: serve(window=tf.constant(columns)))
    window[0, 3, 1] = np.inf
    assert "NaN or infinite" in _error(lambda: serve(window=tf.constant(window)))


def test_music_export_bounds_the_primer_and_the_continuation(tmp_path):
    import tensorflow as tf

    from pipelines.music import data
    from pipelines.music.config import MAX_GENERATE_STEPS, MAX_PRIMER_STEPS

    export, model = _export(*record("music"), tmp_path)
    serve, generate = export.signatures["serving_default"], export.signatures["generate"]
    primer = np.tile(np.array([[50, 45, 38, 27]], np.int32), (2, 3))
    out = serve(primer=tf.constant(primer))["probabilities"].numpy()
    np.testing.assert_allclose(out, model.predict(primer, verbose=0)[:, -1], atol=1e-5)
    kwargs = {"temperature": tf.constant(1.0), "top_k": tf.constant(0), "seed": tf.constant([0, 1])}
    tokens = generate(primer=tf.constant(primer), steps=tf.constant(3), **kwargs)["tokens"]
    assert tokens.shape == (2, 3 * data.VOICES)
    too_long = np.ones((1, MAX_PRIMER_STEPS * data.VOICES + 1), np.int32)
    limit = MAX_PRIMER_STEPS * data.VOICES
    assert f"primer is longer than {limit} tokens" in _error(
        lambda: serve(primer=tf.constant(too_long))
    )
    assert "primer is longer than" in _error(
        lambda: generate(primer=tf.constant(too_long), steps=tf.constant(3), **kwargs)
    )
    steps = tf.constant(MAX_GENERATE_STEPS + 1)
    assert f"steps is more than {MAX_GENERATE_STEPS}" in _error(
        lambda: generate(primer=tf.constant(primer), steps=steps, **kwargs)
    )
    assert "vocabulary size" in _error(lambda: serve(primer=tf.constant([[500]], tf.int32)))
    assert "primer is empty" in _error(lambda: serve(primer=tf.zeros([1, 0], tf.int32)))


def test_translation_export_bounds_the_text_length(tmp_path):
    import tensorflow as tf

    from pipelines.translation import data
    from pipelines.translation import model as translation_model

    name, config, info = record("translation")
    export, model = _export(name, config, info, tmp_path)
    serve = export.signatures["serving_default"]
    translate = translation_model.make_translate(model, info, 2, 0.6)
    texts = ["one two", "three"]
    out = serve(text=tf.constant(texts))["translation"].numpy()
    assert list(out) == list(translate(tf.constant(texts)).numpy())
    padded = "one" + " " * data.MAX_TEXT_BYTES  # one token, but too many bytes
    message = _error(lambda: serve(text=tf.constant(["one", padded])))
    assert f"translation: an input text is longer than {data.MAX_TEXT_BYTES} bytes" in message
