"""Speech data: espeak-ng synthesis, FSDD, the user's manifest or LJSpeech folder, TFDS.

Every source gives (audio, transcript) pairs. Audio is decoded with soundfile, mixed down to
mono and resampled here to ``SAMPLE_RATE`` (float32 in [-1, 1]); transcripts are normalised
to the character vocabulary (a-z, space, apostrophe) and encoded as ids padded with 0, the
CTC blank. A split is ``({"audio": object array of float32 arrays, "transcript": str array},
ids [n, longest transcript])``. Each ``load_*`` function is the loader of one ``--data``
kind declared in ``config.DATA_SOURCES``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from pipelines import progress
from pipelines.base import Splits
from pipelines.cache import cache_dir
from pipelines.errors import UserError
from pipelines.file_inputs import folder_files
from pipelines.media_limits import (
    AudioHeader,
    AudioLimits,
    audio_header,
    check_audio_duration,
    check_audio_format,
    over_limit,
)
from pipelines.progress import log
from pipelines.records import DataInfo
from pipelines.speech_to_text.config import SAMPLE_RATE, SpeechToTextConfig
from pipelines.splitting import SPLIT_NAMES, sample_indices, split_indices
from pipelines.tables import read_table_with_lines
from pipelines.text_files import bounded_lines

BLANK = ""
VOCABULARY = [BLANK, " ", "'", *"abcdefghijklmnopqrstuvwxyz"]  # id 0: CTC blank and padding
# audio_bandwidth: clips sampled, FFT size, level below the peak that counts as empty, rounding
BANDWIDTH_CLIPS, BANDWIDTH_FFT, BANDWIDTH_FLOOR_DB, BANDWIDTH_STEP_HZ = 256, 512, 50.0, 250
MIN_SAMPLE_RATE = 8000  # Hz: below this, speech is not intelligible enough to resample up
SILENCE_PEAK = 1e-4  # a file whose peak amplitude is below this is silent
_DECODE_BLOCK = 65_536  # frames decoded at once, then mixed down to mono
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
TFDS_SPLITS = {
    "librispeech": {"train": "train_clean100", "validation": "dev_clean", "test": "test_clean"},
    "speech_commands": {"train": "train", "validation": "validation", "test": "test"},
}

# "audio": float32 arrays, "transcript": str (builtin: "voice"); "declared_over": how many
# files were left out unread because their header declares more than max_seconds.
Utterances = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class SpeechToTextInfo(DataInfo):
    """What the speech model, its evaluation and its export are built from.

    Attributes:
        sample_rate: the audio rate (Hz) of the model, ``predict`` and the export.
        vocabulary: the output characters in id order; id 0 is the CTC blank ("").
        max_seconds: the longest utterance the model was trained for and the export takes.
        max_samples: ``max_seconds`` in samples.
        beam_width: the CTC beam width of the test and the export.
        n_mels: log-mel bands of the features.
        mel_upper_hz: the upper edge of the mel bands: ``max_frequency``, or the training
            audio's bandwidth (``audio_bandwidth``); 0 (records of older runs): half of
            ``sample_rate``.
        over_length: per split, the utterances left out (over ``max_seconds`` or untranscribed).
        voices: builtin: the espeak-ng voice variants of each split.
        test_voices_used: builtin: the accent+variant voices the test utterances use.
        speakers: fsdd: the ``train`` and ``test`` speakers.
        lexicon: the words the export's beam search is constrained to (empty: none).
        language_model: open-vocabulary data (manifest, LJSpeech, LibriSpeech): the word
            n-gram model of the training transcripts (``WordNgramModel.to_json``) that
            rescores beam candidates in prediction over files; empty otherwise.
        lm_weight: the shallow fusion weight of ``language_model``.
    """

    sample_rate: int
    vocabulary: list[str]
    max_seconds: float
    max_samples: int
    beam_width: int
    n_mels: int
    mel_upper_hz: int = 0
    over_length: dict[str, int] = dataclasses.field(default_factory=dict)
    voices: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    test_voices_used: list[str] = dataclasses.field(default_factory=list)
    speakers: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    lexicon: list[str] = dataclasses.field(default_factory=list)
    language_model: dict[str, Any] = dataclasses.field(default_factory=dict)
    lm_weight: float = 0.0


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


def audio_bandwidth(audio, seed: int = 0) -> int:
    """The highest frequency (Hz, a multiple of ``BANDWIDTH_STEP_HZ``) that ``audio`` (clips
    at ``SAMPLE_RATE``) carries: where its mean power spectrum, over a seeded sample of
    ``BANDWIDTH_CLIPS`` clips, last comes within ``BANDWIDTH_FLOOR_DB`` of its peak. Clips
    recorded at 8 kHz and resampled give 4000 Hz or a little above; wide-band speech (or
    speech in noise) gives ``SAMPLE_RATE / 2``."""
    from pipelines.splitting import sample_indices

    power = np.zeros(BANDWIDTH_FFT // 2 + 1)
    for index in sample_indices(len(audio), BANDWIDTH_CLIPS, seed):
        clip = np.asarray(audio[index], np.float64)
        frames = len(clip) // BANDWIDTH_FFT
        if frames:
            blocks = clip[: frames * BANDWIDTH_FFT].reshape(frames, BANDWIDTH_FFT)
            power += np.square(np.abs(np.fft.rfft(blocks * np.hanning(BANDWIDTH_FFT)))).sum(0)
    nyquist = SAMPLE_RATE // 2
    if not power.any():
        return nyquist
    level = 10 * np.log10(power / power.max() + 1e-30)
    top = np.flatnonzero(level >= -BANDWIDTH_FLOOR_DB)[-1] * SAMPLE_RATE / BANDWIDTH_FFT
    return int(min(nyquist, math.ceil(top / BANDWIDTH_STEP_HZ) * BANDWIDTH_STEP_HZ))


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


def read_audio(path: Path, target: int, limits: AudioLimits) -> np.ndarray:
    """Decode one audio file to mono float32 at ``target`` Hz; UserError naming the file.

    The header's sample rate, channels and duration are checked against ``limits`` before
    any sample is decoded, and the file is decoded in blocks mixed down to mono as they come,
    so memory follows the mono length within ``limits.max_seconds``."""
    if not path.is_file():
        raise UserError(f"{path}: audio file not found")
    size = path.stat().st_size
    if size == 0:
        raise UserError(f"{path}: the audio file is empty (0 bytes)")
    _check_wav_complete(path, size)
    header = audio_header(path)
    if header is not None:
        check_audio_format(path, header, limits)
        check_audio_duration(path, header, limits)
    try:
        audio, rate = _decode_mono(path, limits)
    except UserError:
        raise
    except Exception as err:  # libsndfile: not audio, unknown format, corrupt
        reason = str(err).splitlines()[0].split(": ", 1)[-1] if str(err) else type(err).__name__
        raise UserError(f"{path}: cannot decode audio ({reason})") from None
    return check_audio(audio, rate, str(path), target)


def _decode_mono(path: Path, limits: AudioLimits) -> tuple[np.ndarray, int]:
    """The file's samples averaged over its channels, and its rate; UserError as soon as more
    is decoded than ``limits.max_seconds`` allows (a header may understate the length)."""
    import soundfile

    blocks, frames = [], 0
    with soundfile.SoundFile(str(path)) as file:
        rate = file.samplerate
        check_audio_format(path, AudioHeader(rate, file.channels, 0), limits)
        most = math.ceil(limits.max_seconds * rate)
        for block in file.blocks(_DECODE_BLOCK, dtype="float32", always_2d=True):
            frames += len(block)
            if frames > most:
                raise over_limit(
                    path,
                    "decoded duration",
                    frames / rate,
                    limits.max_seconds,
                    limits.seconds_setting,
                    " s",
                )
            blocks.append(block.mean(axis=1))
    return (np.concatenate(blocks) if blocks else np.zeros(0, np.float32)), rate


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
    for _ in progress.bar(range(count), description="synthesising", unit=" utterances"):
        text = builtin_transcript(rng, config.builtin_max_digits)
        voice = f"{ACCENTS[rng.integers(len(ACCENTS))]}+{voices[rng.integers(len(voices))]}"
        raw = engine.synthesize(text, voice, rng.integers(130, 211), rng.integers(20, 81))
        speech = resample(raw.astype(np.float32) / 32768.0, engine.sample_rate)
        audio.append(add_noise(speech, rng, rng.uniform(low, high)))
        transcripts.append(text)
        spoken_by.append(voice)
    return {"audio": audio, "transcript": transcripts, "voice": spoken_by}


def load_builtin(config: SpeechToTextConfig, argument: str, seed: int) -> Splits:
    """Utterances synthesised by espeak-ng, split by voice; cached after the first run."""
    voices = builtin_voices(config)
    parts = _synthesised_parts(config, voices, seed)
    low, high = config.builtin_snr_db
    source = (
        f"espeak-ng (espeakng-loader 0.2.4) synthesis at {SAMPLE_RATE} Hz: digit strings and "
        f"number phrases, {len(ACCENTS)} English accents, rate 130-210 wpm, pitch 20-80, noise "
        f"at SNR {low:g}-{high:g} dB; test voices {', '.join(voices['test'])}, validation "
        f"voices {', '.join(voices['validation'])}, disjoint from the "
        f"{len(voices['train'])} training voices"
    )
    used = sorted(set(parts["test"]["voice"]))
    return _splits(parts, config, "espeak_numbers", source, voices=voices, test_voices_used=used)


def _synthesised_parts(config: SpeechToTextConfig, voices: dict[str, list[str]], seed: int):
    """The built-in utterances of each split: from the cache, or synthesised and cached."""
    counts = _split_counts(config.builtin_utterances, config)
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
    return parts


def _split_counts(total: int, config: SpeechToTextConfig, test_share: float = 1.0):
    """Utterances per split of ``total`` made ones (the test ``test_share`` times its fraction)."""
    n_test = max(1, int(total * config.test_fraction * test_share))
    n_val = max(1, int(total * config.validation_fraction))
    return {"train": max(1, total - n_test - n_val), "validation": n_val, "test": n_test}


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


def read_fsdd(
    directory: Path, limits: AudioLimits
) -> dict[str, dict[int, list[tuple[int, np.ndarray]]]]:
    """speaker -> digit -> [(index, audio)] of ``{digit}_{speaker}_{index}.wav`` files, each
    within ``limits``."""
    if not directory.is_dir():
        raise UserError(f"FSDD folder not found: {directory}")
    clips: dict[str, dict[int, list]] = {}
    for path in folder_files(directory, (".wav",), max_depth=1):
        match = re.fullmatch(r"(\d)_([A-Za-z0-9-]+)_(\d+)\.wav", path.name)
        if not match:
            continue
        digit, speaker, index = int(match.group(1)), match.group(2), int(match.group(3))
        clips.setdefault(speaker, {}).setdefault(digit, []).append(
            (index, read_audio(path, SAMPLE_RATE, limits))
        )
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


def load_fsdd(config: SpeechToTextConfig, directory: str, seed: int) -> Splits:
    """FSDD clips made into digit strings; the test speakers held out whole."""
    folder = Path(directory)
    clips = read_fsdd(folder, config.audio_limits())
    test_speakers = list(config.fsdd_test_speakers)
    missing = sorted(set(test_speakers) - set(clips))
    if missing:
        raise UserError(
            f"{folder}: no recordings of test speaker(s) {missing}; has {sorted(clips)}"
        )
    train_speakers = [s for s in sorted(clips) if s not in test_speakers]
    if not train_speakers:
        raise UserError(f"{folder}: every speaker is a test speaker; keep one for training")
    rng = np.random.default_rng(seed)
    counts = _split_counts(config.fsdd_utterances, config, test_share=2)
    # Validation: FSDD's own held-out clips (index 0-4) of the training speakers; train the rest.
    make = functools.partial(_speaker_utterances, clips, max_digits=config.fsdd_max_digits, rng=rng)
    parts = {
        "train": make(train_speakers, counts["train"], lambda i: i >= 5),
        "validation": make(train_speakers, counts["validation"], lambda i: i < 5),
        "test": make(test_speakers, counts["test"], lambda i: True),
    }
    source = (
        f"FSDD {folder}: real 8 kHz recordings resampled to {SAMPLE_RATE} Hz; multi-digit "
        f"utterances (1-{config.fsdd_max_digits} digits) made by concatenating one speaker's "
        "single-digit clips with 50-200 ms gaps; test speaker(s) "
        f"{', '.join(test_speakers)} held out whole; training speakers "
        f"{', '.join(train_speakers)} (validation from their clips 0-4, training from 5-49)"
    )
    speakers = {"train": train_speakers, "test": test_speakers}
    return _splits(parts, config, "fsdd_digit_strings", source, speakers=speakers)


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


def load_manifest(config: SpeechToTextConfig, path: str, seed: int) -> Splits:
    """The recordings a manifest CSV lists, sampled and split with ``seed``."""
    return _split_rows(read_manifest(Path(path), config), config, seed, f"manifest:{path}")


def load_ljspeech(config: SpeechToTextConfig, directory: str, seed: int) -> Splits:
    """An LJSpeech folder's recordings, sampled and split with ``seed``."""
    return _split_rows(read_ljspeech(Path(directory)), config, seed, f"ljspeech:{directory}")


def load_test_manifest(config: SpeechToTextConfig, path: str, info: SpeechToTextInfo):
    """Every utterance of a manifest CSV as test data for ``evaluate --data``."""
    rows = read_manifest(Path(path), config)
    return _test_split(rows, info, f"manifest:{path}", config.audio_limits(info.max_seconds))


def load_test_ljspeech(config: SpeechToTextConfig, directory: str, info: SpeechToTextInfo):
    """Every utterance of an LJSpeech folder as test data for ``evaluate --data``."""
    limits = config.audio_limits(info.max_seconds)
    return _test_split(read_ljspeech(Path(directory)), info, f"ljspeech:{directory}", limits)


def read_manifest(path: Path, config: SpeechToTextConfig) -> list[tuple[Path, str, str]]:
    """(audio path, transcript, "CSV, line N") of a CSV with a header; UserError naming the line."""
    frame, lines = read_table_with_lines(path, ",")
    for key in ("path_column", "transcript_column"):
        column = getattr(config, key)
        if column not in frame.columns:
            columns = ", ".join(map(str, frame.columns))
            raise UserError(f"{path}: no column {column!r} (set {key}=...; columns: {columns})")
    if frame.empty:
        raise UserError(f"{path}: the manifest has a header but no rows")
    rows = zip(lines, frame[config.path_column], frame[config.transcript_column], strict=True)
    pairs = []
    for line, audio, transcript in rows:
        where = f"{path}, line {line}"
        if not audio.strip() or not normalize_transcript(transcript):
            raise UserError(f"{where}: empty audio path or transcript")
        pairs.append((path.parent / audio.strip(), transcript, where))
    return pairs


def read_ljspeech(directory: Path) -> list[tuple[Path, str, str]]:
    """(wav path, normalised text, where) of ``metadata.csv`` lines ``id|text|normalized``."""
    metadata = directory / "metadata.csv"
    if not metadata.is_file():
        raise UserError(f"LJSpeech metadata not found: {metadata}")
    pairs = []
    lines = bounded_lines(metadata, what="LJSpeech metadata", hint="convert it to UTF-8")
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r\n")
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


def _read_rows(rows: list[tuple[Path, str, str]], limits: AudioLimits) -> Utterances:
    """Decode every (audio path, transcript, where) row; a UserError names the row and file.
    A file whose header declares more than ``limits.max_seconds`` is counted, not decoded."""
    audio, transcripts, declared_over = [], [], 0
    for path, transcript, where in rows:
        header = audio_header(path)
        if header is not None and header.seconds > limits.max_seconds:
            declared_over += 1
            continue
        try:
            audio.append(read_audio(path, SAMPLE_RATE, limits))
        except UserError as err:
            raise UserError(f"{where}: {err}") from None
        transcripts.append(normalize_transcript(transcript))
    return {"audio": audio, "transcript": transcripts, "declared_over": declared_over}


def _split_rows(rows: list, config: SpeechToTextConfig, seed: int, spec: str) -> Splits:
    """A seeded sample of ``rows``, split at random, decoded."""
    rows = [rows[i] for i in sample_indices(len(rows), config.max_examples, seed)]
    indices = split_indices(
        len(rows),
        config.validation_fraction,
        config.test_fraction,
        seed,
        what="utterances",
        source=spec,
    )
    limits = config.audio_limits()
    parts = {part: _read_rows([rows[i] for i in indices[part]], limits) for part in SPLIT_NAMES}
    kind = spec.partition(":")[0]
    return _splits(
        parts, config, kind, f"{spec} (resampled to {SAMPLE_RATE} Hz)", open_vocabulary=True
    )


def _test_split(rows: list, info: SpeechToTextInfo, spec: str, limits: AudioLimits):
    """Every row within the model's ``max_seconds`` as ``(inputs, ids)``."""
    inputs, ids, over = _encode_part(_read_rows(rows, limits), info.max_samples)
    if over:
        log(f"{over} of {len(rows)} utterances are longer than max_seconds and left out")
    if len(ids) == 0:
        raise UserError(f"{spec}: no utterance within max_seconds={info.max_seconds}")
    return inputs, ids


# === TFDS (needs internet) ===


def load_tfds(config: SpeechToTextConfig, name: str, seed: int) -> Splits:
    """LibriSpeech or Speech Commands from TensorFlow Datasets, resampled to SAMPLE_RATE."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name)
    except Exception as err:  # TFDS raises many types for a bad name or no network
        raise UserError(f"tfds:{name}: {str(err).splitlines()[0]}") from None
    audio_key = "speech" if name == "librispeech" else "audio"
    rate = int(getattr(builder.info.features[audio_key], "sample_rate", None) or SAMPLE_RATE)
    labels = builder.info.features["label"].names if name == "speech_commands" else None
    parts = {}
    for part, tfds_split in TFDS_SPLITS[name].items():
        try:
            dataset = tfds.load(name, split=tfds_split)
        except Exception as err:  # no internet, download or preparation failure
            raise UserError(f"tfds:{name}: could not load ({str(err).splitlines()[0]})") from None
        items = list(tfds.as_numpy(dataset))
        items = [items[i] for i in sample_indices(len(items), config.max_examples, seed)]
        where = f"tfds:{name} {tfds_split}"
        parts[part] = _tfds_utterances(items, audio_key, rate, labels, where)
    source = f"tfds:{name} (resampled from {rate} Hz)"
    return _splits(parts, config, name, source, open_vocabulary=name == "librispeech")


def _tfds_utterances(items, audio_key: str, rate: int, labels, where: str) -> Utterances:
    """TFDS examples as utterances; Speech Commands' ``_silence_``/``_unknown_`` left out."""
    out: Utterances = {"audio": [], "transcript": []}
    for number, item in enumerate(items):
        text = item["text"].decode("utf-8") if labels is None else labels[int(item["label"])]
        if labels is not None and text.startswith("_"):
            continue  # _silence_, _unknown_: no transcript
        samples = np.asarray(item[audio_key]).astype(np.float32).reshape(-1) / 32768.0
        out["audio"].append(check_audio(samples, rate, f"{where} example {number}"))
        out["transcript"].append(normalize_transcript(text))
    return out


# === Encoding the splits ===


def _count(part: Utterances) -> int:
    """Utterances of ``part``, those left out unread included."""
    return len(part["audio"]) + part.get("declared_over", 0)


def _encode_part(part: Utterances, max_samples: int):
    """Drop utterances over ``max_samples`` or with an empty transcript; encode the rest."""
    keep = [
        i
        for i, (a, t) in enumerate(zip(part["audio"], part["transcript"], strict=True))
        if len(a) <= max_samples and t
    ]
    transcripts = [part["transcript"][i] for i in keep]
    audio = np.empty(len(keep), dtype=object)
    audio[:] = [part["audio"][i] for i in keep]
    inputs = {"audio": audio, "transcript": np.array(transcripts, dtype=object)}
    over = len(part["audio"]) - len(keep) + part.get("declared_over", 0)
    return inputs, encode_transcripts(transcripts), over


def _splits(
    parts: dict[str, Utterances],
    config: SpeechToTextConfig,
    name: str,
    source: str,
    open_vocabulary: bool = False,
    **extra,
) -> Splits:
    """The encoded splits (one label width for all) and their record, with the lexicon and,
    for ``open_vocabulary`` data, the language model; ``extra`` adds fields."""
    max_samples = int(config.max_seconds * SAMPLE_RATE)
    encoded, over = {}, {}
    for part in SPLIT_NAMES:
        *encoded[part], over[part] = _encode_part(parts[part], max_samples)
        if over[part]:
            log(
                f"{part}: {over[part]} of {_count(parts[part])} utterances are longer than "
                f"max_seconds={config.max_seconds} or have no transcript; left out"
            )
        if len(encoded[part][1]) == 0:
            raise UserError(
                f"{source}: no {part} utterance within max_seconds={config.max_seconds}"
            )
    width = max(encoded[p][1].shape[1] for p in encoded)
    for part, (inputs, ids) in encoded.items():
        encoded[part] = (inputs, np.pad(ids, ((0, 0), (0, width - ids.shape[1]))))
    info = SpeechToTextInfo(
        name=name,
        source=source,
        sample_rate=SAMPLE_RATE,
        vocabulary=list(VOCABULARY),
        max_seconds=config.max_seconds,
        max_samples=max_samples,
        beam_width=config.beam_width,
        n_mels=config.n_mels,
        mel_upper_hz=config.max_frequency or audio_bandwidth(encoded["train"][0]["audio"]),
        over_length=over,
        **_decoding_fields(config, encoded["train"][0]["transcript"], open_vocabulary),
        **extra,
    )
    return Splits(*(tuple(encoded[p]) for p in SPLIT_NAMES), info)


def _decoding_fields(config: SpeechToTextConfig, transcripts, open_vocabulary: bool):
    """The record's ``lexicon``, ``language_model`` and ``lm_weight`` fields."""
    from pipelines.speech_to_text.decoding import lexicon_words
    from pipelines.speech_to_text.language_model import WordNgramModel

    fields: dict[str, Any] = {"lexicon": lexicon_words(config.lexicon, transcripts)}
    if open_vocabulary and config.lm_weight > 0:
        model = WordNgramModel.from_transcripts([str(t) for t in transcripts], config.lm_order)
        fields |= {"language_model": model.to_json(), "lm_weight": config.lm_weight}
    return fields
