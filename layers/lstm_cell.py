"""Long short-term memory cell, a drop-in twin of `keras.layers.LSTMCell`."""

import keras
from keras import ops

from layers._base import RecurrentCell, get_activation, masked_matmul


@keras.saving.register_keras_serializable(package="rnn_suite")
class LSTMCell(RecurrentCell):
    """LSTM cell (Hochreiter & Schmidhuber, 1997) with gates in Keras's order.

    The gates `i` (input), `f` (forget), `c` (candidate) and `o` (output) sit
    side by side in `kernel` `(features, 4 * units)`, `recurrent_kernel`
    `(units, 4 * units)` and `bias` `(4 * units,)`, exactly as in
    `keras.layers.LSTMCell`:

        i, f, o = recurrent_activation(x @ W + h @ U + b)  # per gate
        c_t = f * c_{t-1} + i * activation(x @ W_c + h @ U_c + b_c)
        h_t = o * activation(c_t)

    Args:
        units: Positive integer, size of the output and of each state.
        activation: Activation of the candidate and of the output, one of
            `"tanh"`, `"relu"`, `"leaky_relu"`, `"sigmoid"`.
        recurrent_activation: Activation of the gates, same choices.
        use_bias: Whether to add a bias vector.
        unit_forget_bias: Whether to initialise the forget gate bias to one
            (the other gates use `bias_initializer`).
        kernel_initializer: Initializer for `kernel`.
        recurrent_initializer: Initializer for `recurrent_kernel`.
        bias_initializer: Initializer for `bias`.
        dropout: Fraction in `[0, 1)` of the inputs to drop (training only).
        recurrent_dropout: Fraction in `[0, 1)` of the hidden state to drop
            (training only).
        seed: Integer seed for the dropout masks, or `None`.
        **kwargs: Passed to `keras.layers.Layer`.

    Call arguments:
        inputs: `(batch, features)` tensor, one time step.
        states: `[h, c]`, the previous hidden and carry states, each
            `(batch, units)`.
        training: Whether to apply dropout.

    Returns:
        `(h, [h, c])`, each `(batch, units)`.

    Example:

    >>> rnn = keras.layers.RNN(LSTMCell(4), return_state=True)
    >>> output, h, c = rnn(np.zeros((2, 5, 3)))
    >>> tuple(output.shape), tuple(c.shape)
    ((2, 4), (2, 4))
    """

    n_gates = 4

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        unit_forget_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(
            units,
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            **kwargs,
        )
        self.recurrent_activation = get_activation("recurrent_activation", recurrent_activation)
        self.unit_forget_bias = unit_forget_bias
        self.state_size = [self.units, self.units]
        self.output_size = self.units

    def _bias_initializer(self):
        if not self.unit_forget_bias:
            return self.bias_initializer

        def initializer(shape, dtype=None):
            units = self.units
            return ops.concatenate(
                [
                    self.bias_initializer((units,), dtype=dtype),
                    ops.ones((units,), dtype=dtype),
                    self.bias_initializer((2 * units,), dtype=dtype),
                ]
            )

        return initializer

    def call(self, inputs, states, training=False):
        """Advance one step; see the class docstring."""
        h_tm1, c_tm1 = states
        input_masks, state_masks = self._dropout_masks(inputs, h_tm1, training)
        z = masked_matmul(inputs, self.kernel, input_masks)
        z = z + masked_matmul(h_tm1, self.recurrent_kernel, state_masks)
        if self.use_bias:
            z = z + self.bias
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        c = f * c_tm1 + i * self.activation(z_c)
        h = self.recurrent_activation(z_o) * self.activation(c)
        return h, [h, c]

    def get_config(self):
        """Every constructor argument, plus the base layer config."""
        config = {
            "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
            "unit_forget_bias": self.unit_forget_bias,
        }
        return {**super().get_config(), **config}
