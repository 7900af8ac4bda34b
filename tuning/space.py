"""The ranges a pipeline's hyperparameter search explores. Imports no TensorFlow."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """Ranges of the tuned hyperparameters; each pipeline states its own.

    The config's current value of each hyperparameter is the search's default
    and is always among the candidates.
    """

    units: tuple[int, ...] = (32, 64, 128, 256)
    dropout: tuple[float, float] = (0.0, 0.5)
    learning_rate: tuple[float, float] = (1e-4, 1e-2)
    batch_sizes: tuple[int, ...] = (32, 64, 128)
    cells: tuple[str, ...] = ("lstm", "gru")
    depths: tuple[int, ...] = (1, 2)
    bidirectional: tuple[bool, ...] = (False, True)
