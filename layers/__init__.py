"""Recurrent building blocks: Keras-compatible cells and layers, stack builders, TBPTT.

Importing this package registers the cells and layers with Keras
serialization under the `rnn_suite` package, so saved `.keras` models using
them load back.
"""

from layers.conv_lstm_cell import ConvLSTM, ConvLSTMCell  # noqa: F401  (registers them)
from layers.gru_cell import GRUCell
from layers.lstm_cell import LSTMCell
from layers.recurrent import GRU, LSTM, Bidirectional, FastRNN, SimpleRNN
from layers.simple_rnn_cell import SimpleRNNCell
from layers.stack import CELL_KINDS, make_cell, recurrent_layers, recurrent_stack
from layers.tbptt import reset_recurrent_states, split_into_windows, train_on_windows

__all__ = [
    "CELL_KINDS",
    "Bidirectional",
    "GRU",
    "LSTM",
    "FastRNN",
    "GRUCell",
    "LSTMCell",
    "SimpleRNN",
    "SimpleRNNCell",
    "make_cell",
    "recurrent_layers",
    "recurrent_stack",
    "reset_recurrent_states",
    "split_into_windows",
    "train_on_windows",
]
