"""Plumbing shared by the recurrent cells: validation, weights, dropout, config.

The cells mirror `keras.layers.SimpleRNNCell`, `LSTMCell` and `GRUCell`:
same weight names, shapes and gate order, and the same way of drawing
dropout masks, so weights (and, for a fixed seed, dropout masks) carry over
one to one.
"""

import numbers

import keras
from keras import ops

from layers._keras_workarounds import DropoutRNNCell

ACTIVATIONS = ("tanh", "relu", "leaky_relu", "sigmoid")


def check_positive_int(name: str, value) -> int:
    """Return `value` as an `int`; raise `ValueError` unless it is a positive integer."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    return int(value)


def check_rate(name: str, rate: float) -> None:
    """Raise `ValueError` unless `0 <= rate < 1`."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"`{name}` must be in [0, 1), got {rate!r}.")


def get_activation(name: str, activation: str):
    """Return the activation function for one of `ACTIVATIONS`."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"`{name}` must be one of {ACTIVATIONS}, got {activation!r}.")
    return keras.activations.get(activation)


def masked_matmul(x, kernel, masks=None):
    """Compute `x @ kernel`, dropping out `x` separately for each gate.

    `kernel` holds `len(masks)` gates side by side along its last axis; the
    columns of gate `g` see `x * masks[g]`. Without masks this is one matmul.
    """
    if masks is None:
        return ops.matmul(x, kernel)
    kernels = ops.split(kernel, len(masks), axis=-1)
    return ops.concatenate(
        [ops.matmul(x * mask, k) for mask, k in zip(masks, kernels, strict=True)], axis=-1
    )


def _per_gate(mask, n_gates):
    """Normalise a cached dropout mask to a list with one mask per gate."""
    if mask is None or isinstance(mask, (list, tuple)):
        return mask
    return [mask] * n_gates


class RecurrentCell(keras.layers.Layer, DropoutRNNCell):
    """Base class: a cell with `n_gates` gates of `units` each.

    Subclasses set `n_gates` and implement `call`; they may override
    `_bias_shape` and `_bias_initializer`.
    """

    n_gates = 1

    def __init__(
        self,
        units,
        activation,
        use_bias,
        kernel_initializer,
        recurrent_initializer,
        bias_initializer,
        dropout,
        recurrent_dropout,
        seed,
        **kwargs,
    ):
        units = check_positive_int("units", units)
        check_rate("dropout", dropout)
        check_rate("recurrent_dropout", recurrent_dropout)
        super().__init__(**kwargs)
        self.units = units
        self.activation = get_activation("activation", activation)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        # Like Keras: recurrent dropout draws one mask per gate (for inputs
        # and state alike), otherwise one input mask is shared by all gates.
        if self.recurrent_dropout > 0 and self.n_gates > 1:
            self.dropout_mask_count = self.n_gates

    def build(self, input_shape):
        """Create `kernel`, `recurrent_kernel` and (optionally) `bias`."""
        width = self.n_gates * self.units
        self.kernel = self.add_weight(
            shape=(input_shape[-1], width),
            name="kernel",
            initializer=self.kernel_initializer,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, width),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=self._bias_shape(),
                name="bias",
                initializer=self._bias_initializer(),
            )

    def _bias_shape(self):
        return (self.n_gates * self.units,)

    def _bias_initializer(self):
        return self.bias_initializer

    def _dropout_masks(self, inputs, state, training):
        """Per-gate (input, state) dropout masks, `None` where none apply."""
        if not training:
            return None, None
        return (
            _per_gate(self.get_dropout_mask(inputs), self.n_gates),
            _per_gate(self.get_recurrent_dropout_mask(state), self.n_gates),
        )

    def get_initial_state(self, batch_size=None):
        """Zero states, one `(batch_size, size)` tensor per state."""
        sizes = self.state_size if isinstance(self.state_size, list) else [self.state_size]
        return [ops.zeros((batch_size, size), dtype=self.compute_dtype) for size in sizes]

    def get_config(self):
        """Constructor arguments shared by all cells, plus the base config."""
        config = {
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}
