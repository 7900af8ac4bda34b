"""Seeded sampling and the train/validation/test split, written once for every pipeline.

Imports no TensorFlow.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from pipelines.errors import UserError

SPLIT_NAMES = ("train", "validation", "test")


def sample_indices(count: int, max_examples: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded sample of ``max_examples`` of ``count`` (0 keeps all)."""
    if not max_examples or count <= max_examples:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, max_examples, replace=False))


def split_indices(
    count: int,
    validation_fraction: float,
    test_fraction: float,
    seed: int,
    *,
    stratify: np.ndarray | None = None,
    what: str = "examples",
    source: str = "the data",
) -> dict[str, np.ndarray]:
    """Indices of a seeded split into ``train``, ``validation`` and ``test``.

    With ``stratify`` (one class per item) each split keeps the class shares; every
    class then needs at least 3 items, and each held-out split at least one item per class.
    UserError when the data are too few to split: there is no unstratified fallback, since
    a tiny test split missing some classes would report a misleading accuracy.
    """
    held_out = validation_fraction + test_fraction
    if stratify is not None:
        smallest = int(np.bincount(stratify).min()) if len(stratify) else 0
        if count < 10 or smallest < 3:
            raise UserError(
                f"{source}: too few {what} to split ({count}; each class needs at least 3)"
            )
    elif count < 3 or count - max(1, int(count * held_out)) < 1:
        raise UserError(f"{source}: too few {what} ({count}) to split into train/validation/test")
    indices = np.arange(count)
    if stratify is not None:
        try:
            train, rest = train_test_split(
                indices, test_size=held_out, random_state=seed, stratify=stratify
            )
            validation, test = train_test_split(
                rest, test_size=test_fraction / held_out, random_state=seed, stratify=stratify[rest]
            )
        except ValueError:  # a held-out split smaller than the number of classes
            raise UserError(
                f"{source}: cannot split {count} {what} of {len(np.unique(stratify))} classes "
                "keeping each class's share in every split: the validation or test split "
                "would have fewer items than there are classes; add data, merge rare classes "
                "or raise validation_fraction/test_fraction"
            ) from None
        return {"train": train, "validation": validation, "test": test}
    order = np.random.default_rng(seed).permutation(count)
    n_test = max(1, int(count * test_fraction))
    n_validation = max(1, int(count * validation_fraction))
    return {
        "train": order[n_test + n_validation :],
        "validation": order[n_test : n_test + n_validation],
        "test": order[:n_test],
    }
