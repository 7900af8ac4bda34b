"""Gated recurrent unit cell, a drop-in twin of `keras.layers.GRUCell`."""

import keras
from keras import ops

from layers._base import RecurrentCell, get_activation, masked_matmul


@keras.saving.register_keras_serializable(package="rnn_suite")
class GRUCell(RecurrentCell):
    """GRU cell (Cho et al., 2014) with gates in Keras's order.

    The gates `z` (update), `r` (reset) and `h` (candidate) sit side by side
    in `kernel` `(features, 3 * units)` and `recurrent_kernel`
    `(units, 3 * units)`, exactly as in `keras.layers.GRUCell`:

        z, r = recurrent_activation(x @ W + h @ U + b)  # per gate
        hh = activation(x @ W_h + r * (h @ U_h + b_rec_h) + b_in_h)  # reset_after
        hh = activation(x @ W_h + (r * h) @ U_h + b_h)               # otherwise
        h_t = z * h_{t-1} + (1 - z) * hh

    Args:
        units: Positive integer, size of the output and of the state.
        activation: Activation of the candidate, one of `"tanh"`, `"relu"`,
            `"leaky_relu"`, `"sigmoid"`.
        recurrent_activation: Activation of the update and reset gates, same
            choices.
        use_bias: Whether to add biases.
        kernel_initializer: Initializer for `kernel`.
        recurrent_initializer: Initializer for `recurrent_kernel`.
        bias_initializer: Initializer for `bias`.
        dropout: Fraction in `[0, 1)` of the inputs to drop (training only).
        recurrent_dropout: Fraction in `[0, 1)` of the state to drop
            (training only).
        reset_after: Apply the reset gate after the recurrent matmul (the
            cuDNN convention) with separate input and recurrent biases, `bias`
            shaped `(2, 3 * units)`; if `False`, before it, with one bias
            `(3 * units,)`.
        seed: Integer seed for the dropout masks, or `None`.
        **kwargs: Passed to `keras.layers.Layer`.

    Call arguments:
        inputs: `(batch, features)` tensor, one time step.
        states: List holding the previous state, `(batch, units)`.
        training: Whether to apply dropout.

    Returns:
        `(output, [new_state])`, both `(batch, units)`.

    Example:

    >>> rnn = keras.layers.RNN(GRUCell(4, reset_after=False), return_sequences=True)
    >>> tuple(rnn(np.zeros((2, 5, 3))).shape)
    (2, 5, 4)
    """

    n_gates = 3

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        dropout=0.0,
        recurrent_dropout=0.0,
        reset_after=True,
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
        self.reset_after = reset_after
        self.state_size = self.units
        self.output_size = self.units

    def _bias_shape(self):
        if self.reset_after:
            return (2, 3 * self.units)
        return (3 * self.units,)

    def _biases(self):
        """`(input_bias, recurrent_bias)`; either may be `None`."""
        if not self.use_bias:
            return None, None
        if self.reset_after:
            return tuple(ops.unstack(self.bias, axis=0))
        return self.bias, None

    def call(self, inputs, states, training=False):
        """Advance one step; see the class docstring."""
        h_tm1 = states[0] if keras.tree.is_nested(states) else states
        input_masks, state_masks = self._dropout_masks(inputs, h_tm1, training)
        input_bias, recurrent_bias = self._biases()
        x = masked_matmul(inputs, self.kernel, input_masks)
        if input_bias is not None:
            x = x + input_bias
        if self.reset_after:
            z, hh = self._reset_after(x, h_tm1, state_masks, recurrent_bias)
        else:
            z, hh = self._reset_before(x, h_tm1, state_masks)
        h = z * h_tm1 + (1 - z) * hh
        return h, [h]

    def _reset_after(self, x, h_tm1, state_masks, recurrent_bias):
        """Update gate and candidate when `r` scales `h @ U_h + b_rec_h`."""
        inner = masked_matmul(h_tm1, self.recurrent_kernel, state_masks)
        if recurrent_bias is not None:
            inner = inner + recurrent_bias
        x_z, x_r, x_h = ops.split(x, 3, axis=-1)
        inner_z, inner_r, inner_h = ops.split(inner, 3, axis=-1)
        z = self.recurrent_activation(x_z + inner_z)
        r = self.recurrent_activation(x_r + inner_r)
        return z, self.activation(x_h + r * inner_h)

    def _reset_before(self, x, h_tm1, state_masks):
        """Update gate and candidate when `r` scales `h` before `U_h`."""
        split = 2 * self.units
        gate_masks = None if state_masks is None else state_masks[:2]
        inner = masked_matmul(h_tm1, self.recurrent_kernel[:, :split], gate_masks)
        x_z, x_r, x_h = ops.split(x, 3, axis=-1)
        inner_z, inner_r = ops.split(inner, 2, axis=-1)
        z = self.recurrent_activation(x_z + inner_z)
        r = self.recurrent_activation(x_r + inner_r)
        h_tm1_h = h_tm1 if state_masks is None else h_tm1 * state_masks[2]
        return z, self.activation(x_h + ops.matmul(r * h_tm1_h, self.recurrent_kernel[:, split:]))

    def get_config(self):
        """Every constructor argument, plus the base layer config."""
        config = {
            "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
            "reset_after": self.reset_after,
        }
        return {**super().get_config(), **config}
