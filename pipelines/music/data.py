"""Music data: the built-in Bach chorales, the JSB chorales JSON, and the user's MIDI/MusicXML.

Every source becomes a list of pieces, each a list of notes ``(pitch, start, end)`` in quarter
notes (``jsb:`` arrives as steps already). The token model cuts a piece into steps of the
pitch set sounding in each (see ``DATA_SOURCES`` in config.py for the representation); the
frame model (``jsb:``) uses 88-key binary frames. Each source declared there has its loader
here: ``load_KIND(config, argument, seed) -> Splits`` and ``load_test_KIND(config, argument,
info)`` for ``evaluate --data``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Literal

import numpy as np

from pipelines import progress, strict_json
from pipelines.base import Splits
from pipelines.cache import cache_dir
from pipelines.errors import UserError
from pipelines.file_inputs import folder_files
from pipelines.media_limits import check_at_most, check_file_bytes, check_unzipped_bytes
from pipelines.music.config import KEYS, VOICES, MusicConfig
from pipelines.progress import log
from pipelines.records import DataInfo
from pipelines.splitting import SPLIT_NAMES, split_indices

LOWEST = 21  # the lowest piano key, MIDI A0
HIGHEST = LOWEST + KEYS - 1  # MIDI C8
VOCAB = KEYS + 1  # token 0 = rest, token p - 20 = MIDI pitch p
REST = 0
MIDI_SUFFIXES = (".mid", ".midi")
MUSICXML_SUFFIXES = (".musicxml", ".mxl", ".xml")
# The longest piece, in time steps of the token grid (or JSB frames), that a file may hold:
# a longer one is an error naming it, not an allocation of [steps, 88] without bound.
MAX_PIECE_STEPS = 100_000
# What a MIDI or MusicXML file may declare, checked before it is parsed in full: the parsers
# hold every event as a Python object (about a hundred times the file's bytes), and
# pretty_midi allocates a table of one float per tick up to the last event.
MAX_MIDI_BYTES = 2 * 2**20
MAX_MIDI_TICKS = 2_000_000  # about 35 minutes at 120 beats per minute and 960 ticks a beat
MAX_MUSICXML_BYTES = 8 * 2**20  # the XML, unpacked from a compressed .mxl archive
# A JSB JSON file: its parsed lists take about twenty times its bytes, and each step of its
# pieces becomes a frame of 88 float32 (three bytes of JSON, "[],", become 352).
MAX_JSB_BYTES = 4 * 2**20
MAX_JSB_STEPS = 1_000_000  # steps of all its pieces together
CHORALES_SOURCE = (
    "the Bach chorales of music21 10.5's bundled corpus "
    "(corpus.chorales.Iterator(numberingSystem='riemenschneider')); real data, public domain"
)
Note = tuple[int, float, float]  # MIDI pitch, start and end in quarter notes


@dataclasses.dataclass(frozen=True)
class MusicInfo(DataInfo):
    """What the music model is built from and what generation and the export need.

    Attributes:
        kind: ``token`` (builtin, midi:, musicxml:) or ``frame`` (jsb:).
        vocab_size: tokens of the token model: a rest and the 88 keys.
        voices: tokens per time step of the token model.
        keys: piano keys of a frame, the frame model's width.
        lowest_pitch: the MIDI pitch of the lowest key.
        steps_per_quarter: time steps per quarter note.
        transpose: the shifts the training pieces were augmented by, in semitones either way.
        pieces: pieces per split (``train``, ``validation``, ``test``).
        test_pieces: the held-out pieces' names (jsb: their numbers in its test split).
    """

    kind: Literal["token", "frame"]
    vocab_size: int
    voices: int
    keys: int
    lowest_pitch: int
    steps_per_quarter: int
    transpose: int
    pieces: dict[str, int]
    test_pieces: list[str]


# === Representation ===


def notes_to_steps(notes: list[Note], steps_per_quarter: int, name: str = "") -> np.ndarray:
    """``[steps, 4]`` int32 tokens: each step's sounding pitches, highest first, rest-padded.

    UserError (naming ``name``, a file or piece) for a piece over ``MAX_PIECE_STEPS`` steps."""
    if not notes:
        return np.zeros((0, VOICES), np.int32)
    span = (max(e for _, _, e in notes) - min(s for _, s, _ in notes)) * steps_per_quarter
    if not np.isfinite(span) or span > MAX_PIECE_STEPS:
        raise UserError(
            f"{name or 'a piece'}: {span:,.0f} steps long at steps_per_quarter="
            f"{steps_per_quarter}, more than the {MAX_PIECE_STEPS:,} a piece may have"
        )
    grid = [
        (pitch, round(start * steps_per_quarter), round(end * steps_per_quarter))
        for pitch, start, end in notes
        if LOWEST <= pitch <= HIGHEST
    ]
    first = min((s for _, s, _ in grid), default=0)
    total = max((max(e, s + 1) for _, s, e in grid), default=0) - first
    sounding = np.zeros((max(total, 0), KEYS), bool)
    for pitch, start, end in grid:
        sounding[start - first : max(end, start + 1) - first, pitch - LOWEST] = True
    return frames_to_steps(sounding)


def frames_to_steps(frames: np.ndarray) -> np.ndarray:
    """88-key binary frames ``[steps, 88]`` -> ``[steps, 4]`` tokens (the highest 4 kept)."""
    steps = np.zeros((len(frames), VOICES), np.int32)
    for t, frame in enumerate(frames):
        tokens = (np.flatnonzero(frame)[::-1] + 1)[:VOICES]
        steps[t, : len(tokens)] = tokens
    return steps


def steps_to_frames(steps: np.ndarray) -> np.ndarray:
    """``[steps, 4]`` tokens -> ``[steps, 88]`` float32 binary frames."""
    frames = np.zeros((len(steps), KEYS), np.float32)
    for t, row in enumerate(steps):
        for token in row:
            if token != REST:
                frames[t, token - 1] = 1.0
    return frames


def steps_to_notes(steps: np.ndarray, steps_per_quarter: int) -> list[Note]:
    """Notes from ``[steps, 4]`` tokens: a pitch sounding in consecutive steps is one note."""
    frames = steps_to_frames(steps)
    notes: list[Note] = []
    for key in range(KEYS):
        on = np.concatenate([[0], frames[:, key], [0]])
        changes = np.flatnonzero(np.diff(on))
        for start, end in zip(changes[::2], changes[1::2], strict=True):
            notes.append((key + LOWEST, start / steps_per_quarter, end / steps_per_quarter))
    return sorted(notes, key=lambda n: (n[1], -n[0]))


def tokens_to_steps(tokens: np.ndarray) -> np.ndarray:
    """A flat token stream (whole steps) -> ``[steps, 4]``."""
    tokens = np.asarray(tokens, np.int32)
    return tokens[: len(tokens) // VOICES * VOICES].reshape(-1, VOICES)


def pitch_name(token: int) -> str:
    """``rest`` or the MIDI pitch number of a token."""
    return "rest" if token == REST else str(token + LOWEST - 1)


# === Files ===


def write_midi(notes: list[Note], path: Path, bpm: float = 80.0) -> None:
    """A one-track piano MIDI file of ``notes`` at ``bpm`` quarter notes per minute."""
    import pretty_midi

    seconds = 60.0 / bpm
    midi = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    piano = pretty_midi.Instrument(program=0, name="piano")
    for pitch, start, end in notes:
        piano.notes.append(
            pretty_midi.Note(
                velocity=80, pitch=int(pitch), start=start * seconds, end=end * seconds
            )
        )
    midi.instruments.append(piano)
    midi.write(str(path))


def write_musicxml(midi_path: Path, path: Path) -> None:
    """MusicXML of a MIDI file, through music21's MIDI import (voices made by music21)."""
    import music21

    music21.converter.parse(str(midi_path), quantizePost=True).write("musicxml", fp=str(path))


def read_midi(path: Path) -> list[Note]:
    """Notes of every non-drum track of a MIDI file, in quarter notes; UserError naming it,
    or the limit its size or length exceeds (checked before pretty_midi builds its tables)."""
    import pretty_midi

    midi_file = _midi_events(path)
    try:
        midi = pretty_midi.PrettyMIDI(mido_object=midi_file)
    except Exception as err:  # mido and pretty_midi raise many kinds for a broken file
        raise UserError(f"{path}: not a readable MIDI file ({_reason(err)})") from None
    resolution = midi.resolution
    notes = [
        (
            note.pitch,
            midi.time_to_tick(note.start) / resolution,
            midi.time_to_tick(note.end) / resolution,
        )
        for instrument in midi.instruments
        if not instrument.is_drum
        for note in instrument.notes
    ]
    if not notes:
        raise UserError(f"{path}: the MIDI file has no notes")
    return notes


def _midi_events(path: Path):
    """The parsed events of a MIDI file (mido) within ``MAX_MIDI_BYTES`` and
    ``MAX_MIDI_TICKS``, and no longer than ``MAX_PIECE_STEPS`` quarter notes."""
    import mido

    check_file_bytes(path, MAX_MIDI_BYTES, "MAX_MIDI_BYTES")
    try:
        midi_file = mido.MidiFile(str(path), charset="latin1")
    except Exception as err:  # mido raises OSError, EOFError, ValueError, ... for a bad file
        raise UserError(f"{path}: not a readable MIDI file ({_reason(err)})") from None
    ticks = max((sum(message.time for message in track) for track in midi_file.tracks), default=0)
    check_at_most(path, "length", ticks, MAX_MIDI_TICKS, "MAX_MIDI_TICKS", " ticks")
    quarters = ticks / max(midi_file.ticks_per_beat, 1)
    check_at_most(path, "length", quarters, MAX_PIECE_STEPS, "MAX_PIECE_STEPS", " quarter notes")
    return midi_file


def read_musicxml(path: Path) -> list[Note]:
    """Notes of a MusicXML file (ties merged), in quarter notes; UserError naming it."""
    import music21

    check_file_bytes(path, MAX_MUSICXML_BYTES, "MAX_MUSICXML_BYTES")
    check_unzipped_bytes(path, MAX_MUSICXML_BYTES, "MAX_MUSICXML_BYTES")
    try:
        score = music21.converter.parse(str(path), format="musicxml")
    except Exception as err:
        raise UserError(f"{path}: not a readable MusicXML file ({_reason(err)})") from None
    notes = score_notes(score)
    if not notes:
        raise UserError(f"{path}: the MusicXML file has no notes")
    return notes


def read_notes(path: Path) -> list[Note]:
    """Notes of a MIDI or MusicXML file, read by its suffix; UserError naming it."""
    if not path.is_file():
        raise UserError(f"file not found: {path}")
    if path.suffix.lower() in MIDI_SUFFIXES:
        return read_midi(path)
    if path.suffix.lower() in MUSICXML_SUFFIXES:
        return read_musicxml(path)
    raise UserError(f"{path}: expected a MIDI (.mid) or MusicXML (.musicxml) file")


def score_notes(score) -> list[Note]:
    """Notes of a music21 score: ties merged, chords split into their pitches."""
    notes = []
    for element in score.stripTies().flatten().notes:
        start = float(element.offset)
        end = start + float(element.quarterLength)
        for pitch in element.pitches:
            notes.append((int(pitch.midi), start, end))
    return notes


def _reason(err: Exception) -> str:
    text = " ".join(str(err).split())[:160]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _files(directory: Path, suffixes: tuple[str, ...], kind: str) -> list[Path]:
    if not directory.is_dir():
        raise UserError(f"data folder not found: {directory}")
    files = folder_files(directory, suffixes)
    if not files:
        raise UserError(f"{directory}: no {kind} files ({', '.join(suffixes)})")
    return files


# === Sources ===


def chorale_names() -> list[str]:
    """The corpus paths of the 371 chorales, in riemenschneider order."""
    from music21 import corpus

    iterator = corpus.chorales.Iterator(numberingSystem="riemenschneider", returnType="filename")
    return list(iterator)


def read_chorales(max_pieces: int = 0) -> tuple[list[str], list[list[Note]]]:
    """The first ``max_pieces`` built-in chorales (0: all) as notes, parsed once and cached."""
    names = chorale_names()[: max_pieces or None]
    cache_file = cache_dir() / "music" / "bach_chorales_notes.json"
    cached = _read_cache(cache_file)
    missing = [n for n in names if n not in cached]
    if missing:
        from music21 import corpus

        log(f"parsing {len(missing)} chorales from music21's corpus (cached afterwards)")
        for name in progress.bar(missing, description="parsing chorales", unit=" pieces"):
            cached[name] = score_notes(corpus.parse(name))
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        partial = cache_file.with_suffix(".partial")
        partial.write_text(strict_json.dumps(cached))
        partial.replace(cache_file)
    return names, [[tuple(n) for n in cached[name]] for name in names]


def _read_cache(path: Path) -> dict[str, list]:
    """The cached notes of each parsed chorale; empty when absent or unreadable."""
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError:
        return {}


@dataclasses.dataclass(frozen=True)
class Corpus:
    """The pieces of one token source, as notes, before the split.

    Attributes:
        name: the data set's short name.
        source: where the pieces came from, for the report.
        spec: the ``--data`` spec, for messages.
        titles: each piece's name: its corpus path, or its file's path under the folder.
        where: how messages name each piece: the corpus path, or the file's full path.
        pieces: each piece's notes.
    """

    name: str
    source: str
    spec: str
    titles: list[str]
    where: list[str]
    pieces: list[list[Note]]

    def steps(self, index: int, steps_per_quarter: int) -> np.ndarray:
        """Piece ``index`` as ``[steps, 4]`` tokens."""
        return notes_to_steps(self.pieces[index], steps_per_quarter, self.where[index])


def chorales_corpus(max_pieces: int) -> Corpus:
    """The built-in chorales (the first ``max_pieces``; 0: all)."""
    names, pieces = read_chorales(max_pieces)
    return Corpus("bach_chorales", CHORALES_SOURCE, "builtin", names, names, pieces)


def files_corpus(kind: Literal["midi", "musicxml"], directory: Path, max_pieces: int) -> Corpus:
    """The user's MIDI or MusicXML files under ``directory`` (the first ``max_pieces``)."""
    if kind == "midi":
        files, reader = _files(directory, MIDI_SUFFIXES, "MIDI"), read_midi
    else:
        files, reader = _files(directory, MUSICXML_SUFFIXES, "MusicXML"), read_musicxml
    files = files[: max_pieces or None]
    return Corpus(
        name=directory.name or kind,
        source=f"{kind} files under {directory}",
        spec=f"{kind}:{directory}",
        titles=[str(f.relative_to(directory)) for f in files],
        where=[str(f) for f in files],
        pieces=[reader(f) for f in files],
    )


def read_jsb(path: Path) -> dict[str, list[np.ndarray]]:
    """The JSB JSON as ``{"train"|"valid"|"test": [frames [steps, 88] float32, ...]}``."""
    if not path.is_file():
        raise UserError(f"data file not found: {path}")
    check_file_bytes(path, MAX_JSB_BYTES, "MAX_JSB_BYTES")
    raw = _read_json(path)
    if not isinstance(raw, dict) or not {"train", "valid", "test"} <= set(raw):
        raise UserError(f"{path}: expected a JSON object with keys train, valid and test")
    steps = sum(
        len(piece)
        for split in ("train", "valid", "test")
        if isinstance(raw[split], list)
        for piece in raw[split]
        if isinstance(piece, list)
    )
    check_at_most(path, "steps of all pieces", steps, MAX_JSB_STEPS, "MAX_JSB_STEPS")
    splits = {}
    for split in ("train", "valid", "test"):
        if not isinstance(raw[split], list):
            raise UserError(f"{path}: {split} must be a list of pieces")
        where = f"{path}: {split} piece"
        pieces = [_jsb_frames(piece, f"{where} {i}") for i, piece in enumerate(raw[split])]
        splits[split] = [frames for frames in pieces if len(frames)]
        if not splits[split]:
            raise UserError(f"{path}: the {split} split has no pieces")
    return splits


def _read_json(path: Path):
    """The parsed JSON of ``path``; UserError naming it for a missing, empty or bad file."""
    if not path.is_file():
        raise UserError(f"data file not found: {path}")
    raw_bytes = path.read_bytes()
    if not raw_bytes.strip():
        raise UserError(f"{path}: the file is empty")
    try:
        return json.loads(raw_bytes.decode("utf-8-sig"))
    except UnicodeDecodeError as err:
        line = raw_bytes[: err.start].count(b"\n") + 1
        raise UserError(f"{path}: not UTF-8 text (bad byte at line {line})") from None
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not a JSON file ({_reason(err)})") from None
    except RecursionError:
        raise UserError(f"{path}: not a JSON file (nested too deeply)") from None


def _jsb_frames(piece, where: str) -> np.ndarray:
    """One JSB piece (a list of steps, each a list of MIDI pitches) as ``[steps, 88]`` frames."""
    if not isinstance(piece, list):
        raise UserError(f"{where} must be a list of steps")
    if len(piece) > MAX_PIECE_STEPS:
        raise UserError(
            f"{where} has {len(piece):,} steps, more than the {MAX_PIECE_STEPS:,} a piece may have"
        )
    frames = np.zeros((len(piece), KEYS), np.float32)
    for t, step in enumerate(piece):
        if not isinstance(step, list):
            raise UserError(f"{where} step {t}: {step!r} is not a list of pitches")
        for pitch in step:
            if not _is_piano_pitch(pitch):
                raise UserError(
                    f"{where} step {t}: {pitch!r} is not a MIDI pitch in {LOWEST}..{HIGHEST}"
                )
            frames[t, int(pitch) - LOWEST] = 1.0
    return frames


def _is_piano_pitch(pitch) -> bool:
    """Whether a JSON value is a whole MIDI pitch on the piano (NaN and inf are not)."""
    return (
        isinstance(pitch, int | float)
        and not isinstance(pitch, bool)
        and LOWEST <= pitch <= HIGHEST
        and pitch == int(pitch)
    )


# === Loaders (one per source declared in config.DATA_SOURCES) ===


def load_builtin(config: MusicConfig, argument: str, seed: int) -> Splits:
    """The built-in chorales, split by piece with ``seed`` and cut into training windows."""
    return token_splits(chorales_corpus(config.max_pieces), config, seed)


def load_midi(config: MusicConfig, directory: str, seed: int) -> Splits:
    """Every MIDI file under ``directory``, split by piece with ``seed``, cut into windows."""
    return token_splits(files_corpus("midi", Path(directory), config.max_pieces), config, seed)


def load_musicxml(config: MusicConfig, directory: str, seed: int) -> Splits:
    """Every MusicXML file under ``directory``, split by piece with ``seed``, cut into windows."""
    return token_splits(files_corpus("musicxml", Path(directory), config.max_pieces), config, seed)


def load_jsb(config: MusicConfig, path: str, seed: int) -> Splits:
    """The JSB chorales JSON in its published split, cut into frame windows (``seed`` unused:
    the split is the file's)."""
    splits = read_jsb(Path(path))
    spec = f"jsb:{path}"
    test = _objects(splits["test"])
    counts = {"train": len(splits["train"]), "validation": len(splits["valid"]), "test": len(test)}
    info = MusicInfo(
        name=f"jsb_chorales_{Path(path).stem}",
        source=f"JSB chorales, Boulanger-Lewandowski split (229/76/77 pieces), {path}",
        kind="frame",
        **_grid(_jsb_steps_per_quarter(Path(path)), transpose=0),
        pieces=counts,
        test_pieces=[f"test {i}" for i in range(len(test))],
    )
    return Splits(
        frame_windows(splits["train"], config, spec, "train"),
        frame_windows(splits["valid"], config, spec, "validation"),
        (test, test),
        info,
    )


def load_test_builtin(config: MusicConfig, argument: str, info: MusicInfo):
    """Every built-in chorale (the first ``max_pieces``) whole, as test data of a token run."""
    _expect_kind(info, "token", "builtin")
    return token_test(chorales_corpus(config.max_pieces), info)


def load_test_midi(config: MusicConfig, directory: str, info: MusicInfo):
    """Every MIDI file under ``directory`` whole, as test data of a token-model run."""
    _expect_kind(info, "token", f"midi:{directory}")
    return token_test(files_corpus("midi", Path(directory), config.max_pieces), info)


def load_test_musicxml(config: MusicConfig, directory: str, info: MusicInfo):
    """Every MusicXML file under ``directory`` whole, as test data of a token-model run."""
    _expect_kind(info, "token", f"musicxml:{directory}")
    return token_test(files_corpus("musicxml", Path(directory), config.max_pieces), info)


def load_test_jsb(config: MusicConfig, path: str, info: MusicInfo):
    """The JSB file's test pieces whole, as test data of a frame-model run."""
    _expect_kind(info, "frame", f"jsb:{path}")
    test = _objects(read_jsb(Path(path))["test"])
    return test, test


def token_splits(corpus: Corpus, config: MusicConfig, seed: int) -> Splits:
    """``corpus`` split by piece with ``seed``; train and validation cut into teacher-forcing
    windows ``(inputs, targets)``, targets one token ahead; test every held-out piece whole
    (object arrays, one flat token stream a piece). Only the training pieces are transposed."""
    parts = split_indices(
        len(corpus.pieces),
        config.validation_fraction,
        config.test_fraction,
        seed,
        what="pieces",
        source=corpus.spec,
    )
    steps = {
        split: [corpus.steps(i, config.steps_per_quarter) for i in index]
        for split, index in parts.items()
    }
    train = [s for piece in steps["train"] for s in transposed(piece, config.transpose)]
    test = _objects([s.reshape(-1) for s in steps["test"]])
    info = MusicInfo(
        name=corpus.name,
        source=corpus.source,
        kind="token",
        **_grid(config.steps_per_quarter, config.transpose),
        pieces={split: len(parts[split]) for split in SPLIT_NAMES},
        test_pieces=[corpus.titles[i] for i in parts["test"]],
    )
    return Splits(
        token_windows(train, config, corpus.spec, "train"),
        token_windows(steps["validation"], config, corpus.spec, "validation"),
        (test, test),
        info,
    )


def token_test(corpus: Corpus, info: MusicInfo):
    """Every piece of ``corpus`` whole on the trained model's time grid, as ``(test, test)``."""
    pieces = range(len(corpus.pieces))
    test = _objects([corpus.steps(i, info.steps_per_quarter).reshape(-1) for i in pieces])
    return test, test


def _grid(steps_per_quarter: int, transpose: int) -> dict[str, int]:
    """The representation fields of ``MusicInfo`` both models share."""
    return {
        "vocab_size": VOCAB,
        "voices": VOICES,
        "keys": KEYS,
        "lowest_pitch": LOWEST,
        "steps_per_quarter": steps_per_quarter,
        "transpose": transpose,
    }


def _expect_kind(info: MusicInfo, kind: str, spec: str) -> None:
    """UserError when ``evaluate --data spec`` is not in the trained model's representation."""
    if info.kind != kind:
        readable = "jsb:PATH" if info.kind == "frame" else "builtin, midi:DIR or musicxml:DIR"
        raise UserError(f"--data {spec}: this run's {info.kind} model evaluates {readable} only")


def transposed(steps: np.ndarray, semitones: int) -> list[np.ndarray]:
    """``steps`` shifted by every amount in ``-semitones..semitones`` that stays on the piano."""
    pitched = steps[steps != REST]
    if semitones == 0 or not pitched.size:
        return [steps]
    low, high = int(pitched.min()), int(pitched.max())
    out = []
    for shift in range(max(-semitones, 1 - low), min(semitones, KEYS - high) + 1):
        out.append(np.where(steps == REST, REST, steps + shift).astype(np.int32))
    return out


def token_windows(pieces: list[np.ndarray], config: MusicConfig, spec: str, split: str):
    """Teacher-forcing windows of ``window_steps`` steps: ``inputs[t]`` -> ``targets[t]``
    (the next token), starting on step boundaries every ``window_stride`` steps."""
    length, stride = config.window_steps * VOICES, config.window_stride * VOICES
    inputs, targets = [], []
    for steps in pieces:
        tokens = steps.reshape(-1)
        for start in range(0, len(tokens) - length, stride):
            inputs.append(tokens[start : start + length])
            targets.append(tokens[start + 1 : start + length + 1])
    _check_windows(inputs, config, spec, split)
    return np.asarray(inputs, np.int32), np.asarray(targets, np.int32)


def frame_windows(pieces: list[np.ndarray], config: MusicConfig, spec: str, split: str):
    """Windows of ``window_steps`` frames; inputs are the frames one step behind (silence
    before the first), so every frame of a piece is a target."""
    length, stride = config.window_steps, config.window_stride
    inputs, targets = [], []
    long_enough = [frames for frames in pieces if len(frames) >= length]
    for frames in long_enough:
        behind = shifted_frames(frames)
        starts = list(range(0, len(frames) - length + 1, stride))
        if starts[-1] != len(frames) - length:
            starts.append(len(frames) - length)  # the end of the piece too
        for start in starts:
            inputs.append(behind[start : start + length])
            targets.append(frames[start : start + length])
    _check_windows(inputs, config, spec, split)
    if len(long_enough) < len(pieces):
        short = len(pieces) - len(long_enough)
        log(f"{split}: {short} piece(s) shorter than {length} steps left out of the windows")
    return np.asarray(inputs, np.float32), np.asarray(targets, np.float32)


def _check_windows(inputs: list, config: MusicConfig, spec: str, split: str) -> None:
    if not inputs:
        raise UserError(
            f"{spec}: no {split} piece is long enough for window_steps={config.window_steps}; "
            "set a smaller window_steps"
        )


def shifted_frames(frames: np.ndarray) -> np.ndarray:
    """The model input for ``frames``: silence, then every frame but the last."""
    return np.concatenate([np.zeros((1, KEYS), np.float32), frames[:-1]]).astype(np.float32)


def _jsb_steps_per_quarter(path: Path) -> int:
    name = path.stem.lower()
    return 4 if "16th" in name else 2 if "8th" in name else 1


def _objects(items: list[np.ndarray]) -> np.ndarray:
    array = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        array[i] = item
    return array
