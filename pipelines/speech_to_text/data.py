"""Speech data: espeak-ng synthesis, FSDD, the user's manifest or LJSpeech folder, TFDS.

Every source gives (audio, transcript) pairs. Audio is decoded with soundfile, mixed down to
mono and resampled here to ``SAMPLE_RATE`` (float32 in [-1, 1]); transcripts are normalised
to the character vocabulary (a-z, space, apostrophe) and encoded as ids padded with 0, the
CTC blank. A split is ``({"audio": object array of float32 arrays, "transcript": str array},
ids [n, longest transcript])``.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.base import Splits
from pipelines.cache import cache_dir
from pipelines.errors import UserError
from pipelines.progress import log
from pipelines.speech_to_text.config import SAMPLE_RATE, SpeechToTextConfig

BLANK = ""
VOCABULARY = [BLANK, " ", "'", *"abcdefghijklmnopqrstuvwxyz"]  # id 0: CTC blank and padding
MIN_SAMPLE_RATE = 8000  # Hz: below this, speech is not intelligible enough to resample up
SILENCE_PEAK = 1e-4  # a file whose peak amplitude is below this is silent
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
ACCENTS = [
    "en-us",
    "en",
    "en-gb-scotland",
    "en-029",
    "en-us-nyc",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
]
VOICE_VARIANTS = [
    *(f"m{i}" for i in range(1, 9)),
    *(f"f{i}" for i in range(1, 6)),
    *("klatt", "klatt2", "klatt3", "klatt4", "croak", "Alex", "Andy", "Annie", "Denis"),
    *("Gene", "Hugo", "Lee", "Mario", "Michael", "Storm", "adam", "anika", "belinda"),
    *("benjamin", "caleb", "david", "ed", "edward", "grandma", "grandpa", "ian", "john"),
    *("linda", "max", "michel", "norbert", "paul", "quincy", "rob", "robert", "steph"),
    *("travis", "victor", "zac", "iven", "aunty", "boris", "shelby"),
]
BUILTIN_VERSION = 1  # bump when the synthesis changes, so the cache is rebuilt


# === Transcripts ===


def normalize_transcript(text: str) -> str:
    """Lower case; digits spelled out (num2words); anything outside the vocabulary a space."""
    from num2words import num2words

    text = re.sub(r"\d+", lambda m: f" {num2words(int(m.group()))} ", text.lower())
    text = text.replace("’", "'")
    text = re.sub(r"[^a-z' ]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def encode_transcripts(transcripts: list[str]) -> np.ndarray:
    """Character ids ``[n, longest]``, padded with 0 (the blank)."""
    index = {c: i for i, c in enumerate(VOCABULARY)}
    width = max([1, *(len(t) for t in transcripts)])
    ids = np.zeros((len(transcripts), width), np.int32)
    for row, text in enumerate(transcripts):
        ids[row, : len(text)] = [index[c] for c in text]
    return ids


def decode_ids(ids) -> str:
    """Character ids -> text (0 and negative ids skipped)."""
    return "".join(VOCABULARY[i] for i in ids if i > 0)


# === Audio files ===


def resample(audio: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling from ``rate`` to ``target`` Hz (float32)."""
    if rate == target:
        return audio.astype(np.float32)
    from scipy.signal import resample_poly

    g = math.gcd(rate, target)
    return resample_poly(audio, target // g, rate // g).astype(np.float32)


def _check_wav_complete(path: Path, size: int) -> None:
    """UserError for a RIFF/WAVE file whose ``data`` chunk runs past the end of the file."""
    with path.open("rb") as file:
        head = file.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        position = 12
        while position + 8 <= size:
            file.seek(position)
            chunk, length = file.read(4), int.from_bytes(file.read(4), "little")
            if chunk == b"data":
                held = size - position - 8
                if length != 0xFFFFFFFF and length > held:
                    raise UserError(
                        f"{path}: truncated WAV file: its header declares {length} bytes of "
                        f"audio but the file holds {held}"
                    )
                return
            position += 8 + length + (length & 1)
    raise UserError(f"{path}: not a complete WAV file (no audio data chunk)")


def read_audio(path: Path, target: int = SAMPLE_RATE) -> np.ndarray:
    """Decode one audio file to mono float32 at ``target`` Hz; UserError naming the file."""
    import soundfile

    if not path.is_file():
        raise UserError(f"{path}: audio file not found")
    size = path.stat().st_size
    if size == 0:
        raise UserError(f"{path}: the audio file is empty (0 bytes)")
    _check_wav_complete(path, size)
    try:
        audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # libsndfile: not audio, unknown format, corrupt
        reason = str(err).splitlines()[0].split(": ", 1)[-1] if str(err) else type(err).__name__
        raise UserError(f"{path}: cannot decode audio ({reason})") from None
    return check_audio(audio.mean(axis=1), rate, str(path), target)


def check_audio(audio: np.ndarray, rate: int, name: str, target: int = SAMPLE_RATE):
    """Mono audio at ``rate`` -> float32 at ``target``; UserError for empty, silent, low rate."""
    if len(audio) == 0:
        raise UserError(f"{name}: the audio holds no samples")
    if rate < MIN_SAMPLE_RATE:
        raise UserError(
            f"{name}: sample rate {rate} Hz is below {MIN_SAMPLE_RATE} Hz; record at "
            f"{MIN_SAMPLE_RATE} Hz or more (the model runs at {target} Hz)"
        )
    if not np.all(np.isfinite(audio)):
        raise UserError(f"{name}: the audio holds NaN or infinite samples")
    peak = float(np.max(np.abs(audio)))
    if peak < SILENCE_PEAK:
        raise UserError(f"{name}: the audio is silent (peak amplitude {peak:.2g})")
    return resample(audio, rate, target)


# === espeak-ng synthesis ===


class Espeak:
    """The espeak-ng engine of the espeakng-loader wheel, through ctypes, synchronous.

    ``synthesize(text, voice, rate, pitch)`` -> int16 samples at ``sample_rate`` (22050 Hz).
    """

    AUDIO_OUTPUT_SYNCHRONOUS = 2
    RATE, PITCH = 1, 3  # espeak_PARAMETER
    POS_CHARACTER = 1

    def __init__(self):
        import ctypes

        import espeakng_loader

        self.library = ctypes.CDLL(espeakng_loader.get_library_path())
        self.data_path = Path(espeakng_loader.get_data_path())
        callback_type = ctypes.CFUNCTYPE(
            ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
        )
        self._chunks: list[np.ndarray] = []
        self._callback = callback_type(self._collect)  # kept alive with the object
        self.sample_rate = self.library.espeak_Initialize(
            self.AUDIO_OUTPUT_SYNCHRONOUS, 0, str(self.data_path).encode(), 0
        )
        if self.sample_rate <= 0:
            raise RuntimeError("espeak-ng failed to initialise")
        self.library.espeak_SetSynthCallback(self._callback)

    def _collect(self, samples, count, events) -> int:
        if samples and count > 0:
            self._chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
        return 0

    def variants(self) -> set[str]:
        """The voice variant names the bundled data holds."""
        return {p.name for p in (self.data_path / "voices" / "!v").iterdir()}

    def synthesize(self, text: str, voice: str, rate: int, pitch: int) -> np.ndarray:
        """Speak ``text`` as ``voice`` (e.g. ``en-us+m3``) at ``rate`` words/min, ``pitch`` 0-99."""
        import ctypes

        if self.library.espeak_SetVoiceByName(voice.encode()) != 0:
            raise RuntimeError(f"espeak-ng has no voice {voice!r}")
        self.library.espeak_SetParameter(self.RATE, int(rate), 0)
        self.library.espeak_SetParameter(self.PITCH, int(pitch), 0)
        self._chunks = []
        encoded = text.encode() + b"\0"
        self.library.espeak_Synth(
            ctypes.c_char_p(encoded), len(encoded), 0, self.POS_CHARACTER, 0, 0, None, None
        )
        self.library.espeak_Synchronize()
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)


@functools.lru_cache(maxsize=1)
def espeak() -> Espeak:
    """The one espeak-ng engine of this process (it keeps global state)."""
    return Espeak()


# === Built-in data: synthesised utterances ===


def builtin_voices(config: SpeechToTextConfig) -> dict[str, list[str]]:
    """Voice variants per split: test and validation as configured, training the rest."""
    known = espeak().variants()
    held = [*config.builtin_test_voices, *config.builtin_validation_voices]
    unknown = sorted(set(held) - known)
    if unknown:
        raise UserError(f"unknown espeak-ng voice variant(s) {unknown}; known: {sorted(known)}")
    train = [v for v in VOICE_VARIANTS if v in known and v not in held]
    return {
        "train": train,
        "validation": list(config.builtin_validation_voices),
        "test": list(config.builtin_test_voices),
    }


def builtin_transcript(rng: np.random.Generator, max_digits: int) -> str:
    """A digit string ("three one four") or a number phrase ("two hundred and six")."""
    from num2words import num2words

    count = int(rng.integers(1, max_digits + 1))
    if rng.random() < 0.5:
        return " ".join(DIGITS[d] for d in rng.integers(0, 10, size=count))
    number = int(rng.integers(0, 10 ** min(count, 4)))
    return normalize_transcript(num2words(number))


def add_noise(speech: np.ndarray, rng: np.random.Generator, snr_db: float) -> np.ndarray:
    """Speech padded with 50-300 ms of silence each side, a random gain, and noise at ``snr_db``.

    The noise mixes white noise with low-frequency (integrated, "brown") noise.
    """
    rate = SAMPLE_RATE
    lead, trail = (int(rng.uniform(0.05, 0.3) * rate) for _ in range(2))
    signal = np.concatenate([np.zeros(lead), speech, np.zeros(trail)]).astype(np.float64)
    white = rng.standard_normal(len(signal))
    brown = np.cumsum(rng.standard_normal(len(signal)))
    brown -= np.convolve(brown, np.ones(401) / 401, mode="same")  # remove the drift
    mix = rng.uniform(0, 1)
    noise = mix * white / white.std() + (1 - mix) * brown / (brown.std() + 1e-9)
    speech_power = np.mean(speech.astype(np.float64) ** 2) + 1e-12
    noise *= math.sqrt(speech_power / 10 ** (snr_db / 10)) / (noise.std() + 1e-12)
    out = signal + noise
    out *= rng.uniform(0.1, 0.9) / (np.max(np.abs(out)) + 1e-9)
    return out.astype(np.float32)


def synthesize_split(
    voices: list[str], count: int, config: SpeechToTextConfig, rng: np.random.Generator
) -> dict[str, Any]:
    """``count`` utterances spoken by random (accent, variant) voices from ``voices``."""
    engine = espeak()
    audio, transcripts, spoken_by = [], [], []
    low, high = config.builtin_snr_db
    for _ in range(count):
        text = builtin_transcript(rng, config.builtin_max_digits)
        voice = f"{ACCENTS[rng.integers(len(ACCENTS))]}+{voices[rng.integers(len(voices))]}"
        raw = engine.synthesize(text, voice, rng.integers(130, 211), rng.integers(20, 81))
        speech = resample(raw.astype(np.float32) / 32768.0, engine.sample_rate)
        audio.append(add_noise(speech, rng, rng.uniform(low, high)))
        transcripts.append(text)
        spoken_by.append(voice)
    return {"audio": audio, "transcript": transcripts, "voice": spoken_by}


def _builtin(config: SpeechToTextConfig, seed: int) -> Splits:
    voices = builtin_voices(config)
    n_test = max(1, int(config.builtin_utterances * config.test_fraction))
    n_val = max(1, int(config.builtin_utterances * config.validation_fraction))
    counts = {"train": config.builtin_utterances - n_test - n_val, "validation": n_val}
    counts["test"] = n_test
    key = {
        "version": BUILTIN_VERSION,
        "seed": seed,
        "counts": counts,
        "voices": voices,
        "accents": ACCENTS,
        "max_digits": config.builtin_max_digits,
        "snr_db": list(config.builtin_snr_db),
        "sample_rate": SAMPLE_RATE,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / "speech_to_text" / f"builtin-{digest}.npz"
    parts = _read_cache(path) if path.is_file() else None
    if parts is None:
        log(f"synthesising {config.builtin_utterances} utterances with espeak-ng (cached after)")
        rng = np.random.default_rng(seed)
        parts = {p: synthesize_split(voices[p], counts[p], config, rng) for p in counts}
        _write_cache(path, parts)
    low, high = config.builtin_snr_db
    source = (
        f"espeak-ng (espeakng-loader 0.2.4) synthesis at {SAMPLE_RATE} Hz: digit strings and "
        f"number phrases, {len(ACCENTS)} English accents, rate 130-210 wpm, pitch 20-80, noise "
        f"at SNR {low:g}-{high:g} dB; test voices {', '.join(voices['test'])}, validation "
        f"voices {', '.join(voices['validation'])}, disjoint from the "
        f"{len(voices['train'])} training voices"
    )
    splits = _splits(parts, config, "espeak_numbers", source)
    splits.info["voices"] = voices
    splits.info["test_voices_used"] = sorted(set(parts["test"]["voice"]))
    return splits


def _write_cache(path: Path, parts: dict[str, dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for part, data in parts.items():
        lengths = np.array([len(a) for a in data["audio"]], np.int64)
        arrays[f"{part}_audio"] = (np.concatenate(data["audio"]) * 32767).astype(np.int16)
        arrays[f"{part}_lengths"] = lengths
        arrays[f"{part}_transcript"] = np.array(data["transcript"], dtype=str)
        arrays[f"{part}_voice"] = np.array(data["voice"], dtype=str)
    partial = path.with_suffix(".partial.npz")
    np.savez(partial, **arrays)
    partial.rename(path)


def _read_cache(path: Path) -> dict[str, dict[str, Any]] | None:
    try:
        with np.load(path) as stored:
            parts = {}
            for part in ("train", "validation", "test"):
                flat = stored[f"{part}_audio"].astype(np.float32) / 32767
                ends = np.cumsum(stored[f"{part}_lengths"])
                parts[part] = {
                    "audio": np.split(flat, ends[:-1]),
                    "transcript": stored[f"{part}_transcript"].tolist(),
                    "voice": stored[f"{part}_voice"].tolist(),
                }
            return parts
    except (OSError, KeyError, ValueError):
        return None  # an unreadable cache is rebuilt


# === FSDD: real digit recordings concatenated into digit strings ===


def read_fsdd(directory: Path) -> dict[str, dict[int, list[tuple[int, np.ndarray]]]]:
    """speaker -> digit -> [(index, audio)] of ``{digit}_{speaker}_{index}.wav`` files."""
    if not directory.is_dir():
        raise UserError(f"FSDD folder not found: {directory}")
    clips: dict[str, dict[int, list]] = {}
    for path in sorted(directory.glob("*.wav")):
        match = re.fullmatch(r"(\d)_([A-Za-z0-9-]+)_(\d+)\.wav", path.name)
        if not match:
            continue
        digit, speaker, index = int(match.group(1)), match.group(2), int(match.group(3))
        clips.setdefault(speaker, {}).setdefault(digit, []).append((index, read_audio(path)))
    if not clips:
        raise UserError(
            f"{directory}: no FSDD recordings named {{digit}}_{{speaker}}_{{index}}.wav"
        )
    return clips


def concatenate_clips(
    pool: dict[int, list[np.ndarray]], count: int, max_digits: int, rng: np.random.Generator
) -> dict[str, Any]:
    """``count`` utterances of 1..max_digits digits: one speaker's clips with 50-200 ms gaps."""
    audio, transcripts = [], []
    digits_available = sorted(d for d, c in pool.items() if c)
    for _ in range(count):
        digits = rng.choice(digits_available, size=int(rng.integers(1, max_digits + 1)))
        pieces = []
        for d in digits:
            clip = pool[d][rng.integers(len(pool[d]))]
            clip = clip / (np.max(np.abs(clip)) + 1e-9)
            gap = int(rng.uniform(0.05, 0.2) * SAMPLE_RATE)
            pieces += [clip, rng.standard_normal(gap).astype(np.float32) * 1e-3]
        utterance = np.concatenate(pieces)
        audio.append((utterance * rng.uniform(0.3, 0.9)).astype(np.float32))
        transcripts.append(" ".join(DIGITS[d] for d in digits))
    return {"audio": audio, "transcript": transcripts}


def _fsdd(directory: Path, config: SpeechToTextConfig, seed: int) -> Splits:
    clips = read_fsdd(directory)
    test_speakers = list(config.fsdd_test_speakers)
    missing = sorted(set(test_speakers) - set(clips))
    if missing:
        raise UserError(
            f"{directory}: no recordings of test speaker(s) {missing}; has {sorted(clips)}"
        )
    train_speakers = [s for s in sorted(clips) if s not in test_speakers]
    if not train_speakers:
        raise UserError(f"{directory}: every speaker is a test speaker; keep one for training")
    rng = np.random.default_rng(seed)
    n_test = max(1, int(config.fsdd_utterances * config.test_fraction * 2))
    n_val = max(1, int(config.fsdd_utterances * config.validation_fraction))
    n_train = max(1, config.fsdd_utterances - n_test - n_val)
    # Validation: FSDD's own held-out clips (index 0-4) of the training speakers; train the rest.
    make = functools.partial(_speaker_utterances, clips, max_digits=config.fsdd_max_digits, rng=rng)
    parts = {
        "train": make(train_speakers, n_train, lambda i: i >= 5),
        "validation": make(train_speakers, n_val, lambda i: i < 5),
        "test": make(test_speakers, n_test, lambda i: True),
    }
    source = (
        f"FSDD {directory}: real 8 kHz recordings resampled to {SAMPLE_RATE} Hz; multi-digit "
        f"utterances (1-{config.fsdd_max_digits} digits) made by concatenating one speaker's "
        "single-digit clips with 50-200 ms gaps; test speaker(s) "
        f"{', '.join(test_speakers)} held out whole; training speakers "
        f"{', '.join(train_speakers)} (validation from their clips 0-4, training from 5-49)"
    )
    splits = _splits(parts, config, "fsdd_digit_strings", source)
    splits.info["speakers"] = {"train": train_speakers, "test": test_speakers}
    return splits


def _speaker_utterances(clips, speakers, count, keep, max_digits, rng) -> dict[str, list]:
    """``count`` utterances shared out over ``speakers``, from their clips whose index ``keep``s."""
    out = {"audio": [], "transcript": []}
    for number, speaker in enumerate(speakers):
        n = count // len(speakers) + (1 if number < count % len(speakers) else 0)
        pool = {d: [a for i, a in c if keep(i)] for d, c in clips[speaker].items()}
        made = concatenate_clips(pool, n, max_digits, rng)
        out["audio"] += made["audio"]
        out["transcript"] += made["transcript"]
    return out


# === The user's files: a manifest CSV, an LJSpeech folder ===


def read_manifest(path: Path, config: SpeechToTextConfig) -> list[tuple[Path, str, str]]:
    """(audio path, transcript, "CSV, row N") of a CSV with a header; UserError naming the row."""
    if not path.is_file():
        raise UserError(f"manifest not found: {path}")
    try:
        rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    except (UnicodeDecodeError, csv.Error) as err:
        raise UserError(f"{path}: not a readable UTF-8 CSV ({err})") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise UserError(f"{path}: the manifest is empty")
    header = [h.strip() for h in rows[0]]
    for column in (config.path_column, config.transcript_column):
        if column not in header:
            raise UserError(
                f"{path}: no column {column!r} in the header {header}; expected "
                f"{config.path_column},{config.transcript_column} (see --help)"
            )
    if len(rows) < 2:
        raise UserError(f"{path}: the manifest has a header but no rows")
    where = header.index(config.path_column), header.index(config.transcript_column)
    pairs = []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise UserError(
                f"{path}, row {number}: {len(row)} columns where the header has {len(header)}"
            )
        audio, transcript = row[where[0]].strip(), row[where[1]].strip()
        if not audio or not normalize_transcript(transcript):
            raise UserError(f"{path}, row {number}: empty audio path or transcript")
        pairs.append((path.parent / audio, transcript, f"{path}, row {number}"))
    return pairs


def read_ljspeech(directory: Path) -> list[tuple[Path, str, str]]:
    """(wav path, normalised text, where) of ``metadata.csv`` lines ``id|text|normalized``."""
    metadata = directory / "metadata.csv"
    if not metadata.is_file():
        raise UserError(f"LJSpeech metadata not found: {metadata}")
    pairs = []
    for number, line in enumerate(metadata.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) not in (2, 3) or not fields[0].strip():
            raise UserError(f"{metadata}, line {number}: expected id|text|normalized text")
        text = fields[-1].strip() or fields[1].strip()
        where = f"{metadata}, line {number}"
        pairs.append((directory / "wavs" / f"{fields[0].strip()}.wav", text, where))
    if not pairs:
        raise UserError(f"{metadata}: no lines")
    return pairs


def _read_pairs(pairs: list[tuple[Path, str, str]]) -> dict[str, list]:
    """Decode every (audio path, transcript, where) row; a UserError names the row and file."""
    audio = []
    for path, _, where in pairs:
        try:
            audio.append(read_audio(path))
        except UserError as err:
            raise UserError(f"{where}: {err}") from None
    return {"audio": audio, "transcript": [normalize_transcript(t) for _, t, _ in pairs]}


def _sample(items: list, max_examples: int, seed: int) -> list:
    if not max_examples or len(items) <= max_examples:
        return items
    keep = np.random.default_rng(seed).permutation(len(items))[:max_examples]
    return [items[i] for i in sorted(keep)]


def _split_pairs(pairs: list, config: SpeechToTextConfig, seed: int) -> dict[str, list]:
    order = np.random.default_rng(seed).permutation(len(pairs))
    n_test = max(1, int(len(pairs) * config.test_fraction))
    n_val = max(1, int(len(pairs) * config.validation_fraction))
    if len(pairs) < n_test + n_val + 1:
        raise UserError(f"too few utterances ({len(pairs)}) to split into train/validation/test")
    pick = lambda idx: [pairs[i] for i in idx]  # noqa: E731
    return {
        "train": pick(order[n_test + n_val :]),
        "validation": pick(order[n_test : n_test + n_val]),
        "test": pick(order[:n_test]),
    }


# === TFDS (needs internet) ===


TFDS_SPLITS = {
    "librispeech": {"train": "train_clean100", "validation": "dev_clean", "test": "test_clean"},
    "speech_commands": {"train": "train", "validation": "validation", "test": "test"},
}


def _load_tfds(name: str, config: SpeechToTextConfig, seed: int) -> Splits:
    """LibriSpeech or Speech Commands from TensorFlow Datasets, resampled to SAMPLE_RATE."""
    import tensorflow_datasets as tfds

    base = name.split("/")[0]
    if base not in TFDS_SPLITS:
        raise UserError(f"tfds:{name}: use tfds:librispeech or tfds:speech_commands")
    try:
        builder = tfds.builder(name)
    except Exception as err:
        raise UserError(f"tfds:{name}: {str(err).splitlines()[0]}") from None
    audio_key = "speech" if base == "librispeech" else "audio"
    rate = int(getattr(builder.info.features[audio_key], "sample_rate", None) or SAMPLE_RATE)
    labels = builder.info.features["label"].names if base == "speech_commands" else None
    parts = {}
    for part, tfds_split in TFDS_SPLITS[base].items():
        try:
            dataset = tfds.load(name, split=tfds_split)
        except Exception as err:  # no internet, download or preparation failure
            raise UserError(f"tfds:{name}: could not load ({str(err).splitlines()[0]})") from None
        items = _sample(list(tfds.as_numpy(dataset)), config.max_examples, seed)
        parts[part] = {"audio": [], "transcript": []}
        for number, item in enumerate(items):
            text = item["text"].decode("utf-8") if labels is None else labels[int(item["label"])]
            if labels is not None and text.startswith("_"):
                continue  # _silence_, _unknown_: no transcript
            samples = np.asarray(item[audio_key]).astype(np.float32).reshape(-1) / 32768.0
            where = f"tfds:{name} {tfds_split} example {number}"
            parts[part]["audio"].append(check_audio(samples, rate, where))
            parts[part]["transcript"].append(normalize_transcript(text))
    return _splits(parts, config, base, f"tfds:{name} (resampled from {rate} Hz)")


# === Loading and splitting ===


def load_data(config: SpeechToTextConfig, spec: str, seed: int) -> Splits:
    """``spec`` split into train/validation/test at SAMPLE_RATE."""
    kind, _, arg = spec.partition(":")
    if kind == "builtin" and not arg:
        return _builtin(config, seed)
    if kind == "fsdd" and arg:
        return _fsdd(Path(arg), config, seed)
    if kind in ("manifest", "ljspeech") and arg:
        pairs = read_manifest(Path(arg), config) if kind == "manifest" else read_ljspeech(Path(arg))
        pairs = _sample(pairs, config.max_examples, seed)
        parts = {p: _read_pairs(items) for p, items in _split_pairs(pairs, config, seed).items()}
        return _splits(parts, config, kind, f"{kind}:{arg} (resampled to {SAMPLE_RATE} Hz)")
    if kind == "tfds" and arg:
        return _load_tfds(arg, config, seed)
    raise UserError(
        f"unknown data spec {spec!r}; use builtin, fsdd:DIR, manifest:CSV, ljspeech:DIR or "
        "tfds:librispeech / tfds:speech_commands (see: python -m pipelines run speech-to-text "
        "--help)"
    )


def load_test_data(config: SpeechToTextConfig, spec: str, info: dict[str, Any]):
    """Every utterance of a manifest or LJSpeech folder as a test split."""
    kind, _, arg = spec.partition(":")
    if kind == "manifest" and arg:
        pairs = read_manifest(Path(arg), config)
    elif kind == "ljspeech" and arg:
        pairs = read_ljspeech(Path(arg))
    else:
        raise UserError(
            f"unknown data spec {spec!r} for evaluate; use manifest:CSV or ljspeech:DIR"
        )
    inputs, ids, over = _encode_part(_read_pairs(pairs), config)
    if over:
        log(f"{over} of {len(pairs)} utterances are longer than max_seconds and left out")
    if len(ids) == 0:
        raise UserError(f"{spec}: no utterance within max_seconds={config.max_seconds}")
    return inputs, ids


def _encode_part(part: dict[str, list], config: SpeechToTextConfig):
    """Drop utterances over max_seconds or with an empty transcript; encode the rest."""
    limit = int(config.max_seconds * SAMPLE_RATE)
    keep = [
        i
        for i, (a, t) in enumerate(zip(part["audio"], part["transcript"], strict=True))
        if len(a) <= limit and t
    ]
    transcripts = [part["transcript"][i] for i in keep]
    audio = np.empty(len(keep), dtype=object)
    audio[:] = [part["audio"][i] for i in keep]
    inputs = {"audio": audio, "transcript": np.array(transcripts, dtype=object)}
    return inputs, encode_transcripts(transcripts), len(part["audio"]) - len(keep)


def _splits(parts: dict[str, dict[str, list]], config: SpeechToTextConfig, name, source) -> Splits:
    encoded, over = {}, {}
    for part in ("train", "validation", "test"):
        *encoded[part], over[part] = _encode_part(parts[part], config)
        if over[part]:
            log(
                f"{part}: {over[part]} of {len(parts[part]['audio'])} utterances are longer than "
                f"max_seconds={config.max_seconds} or have no transcript; left out"
            )
        if len(encoded[part][1]) == 0:
            raise UserError(
                f"{source}: no {part} utterance within max_seconds={config.max_seconds}"
            )
    width = max(encoded[p][1].shape[1] for p in encoded)  # one label width for every split
    for part, (inputs, ids) in encoded.items():
        encoded[part] = (inputs, np.pad(ids, ((0, 0), (0, width - ids.shape[1]))))
    info = {
        "name": name,
        "source": source,
        "sample_rate": SAMPLE_RATE,
        "vocabulary": VOCABULARY,
        "max_seconds": config.max_seconds,
        "max_samples": int(config.max_seconds * SAMPLE_RATE),
        "over_length": over,
        "beam_width": config.beam_width,
        "n_mels": config.n_mels,
    }
    return Splits(*(tuple(encoded[p]) for p in ("train", "validation", "test")), info)
