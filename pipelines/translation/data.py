"""Translation data: built-in number phrases, Tatoeba pairs, SCAN, the user's TSV, TFDS.

Every source gives (source, target) sentence pairs. Sources are normalised inside the model
(``normalize``: lower case, punctuation split off); targets are normalised here and turned
into token ids ``[start] w1 ... wn [end]`` padded with 0 to ``max_target_length + 2``.
A split is ``({"source": str array, "target": normalised str array}, ids [n, T + 2])``.
"""

from __future__ import annotations

import collections
import dataclasses
import re
from pathlib import Path

import numpy as np
import tensorflow as tf

from pipelines.base import Splits
from pipelines.errors import UserError
from pipelines.progress import log
from pipelines.records import DataInfo
from pipelines.splitting import SPLIT_NAMES, sample_indices, split_indices
from pipelines.tables import read_text
from pipelines.text_files import DEFAULT_ENCODING
from pipelines.translation.config import TranslationConfig

PAD, UNK, START, END = "", "[UNK]", "[start]", "[end]"
RESERVED = [PAD, UNK, START, END]
PUNCTUATION = r"""([.,!?;:«»"()¿¡-])"""
# The longest source text, in UTF-8 bytes, that `predict` and the serving export take (the
# export also refuses more than max_source_length tokens); a longer one is a clear error.
MAX_TEXT_BYTES = 10_000
BUILTIN_SOURCE = "num2words 0.5.14: English -> French number phrases, 0..{}"

Pair = tuple[str, str]


@dataclasses.dataclass(frozen=True)
class TranslationInfo(DataInfo):
    """What the translation model is built from and decodes with.

    Attributes:
        source_vocabulary: the training sources' tokens, most frequent first (no specials).
        target_vocabulary: ``RESERVED`` then the training targets' tokens, most frequent first.
        over_length: pairs of each split left out for being over the length limits.
        max_source_length: most source tokens the model reads (the export refuses more).
        max_target_length: most target tokens it writes (without start and end).
        beam_width: beams of the export's beam search.
        length_penalty: the export's GNMT length penalty alpha.
        test_numbers: built-in data only: the first test numbers, for the record.
    """

    source_vocabulary: list[str]
    target_vocabulary: list[str]
    over_length: dict[str, int]
    max_source_length: int
    max_target_length: int
    beam_width: int
    length_penalty: float
    test_numbers: list[int] = dataclasses.field(default_factory=list)


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


def input_problem(text: str, max_source_length: int) -> str | None:
    """Why ``text`` cannot be translated (too many bytes, no words, too many tokens), or None."""
    size = len(text.encode("utf-8", errors="surrogateescape"))
    if size > MAX_TEXT_BYTES:
        return f"is {size:,} bytes long, more than the {MAX_TEXT_BYTES:,} a text may have"
    words = source_tokens([text])[0]
    if not words:
        return "is empty"
    if len(words) > max_source_length:
        return f"has {len(words)} tokens, more than max_source_length={max_source_length}"
    return None


# === Loaders, one per data source ===


def load_builtin(config: TranslationConfig, argument: str, seed: int) -> Splits:
    """The built-in number phrases, split by number with ``seed`` (disjoint splits)."""
    numbers = builtin_numbers(config, seed)
    parts = {part: builtin_pairs(numbers[part]) for part in SPLIT_NAMES}
    source = BUILTIN_SOURCE.format(config.builtin_max_number)
    test_numbers = [int(n) for n in numbers["test"][:20]]
    return _splits(parts, config, "numbers_en_fr", source, test_numbers=test_numbers)


def load_tatoeba(config: TranslationConfig, path: str, seed: int) -> Splits:
    """A Tatoeba (manythings) file of pairs, sampled and split with ``seed``."""
    pairs = read_pairs(Path(path), allow_truncated_last=True, encoding=config.encoding)
    return _random_splits(pairs, config, seed, "tatoeba", f"tatoeba:{path}")


def load_tsv(config: TranslationConfig, path: str, seed: int) -> Splits:
    """A TSV of ``source<TAB>target`` pairs, sampled and split with ``seed``."""
    pairs = read_pairs(Path(path), encoding=config.encoding)
    return _random_splits(pairs, config, seed, "tsv", f"tsv:{path}")


def load_scan(config: TranslationConfig, directory: str, seed: int) -> Splits:
    """SCAN's official train and test files of ``scan_split``; validation carved from train."""
    train, test = read_scan(Path(directory), config.scan_split, config.encoding)
    train = _sample(train, config.max_examples, seed)
    test = _sample(test, config.max_examples and max(50, config.max_examples // 5), seed)
    train, validation = _hold_out(train, config.validation_fraction, seed)
    parts = {"train": train, "validation": validation, "test": test}
    return _splits(parts, config, "scan", f"SCAN {directory} ({config.scan_split})")


def load_tfds(config: TranslationConfig, name: str, seed: int) -> Splits:
    """A TensorFlow Datasets translation set (needs internet), its own splits where it has them."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name)
    except Exception as err:  # unknown name or config
        raise UserError(f"tfds:{name}: {str(err).splitlines()[0]}") from None
    keys = builder.info.supervised_keys
    if not keys:
        raise UserError(f"tfds:{name} has no (source, target) supervised keys")
    available = set(builder.info.splits.keys()) or set(SPLIT_NAMES)
    if not {"train", "test"} <= available:
        raise UserError(f"tfds:{name} needs train and test splits; it has {sorted(available)}")
    parts = {
        part: _sample(_tfds_pairs(tfds, name, part), config.max_examples, seed)
        for part in SPLIT_NAMES
        if part in available
    }
    if "validation" not in parts:
        parts["train"], parts["validation"] = _hold_out(
            parts["train"], config.validation_fraction, seed
        )
    return _splits(parts, config, name, f"tfds:{name} {keys}")


def load_test_builtin(config: TranslationConfig, argument: str, info: TranslationInfo):
    """Every built-in number (0..builtin_max_number) as test data."""
    pairs = builtin_pairs(range(config.builtin_max_number + 1))
    return _test_split(pairs, info, BUILTIN_SOURCE.format(config.builtin_max_number))


def load_test_tatoeba(config: TranslationConfig, path: str, info: TranslationInfo):
    """Every pair of a Tatoeba file as test data, encoded with the run's target vocabulary."""
    pairs = read_pairs(Path(path), allow_truncated_last=True, encoding=config.encoding)
    return _test_split(pairs, info, f"tatoeba:{path}")


def load_test_tsv(config: TranslationConfig, path: str, info: TranslationInfo):
    """Every pair of a TSV as test data, encoded with the run's target vocabulary."""
    return _test_split(read_pairs(Path(path), encoding=config.encoding), info, f"tsv:{path}")


def load_test_scan(config: TranslationConfig, directory: str, info: TranslationInfo):
    """SCAN's official test file of ``scan_split`` as test data."""
    pairs = read_scan(Path(directory), config.scan_split, config.encoding)[1]
    return _test_split(pairs, info, f"SCAN {directory} ({config.scan_split})")


# === Reading ===


def builtin_pairs(numbers) -> list[Pair]:
    """(English, French) number phrases from num2words."""
    from num2words import num2words

    return [(num2words(int(n), lang="en"), num2words(int(n), lang="fr")) for n in numbers]


def builtin_numbers(config: TranslationConfig, seed: int) -> dict[str, np.ndarray]:
    """The seeded, disjoint train/validation/test numbers of the built-in data."""
    count = config.builtin_max_number + 1
    numbers = sample_indices(count, config.max_examples, seed)
    parts = split_indices(
        len(numbers),
        config.validation_fraction,
        config.test_fraction,
        seed,
        what="numbers",
        source="the built-in numbers",
    )
    return {part: numbers[indices] for part, indices in parts.items()}


def read_pairs(
    path: Path, allow_truncated_last: bool = False, encoding: str = DEFAULT_ENCODING
) -> list[Pair]:
    """``source<TAB>target[<TAB>...]`` lines; UserError naming the line for a bad one."""
    if not path.is_file():
        raise UserError(f"data file not found: {path}")
    lines = _read_lines(path, encoding)
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


def read_scan(
    directory: Path, split: str = "simple_split", encoding: str = DEFAULT_ENCODING
) -> tuple[list[Pair], list[Pair]]:
    """SCAN's official train and test pairs of ``split``."""
    suffix = "simple" if split == "simple_split" else "length"
    train, test = (
        _read_scan_file(directory / split / f"tasks_{part}_{suffix}.txt", encoding)
        for part in ("train", "test")
    )
    return train, test


def _read_scan_file(path: Path, encoding: str) -> list[Pair]:
    if not path.is_file():
        raise UserError(f"SCAN file not found: {path}")
    pairs = []
    for number, line in enumerate(_read_lines(path, encoding), start=1):
        if not line.strip():
            continue
        match = re.fullmatch(r"IN:\s*(.*?)\s*OUT:\s*(.*?)\s*", line)
        if not match:
            raise UserError(f"{path}, line {number}: expected 'IN: ... OUT: ...'")
        pairs.append((match.group(1), match.group(2)))
    if not pairs:
        raise UserError(f"{path}: no 'IN: ... OUT: ...' lines (the file is empty)")
    return pairs


def _read_lines(path: Path, encoding: str) -> list[str]:
    """The lines of a text file in ``encoding``; UserError naming the line of a bad byte."""
    return read_text(path, encoding=encoding).splitlines()


def _tfds_pairs(tfds, name: str, part: str) -> list[Pair]:
    try:
        dataset = tfds.load(name, split=part, as_supervised=True)
    except Exception as err:  # no internet, download or preparation failure
        raise UserError(f"tfds:{name}: could not load ({str(err).splitlines()[0]})") from None
    return [(s.decode("utf-8"), t.decode("utf-8")) for s, t in tfds.as_numpy(dataset)]


# === Splitting and encoding ===


def _sample(pairs: list[Pair], max_examples: int, seed: int) -> list[Pair]:
    return [pairs[i] for i in sample_indices(len(pairs), max_examples, seed)]


def _hold_out(pairs: list[Pair], fraction: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """``pairs`` less a seeded ``fraction`` of them, and that fraction (validation)."""
    order = np.random.default_rng(seed).permutation(len(pairs))
    count = max(1, int(len(pairs) * fraction))
    return [pairs[i] for i in order[count:]], [pairs[i] for i in order[:count]]


def _random_splits(pairs, config: TranslationConfig, seed: int, name: str, source: str) -> Splits:
    pairs = _sample(pairs, config.max_examples, seed)
    fractions = (config.validation_fraction, config.test_fraction)
    parts = split_indices(len(pairs), *fractions, seed, what="pairs", source=source)
    return _splits(
        {part: [pairs[i] for i in indices] for part, indices in parts.items()},
        config,
        name,
        source,
    )


def _within_limits(pairs: list[Pair], max_source: int, max_target: int) -> list[Pair]:
    if not pairs:
        return []
    sources = source_tokens([s for s, _ in pairs])
    return [
        pair
        for pair, tokens in zip(pairs, sources, strict=True)
        if 0 < len(tokens) <= max_source and 0 < len(normalize_text(pair[1]).split()) <= max_target
    ]


def _vocabulary(token_lists, limit: int) -> list[str]:
    counts = collections.Counter(t for tokens in token_lists for t in tokens)
    return [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))][:limit]


def _encode(pairs: list[Pair], target_vocabulary: list[str], max_target_length: int):
    index = {t: i for i, t in enumerate(target_vocabulary)}
    targets = [normalize_text(t) for _, t in pairs]
    ids = np.zeros((len(pairs), max_target_length + 2), np.int32)
    for row, target in enumerate(targets):
        tokens = [START, *target.split(), END]
        ids[row, : len(tokens)] = [index.get(t, 1) for t in tokens]
    inputs = {
        "source": np.array([s for s, _ in pairs], dtype=object),
        "target": np.array(targets, dtype=object),
    }
    return inputs, ids


def _test_split(pairs: list[Pair], info: TranslationInfo, source: str):
    """Pairs within the run's length limits, encoded with its target vocabulary."""
    kept = _within_limits(pairs, info.max_source_length, info.max_target_length)
    if len(kept) < len(pairs):
        log(f"{len(pairs) - len(kept)} of {len(pairs)} pairs are over the length limits; left out")
    if not kept:
        raise UserError(f"{source}: no pair within the length limits")
    return _encode(kept, info.target_vocabulary, info.max_target_length)


def _splits(
    parts: dict[str, list[Pair]], config: TranslationConfig, name: str, source: str, **extra
) -> Splits:
    """Over-long pairs counted and left out, vocabularies built on train, every split encoded."""
    kept, over = _drop_over_long(parts, config, source)
    train = kept["train"]
    info = TranslationInfo(
        name=name,
        source=source,
        source_vocabulary=_vocabulary(source_tokens([s for s, _ in train]), config.max_vocabulary),
        target_vocabulary=RESERVED
        + _vocabulary([normalize_text(t).split() for _, t in train], config.max_vocabulary),
        over_length=over,
        max_source_length=config.max_source_length,
        max_target_length=config.max_target_length,
        beam_width=config.beam_width,
        length_penalty=config.length_penalty,
        **extra,
    )
    encoded = {
        part: _encode(kept[part], info.target_vocabulary, config.max_target_length)
        for part in SPLIT_NAMES
    }
    return Splits(**encoded, info=info)


def _drop_over_long(parts: dict[str, list[Pair]], config: TranslationConfig, source: str):
    """Each split's pairs within the length limits, and how many were left out (logged)."""
    kept, over = {}, {}
    for part in SPLIT_NAMES:
        pairs = parts[part]
        kept[part] = _within_limits(pairs, config.max_source_length, config.max_target_length)
        over[part] = len(pairs) - len(kept[part])
        if over[part]:
            log(
                f"{part}: {over[part]} of {len(pairs)} pairs are longer than "
                f"max_source_length={config.max_source_length} / "
                f"max_target_length={config.max_target_length} tokens; left out"
            )
        if not kept[part]:
            raise UserError(f"{source}: no {part} pair within the length limits")
    return kept, over
