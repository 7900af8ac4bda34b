"""Fully connected recurrent cell, a drop-in twin of `keras.layers.SimpleRNNCell`."""

import keras

from layers._base import RecurrentCell, masked_matmul


@keras.saving.register_keras_serializable(package="rnn_suite")
class SimpleRNNCell(RecurrentCell):
    """Cell computing `h_t = activation(x_t @ kernel + bias + h_{t-1} @ recurrent_kernel)`.

    Weights (`kernel` `(features, units)`, `recurrent_kernel` `(units, units)`,
    `bias` `(units,)`) match `keras.layers.SimpleRNNCell`, so
    `set_weights(keras_cell.get_weights())` copies one to one.

    Args:
        units: Positive integer, size of the output and of the state.
        activation: One of `"tanh"`, `"relu"`, `"leaky_relu"`, `"sigmoid"`.
        use_bias: Whether to add a bias vector.
        kernel_initializer: Initializer for `kernel`.
        recurrent_initializer: Initializer for `recurrent_kernel`.
        bias_initializer: Initializer for `bias`.
        dropout: Fraction in `[0, 1)` of the inputs to drop (training only).
        recurrent_dropout: Fraction in `[0, 1)` of the state to drop
            (training only).
        seed: Integer seed for the dropout masks, or `None`.
        **kwargs: Passed to `keras.layers.Layer`.

    Call arguments:
        inputs: `(batch, features)` tensor, one time step.
        states: List holding the previous state, `(batch, units)`.
        training: Whether to apply dropout.

    Returns:
        `(output, [new_state])`, both `(batch, units)`.

    Example:

    >>> rnn = keras.layers.RNN(SimpleRNNCell(4, activation="relu"))
    >>> tuple(rnn(np.zeros((2, 5, 3))).shape)
    (2, 4)
    """

    n_gates = 1

    def __init__(
        self,
        units,
        activation="tanh",
        use_bias=True,
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
        self.state_size = self.units
        self.output_size = self.units

    def call(self, inputs, states, training=False):
        """Advance one step; see the class docstring."""
        h_tm1 = states[0] if keras.tree.is_nested(states) else states
        input_masks, state_masks = self._dropout_masks(inputs, h_tm1, training)
        h = masked_matmul(inputs, self.kernel, input_masks)
        if self.use_bias:
            h = h + self.bias
        h = self.activation(h + masked_matmul(h_tm1, self.recurrent_kernel, state_masks))
        return h, [h]
