"""A word n-gram language model (interpolated Kneser-Ney) over transcripts, in plain Python.

Built from the training transcripts and used to rescore the decoder's candidates
(``score = CTC log-probability + lm_weight * LM log-probability``) in the evaluation and in
prediction over files. Only the highest-order counts are kept (they determine every lower
order's continuation counts), so the model is a JSON-able ``{"order", "ngrams"}`` record.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable
from typing import Any

START, END = "<s>", "</s>"
DISCOUNT = 0.75  # Kneser-Ney's absolute discount, the usual value for small corpora
MAX_LM_NGRAMS = 500_000  # highest-order n-grams kept (the most frequent), bounding the record

Ngram = tuple[str, ...]


def count_ngrams(transcripts: Iterable[str], order: int) -> collections.Counter[Ngram]:
    """Counts of the ``order``-grams of the transcripts, each padded with ``order - 1``
    sentence starts and one sentence end."""
    counts: collections.Counter[Ngram] = collections.Counter()
    for text in transcripts:
        tokens = [START] * (order - 1) + text.split() + [END]
        counts.update(tuple(tokens[i : i + order]) for i in range(len(tokens) - order + 1))
    return counts


class WordNgramModel:
    """Interpolated Kneser-Ney word n-gram model with a uniform floor for unknown words.

    Args:
        counts: the highest-order n-gram counts (``count_ngrams``).
        order: the n of the n-grams (1: unigram).
    """

    def __init__(self, counts: dict[Ngram, int], order: int):
        if order < 1:
            raise ValueError(f"order must be at least 1, got {order}")
        self.order = order
        self.counts = dict(counts)
        self.vocabulary = {w for gram in self.counts for w in gram if w != START}
        self._levels = self._level_counts()

    @classmethod
    def from_transcripts(cls, transcripts: Iterable[str], order: int) -> WordNgramModel:
        """The model of ``transcripts`` (the ``MAX_LM_NGRAMS`` most frequent n-grams kept)."""
        counts = count_ngrams(transcripts, order)
        return cls(dict(counts.most_common(MAX_LM_NGRAMS)), order)

    def _level_counts(self) -> list[tuple[dict[Ngram, int], dict[Ngram, tuple[int, int]]]]:
        """Per level k (1..order): the n-gram counts (raw at the top, continuation counts
        below) and, per history, (total count, distinct following words)."""
        levels: list[Any] = [None] * (self.order + 1)
        grams: dict[Ngram, int] = self.counts
        for k in range(self.order, 0, -1):
            histories: dict[Ngram, list[int]] = {}
            for gram, count in grams.items():
                entry = histories.setdefault(gram[:-1], [0, 0])
                entry[0] += count
                entry[1] += 1
            levels[k] = (grams, {h: (t, n) for h, (t, n) in histories.items()})
            lower: collections.Counter[Ngram] = collections.Counter(g[1:] for g in grams)
            grams = dict(lower)
        return levels

    def probability(self, word: str, history: Ngram) -> float:
        """P(word | the last ``order - 1`` words of ``history``)."""
        history = history[len(history) - (self.order - 1) :] if self.order > 1 else ()
        probability = 1.0 / (len(self.vocabulary) + 1)  # the floor: one share for unknown
        for k in range(1, self.order + 1):
            context = history[len(history) - (k - 1) :] if k > 1 else ()
            grams, histories = self._levels[k]
            total, types = histories.get(context, (0, 0))
            if total == 0:
                continue
            seen = max(grams.get((*context, word), 0) - DISCOUNT, 0.0)
            probability = (seen + DISCOUNT * types * probability) / total
        return probability

    def log_prob(self, text: str) -> float:
        """Natural log-probability of a whole transcript, its sentence end included."""
        history: Ngram = (START,) * (self.order - 1)
        total = 0.0
        for word in [*text.split(), END]:
            total += math.log(self.probability(word, history))
            history = (*history, word)
        return total

    def to_json(self) -> dict[str, Any]:
        """``{"order": n, "ngrams": {"w1 w2 w3": count}}``."""
        return {"order": self.order, "ngrams": {" ".join(g): c for g, c in self.counts.items()}}

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> WordNgramModel:
        """The model ``to_json`` wrote."""
        return cls(
            {tuple(g.split(" ")): int(c) for g, c in record["ngrams"].items()}, record["order"]
        )


def rescore(
    candidates: list[str], scores: list[float], model: WordNgramModel, weight: float
) -> str:
    """The candidate of the highest ``score + weight * log P_LM`` (shallow fusion)."""
    fused = [s + weight * model.log_prob(c) for c, s in zip(candidates, scores, strict=True)]
    return candidates[max(range(len(candidates)), key=fused.__getitem__)]
