"""Convolutional LSTM cell, a twin of the cell inside `keras.layers.ConvLSTM2D`."""

import keras
from keras import ops

from layers._base import check_positive_int, get_activation


@keras.saving.register_keras_serializable(package="rnn_suite")
class ConvLSTMCell(keras.layers.Layer):
    """Convolutional LSTM cell (Shi et al., 2015) over 2-D feature maps, channels last.

    Like `LSTMCell`, but every matmul is a 2-D convolution, so the states keep
    the spatial layout of the inputs. Gates `i`, `f`, `c`, `o` sit side by side
    in the last axis of `kernel` `(kh, kw, channels, 4 * filters)`,
    `recurrent_kernel` `(kh, kw, filters, 4 * filters)` and `bias`
    `(4 * filters,)`, exactly as in `keras.layers.ConvLSTM2D`, so weights copy
    one to one. The input convolution uses `padding`; the recurrent one is
    always `"same"` with stride one.

    Args:
        filters: Positive integer, channels of the output and of each state.
        kernel_size: Positive integer or pair, the convolution window.
        padding: `"same"` or `"valid"`, for the input convolution.
        activation: Activation of the candidate and of the output, one of
            `"tanh"`, `"relu"`, `"leaky_relu"`, `"sigmoid"`.
        recurrent_activation: Activation of the gates, same choices.
        use_bias: Whether to add a bias vector.
        unit_forget_bias: Whether to initialise the forget gate bias to one.
        kernel_initializer: Initializer for `kernel`.
        recurrent_initializer: Initializer for `recurrent_kernel`.
        bias_initializer: Initializer for `bias`.
        **kwargs: Passed to `keras.layers.Layer`.

    Call arguments:
        inputs: `(batch, height, width, channels)` tensor, one time step.
        states: `[h, c]`, each `(batch, out_height, out_width, filters)`.
        training: Unused (the cell has no dropout).

    Returns:
        `(h, [h, c])`, each `(batch, out_height, out_width, filters)`.

    Example:

    >>> rnn = ConvLSTM(ConvLSTMCell(4, 3))
    >>> tuple(rnn(np.zeros((2, 5, 8, 8, 3))).shape)
    (2, 8, 8, 4)
    """

    def __init__(
        self,
        filters,
        kernel_size,
        padding="same",
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        unit_forget_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        **kwargs,
    ):
        filters = check_positive_int("filters", filters)
        kernel_size = _pair(kernel_size)
        if padding not in ("same", "valid"):
            raise ValueError(f"`padding` must be 'same' or 'valid', got {padding!r}.")
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.padding = padding
        self.activation = get_activation("activation", activation)
        self.recurrent_activation = get_activation("recurrent_activation", recurrent_activation)
        self.use_bias = use_bias
        self.unit_forget_bias = unit_forget_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.state_size = [filters, filters]  # channels; the spatial size comes from build()
        self.output_size = filters
        self.spatial_shape = None

    def build(self, input_shape):
        """Create `kernel`, `recurrent_kernel` and (optionally) `bias` for `input_shape`."""
        height, width, channels = input_shape[-3:]
        if None in (height, width, channels):
            raise ValueError(f"ConvLSTMCell needs static step shapes, got {input_shape}.")
        self.spatial_shape = self._output_spatial(height, width)
        kh, kw = self.kernel_size
        self.kernel = self.add_weight(
            shape=(kh, kw, channels, 4 * self.filters),
            name="kernel",
            initializer=self.kernel_initializer,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(kh, kw, self.filters, 4 * self.filters),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(4 * self.filters,), name="bias", initializer=self._bias_initializer()
            )

    def _output_spatial(self, height, width):
        if self.padding == "same":
            return (height, width)
        return (height - self.kernel_size[0] + 1, width - self.kernel_size[1] + 1)

    def _bias_initializer(self):
        if not self.unit_forget_bias:
            return self.bias_initializer

        def initializer(shape, dtype=None):
            filters = self.filters
            return ops.concatenate(
                [
                    self.bias_initializer((filters,), dtype=dtype),
                    ops.ones((filters,), dtype=dtype),
                    self.bias_initializer((2 * filters,), dtype=dtype),
                ]
            )

        return initializer

    def call(self, inputs, states, training=False):
        """Advance one step; see the class docstring."""
        h_tm1, c_tm1 = states
        z = ops.conv(inputs, self.kernel, padding=self.padding)
        z = z + ops.conv(h_tm1, self.recurrent_kernel, padding="same")
        if self.use_bias:
            z = z + self.bias
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        c = f * c_tm1 + i * self.activation(z_c)
        h = self.recurrent_activation(z_o) * self.activation(c)
        return h, [h, c]

    def get_initial_state(self, batch_size=None):
        """Zero states `[h, c]`, each `(batch_size, out_height, out_width, filters)`."""
        shape = (batch_size, *self.spatial_shape, self.filters)
        return [ops.zeros(shape, dtype=self.compute_dtype) for _ in range(2)]

    def compute_output_shape(self, input_shape):
        """The shape of `h` for a step input of `input_shape`."""
        spatial = self._output_spatial(*input_shape[-3:-1])
        return (input_shape[0], *spatial, self.filters)

    def get_config(self):
        """Every constructor argument, plus the base layer config."""
        config = {
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "padding": self.padding,
            "activation": keras.activations.serialize(self.activation),
            "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias,
            "unit_forget_bias": self.unit_forget_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        }
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="rnn_suite")
class ConvLSTM(keras.layers.RNN):
    """`keras.layers.RNN` over a `ConvLSTMCell`, with spatial output shapes.

    `keras.layers.RNN` runs the cell as it is (eagerly and in a compiled
    function); this subclass only teaches it the output shape of a cell whose
    states are feature maps, so that it also works in functional models.

    Args:
        cell: A `ConvLSTMCell`.
        **kwargs: Passed to `keras.layers.RNN` (`return_sequences`,
            `go_backwards`, ...; `return_state` is not supported).

    Call arguments:
        sequences: `(batch, steps, height, width, channels)`.

    Returns:
        `(batch, out_height, out_width, filters)`, or with `return_sequences`
        `(batch, steps, out_height, out_width, filters)`.
    """

    def __init__(self, cell, **kwargs):
        if kwargs.get("return_state"):
            raise ValueError("ConvLSTM does not support `return_state`.")
        super().__init__(cell, **kwargs)

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        """Shape of the last (or every, with `return_sequences`) output."""
        step = self.cell.compute_output_shape((sequences_shape[0], *sequences_shape[2:]))
        if self.return_sequences:
            return (step[0], sequences_shape[1], *step[1:])
        return step


def _pair(value):
    """`kernel_size` as a pair of positive integers."""
    pair = (value, value) if not isinstance(value, (list, tuple)) else tuple(value)
    if len(pair) != 2:
        raise ValueError(f"`kernel_size` must be an integer or a pair, got {value!r}.")
    return tuple(check_positive_int("kernel_size", v) for v in pair)
