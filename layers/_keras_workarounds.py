"""The one piece of Keras's private code the cells rely on, isolated here.

`keras.layers.RNN` draws a cell's dropout masks once before its loop over the
steps, and clears them after the call, only for cells that are instances of
`DropoutRNNCell` (the type check that tensorflow/tensorflow#32543 asked for,
which Keras 3 keeps in `keras.layers.RNN.call`). Keras 3 does not export that
class under a public name, so a cell of our own that wants Keras's dropout,
with the same masks as `keras.layers.LSTMCell` and friends, has to subclass it
from `keras.src`. Nothing else in `layers` reads Keras's private modules; when
Keras exports the class, import it from there and delete this module.
"""

from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

__all__ = ["DropoutRNNCell"]
