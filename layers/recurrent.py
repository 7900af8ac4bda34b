"""Recurrent layers around our cells, with a fast path on TensorFlow.

`SimpleRNN`, `LSTM` and `GRU` are `keras.layers.RNN` layers built around
`SimpleRNNCell`, `LSTMCell` and `GRUCell`, with the same weights, arguments and
results as `keras.layers.RNN(cell)`. On the TensorFlow backend they run the
whole sequence with the kernels of `layers._kernels` (XLA-compiled loops, or
the native C++ loops of `layers.native` where those are built), which avoid
TensorFlow's per-step dispatch and keep every core busy (`make bench`
measures the gain; README "Performance" has figures); where those do not
apply (`fallback_reason`) they run Keras's generic step-by-step loop over
the cell, exactly as `keras.layers.RNN(cell)`. Inside `layers.serving_kernels()`
the fast path runs plain TensorFlow loops instead (`layers._serving`), which a
stock TensorFlow Serving runs.

An `LSTM` or `GRU` that may run the native ops, which XLA cannot compile,
tells Keras it does not support `jit_compile` (`supports_jit`), so a model
compiled with `jit_compile=True` runs without it (Keras warns), as with
Keras's cuDNN LSTM. Export such a model inside `layers.serving_kernels()`
(see `layers`).

The fast path can be switched off, to measure or debug against the plain
cell: set the environment variable `RNN_SUITE_FAST_PATH=0` (also `false`,
`no`, `off`), or run the code inside `with use_fast_path(False):`. Both are
read when a layer's call is traced (each eager call, or the first call of a
`tf.function` / `model.fit`), so set them before building and fitting a model.
"""

import inspect

import keras
from keras import ops, tree

from layers import _kernels, _serving, native
from layers._switch import Switch
from layers.gru_cell import GRUCell
from layers.lstm_cell import LSTMCell
from layers.simple_rnn_cell import SimpleRNNCell

# Keys of `keras.layers.Layer.get_config` that belong to the layer, not its cell.
_LAYER_KEYS = ("name", "trainable", "dtype")

FAST_PATH_ENV = "RNN_SUITE_FAST_PATH"
_FAST_PATH = Switch(FAST_PATH_ENV)


def fast_path_enabled() -> bool:
    """Whether our layers may take the fast path (when nothing else rules it out).

    The innermost `use_fast_path(...)` block decides; outside any, the
    environment variable `RNN_SUITE_FAST_PATH` does (`0`, `false`, `no` or
    `off` turn the fast path off; it is on by default).
    """
    return _FAST_PATH.enabled()


def use_fast_path(enabled: bool = True):
    """Within the block (this thread), force the fast path on or off.

    `use_fast_path(False)` makes every layer of this module run Keras's
    generic loop over the plain cell, as `keras.layers.RNN(cell)` does; it
    takes effect where a call is traced, so build and first call (or fit) the
    model inside the block.
    """
    return _FAST_PATH.forced(enabled)


class FastRNN(keras.layers.RNN):
    """Base class: a `keras.layers.RNN` over one of our cells, with a fast path.

    Subclasses set `cell_class` and `kernel_name` and implement
    `_kernel_weights`. The constructor takes `units`, any argument of the cell
    and any argument of `keras.layers.RNN` (`return_sequences`,
    `return_state`, `go_backwards`, `stateful`, `unroll`,
    `zero_output_for_mask`, plus layer arguments such as `name`).

    The fast path is chosen automatically where `fallback_reason()` is `None`;
    `RNN_SUITE_FAST_PATH=0` or `with use_fast_path(False):` forces the plain
    cell (Keras's generic loop) everywhere, e.g. to compare throughput.
    """

    cell_class: type = None
    kernel_name: str = None
    # How many recurrent layers run side by side with this one and share the cores
    # (`Bidirectional` sets 2); not part of the config.
    concurrent_loops: int = 1

    def __init__(self, units: int, **kwargs):
        cell_arguments = set(inspect.signature(self.cell_class.__init__).parameters)
        cell_kwargs = {
            key: kwargs.pop(key)
            for key in list(kwargs)
            if key in cell_arguments - {"self", "units", "kwargs"}
        }
        cell = self.cell_class(
            units,
            **cell_kwargs,
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name=f"{self.kernel_name}_cell",
        )
        super().__init__(cell, **kwargs)
        # Keras's public flag, read when a model compiles: XLA cannot compile the
        # native ops, so Keras must not compile a model that may run them whole.
        self.supports_jit = not self.may_run_native()

    def may_run_native(self) -> bool:
        """Whether a call may run the native ops (`layers.native`): on the
        TensorFlow backend, in float32 and not unrolled, for a configuration
        with a native kernel, where the library is built and loads. Whether a
        call does is decided when it is traced (`fallback_reason`,
        `RNN_SUITE_NATIVE`, `use_native`, `serving_kernels`)."""
        if keras.backend.backend() != "tensorflow" or self.unroll:
            return False
        if self.cell.compute_dtype != "float32":
            return False
        reset_after = getattr(self.cell, "reset_after", True)
        if not _kernels.has_native_variant(self.kernel_name, self._spec(), reset_after):
            return False
        return native.available()

    @property
    def units(self) -> int:
        """Size of the output and of each state."""
        return self.cell.units

    def fallback_reason(self, training: bool = False) -> str | None:
        """Why a call would run Keras's generic loop, or `None` for the fast path.

        The fast path needs the TensorFlow backend, float32 computation, no
        unrolling, one of our own cell classes, and no recurrent dropout while
        training (input dropout is fine); and the fast path must not be switched off
        (`RNN_SUITE_FAST_PATH=0` or `use_fast_path(False)`, see
        `fast_path_enabled`). Masks, `go_backwards`, initial states,
        `return_state`, `stateful`, `Bidirectional` and any batch size take
        the fast path.
        """
        if not fast_path_enabled():
            return f"fast path switched off ({FAST_PATH_ENV}=0 or use_fast_path(False))"
        if keras.backend.backend() != "tensorflow":
            return f"the {keras.backend.backend()} backend"
        if self.unroll:
            return "unroll=True"
        if self.cell.compute_dtype != "float32":
            return f"compute dtype {self.cell.compute_dtype}"
        if type(self.cell) is not self.cell_class:
            return f"cell class {type(self.cell).__name__}"
        if training and self.cell.recurrent_dropout > 0:
            return "recurrent dropout while training"
        return None

    def inner_loop(self, sequences, initial_state, mask, training=False):
        """Run the sequence with the fast kernel, or fall back to Keras's loop."""
        if tree.is_nested(mask):
            mask = mask[0]
        if self.fallback_reason(bool(training)) is not None:
            return super().inner_loop(sequences, initial_state, mask, training=training)
        return self._fast_loop(sequences, list(initial_state), mask, bool(training))

    def _fast_loop(self, sequences, states, mask, training):
        if training and self.cell.dropout > 0:
            sequences = sequences * self.cell.get_dropout_mask(sequences[:, 0, :])[:, None, :]
        if native.serving():  # no native ops, nothing marked for XLA
            outputs, states = _serving.run(
                self.kernel_name,
                sequences,
                states,
                mask,
                self._kernel_weights(),
                self._spec(),
                keep_outputs=self.return_sequences,
                reverse=self.go_backwards,
                concurrent_loops=self.concurrent_loops,
                training=training,
            )
        else:
            outputs, states = _kernels.run_chains(
                self._kernel(),
                sequences,
                states,
                mask,
                self._kernel_weights(),
                self._spec(),
                training,
                keep_outputs=self.return_sequences,
                concurrent_loops=self.concurrent_loops,
                reverse=self.go_backwards,
            )
        if self.go_backwards and mask is not None:  # as the steps ran
            mask = ops.flip(mask, axis=1)
        return self._as_keras_results(outputs, states, mask)

    def _kernel(self):
        """The whole-sequence kernel (`layers._kernels`) this layer runs."""
        return getattr(_kernels, self.kernel_name)

    def _spec(self):
        recurrent_activation = getattr(self.cell, "recurrent_activation", None)
        return _kernels.Spec(
            keras.activations.serialize(self.cell.activation),
            keras.activations.serialize(recurrent_activation or keras.activations.sigmoid),
        )

    def _kernel_weights(self):
        raise NotImplementedError

    def _bias_or_zeros(self, width):
        if self.cell.use_bias:
            return _kernels.read(self.cell.bias)
        return ops.zeros((width,), dtype="float32")

    def _as_keras_results(self, outputs, states, mask):
        """`(last_output, outputs, states)` exactly as Keras's loop returns them.

        Where a step is masked Keras outputs the last unmasked output, or zeros
        before the first one (or always zeros with `zero_output_for_mask`).
        """
        last = states[0]
        if mask is not None:
            mask = ops.cast(mask, "bool")
            if not self.zero_output_for_mask:
                mask = ops.cumsum(ops.cast(mask, "int32"), axis=1) > 0
            last = ops.where(mask[:, -1:], last, 0.0)
            if outputs is not None:
                outputs = ops.where(mask[:, :, None], outputs, 0.0)
        if outputs is None:
            outputs = last[:, None, :]
        return last, outputs, states

    def get_config(self):
        """The cell's arguments and the RNN's, flat (like `keras.layers.LSTM`)."""
        config = super().get_config()
        del config["cell"]
        cell_config = self.cell.get_config()
        for key in _LAYER_KEYS:
            cell_config.pop(key, None)
        return {**config, **cell_config}

    @classmethod
    def from_config(cls, config):
        """Rebuild the layer from `get_config()`."""
        return cls(**config)


@keras.saving.register_keras_serializable(package="rnn_suite")
class SimpleRNN(FastRNN):
    """Fully connected recurrent layer: `keras.layers.RNN(SimpleRNNCell(...))`.

    Takes `units`, the arguments of `SimpleRNNCell` and those of
    `keras.layers.RNN`; see `FastRNN` for when it runs the fast path.

    Example:

    >>> layer = SimpleRNN(4, activation="relu", return_sequences=True)
    >>> tuple(layer(np.zeros((2, 5, 3))).shape)
    (2, 5, 4)
    """

    cell_class = SimpleRNNCell
    kernel_name = "simple_rnn"

    def _kernel_weights(self):
        cell = self.cell
        return (
            _kernels.read(cell.kernel),
            _kernels.read(cell.recurrent_kernel),
            self._bias_or_zeros(cell.units),
        )


@keras.saving.register_keras_serializable(package="rnn_suite")
class LSTM(FastRNN):
    """Long short-term memory layer: `keras.layers.RNN(LSTMCell(...))`.

    Takes `units`, the arguments of `LSTMCell` and those of
    `keras.layers.RNN`; see `FastRNN` for when it runs the fast path.

    Example:

    >>> output, h, c = LSTM(4, return_state=True)(np.zeros((2, 5, 3)))
    >>> tuple(output.shape), tuple(c.shape)
    ((2, 4), (2, 4))
    """

    cell_class = LSTMCell
    kernel_name = "lstm"

    def _kernel_weights(self):
        cell = self.cell
        return (
            _kernels.read(cell.kernel),
            _kernels.read(cell.recurrent_kernel),
            self._bias_or_zeros(4 * cell.units),
        )


@keras.saving.register_keras_serializable(package="rnn_suite")
class GRU(FastRNN):
    """Gated recurrent unit layer: `keras.layers.RNN(GRUCell(...))`.

    Takes `units`, the arguments of `GRUCell` (both `reset_after` variants)
    and those of `keras.layers.RNN`; see `FastRNN` for when it runs the fast
    path.

    Example:

    >>> layer = GRU(4, reset_after=False, go_backwards=True)
    >>> tuple(layer(np.zeros((2, 5, 3))).shape)
    (2, 4)
    """

    cell_class = GRUCell
    kernel_name = "gru"

    def _kernel_weights(self):
        cell = self.cell
        kernel = _kernels.read(cell.kernel)
        recurrent = _kernels.read(cell.recurrent_kernel)
        width = 3 * cell.units
        if not cell.reset_after:
            return kernel, recurrent, self._bias_or_zeros(width), None
        if not cell.use_bias:
            zeros = ops.zeros((width,), dtype="float32")
            return kernel, recurrent, zeros, zeros
        input_bias, recurrent_bias = ops.unstack(_kernels.read(cell.bias), axis=0)
        return kernel, recurrent, input_bias, recurrent_bias


@keras.saving.register_keras_serializable(package="rnn_suite")
class Bidirectional(keras.layers.Bidirectional):
    """`keras.layers.Bidirectional`, tuned for our layers; same arguments and results.

    It tells its two layers that they run side by side, so that on the fast
    path each direction takes its share of the cores (one chain per core in
    all) instead of each cutting the batch for every core, where the two
    would fight over the cores. Any other
    layer is wrapped exactly as `keras.layers.Bidirectional` wraps it.
    """

    def __init__(self, layer, *args, **kwargs):
        super().__init__(layer, *args, **kwargs)
        for direction in (self.forward_layer, self.backward_layer):
            if isinstance(direction, FastRNN):
                direction.concurrent_loops = 2
