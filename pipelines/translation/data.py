"""Translation data: built-in number phrases, Tatoeba pairs, SCAN, the user's TSV, TFDS.

Every source gives (source, target) sentence pairs. Sources are normalised inside the model
(``normalize``: lower case, punctuation split off); targets are normalised here and turned
into token ids ``[start] w1 ... wn [end]`` padded with 0 to ``max_target_length + 2``.
A split is ``({"source": str array, "target": normalised str array}, ids [n, T + 2])``.
"""

from __future__ import annotations

import collections
import re
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from pipelines.base import Splits
from pipelines.errors import UserError
from pipelines.progress import log
from pipelines.translation.config import TranslationConfig

PAD, UNK, START, END = "", "[UNK]", "[start]", "[end]"
RESERVED = [PAD, UNK, START, END]
PUNCTUATION = r"""([.,!?;:«»"()¿¡-])"""
# The longest source text, in UTF-8 bytes, that `predict` and the serving export take (the
# export also refuses more than max_source_length tokens); a longer one is a clear error.
MAX_TEXT_BYTES = 10_000
# The largest max_source_length / max_target_length: the encoded targets take
# rows x (max_target_length + 2) int32s and beam search runs max_target_length steps.
MAX_LENGTH_SETTING = 1_000


# === Normalisation (the same rules in the graph and in Python) ===


def normalize(text):
    """tf: lower case (UTF-8), punctuation and hyphens split off as tokens, spaces collapsed."""
    text = tf.strings.lower(text, encoding="utf-8")
    text = tf.strings.regex_replace(text, PUNCTUATION, r" \1 ")
    text = tf.strings.regex_replace(text, r"\s+", " ")
    return tf.strings.strip(text)


def normalize_text(text: str) -> str:
    """Python twin of ``normalize`` for targets."""
    text = re.sub(PUNCTUATION, r" \1 ", text.lower())
    return re.sub(r"\s+", " ", text).strip()


def detokenize_text(text: str) -> str:
    """Join hyphenated words back ("quatre - vingt" -> "quatre-vingt")."""
    return text.replace(" - ", "-")


def source_tokens(texts) -> list[list[str]]:
    """Source texts as the model's TextVectorization sees them."""
    normalised = normalize(tf.constant(list(texts), dtype=tf.string)).numpy()
    return [t.decode("utf-8").split() for t in normalised]


# === Loading ===


def load_data(config: TranslationConfig, spec: str, seed: int) -> Splits:
    """``spec`` split into train/validation/test, vocabularies built on train."""
    check_length_settings(config)
    kind, _, arg = spec.partition(":")
    if kind == "builtin" and not arg:
        return _builtin(config, seed)
    if kind == "scan" and arg:
        train, test = read_scan(Path(arg), config.scan_split)
        train = _sample(train, config.max_examples, seed)
        test = _sample(test, config.max_examples and max(50, config.max_examples // 5), seed)
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(train))
        n_val = max(1, int(len(train) * config.validation_fraction))
        validation = [train[i] for i in order[:n_val]]
        train = [train[i] for i in order[n_val:]]
        return _splits(train, validation, test, config, "scan", f"SCAN {arg} ({config.scan_split})")
    if kind in ("tatoeba", "tsv") and arg:
        pairs = read_pairs(Path(arg), allow_truncated_last=kind == "tatoeba")
        pairs = _sample(pairs, config.max_examples, seed)
        train, validation, test = _split(pairs, config, seed)
        return _splits(train, validation, test, config, kind, f"{kind}:{arg}")
    if kind == "tfds" and arg:
        return _load_tfds(arg, config, seed)
    raise UserError(
        f"unknown data spec {spec!r}; use builtin, tatoeba:PATH, scan:DIR, tsv:PATH or tfds:NAME "
        "(see python -m pipelines run translation --help)"
    )


def load_test_data(config: TranslationConfig, spec: str, info: dict[str, Any]):
    """Every pair of ``spec`` as a test split, tokenised with the run's vocabularies."""
    check_length_settings(config)
    kind, _, arg = spec.partition(":")
    if kind in ("tatoeba", "tsv") and arg:
        pairs = read_pairs(Path(arg), allow_truncated_last=kind == "tatoeba")
    elif kind == "scan" and arg:
        pairs = read_scan(Path(arg), config.scan_split)[1]
    elif kind == "builtin" and not arg:
        pairs = builtin_pairs(range(config.builtin_max_number + 1))
    else:
        raise UserError(f"unknown data spec {spec!r} for evaluate; use tatoeba:, scan:, tsv:")
    kept, over = _within_limits(pairs, config)
    if over:
        log(f"{over} of {len(pairs)} pairs are over the length limits and left out")
    if not kept:
        raise UserError(f"{spec}: no pair within the length limits")
    return _encode(kept, info["target_vocabulary"], config)


def builtin_pairs(numbers) -> list[tuple[str, str]]:
    """(English, French) number phrases from num2words."""
    from num2words import num2words

    return [(num2words(int(n), lang="en"), num2words(int(n), lang="fr")) for n in numbers]


def builtin_numbers(config: TranslationConfig, seed: int) -> dict[str, np.ndarray]:
    """The seeded, disjoint train/validation/test numbers of the built-in data."""
    numbers = np.random.default_rng(seed).permutation(config.builtin_max_number + 1)
    if config.max_examples:
        numbers = numbers[: config.max_examples]
    n_test = max(1, int(len(numbers) * config.test_fraction))
    n_val = max(1, int(len(numbers) * config.validation_fraction))
    return {
        "test": numbers[:n_test],
        "validation": numbers[n_test : n_test + n_val],
        "train": numbers[n_test + n_val :],
    }


def _builtin(config: TranslationConfig, seed: int) -> Splits:
    numbers = builtin_numbers(config, seed)
    splits = _splits(
        builtin_pairs(numbers["train"]),
        builtin_pairs(numbers["validation"]),
        builtin_pairs(numbers["test"]),
        config,
        "numbers_en_fr",
        f"num2words 0.5.14: English -> French number phrases, 0..{config.builtin_max_number}",
    )
    splits.info["test_numbers"] = [int(n) for n in numbers["test"][:20]]
    return splits


def read_pairs(path: Path, allow_truncated_last: bool = False) -> list[tuple[str, str]]:
    """``source<TAB>target[<TAB>...]`` lines; UserError naming the line for a bad one."""
    if not path.is_file():
        raise UserError(f"data file not found: {path}")
    lines = _read_lines(path)
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise UserError(f"{path}: the file is empty")
    pairs = []
    for number, line in enumerate(lines, start=1):
        fields = line.split("\t")
        if not line.strip():
            raise UserError(f"{path}, line {number}: empty line (expected source<TAB>target)")
        if len(fields) < 2 or not fields[0].strip() or not fields[1].strip():
            if allow_truncated_last and number == len(lines) and len(lines) > 1:
                log(f"{path}, line {number}: truncated last line skipped")
                continue
            raise UserError(
                f"{path}, line {number}: expected two tab-separated columns, "
                f"source<TAB>target; got {line[:60]!r}"
            )
        pairs.append((fields[0].strip(), fields[1].strip()))
    return pairs


def _read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file; UserError naming the line of a byte that is not UTF-8."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise UserError(f"{path}: not UTF-8 text (bad byte at line {line})") from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise UserError(f"{path}: not a text file (NUL byte at line {line})")
    return text.splitlines()


def check_length_settings(config: TranslationConfig) -> None:
    """UserError for a length limit too large to encode or decode."""
    for key in ("max_source_length", "max_target_length"):
        if getattr(config, key) > MAX_LENGTH_SETTING:
            raise UserError(
                f"setting {key!r} must be at most {MAX_LENGTH_SETTING}, got {getattr(config, key)}"
            )


def read_scan(directory: Path, split: str = "simple_split"):
    """SCAN's official train and test pairs of ``split``."""
    suffix = "simple" if split == "simple_split" else "length"
    result = []
    for part in ("train", "test"):
        path = directory / split / f"tasks_{part}_{suffix}.txt"
        if not path.is_file():
            raise UserError(f"SCAN file not found: {path}")
        pairs = []
        for number, line in enumerate(_read_lines(path), start=1):
            if not line.strip():
                continue
            match = re.fullmatch(r"IN:\s*(.*?)\s*OUT:\s*(.*?)\s*", line)
            if not match:
                raise UserError(f"{path}, line {number}: expected 'IN: ... OUT: ...'")
            pairs.append((match.group(1), match.group(2)))
        if not pairs:
            raise UserError(f"{path}: no 'IN: ... OUT: ...' lines (the file is empty)")
        result.append(pairs)
    return result[0], result[1]


# === Splitting and encoding ===


def _sample(pairs, max_examples: int, seed: int):
    if not max_examples or len(pairs) <= max_examples:
        return pairs
    order = np.random.default_rng(seed).permutation(len(pairs))[:max_examples]
    return [pairs[i] for i in sorted(order)]


def _split(pairs, config: TranslationConfig, seed: int):
    order = np.random.default_rng(seed).permutation(len(pairs))
    n_test = max(1, int(len(pairs) * config.test_fraction))
    n_val = max(1, int(len(pairs) * config.validation_fraction))
    if len(pairs) < n_test + n_val + 2:
        raise UserError(f"too few pairs ({len(pairs)}) to split into train/validation/test")
    pick = lambda idx: [pairs[i] for i in idx]  # noqa: E731
    return pick(order[n_test + n_val :]), pick(order[n_test : n_test + n_val]), pick(order[:n_test])


def _within_limits(pairs, config: TranslationConfig):
    if not pairs:
        return [], 0
    sources = source_tokens([s for s, _ in pairs])
    kept = [
        pair
        for pair, tokens in zip(pairs, sources, strict=True)
        if 0 < len(tokens) <= config.max_source_length
        and 0 < len(normalize_text(pair[1]).split()) <= config.max_target_length
    ]
    return kept, len(pairs) - len(kept)


def _vocabulary(token_lists, limit: int) -> list[str]:
    counts = collections.Counter(t for tokens in token_lists for t in tokens)
    return [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))][:limit]


def _encode(pairs, target_vocabulary: list[str], config: TranslationConfig):
    index = {t: i for i, t in enumerate(target_vocabulary)}
    targets = [normalize_text(t) for _, t in pairs]
    ids = np.zeros((len(pairs), config.max_target_length + 2), np.int32)
    for row, target in enumerate(targets):
        tokens = [START, *target.split(), END]
        ids[row, : len(tokens)] = [index.get(t, 1) for t in tokens]
    inputs = {
        "source": np.array([s for s, _ in pairs], dtype=object),
        "target": np.array(targets, dtype=object),
    }
    return inputs, ids


def _splits(train, validation, test, config: TranslationConfig, name: str, source: str) -> Splits:
    over = {}
    parts = {"train": train, "validation": validation, "test": test}
    for part, pairs in parts.items():
        parts[part], over[part] = _within_limits(pairs, config)
        if over[part]:
            log(
                f"{part}: {over[part]} of {len(pairs)} pairs are longer than "
                f"max_source_length={config.max_source_length} / "
                f"max_target_length={config.max_target_length} tokens; left out"
            )
        if not parts[part]:
            raise UserError(f"{source}: no {part} pair within the length limits")
    source_vocab = _vocabulary(source_tokens([s for s, _ in parts["train"]]), config.max_vocabulary)
    target_vocab = RESERVED + _vocabulary(
        [normalize_text(t).split() for _, t in parts["train"]], config.max_vocabulary
    )
    info = {
        "name": name,
        "source": source,
        "source_vocabulary": source_vocab,
        "target_vocabulary": target_vocab,
        "over_length": over,
        "max_source_length": config.max_source_length,
        "max_target_length": config.max_target_length,
        "beam_width": config.beam_width,
        "length_penalty": config.length_penalty,
    }
    encoded = {part: _encode(pairs, target_vocab, config) for part, pairs in parts.items()}
    return Splits(encoded["train"], encoded["validation"], encoded["test"], info)


def _load_tfds(name: str, config: TranslationConfig, seed: int) -> Splits:
    """A TensorFlow Datasets translation set (needs internet), its own splits where it has them."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name)
    except Exception as err:  # unknown name or config
        raise UserError(f"tfds:{name}: {str(err).splitlines()[0]}") from None
    keys = builder.info.supervised_keys
    if not keys:
        raise UserError(f"tfds:{name} has no (source, target) supervised keys")
    available = set(builder.info.splits.keys()) or {"train", "validation", "test"}
    if not {"train", "test"} <= available:
        raise UserError(f"tfds:{name} needs train and test splits; it has {sorted(available)}")
    parts = {}
    for part in ("train", "validation", "test"):
        if part not in available:
            continue
        try:
            dataset = tfds.load(name, split=part, as_supervised=True)
        except Exception as err:  # no internet, download or preparation failure
            raise UserError(f"tfds:{name}: could not load ({str(err).splitlines()[0]})") from None
        pairs = [(s.decode("utf-8"), t.decode("utf-8")) for s, t in tfds.as_numpy(dataset)]
        parts[part] = _sample(pairs, config.max_examples, seed)
    if "validation" not in parts:
        train = parts["train"]
        order = np.random.default_rng(seed).permutation(len(train))
        n_val = max(1, int(len(train) * config.validation_fraction))
        parts["validation"] = [train[i] for i in order[:n_val]]
        parts["train"] = [train[i] for i in order[n_val:]]
    return _splits(
        parts["train"], parts["validation"], parts["test"], config, name, f"tfds:{name} {keys}"
    )
