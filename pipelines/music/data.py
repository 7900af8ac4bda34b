"""Music data: the built-in Bach chorales, the JSB chorales JSON, and the user's MIDI/MusicXML.

Every source becomes a list of pieces, each a list of notes ``(pitch, start, end)`` in quarter
notes (``jsb:`` arrives as steps already). The token model cuts a piece into steps of the
pitch set sounding in each (see ``DATA_HELP`` in config.py for the representation); the frame
model (``jsb:``) uses 88-key binary frames.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.base import Splits
from pipelines.cache import cache_dir
from pipelines.errors import UserError
from pipelines.music.config import MusicConfig
from pipelines.progress import log

LOWEST, HIGHEST = 21, 108  # the 88 piano keys
KEYS = HIGHEST - LOWEST + 1
VOICES = 4  # tokens per step
VOCAB = KEYS + 1  # token 0 = rest, token p - 20 = MIDI pitch p
REST = 0
MIDI_SUFFIXES = (".mid", ".midi")
# The longest piece, in time steps of the token grid (or JSB frames), that a file may hold:
# a longer one is an error naming it, not an allocation of [steps, 88] without bound.
MAX_PIECE_STEPS = 100_000
# The longest primer and continuation the serving export takes, in time steps.
MAX_PRIMER_STEPS = 4_096
MAX_GENERATE_STEPS = 4_096
MUSICXML_SUFFIXES = (".musicxml", ".mxl", ".xml")
CHORALES_SOURCE = (
    "the Bach chorales of music21 10.5's bundled corpus "
    "(corpus.chorales.Iterator(numberingSystem='riemenschneider')); real data, public domain"
)
Note = tuple[int, float, float]  # MIDI pitch, start and end in quarter notes

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
    """Notes of every non-drum track of a MIDI file, in quarter notes; UserError naming it."""
    import pretty_midi

    try:
        midi = pretty_midi.PrettyMIDI(str(path))
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


def read_musicxml(path: Path) -> list[Note]:
    """Notes of a MusicXML file (ties merged), in quarter notes; UserError naming it."""
    import music21

    try:
        score = music21.converter.parse(str(path), format="musicxml")
    except Exception as err:
        raise UserError(f"{path}: not a readable MusicXML file ({_reason(err)})") from None
    notes = score_notes(score)
    if not notes:
        raise UserError(f"{path}: the MusicXML file has no notes")
    return notes


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
    files = sorted(p for p in directory.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
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
    """The built-in chorales as notes; parsed once (about 0.1 s a piece) and cached as JSON."""
    names = chorale_names()
    if max_pieces:
        names = names[:max_pieces]
    cache_file = cache_dir() / "music" / "bach_chorales_notes.json"
    cached: dict[str, list] = {}
    if cache_file.is_file():
        try:
            cached = json.loads(cache_file.read_text())
        except json.JSONDecodeError:
            cached = {}
    missing = [n for n in names if n not in cached]
    if missing:
        from music21 import corpus

        log(f"parsing {len(missing)} chorales from music21's corpus (cached afterwards)")
        for name in missing:
            cached[name] = score_notes(corpus.parse(name))
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        partial = cache_file.with_suffix(".partial")
        partial.write_text(json.dumps(cached))
        partial.replace(cache_file)
    return names, [[tuple(n) for n in cached[name]] for name in names]


def read_files(kind: str, directory: Path, max_pieces: int) -> tuple[list[str], list[list[Note]]]:
    """The user's MIDI or MusicXML files under ``directory``, as notes."""
    if kind == "midi":
        files, reader = _files(directory, MIDI_SUFFIXES, "MIDI"), read_midi
    else:
        files, reader = _files(directory, MUSICXML_SUFFIXES, "MusicXML"), read_musicxml
    if max_pieces:
        files = files[:max_pieces]
    return [str(f.relative_to(directory)) for f in files], [reader(f) for f in files]


def read_jsb(path: Path) -> dict[str, list[np.ndarray]]:
    """The JSB JSON as ``{"train"|"valid"|"test": [frames [steps, 88] float32, ...]}``."""
    if not path.is_file():
        raise UserError(f"data file not found: {path}")
    raw_bytes = path.read_bytes()
    if not raw_bytes.strip():
        raise UserError(f"{path}: the file is empty")
    try:
        raw = json.loads(raw_bytes.decode("utf-8-sig"))
    except UnicodeDecodeError as err:
        line = raw_bytes[: err.start].count(b"\n") + 1
        raise UserError(f"{path}: not UTF-8 text (bad byte at line {line})") from None
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not a JSON file ({_reason(err)})") from None
    except RecursionError:
        raise UserError(f"{path}: not a JSON file (nested too deeply)") from None
    if not isinstance(raw, dict) or not {"train", "valid", "test"} <= set(raw):
        raise UserError(f"{path}: expected a JSON object with keys train, valid and test")
    splits = {}
    for split in ("train", "valid", "test"):
        if not isinstance(raw[split], list):
            raise UserError(f"{path}: {split} must be a list of pieces")
        pieces = []
        for i, piece in enumerate(raw[split]):
            if not isinstance(piece, list):
                raise UserError(f"{path}: {split} piece {i} must be a list of steps")
            if len(piece) > MAX_PIECE_STEPS:
                raise UserError(
                    f"{path}: {split} piece {i} has {len(piece):,} steps, more than the "
                    f"{MAX_PIECE_STEPS:,} a piece may have"
                )
            frames = np.zeros((len(piece), KEYS), np.float32)
            for t, step in enumerate(piece):
                if not isinstance(step, list):
                    raise UserError(
                        f"{path}: {split} piece {i} step {t}: {step!r} is not a list of pitches"
                    )
                for pitch in step:
                    if not (
                        isinstance(pitch, int | float)
                        and not isinstance(pitch, bool)
                        and LOWEST <= pitch <= HIGHEST
                        and pitch == int(pitch)
                    ):
                        raise UserError(
                            f"{path}: {split} piece {i} step {t}: {pitch!r} is not a MIDI "
                            f"pitch in {LOWEST}..{HIGHEST}"
                        )
                    frames[t, int(pitch) - LOWEST] = 1.0
            if len(frames):
                pieces.append(frames)
        if not pieces:
            raise UserError(f"{path}: the {split} split has no pieces")
        splits[split] = pieces
    return splits


# === Entry points ===


def load_data(config: MusicConfig, spec: str, seed: int) -> Splits:
    """Load ``spec``, split it by piece and cut training/validation pieces into windows.

    Train and validation are teacher-forcing windows ``(inputs, targets)``, targets one
    event ahead; test is every held-out piece whole (object arrays, one entry a piece).
    """
    kind, _, path = spec.partition(":")
    if kind == "jsb" and path:
        return _load_jsb(config, Path(path))
    names, pieces, name, source = _read_token_source(spec, config)
    where = _where(spec, names)
    if len(pieces) < 3:
        raise UserError(f"{spec}: {len(pieces)} piece(s); the split needs at least 3")
    order = np.random.default_rng(seed).permutation(len(pieces))
    n_test = max(1, round(len(pieces) * config.test_fraction))
    n_valid = max(1, round(len(pieces) * config.validation_fraction))
    parts = {
        "test": order[:n_test],
        "validation": order[n_test : n_test + n_valid],
        "train": order[n_test + n_valid :],
    }
    steps = {
        split: [notes_to_steps(pieces[i], config.steps_per_quarter, where[i]) for i in index]
        for split, index in parts.items()
    }
    train_steps = [s for piece in steps["train"] for s in transposed(piece, config.transpose)]
    windows = {
        "train": token_windows(train_steps, config, spec, "train"),
        "validation": token_windows(steps["validation"], config, spec, "validation"),
    }
    test = _objects([s.reshape(-1) for s in steps["test"]])
    info = {
        "name": name,
        "source": source,
        "kind": "token",
        "vocab_size": VOCAB,
        "voices": VOICES,
        "lowest_pitch": LOWEST,
        "steps_per_quarter": config.steps_per_quarter,
        "transpose": config.transpose,
        "pieces": {split: len(index) for split, index in parts.items()},
        "test_pieces": [names[i] for i in parts["test"]],
    }
    return Splits(windows["train"], windows["validation"], (test, test), info)


def load_test_data(config: MusicConfig, spec: str, info: dict[str, Any]):
    """Every piece of ``spec`` whole, as a test split in the trained model's representation."""
    kind, _, path = spec.partition(":")
    if info["kind"] == "frame":
        if kind != "jsb":
            raise UserError(f"{spec}: this run's frame model evaluates jsb:PATH data only")
        pieces = read_jsb(Path(path))["test"]
        test = _objects(pieces)
        return test, test
    if kind == "jsb":
        raise UserError(f"{spec}: this run's token model evaluates builtin, midi: or musicxml:")
    config = config.with_settings({"steps_per_quarter": info["steps_per_quarter"]})
    names, pieces, _, _ = _read_token_source(spec, config)
    test = _objects(
        [
            notes_to_steps(p, config.steps_per_quarter, name).reshape(-1)
            for name, p in zip(_where(spec, names), pieces, strict=True)
        ]
    )
    return test, test


def _read_token_source(spec: str, config: MusicConfig):
    kind, sep, path = spec.partition(":")
    if spec == "builtin":
        names, pieces = read_chorales(config.max_pieces)
        return names, pieces, "bach_chorales", CHORALES_SOURCE
    if kind in ("midi", "musicxml") and sep and path:
        names, pieces = read_files(kind, Path(path), config.max_pieces)
        return names, pieces, Path(path).name or kind, f"{kind} files under {path}"
    raise UserError(
        f"unknown data spec {spec!r} for music; use builtin, midi:DIR, musicxml:DIR or jsb:PATH"
    )


def _where(spec: str, names: list[str]) -> list[str]:
    """How messages name each piece: the file's path, or the corpus name."""
    kind, _, path = spec.partition(":")
    if kind in ("midi", "musicxml"):
        return [str(Path(path) / name) for name in names]
    return names


def transposed(steps: np.ndarray, semitones: int) -> list[np.ndarray]:
    """``steps`` shifted by every amount in ``-semitones..semitones`` that stays on the piano."""
    pitched = steps[steps != REST]
    if semitones == 0 or not pitched.size:
        return [steps]
    low, high = int(pitched.min()), int(pitched.max())
    out = []
    for shift in range(max(-semitones, 1 - low), min(semitones, KEYS - high) + 1):
        if low + shift >= 1 and high + shift <= KEYS:
            out.append(np.where(steps == REST, REST, steps + shift).astype(np.int32))
    return out


def token_windows(pieces: list[np.ndarray], config: MusicConfig, spec: str, split: str):
    """Teacher-forcing windows of ``sequence_steps`` steps: ``inputs[t]`` -> ``targets[t]``
    (the next token), starting on step boundaries every ``window_stride`` steps."""
    length, stride = config.sequence_steps * VOICES, config.window_stride * VOICES
    inputs, targets = [], []
    for steps in pieces:
        tokens = steps.reshape(-1)
        for start in range(0, len(tokens) - length, stride):
            inputs.append(tokens[start : start + length])
            targets.append(tokens[start + 1 : start + length + 1])
    if not inputs:
        raise UserError(
            f"{spec}: no {split} piece is longer than sequence_steps={config.sequence_steps} "
            "steps; set a smaller sequence_steps"
        )
    return np.asarray(inputs, np.int32), np.asarray(targets, np.int32)


def frame_windows(pieces: list[np.ndarray], config: MusicConfig, spec: str, split: str):
    """Windows of ``sequence_steps`` frames; inputs are the frames one step behind (silence
    before the first), so every frame of a piece is a target."""
    length, stride = config.sequence_steps, config.window_stride
    inputs, targets, short = [], [], 0
    for frames in pieces:
        behind = shifted_frames(frames)
        if len(frames) < length:
            short += 1
            continue
        starts = list(range(0, len(frames) - length + 1, stride))
        if starts[-1] != len(frames) - length:
            starts.append(len(frames) - length)  # the end of the piece too
        for start in starts:
            inputs.append(behind[start : start + length])
            targets.append(frames[start : start + length])
    if not inputs:
        raise UserError(
            f"{spec}: no {split} piece has sequence_steps={config.sequence_steps} steps; "
            "set a smaller sequence_steps"
        )
    if short:
        log(f"{split}: {short} piece(s) shorter than {length} steps left out of the windows")
    return np.asarray(inputs, np.float32), np.asarray(targets, np.float32)


def shifted_frames(frames: np.ndarray) -> np.ndarray:
    """The model input for ``frames``: silence, then every frame but the last."""
    return np.concatenate([np.zeros((1, KEYS), np.float32), frames[:-1]]).astype(np.float32)


def _load_jsb(config: MusicConfig, path: Path) -> Splits:
    splits = read_jsb(path)
    spec = f"jsb:{path}"
    test = _objects(splits["test"])
    info = {
        "name": f"jsb_chorales_{path.stem}",
        "source": f"JSB chorales, Boulanger-Lewandowski split (229/76/77 pieces), {path}",
        "kind": "frame",
        "keys": KEYS,
        "lowest_pitch": LOWEST,
        "steps_per_quarter": _jsb_steps_per_quarter(path),
        "transpose": 0,
        "pieces": {
            "train": len(splits["train"]),
            "validation": len(splits["valid"]),
            "test": len(splits["test"]),
        },
    }
    return Splits(
        frame_windows(splits["train"], config, spec, "train"),
        frame_windows(splits["valid"], config, spec, "validation"),
        (test, test),
        info,
    )


def _jsb_steps_per_quarter(path: Path) -> int:
    name = path.stem.lower()
    return 4 if "16th" in name else 2 if "8th" in name else 1


def _objects(items: list[np.ndarray]) -> np.ndarray:
    array = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        array[i] = item
    return array
