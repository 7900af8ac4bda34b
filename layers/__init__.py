"""Recurrent building blocks: Keras-compatible cells and layers, stack builders, TBPTT.

Importing this package registers the cells and layers with Keras
serialization under the `rnn_suite` package, so saved `.keras` models using
them load back.

Exporting: where the native kernels are built (`layers.native`), `LSTM` and
`GRU` may run this project's own C++ ops, which TensorFlow alone cannot load,
and elsewhere loops marked for XLA compilation, which TensorFlow Serving's
model server refuses. A model you export yourself must be traced and written
inside `serving_kernels()`, where the layers run plain TensorFlow loops
instead, so that its SavedModel holds only TensorFlow's standard ops, nothing
marked for XLA, and serves anywhere:

    with layers.serving_kernels():
        model.export("exported", format="tf_saved_model")

The same holds for `tf.saved_model.save` and `keras.export.ExportArchive`
(cover `add_endpoint`, which traces, as well as `write_out`), and for a
function you compile whole with XLA yourself (`tf.function(jit_compile=True)`),
since XLA cannot compile the native ops. `pipelines.export.write_export` does
this for the pipelines.
"""

from layers.conv_lstm_cell import ConvLSTM, ConvLSTMCell  # noqa: F401  (registers them)
from layers.gru_cell import GRUCell
from layers.lstm_cell import LSTMCell
from layers.native import serving_kernels
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
    "serving_kernels",
    "split_into_windows",
    "train_on_windows",
]
