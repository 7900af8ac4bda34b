"""Truncated backpropagation through time (TBPTT) with stateful windows.

A long sequence is cut into windows along time and fed, in order, to a model
whose recurrent layers are `stateful=True`: each window starts from the
states the previous one ended with (so the forward pass equals one pass over
the whole sequence), while gradients stop at window boundaries because the
carried states are variables, not part of the window's graph.
"""

import keras
import numpy as np

from layers._base import check_positive_int


def split_into_windows(sequences: np.ndarray, window: int) -> list[np.ndarray]:
    """Split `[batch, steps, ...]` along time into `[batch, window, ...]` chunks.

    The last chunk is shorter when `window` does not divide `steps`.
    """
    window = check_positive_int("window", window)
    sequences = np.asarray(sequences)
    if sequences.ndim < 2:
        raise ValueError(f"`sequences` must be [batch, steps, ...], got shape {sequences.shape}.")
    steps = sequences.shape[1]
    return [sequences[:, start : start + window] for start in range(0, steps, window)]


def reset_recurrent_states(model: keras.Model) -> None:
    """Zero the states of every stateful layer directly inside `model`."""
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_state()


def train_on_windows(
    model: keras.Model, sequences: np.ndarray, targets: np.ndarray, window: int
) -> list[float]:
    """Run one TBPTT pass over a batch of long sequences; return window losses.

    `model` must be compiled, stateful, and map `[batch, steps, features]` to
    per-step outputs matching `targets` `[batch, steps, ...]`. States are reset
    first, then `train_on_batch` runs on each window in order.
    """
    reset_recurrent_states(model)
    return [
        float(model.train_on_batch(x, y, return_dict=True)["loss"])
        for x, y in zip(
            split_into_windows(sequences, window), split_into_windows(targets, window), strict=True
        )
    ]
