"""LSTM kernels for the approaches that `layers._kernels` does not take.

Each is a drop-in for `layers._kernels.lstm` (same signature, but the weights
in the kernels' gate order, `lstm_weights`; same results up to float rounding)
so that `python -m bench.approaches` can time it inside a real `layers.LSTM`.
They exist to be measured, not used: masks are not supported, and a variant
that only changes inference hands training to the default kernel.

- `autodiff_lstm`: the XLA-compiled loop of the fast path, but differentiated
  by TensorFlow's automatic differentiation instead of the hand-written
  backward pass through time.
- `precomputed_projection_lstm`: inference computes `x @ W + b` for all steps
  in one large `tf.matmul` (oneDNN, all cores) before the loop, which then
  multiplies only the state.
- `unrolled_lstm`: inference runs `UNROLL` steps per iteration of the
  compiled loop.
- `block_lstm`: TensorFlow's own fused whole-sequence LSTM kernel
  (`tf.raw_ops.BlockLSTMV2`, C++ with Eigen matmuls, with its registered
  gradient), in place of the compiled loops. That gradient is wrong in the
  TensorFlow this project uses (it disagrees with finite differences on an
  LSTM whose forward pass equals Keras's), so it is timed, not used.
"""

import keras
import tensorflow as tf

from layers import _kernels
from layers.recurrent import LSTM

UNROLL = 4
_compiled = tf.function(jit_compile=True, autograph=False)


def _default_lstm(x, states, mask, weights, spec, training, keep_outputs):
    """The fast path's XLA kernel, for weights already in its gate order."""
    return _kernels._run(_kernels._LSTM, x, states, mask, weights, spec, training, keep_outputs)


def _no_mask(mask):
    if mask is not None:
        raise NotImplementedError("benchmark variants take no mask")


def _cell(z, c, spec, units):
    """One LSTM step from the pre-activations `z` (gates i, f, o, c)."""
    s, g = _kernels._lstm_gates(z, spec, units)
    i, f, o = tf.split(s, 3, axis=1)
    c = f * c + i * g
    return o * spec.act.apply(c), c


def _forward_loop(x, h, c, kernel, recurrent, bias, spec, keep):
    units = recurrent.shape[0]
    stacked = tf.concat([kernel, recurrent], axis=0)
    steps = x.shape[1]

    def body(t, h, c, *outputs):
        h, c = _cell(_kernels._joint_projection(x[:, t], h, stacked, bias), c, spec, units)
        return t + 1, h, c, *[ta.write(t, h) for ta in outputs]

    # No array at all when the outputs are not kept: the gradient of an unwritten
    # TensorArray fails to compile.
    outputs = [tf.TensorArray(tf.float32, size=steps, element_shape=h.shape)] if keep else []
    _, h, c, *outputs = tf.while_loop(
        lambda t, *_: t < steps, body, (0, h, c, *outputs), maximum_iterations=steps
    )
    return [h, c, *[ta.stack() for ta in outputs]]


_autodiff_forward = _compiled(_forward_loop)


@_compiled
def _autodiff_backward(inputs, upstream, spec, keep):
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        results = _forward_loop(*inputs, spec, keep)
    return tape.gradient(results, inputs, output_gradients=upstream)


def autodiff_lstm(x, states, mask, weights, spec, training, keep_outputs):
    """The fast path's forward loop, differentiated by TensorFlow.

    TensorFlow cannot carry a compiled loop's saved intermediates out of XLA
    ("TensorList crossing the XLA/TF boundary"), so the gradient runs the
    forward loop again under a tape inside one compiled function.
    """
    _no_mask(mask)

    @tf.custom_gradient
    def run(*inputs):
        # Out of the tape's sight: a recorded call would have to pass the loop's
        # saved intermediates out of XLA.
        inputs = [tf.stop_gradient(a) for a in inputs]
        results = _autodiff_forward(*inputs, spec, keep_outputs)

        def grad(*upstream):
            pairs = zip(upstream, results, strict=True)
            upstream = [tf.zeros_like(r) if u is None else u for u, r in pairs]
            return _autodiff_backward(list(inputs), upstream, spec, keep_outputs)

        return results, grad

    results = run(x, *states, *weights)
    return (results[2] if keep_outputs else None), list(results[:2])


@_compiled
def _recurrent_loop(projected, h, c, recurrent, spec, keep):
    units = recurrent.shape[0]
    steps = projected.shape[1]

    def body(t, h, c, outputs):
        h, c = _cell(projected[:, t] + tf.matmul(h, recurrent), c, spec, units)
        return t + 1, h, c, outputs.write(t, h) if keep else outputs

    outputs = tf.TensorArray(tf.float32, size=steps, element_shape=h.shape)
    _, h, c, outputs = tf.while_loop(lambda t, *_: t < steps, body, (0, h, c, outputs))
    return h, c, outputs.stack() if keep else tf.zeros((0,))


def precomputed_projection_lstm(x, states, mask, weights, spec, training, keep_outputs):
    """Inference with the input projection of all steps computed first."""
    if training:
        return _default_lstm(x, states, mask, weights, spec, training, keep_outputs)
    _no_mask(mask)
    kernel, recurrent, bias = weights
    projected = tf.einsum("btf,fg->btg", x, kernel) + bias
    h, c, outputs = _recurrent_loop(projected, *states, recurrent, spec, keep_outputs)
    return (outputs if keep_outputs else None), [h, c]


@_compiled
def _unrolled_forward(x, h, c, kernel, recurrent, bias, spec):
    units = recurrent.shape[0]
    stacked = tf.concat([kernel, recurrent], axis=0)
    steps = x.shape[1]

    def step(t, h, c):
        return _cell(_kernels._joint_projection(x[:, t], h, stacked, bias), c, spec, units)

    def body(t, h, c):
        for j in range(UNROLL):
            h, c = step(t + j, h, c)
        return t + UNROLL, h, c

    rounds = steps // UNROLL
    _, h, c = tf.while_loop(lambda t, *_: t < rounds * UNROLL, body, (0, h, c))
    for t in range(rounds * UNROLL, steps):
        h, c = step(t, h, c)
    return h, c


def unrolled_lstm(x, states, mask, weights, spec, training, keep_outputs):
    """Inference with `UNROLL` steps per loop iteration (final states only)."""
    if training or keep_outputs:
        return _default_lstm(x, states, mask, weights, spec, training, keep_outputs)
    _no_mask(mask)
    return None, list(_unrolled_forward(x, *states, *weights, spec))


def block_lstm(x, states, mask, weights, spec, training, keep_outputs):
    """The chain through `tf.raw_ops.BlockLSTMV2` (tanh and sigmoid only)."""
    _no_mask(mask)
    if spec != _kernels.Spec("tanh"):
        raise NotImplementedError("BlockLSTMV2 has tanh and sigmoid only")
    kernel, recurrent, bias = weights

    def ifco(w):  # the kernels' gate order i, f, o, c -> BlockLSTMV2's (Keras's) i, f, c, o
        i, f, o, c = tf.split(w, 4, axis=-1)
        return tf.concat([i, f, c, o], axis=-1)

    h0, c0 = states
    units = recurrent.shape[0]
    no_peephole = tf.zeros((units,))
    results = tf.raw_ops.BlockLSTMV2(
        seq_len_max=tf.cast(tf.shape(x)[1], tf.int64),
        x=tf.transpose(x, [1, 0, 2]),
        cs_prev=c0,
        h_prev=h0,
        w=ifco(tf.concat([kernel, recurrent], axis=0)),
        wci=no_peephole,
        wcf=no_peephole,
        wco=no_peephole,
        b=ifco(bias),
        cell_clip=0.0,
        use_peephole=False,
    )
    cells, outputs = results[1], results[6]
    return (outputs if keep_outputs else None), [outputs[-1], cells[-1]]


class _VariantLSTM(LSTM):
    """`layers.LSTM` whose fast path runs `variant_kernel`."""

    variant_kernel = None

    def _kernel(self):
        return type(self).variant_kernel

    def _kernel_weights(self):  # the variants take the kernels' gate order i, f, o, c
        return _kernels.lstm_weights(*super()._kernel_weights())


# Registered, because `Bidirectional` rebuilds its backward layer from the config.
@keras.saving.register_keras_serializable(package="rnn_suite_bench")
class AutodiffLSTM(_VariantLSTM):
    """`layers.LSTM` over `autodiff_lstm`."""

    variant_kernel = staticmethod(autodiff_lstm)


@keras.saving.register_keras_serializable(package="rnn_suite_bench")
class PrecomputedProjectionLSTM(_VariantLSTM):
    """`layers.LSTM` over `precomputed_projection_lstm`."""

    variant_kernel = staticmethod(precomputed_projection_lstm)


@keras.saving.register_keras_serializable(package="rnn_suite_bench")
class UnrolledLSTM(_VariantLSTM):
    """`layers.LSTM` over `unrolled_lstm`."""

    variant_kernel = staticmethod(unrolled_lstm)


@keras.saving.register_keras_serializable(package="rnn_suite_bench")
class BlockLSTM(_VariantLSTM):
    """`layers.LSTM` over `block_lstm`."""

    variant_kernel = staticmethod(block_lstm)


VARIANT_LAYERS = {
    "block": BlockLSTM,
    "autodiff": AutodiffLSTM,
    "precomputed": PrecomputedProjectionLSTM,
    "unrolled": UnrolledLSTM,
}
# Variants whose outputs equal the fast path's but whose gradients do not (see above).
WRONG_GRADIENTS = ("block",)
