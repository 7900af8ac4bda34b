"""Build the (optionally deep and bidirectional) recurrent stack a model asks for."""

import keras

from layers._base import check_positive_int, check_rate
from layers.gru_cell import GRUCell
from layers.lstm_cell import LSTMCell
from layers.recurrent import GRU, LSTM, Bidirectional, SimpleRNN
from layers.simple_rnn_cell import SimpleRNNCell

CELL_KINDS = ("simple_rnn", "lstm", "gru")
_CELL_CLASSES = {"simple_rnn": SimpleRNNCell, "lstm": LSTMCell, "gru": GRUCell}
_LAYER_CLASSES = {"simple_rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}


def make_cell(
    kind: str,
    units: int,
    *,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    activation: str = "tanh",
    seed: int | None = None,
    **kwargs,
) -> keras.layers.Layer:
    """Return a new cell of the given kind (one of `CELL_KINDS`).

    `dropout` and `recurrent_dropout` are the cell's input and recurrent
    dropout rates; `kwargs` go to the cell's constructor (e.g.
    `reset_after=False` for a GRU).
    """
    if kind not in _CELL_CLASSES:
        raise ValueError(f"Unknown cell kind {kind!r}; expected one of {CELL_KINDS}.")
    return _CELL_CLASSES[kind](
        units,
        activation=activation,
        dropout=dropout,
        recurrent_dropout=recurrent_dropout,
        seed=seed,
        **kwargs,
    )


def recurrent_layers(
    *,
    cell: str = "lstm",
    units: int = 64,
    depth: int = 1,
    bidirectional: bool = False,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    return_sequences: bool = False,
    stateful: bool = False,
    activation: str = "tanh",
    seed: int | None = None,
    name: str = "recurrent",
) -> list[keras.layers.Layer]:
    """Return `depth` recurrent layers named `f"{name}_{i}"`, to apply in turn.

    Each is a `layers.SimpleRNN`, `LSTM` or `GRU` (a `keras.layers.RNN` around
    the cell `make_cell(cell, units, ...)` would build, with a fast path on
    TensorFlow), wrapped in `layers.Bidirectional` if `bidirectional`
    (doubling its feature size). All but the last return sequences; the last
    does so only if `return_sequences`. With a `seed`, layer `i` uses
    `seed + i` so that the layers draw different dropout masks.
    """
    depth = check_positive_int("depth", depth)
    check_positive_int("units", units)
    check_rate("dropout", dropout)
    check_rate("recurrent_dropout", recurrent_dropout)
    if cell not in _LAYER_CLASSES:
        raise ValueError(f"Unknown cell kind {cell!r}; expected one of {CELL_KINDS}.")
    layers = []
    for i in range(depth):
        rnn = _LAYER_CLASSES[cell](
            units,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            activation=activation,
            seed=None if seed is None else seed + i,
            return_sequences=return_sequences or i < depth - 1,
            stateful=stateful,
            name=f"{name}_{i}_rnn" if bidirectional else f"{name}_{i}",
        )
        layers.append(Bidirectional(rnn, name=f"{name}_{i}") if bidirectional else rnn)
    return layers


def recurrent_stack(inputs: keras.KerasTensor, **kwargs) -> keras.KerasTensor:
    """Apply `recurrent_layers(**kwargs)` in turn to a functional-API tensor.

    Keras masks on `inputs` (e.g. from `Masking` or `Embedding(mask_zero=True)`)
    propagate through every layer.
    """
    x = inputs
    for layer in recurrent_layers(**kwargs):
        x = layer(x)
    return x
