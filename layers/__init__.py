"""Recurrent building blocks: Keras-compatible cells, stack builders and TBPTT.

Importing this package registers the cells with Keras serialization under
the `rnn_suite` package, so saved `.keras` models using them load back.
"""

from layers.gru_cell import GRUCell
from layers.lstm_cell import LSTMCell
from layers.simple_rnn_cell import SimpleRNNCell
from layers.stack import CELL_KINDS, make_cell, recurrent_layers, recurrent_stack
from layers.tbptt import reset_recurrent_states, split_into_windows, train_on_windows

__all__ = [
    "CELL_KINDS",
    "GRUCell",
    "LSTMCell",
    "SimpleRNNCell",
    "make_cell",
    "recurrent_layers",
    "recurrent_stack",
    "reset_recurrent_states",
    "split_into_windows",
    "train_on_windows",
]
