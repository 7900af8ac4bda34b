"""Translation data: built-in number phrases, Tatoeba pairs, SCAN, the user's TSV, TFDS.

Every source gives (source, target) sentence pairs, kept as written (case, punctuation,
accents). Each side's subword pieces are learned with SentencePiece from the training
sentences (``subwords``); the model segments sources in its graph, and targets are segmented
here by the same graph code into ids ``[start] p1 ... pn [end]`` padded with 0 to
``max_target_length + 2``. Pairs are grouped by source sentence before splitting, so that no
test source is seen in training, and a test row is scored against all of its references.
A split is ``({"source": str array, "target": str array (the first reference),
"references": tuples of str}, ids [n, T + 2])``.
"""

from __future__ import annotations

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
from pipelines.translation import subwords
from pipelines.translation.config import TranslationConfig

PAD, UNK, START, END = "", "[UNK]", "[start]", "[end]"
RESERVED = [PAD, UNK, START, END]
UNK_ID = RESERVED.index(UNK)
# The longest source text, in UTF-8 bytes, that `predict` and the serving export take (the
# export also refuses more than max_source_length pieces); a longer one is a clear error.
MAX_TEXT_BYTES = 10_000
BUILTIN_SOURCE = "num2words 0.5.14: English -> French number phrases, 0..{}"
SEGMENT_BATCH = 1024  # texts segmented at once when preparing data

Pair = tuple[str, str]
Group = tuple[str, tuple[str, ...]]  # a source sentence and all of its reference translations


@dataclasses.dataclass(frozen=True)
class TranslationInfo(DataInfo):
    """What the translation model is built from and decodes with.

    Attributes:
        source_vocabulary: the source side's subword pieces (SentencePiece, training sources).
        target_vocabulary: ``RESERVED`` then the target side's subword pieces.
        over_length: rows of each split left out for being over the length limits.
        max_source_length: most source pieces the model reads (the export refuses more).
        max_target_length: most target pieces it writes (without start and end).
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


# === Segmentation (the model's own graph code, run here on the data) ===


class Segmenter:
    """``subwords.segment`` over one side's pieces (ids from ``first_id``), in batches."""

    def __init__(self, pieces: list[str], first_id: int, max_pieces: int):
        self.table = subwords.piece_table(pieces, first_id)
        chars = min(subwords.MAX_PIECE_CHARS, max(len(p) for p in pieces))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def run(text):
            return subwords.segment(text, self.table, chars, max_pieces, UNK_ID)

        self.run = run

    def __call__(self, texts) -> tuple[np.ndarray, np.ndarray]:
        """(ids [n, max_pieces], piece counts [n], up to max_pieces + 1) of ``texts``."""
        texts = [str(t) for t in texts]
        ids, counts = [], []
        for start in range(0, max(len(texts), 1), SEGMENT_BATCH):
            batch_ids, batch_counts = self.run(tf.constant(texts[start : start + SEGMENT_BATCH]))
            ids.append(batch_ids.numpy())
            counts.append(batch_counts.numpy())
        return np.concatenate(ids), np.concatenate(counts)


_SOURCE_SEGMENTERS: dict[int, tuple[list[str], Segmenter]] = {}


def source_segmenter(info: TranslationInfo) -> Segmenter:
    """The segmenter of ``info``'s source pieces, made once per vocabulary."""
    key = id(info.source_vocabulary)
    cached = _SOURCE_SEGMENTERS.get(key)
    if cached is None or cached[0] is not info.source_vocabulary:
        cached = (
            info.source_vocabulary,
            Segmenter(info.source_vocabulary, 2, info.max_source_length),
        )
        _SOURCE_SEGMENTERS[key] = cached
    return cached[1]


def source_pieces(texts, info: TranslationInfo) -> list[list[str]]:
    """Source texts as the model's pieces."""
    ids, _ = source_segmenter(info)(texts)
    return [[info.source_vocabulary[i - 2] if i > 1 else UNK for i in row if i] for row in ids]


def input_problem(text: str, info: TranslationInfo) -> str | None:
    """Why ``text`` cannot be translated (too many bytes, no words, too many pieces), or None."""
    size = len(text.encode("utf-8", errors="surrogateescape"))
    if size > MAX_TEXT_BYTES:
        return f"is {size:,} bytes long, more than the {MAX_TEXT_BYTES:,} a text may have"
    count = int(source_segmenter(info)([text])[1][0])
    if not count:
        return "is empty"
    if count > info.max_source_length:
        return (
            f"has {count} tokens or more (subword pieces), "
            f"more than max_source_length={info.max_source_length}"
        )
    return None


# === Loaders, one per data source ===


def load_builtin(config: TranslationConfig, argument: str, seed: int) -> Splits:
    """The built-in number phrases, split by number with ``seed`` (disjoint splits)."""
    numbers = builtin_numbers(config, seed)
    parts = {part: builtin_pairs(numbers[part]) for part in SPLIT_NAMES}
    parts["test"] = group_by_source(parts["test"])
    source = BUILTIN_SOURCE.format(config.builtin_max_number)
    test_numbers = [int(n) for n in numbers["test"][:20]]
    return _splits(parts, config, "numbers_en_fr", source, test_numbers=test_numbers)


def load_tatoeba(config: TranslationConfig, path: str, seed: int) -> Splits:
    """A Tatoeba (manythings) file of pairs, split by source sentence with ``seed``."""
    pairs = read_pairs(Path(path), allow_truncated_last=True, encoding=config.encoding)
    return _grouped_splits(pairs, config, seed, "tatoeba", f"tatoeba:{path}")


def load_tsv(config: TranslationConfig, path: str, seed: int) -> Splits:
    """A TSV of ``source<TAB>target`` pairs, split by source sentence with ``seed``."""
    pairs = read_pairs(Path(path), encoding=config.encoding)
    return _grouped_splits(pairs, config, seed, "tsv", f"tsv:{path}")


def load_scan(config: TranslationConfig, directory: str, seed: int) -> Splits:
    """SCAN's official train and test files of ``scan_split``; validation carved from train."""
    train, test = read_scan(Path(directory), config.scan_split, config.encoding)
    train = _sample(train, config.max_examples, seed)
    test = _sample(test, config.max_examples and max(50, config.max_examples // 5), seed)
    train, validation = _hold_out(train, config.validation_fraction, seed)
    parts = {"train": train, "validation": validation, "test": group_by_source(test)}
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
    parts["test"] = group_by_source(parts["test"])
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


def group_by_source(pairs: list[Pair]) -> list[Group]:
    """Each distinct source once, in order of first appearance, with all of its targets."""
    targets: dict[str, list[str]] = {}
    for source, target in pairs:
        targets.setdefault(source, []).append(target)
    return [(source, tuple(references)) for source, references in targets.items()]


def _pairs_of(groups: list[Group]) -> list[Pair]:
    return [(source, target) for source, targets in groups for target in targets]


def _grouped_splits(pairs, config: TranslationConfig, seed: int, name: str, source: str):
    """Distinct source sentences sampled and split with ``seed``: every translation of a
    source lands in the same split (train and validation as pairs, test grouped)."""
    groups = group_by_source(pairs)
    groups = [groups[i] for i in sample_indices(len(groups), config.max_examples, seed)]
    fractions = (config.validation_fraction, config.test_fraction)
    parts = split_indices(len(groups), *fractions, seed, what="source sentences", source=source)
    chosen = {part: [groups[i] for i in indices] for part, indices in parts.items()}
    return _splits(
        {
            "train": _pairs_of(chosen["train"]),
            "validation": _pairs_of(chosen["validation"]),
            "test": chosen["test"],
        },
        config,
        name,
        source,
    )


def _test_split(pairs: list[Pair], info: TranslationInfo, source: str):
    """Test rows (grouped by source) within the run's length limits, with its vocabularies."""
    groups = group_by_source(pairs)
    target = Segmenter(
        info.target_vocabulary[len(RESERVED) :], len(RESERVED), info.max_target_length
    )
    kept, _ = _within_limits(groups, source_segmenter(info), target, info)
    if len(kept) < len(groups):
        log(
            f"{len(groups) - len(kept)} of {len(groups)} sources are over the length limits; "
            "left out"
        )
    if not kept:
        raise UserError(f"{source}: no pair within the length limits")
    return _encode(kept, target, info.max_target_length)


def _within_limits(groups: list[Group], source: Segmenter, target: Segmenter, limits):
    """The groups whose source and first reference are within the length limits in pieces,
    and how many were left out."""
    if not groups:
        return [], 0
    _, source_counts = source(s for s, _ in groups)
    _, target_counts = target(refs[0] for _, refs in groups)
    fits = (
        (source_counts > 0)
        & (source_counts <= limits.max_source_length)
        & (target_counts > 0)
        & (target_counts <= limits.max_target_length)
    )
    return [g for g, ok in zip(groups, fits, strict=True) if ok], int((~fits).sum())


def _encode(groups: list[Group], target: Segmenter, max_target_length: int):
    """Inputs and ``[start] pieces [end]`` ids of the first reference of each group."""
    pieces, counts = target(refs[0] for _, refs in groups)
    ids = np.zeros((len(groups), max_target_length + 2), np.int32)
    ids[:, 0] = RESERVED.index(START)
    ids[:, 1 : max_target_length + 1] = pieces[:, :max_target_length]
    ids[np.arange(len(groups)), np.minimum(counts, max_target_length) + 1] = RESERVED.index(END)
    references = np.empty(len(groups), dtype=object)
    references[:] = [refs for _, refs in groups]
    inputs = {
        "source": np.array([s for s, _ in groups], dtype=object),
        "target": np.array([refs[0] for _, refs in groups], dtype=object),
        "references": references,
    }
    return inputs, ids


def _splits(parts: dict[str, list], config: TranslationConfig, name: str, source: str, **extra):
    """Pieces learned on train, over-long rows counted and left out, every split encoded.

    ``parts``: train and validation as pairs, test as groups (a source, all its targets)."""
    groups = {
        part: parts[part] if part == "test" else [(s, (t,)) for s, t in parts[part]]
        for part in SPLIT_NAMES
    }
    train = parts["train"]
    source_vocabulary = subwords.learn_pieces([s for s, _ in train], config.max_vocabulary)
    target_pieces = subwords.learn_pieces([t for _, t in train], config.max_vocabulary)
    source_side = Segmenter(source_vocabulary, 2, config.max_source_length)
    target_side = Segmenter(target_pieces, len(RESERVED), config.max_target_length)
    kept, over = {}, {}
    for part in SPLIT_NAMES:
        kept[part], over[part] = _within_limits(groups[part], source_side, target_side, config)
        if over[part]:
            log(
                f"{part}: {over[part]} of {len(groups[part])} rows are longer than "
                f"max_source_length={config.max_source_length} / "
                f"max_target_length={config.max_target_length} pieces; left out"
            )
        if not kept[part]:
            raise UserError(f"{source}: no {part} pair within the length limits")
    info = TranslationInfo(
        name=name,
        source=source,
        source_vocabulary=source_vocabulary,
        target_vocabulary=RESERVED + target_pieces,
        over_length=over,
        max_source_length=config.max_source_length,
        max_target_length=config.max_target_length,
        beam_width=config.beam_width,
        length_penalty=config.length_penalty,
        **extra,
    )
    encoded = {
        part: _encode(kept[part], target_side, config.max_target_length) for part in SPLIT_NAMES
    }
    return Splits(**encoded, info=info)
