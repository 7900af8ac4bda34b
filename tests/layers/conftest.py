"""Shared fixtures for the `layers` tests: cell cases, inputs and masks."""

import dataclasses
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import layers  # noqa: E402

BATCH, STEPS, FEATURES, UNITS = 3, 5, 4, 3


@dataclasses.dataclass(frozen=True)
class CellCase:
    """One of our cell configurations, our layer of that kind (with the fast
    path) and Keras's built-in layer of the same kind."""

    id: str
    ours: type
    our_layer_class: type
    keras_layer: type
    kwargs: dict = dataclasses.field(default_factory=dict)

    def our_cell(self, **extra):
        """A new cell of ours with this case's arguments (plus `extra`)."""
        return self.ours(UNITS, **self.kwargs, **extra)

    def our_rnn(self, cell_kwargs=None, **rnn_kwargs):
        """`keras.layers.RNN` around a new cell of ours (Keras's generic loop)."""
        return keras.layers.RNN(self.our_cell(**(cell_kwargs or {})), **rnn_kwargs)

    def our_layer(self, cell_kwargs=None, **rnn_kwargs):
        """Our `SimpleRNN`, `LSTM` or `GRU` layer (the fast path on TensorFlow)."""
        return self.our_layer_class(UNITS, **self.kwargs, **(cell_kwargs or {}), **rnn_kwargs)

    def keras_rnn(self, cell_kwargs=None, **rnn_kwargs):
        """Keras's own layer (`SimpleRNN`, `LSTM` or `GRU`) with the same arguments."""
        return self.keras_layer(UNITS, **self.kwargs, **(cell_kwargs or {}), **rnn_kwargs)


_SIMPLE = (layers.SimpleRNNCell, layers.SimpleRNN, keras.layers.SimpleRNN)
_LSTM = (layers.LSTMCell, layers.LSTM, keras.layers.LSTM)
_GRU = (layers.GRUCell, layers.GRU, keras.layers.GRU)

CELL_CASES = [
    *(
        CellCase(f"simple_rnn_{act}", *_SIMPLE, {"activation": act})
        for act in ("tanh", "relu", "leaky_relu", "sigmoid")
    ),
    CellCase("lstm", *_LSTM),
    CellCase("lstm_no_bias", *_LSTM, {"use_bias": False}),
    CellCase("lstm_relu_tanh", *_LSTM, {"activation": "relu", "recurrent_activation": "tanh"}),
    CellCase("gru_reset_after", *_GRU, {"reset_after": True}),
    CellCase("gru_reset_before", *_GRU, {"reset_after": False}),
    CellCase("gru_no_bias", *_GRU, {"use_bias": False}),
    CellCase(
        "gru_leaky_relu_hard", *_GRU, {"activation": "leaky_relu", "recurrent_activation": "relu"}
    ),
]


@pytest.fixture(autouse=True)
def _seed():
    """Make weight initialisation deterministic in every test."""
    keras.utils.set_random_seed(0)


@pytest.fixture(params=CELL_CASES, ids=lambda case: case.id)
def cell_case(request) -> CellCase:
    """Each cell configuration in turn."""
    return request.param


@pytest.fixture(scope="session")
def cell_cases() -> list[CellCase]:
    """All cell configurations at once."""
    return CELL_CASES


@pytest.fixture(scope="session")
def inputs() -> np.ndarray:
    """A `(BATCH, STEPS, FEATURES)` float32 batch of sequences."""
    return np.random.default_rng(0).normal(size=(BATCH, STEPS, FEATURES)).astype("float32")


@pytest.fixture(scope="session")
def padding_mask() -> np.ndarray:
    """`(BATCH, STEPS)` mask of sequences of lengths 5, 3 and 1 (trailing padding)."""
    lengths = np.array([5, 3, 1])
    return np.arange(STEPS)[None, :] < lengths[:, None]
