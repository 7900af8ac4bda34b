"""Plain-TensorFlow whole-sequence loops: the path of `layers.recurrent` inside
`layers.serving_kernels()`.

A SavedModel must run in a stock TensorFlow Serving, whose model server turns
XLA compilation off: a function marked for it (`jit_compile=True`, which the
kernels of `layers._kernels` are) fails there at the first request, and the
native ops of `layers.native` do not load there at all. So inside
`serving_kernels()` our layers run these loops instead: standard TensorFlow
ops only, and nothing compiled. They compute what the cells compute, and
`make bench` holds their exports' speed against the same model's on Keras's
built-in layers (its serving rows). Where their speed comes from:

- the input projection `x @ W + b` of every step is one matmul before the
  loop (Keras's loop does one small matmul a step);
- each step does one matmul for all gates, `h @ U` (a GRU with
  `reset_after=False` needs two: its reset gate acts before the candidate's);
- the LSTM's gates are reordered once so that its three sigmoid gates are
  one op a step;
- a large enough batch is cut into chains, one per core, independent loops
  that run side by side, where Keras's one loop leaves cores idle (`run`).

Inputs are batch major `(batch, steps, features)`, masks `(batch, steps)` (true
keeps a step; a masked step keeps the previous states, as in
`keras.layers.RNN`). The loops are differentiable (TensorFlow's own gradient
of `tf.while_loop`), so a model traced for training inside `serving_kernels()`
runs them too.
"""

from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf

from layers._kernels import MIN_CHAIN_ROWS, chain_count, lstm_weights


class _Cell(NamedTuple):
    """A cell as the loop runs it.

    `kernel` and `bias` project the inputs of all steps at once; `step(xp, states)`
    returns the new states from one step's projected input `xp` `(batch, width)`,
    the first being the step's output.
    """

    kernel: tf.Tensor
    bias: tf.Tensor
    step: Callable


def run(
    name,
    sequences,
    states,
    mask,
    weights,
    spec,
    keep_outputs,
    reverse=False,
    concurrent_loops=1,
    training=False,
):
    """Run the cell `name` (`"lstm"`, `"gru"` or `"simple_rnn"`) over `sequences`.

    `weights` and `spec` are those the layers hand `layers._kernels` (the GRU's
    recurrent bias `None` when `reset_after=False`). With `reverse` the steps
    run from the last to the first (Keras's `go_backwards`), and the outputs
    are in the order the steps ran. A batch of at least `MIN_CHAIN_ROWS` rows
    per core is cut into chains, one per core (`layers._kernels.chain_count`,
    `concurrent_loops` as there), independent loops that TensorFlow runs side
    by side; a smaller one runs as one loop, and so does every batch when
    `training` (the gradient of a loop inside `tf.cond` does not compile with
    XLA, where a caller compiles a training step whole). Returns
    `(outputs, final_states)`, `outputs` batch major `(batch, steps, units)` if
    `keep_outputs`, else `None`.
    """
    cell = _CELLS[name](weights, spec)

    def one(sequences, states, mask):
        return _run_chain(cell, sequences, states, mask, keep_outputs, reverse)

    chains = chain_count(None, concurrent_loops)
    rows = sequences.shape[0]
    if training or chains == 1 or (rows is not None and rows < chains * MIN_CHAIN_ROWS):
        results = one(sequences, list(states), mask)
    else:

        def chained():
            parts = [one(*part) for part in _split_batch(chains, sequences, states, mask)]
            return [tf.concat(list(p), axis=0) for p in zip(*parts, strict=True)]

        enough = tf.shape(sequences)[0] >= chains * MIN_CHAIN_ROWS
        results = tf.cond(enough, chained, lambda: one(sequences, list(states), mask))
    n = len(states)
    return (results[n] if keep_outputs else None), list(results[:n])


def _split_batch(n, sequences, states, mask):
    """`(sequences, states, mask)` of each of `n` near-equal slices of the batch."""
    batch = tf.shape(sequences)[0]
    sizes = tf.stack([(batch + n - 1 - i) // n for i in range(n)])
    parts = [tf.split(t, sizes, num=n, axis=0) for t in [sequences, *states]]
    masks = [None] * n if mask is None else tf.split(mask, sizes, num=n, axis=0)
    return [(parts[0][i], [p[i] for p in parts[1:]], masks[i]) for i in range(n)]


def _run_chain(cell, sequences, states, mask, keep_outputs, reverse):
    """One loop over a slice of the batch: `[*final_states, *([outputs] if keep_outputs)]`."""
    steps, batch = tf.shape(sequences)[1], tf.shape(sequences)[0]
    # Time major, so that each step reads one contiguous slice.
    flat = tf.reshape(tf.transpose(sequences, [1, 0, 2]), (-1, sequences.shape[-1]))
    projected = tf.matmul(flat, cell.kernel) + cell.bias
    projected = tf.reshape(projected, (steps, batch, cell.kernel.shape[-1]))
    if mask is not None:
        mask = tf.transpose(tf.cast(mask, tf.bool))[:, :, None]
    outputs, final_states = _loop(cell.step, projected, states, mask, keep_outputs, reverse)
    return final_states + ([outputs] if keep_outputs else [])


def _loop(step, projected, states, mask, keep_outputs, reverse):
    """`tf.while_loop` of `step` over the steps of `projected` `(steps, batch, width)`
    (and of `mask` `(steps, batch, 1)`)."""
    steps = tf.shape(projected)[0]
    n = len(states)
    # Carried only when kept: an unwritten one would break the gradient under XLA.
    outputs = [tf.TensorArray(projected.dtype, size=steps, element_shape=states[0].shape)]

    def body(t, *carry):
        k = steps - 1 - t if reverse else t
        old, written = list(carry[:n]), list(carry[n:])
        new = step(tf.gather(projected, k), old)
        if mask is not None:
            keep = tf.gather(mask, k)
            new = [tf.where(keep, a, b) for a, b in zip(new, old, strict=True)]
        return (t + 1, *new, *[array.write(t, new[0]) for array in written])

    final = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (tf.constant(0), *states, *(outputs if keep_outputs else [])),
        parallel_iterations=1,  # each step needs the last one's states
        maximum_iterations=steps,  # lets XLA size the outputs, where a caller compiles
    )
    final_states = list(final[1 : n + 1])
    if not keep_outputs:
        return None, final_states
    return tf.transpose(final[n + 1].stack(), [1, 0, 2]), final_states


def _simple_rnn(weights, spec):
    """`h = activation(xp + h @ U)`, `xp = x @ W + b`."""
    kernel, recurrent, bias = weights

    def step(xp, states):
        return [spec.act.apply(xp + tf.matmul(states[0], recurrent))]

    return _Cell(kernel, bias, step)


def _lstm(weights, spec):
    """Keras's LSTM with the gates reordered `i, f, o, c` (`layers._kernels.lstm_weights`)."""
    kernel, recurrent, bias = lstm_weights(*weights)
    units = recurrent.shape[0]

    def step(xp, states):
        h, c = states
        z = xp + tf.matmul(h, recurrent)
        gates, candidate = tf.split(z, [3 * units, units], axis=1)
        i, f, o = tf.split(spec.rec.apply(gates), 3, axis=1)
        c = f * c + i * spec.act.apply(candidate)
        return [o * spec.act.apply(c), c]

    return _Cell(kernel, bias, step)


def _gru(weights, spec):
    """Keras's GRU, the reset gate after the recurrent matmul (with a recurrent
    bias) or before it (without one)."""
    kernel, recurrent, input_bias, recurrent_bias = weights
    units = recurrent.shape[0]
    if recurrent_bias is None:
        return _Cell(kernel, input_bias, _gru_reset_before_step(recurrent, spec, units))

    def step(xp, states):
        (h,) = states
        x_zr, x_h = tf.split(xp, [2 * units, units], axis=1)
        h_zr, h_h = tf.split(tf.matmul(h, recurrent) + recurrent_bias, [2 * units, units], axis=1)
        z, r = tf.split(spec.rec.apply(x_zr + h_zr), 2, axis=1)
        return [_update(h, z, spec.act.apply(x_h + r * h_h))]

    return _Cell(kernel, input_bias, step)


def _gru_reset_before_step(recurrent, spec, units):
    """The step of a GRU whose reset gate scales the state before `U_h`."""
    recurrent_zr, recurrent_h = recurrent[:, : 2 * units], recurrent[:, 2 * units :]

    def step(xp, states):
        (h,) = states
        x_zr, x_h = tf.split(xp, [2 * units, units], axis=1)
        z, r = tf.split(spec.rec.apply(x_zr + tf.matmul(h, recurrent_zr)), 2, axis=1)
        candidate = spec.act.apply(x_h + tf.matmul(r * h, recurrent_h))
        return [_update(h, z, candidate)]

    return step


def _update(h, z, candidate):
    """The GRU's new state `z * h + (1 - z) * candidate`, in Keras's order of operations."""
    return z * h + (1.0 - z) * candidate


_CELLS = {"simple_rnn": _simple_rnn, "lstm": _lstm, "gru": _gru}
