"""Whole-sequence TensorFlow kernels: the fast path of `layers.recurrent`.

Why they beat `keras.layers.RNN` on a CPU (`bench/` measures by how much):

- Each loop over the time steps is compiled with XLA (`jit_compile=True` on
  the loop alone, not on the model). XLA fuses a step's elementwise ops and
  runs the loop without TensorFlow's per-op dispatch, which otherwise costs
  about as much as the step's matmul at these sizes.
- The batch is cut into *chains*, one per CPU core (`chain_count`), each its
  own compiled loop. A step's matmul, e.g. `(32, 192) @ (192, 512)`, is too
  small to share between threads, so independent chains that TensorFlow runs
  side by side are what keeps every core busy.
- Training runs a hand-written backward pass (`tf.custom_gradient`). The
  forward loop stores the few per-step factors the backward pass needs; the
  backward loop then carries only the recurrent gradient (one matmul and a
  few fused elementwise ops a step), and the weight and input gradients come
  after it as large matmuls over all steps at once.

Where the native library is built (`layers.native`), the LSTM and the GRU
(`reset_after=True`) run C++ loops instead, which share each step between the
cores by units rather than cutting the batch (`_native_variant`); they keep
the same backward factors (time major), with batch-major outputs and
gradients.

Chains take batch-major inputs `(batch, steps, features)` and masks
`(batch, steps, 1)` float32 (1 keeps a step); a masked step keeps the
previous states, as in `keras.layers.RNN`. Per-step results are stacked time
major `(steps, batch, ...)`. Every kernel has the signature
`kernel(x, states, mask, weights, spec, training, keep_outputs)` and returns
`(outputs or None, final_states)`, `outputs` (time major) being the states
after each step.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import tensorflow as tf

from layers import native

MIN_CHAIN_ROWS = 16  # fewer rows a chain make its matmuls too small to pay off
MAX_CHAINS = 8
LEAKY_RELU_SLOPE = 0.2  # keras.activations.leaky_relu's default


@dataclass(frozen=True)
class Activation:
    """An activation and its derivative written in terms of its output."""

    apply: Callable
    derivative: Callable


ACTIVATIONS = {
    "tanh": Activation(tf.tanh, lambda y: 1.0 - y * y),
    "sigmoid": Activation(tf.sigmoid, lambda y: y * (1.0 - y)),
    "relu": Activation(tf.nn.relu, lambda y: tf.cast(y > 0.0, y.dtype)),
    "leaky_relu": Activation(
        lambda x: tf.nn.leaky_relu(x, alpha=LEAKY_RELU_SLOPE),
        lambda y: tf.where(y > 0.0, 1.0, LEAKY_RELU_SLOPE),
    ),
}


class Spec(NamedTuple):
    """A cell's activations, by name (keys of `ACTIVATIONS`).

    A named tuple, so that `tf.function` keys its traces on the names rather
    than on the object.
    """

    activation: str
    recurrent_activation: str = "sigmoid"

    @property
    def act(self) -> Activation:
        """The activation."""
        return ACTIVATIONS[self.activation]

    @property
    def rec(self) -> Activation:
        """The recurrent (gate) activation."""
        return ACTIVATIONS[self.recurrent_activation]


# ------------------------------------------------------------------ plumbing

# Each chain's loops are compiled with XLA, which fuses a step's elementwise
# ops and runs the loop without TensorFlow's per-op overhead; chains stay
# separate functions so that TensorFlow still runs them side by side.
_compiled = tf.function(jit_compile=True, autograph=False)


def _scan(step, steps, carry, row_shapes, reverse=False):
    """Run `carry, rows = step(k, carry)` for every step `k`, in either order.

    Returns the final carry and, for each entry of `rows` (element shapes
    `row_shapes`), the rows of all steps stacked `(steps, ...)` by `k`.
    """
    n = len(carry)

    def body(t, *values):
        k = steps - 1 - t if reverse else t
        new_carry, rows = step(k, list(values[:n]))
        return (
            t + 1,
            *new_carry,
            *[ta.write(k, r) for ta, r in zip(values[n:], rows, strict=True)],
        )

    arrays = [tf.TensorArray(tf.float32, size=steps, element_shape=s) for s in row_shapes]
    out = tf.while_loop(lambda t, *_: t < steps, body, (tf.constant(0), *carry, *arrays))[1:]
    return list(out[:n]), [ta.stack() for ta in out[n:]]


@dataclass(frozen=True)
class _Kernel:
    """The three parts of a recurrent kernel.

    - `forward(x, states, weights, mask, spec, save, keep)` (compiled) returns
      `[*final_states, *([outputs] if keep), *(factors if save)]`;
    - `backward(d_outputs, d_states, factors, weights, mask, spec)` (compiled)
      returns `(d_initial_states, d_pre)`, `d_pre` being the stacked
      gradients of the pre-activations;
    - `weight_grads(x, states, outputs, weights, factors, d_pre)` returns
      `(dx, d_weights)`, with large matmuls over all steps.
    """

    forward: Callable
    backward: Callable
    weight_grads: Callable


def _run(kernel, x, states, mask, weights, spec, training, keep_outputs):
    """Run `kernel` over one chain as a differentiable function.

    When `training`, the forward pass keeps the backward factors and the
    outputs (the weight gradients need them). Otherwise it keeps only what the
    caller wants, and the gradient, if anything asks for it, recomputes the
    forward pass with factors first. Outputs the caller does not want are not
    returned, so that no gradient of zeros is made and read for them.
    Returns `(outputs or None, final_states)`.
    """
    keep = keep_outputs or training
    n = len(states)

    @tf.custom_gradient
    def run(*args):
        x, *args = [tf.stop_gradient(a) for a in args]  # the tape needs no inner ops
        initial, weights = args[:n], args[n:]
        results = kernel.forward(x, initial, weights, mask, spec, training, keep)

        def grad(*upstream):
            final = results[:n]
            d_states = [
                tf.zeros_like(s) if d is None else d
                for d, s in zip(upstream[:n], final, strict=True)
            ]
            full = (
                results if training else kernel.forward(x, initial, weights, mask, spec, True, True)
            )
            outputs, factors = full[n], full[n + 1 :]
            d_outputs = upstream[n] if keep_outputs else None
            d_initial, d_pre = kernel.backward(d_outputs, d_states, factors, weights, mask, spec)
            dx, d_weights = kernel.weight_grads(x, initial, outputs, weights, factors, d_pre)
            return (dx, *d_initial, *d_weights)

        return tuple(results[: n + keep_outputs]), grad

    results = run(x, *states, *weights)
    return (results[n] if keep_outputs else None), list(results[:n])


def _joint_projection(x, h, stacked, bias):
    """`x @ W + h @ U + b` as one matmul, `stacked` being `[W; U]`."""
    return tf.matmul(tf.concat([x, h], axis=1), stacked) + bias


def _flat(x):
    """`(steps, batch, n)` -> `(steps * batch, n)`."""
    return tf.reshape(x, (-1, x.shape[-1]))


def _sum_rows(d):
    return tf.reduce_sum(_flat(d), axis=0)


def _matmul_over_steps(a, b):
    """`sum_t a[t]^T @ b[t]` for `(steps, batch, m)` and `(steps, batch, n)`."""
    return tf.matmul(_flat(a), _flat(b), transpose_a=True)


def _input_grads(x, d_input, kernel):
    """Gradients of the batch-major `x` and of `kernel` for `x @ kernel`, given
    the time-major `d_input`, for all steps at once."""
    x = tf.transpose(x, [1, 0, 2])
    dx = tf.reshape(tf.matmul(_flat(d_input), kernel, transpose_b=True), tf.shape(x))
    return tf.transpose(dx, [1, 0, 2]), _matmul_over_steps(x, d_input)


def _previous(h0, outputs):
    """The state each step starts from: `h0`, then every output but the last."""
    return tf.concat([h0[None], outputs[:-1]], axis=0)


def _keep(mask, k):
    """Boolean `(batch, 1)` mask of step `k`."""
    return mask[:, k] > 0.5


def _hold(mask, k, new, old):
    """`new` where step `k` is kept, `old` where it is masked."""
    return new if mask is None else tf.where(_keep(mask, k), new, old)


def _masked(mask, k, factor):
    """Zero a backward factor at masked steps."""
    return factor if mask is None else factor * mask[:, k]


def _one_where_masked(mask, k, factor):
    """Replace a factor by one at masked steps (the state passes through)."""
    return factor if mask is None else tf.where(_keep(mask, k), factor, 1.0)


def _upstream(d_outputs, k, dh):
    """`dh` plus the gradient flowing into output `k`, when there is one."""
    return dh if d_outputs is None else d_outputs[k] + dh


def _passthrough(mask, k, dh_prev, dh):
    """Add the gradient that skips masked steps."""
    return dh_prev if mask is None else dh_prev + dh * (1.0 - mask[:, k])


def _widths(units, *multiples):
    """Row shapes `(None, units * m)` of stacked per-step tensors."""
    return [(None, units * m) for m in multiples]


# ----------------------------------------------------------------- SimpleRNN


def simple_rnn(x, states, mask, weights, spec, training, keep_outputs):
    """`h_t = activation(x_t @ W + b + h_{t-1} @ U)`; weights `(W, U, b)`."""
    return _run(_SIMPLE_RNN, x, states, mask, weights, spec, training, keep_outputs)


@_compiled
def _simple_rnn_forward(x, states, weights, mask, spec, save, keep):
    kernel, recurrent, bias = weights
    stacked = tf.concat([kernel, recurrent], axis=0)

    def step(k, carry):
        (h,) = carry
        hn = spec.act.apply(_joint_projection(x[:, k], h, stacked, bias))
        rows = [_masked(mask, k, spec.act.derivative(hn))] if save else []
        hn = _hold(mask, k, hn, h)
        return [hn], ([hn] if keep else []) + rows

    shapes = _widths(recurrent.shape[0], *[1] * (keep + save))
    final, arrays = _scan(step, tf.shape(x)[1], states, shapes)
    return final + arrays


@_compiled
def _simple_rnn_backward(d_outputs, d_states, factors, weights, mask, spec):
    (deriv,) = factors
    recurrent_t = tf.transpose(weights[1])

    def step(k, carry):
        d = _upstream(d_outputs, k, carry[0])
        d_pre = d * deriv[k]
        return [_passthrough(mask, k, tf.matmul(d_pre, recurrent_t), d)], [d_pre]

    return _scan(step, tf.shape(deriv)[0], d_states, [deriv.shape[1:]], reverse=True)


def _simple_rnn_weight_grads(x, states, outputs, weights, factors, d_pre):
    (d_pre,) = d_pre
    dx, dw = _input_grads(x, d_pre, weights[0])
    du = _matmul_over_steps(_previous(states[0], outputs), d_pre)
    return dx, [dw, du, _sum_rows(d_pre)]


_SIMPLE_RNN = _Kernel(_simple_rnn_forward, _simple_rnn_backward, _simple_rnn_weight_grads)


# ---------------------------------------------------------------------- LSTM


def lstm_weights(kernel, recurrent, bias):
    """Keras's LSTM weights (gates i, f, c, o) reordered to i, f, o, c, so that
    the three sigmoid gates sit side by side."""

    def reorder(w):
        i, f, c, o = tf.split(w, 4, axis=-1)
        return tf.concat([i, f, o, c], axis=-1)

    return reorder(kernel), reorder(recurrent), reorder(bias)


def lstm(x, states, mask, weights, spec, training, keep_outputs):
    """LSTM over a chain; `weights` Keras's `(kernel, recurrent, bias)`, `states` `[h0, c0]`."""
    return _run(_LSTM, x, states, mask, lstm_weights(*weights), spec, training, keep_outputs)


def _lstm_gates(z, spec, units):
    """`(sigmoid gates i|f|o, candidate)` from the pre-activations."""
    s, g = tf.split(z, [3 * units, units], axis=1)
    return spec.rec.apply(s), spec.act.apply(g)


@_compiled
def _lstm_forward(x, states, weights, mask, spec, save, keep):
    kernel, recurrent, bias = weights
    units = recurrent.shape[0]
    stacked = tf.concat([kernel, recurrent], axis=0)

    def step(k, carry):
        h, c = carry
        s, g = _lstm_gates(_joint_projection(x[:, k], h, stacked, bias), spec, units)
        i, f, o = tf.split(s, 3, axis=1)
        cn = f * c + i * g
        tc = spec.act.apply(cn)
        hn = o * tc
        rows = _lstm_factors(mask, k, spec, c, s, g, tc) if save else []
        hn, cn = _hold(mask, k, hn, h), _hold(mask, k, cn, c)
        return [hn, cn], ([hn] if keep else []) + rows

    shapes = _widths(units, *([1] if keep else []), *([4, 2] if save else []))
    final, arrays = _scan(step, tf.shape(x)[1], states, shapes)
    return final + arrays


def _lstm_factors(mask, k, spec, c_prev, s, g, tc):
    """Per-step factors of the backward pass.

    With `dc = dc_next + dh * K`, the gradient of the pre-activations is
    `[dc, dc, dh, dc] * P` (gates i, f, o, c) and `dc_prev = dc * F`.
    """
    i, f, o = tf.split(s, 3, axis=1)
    ds = tf.concat([spec.rec.derivative(s), spec.act.derivative(g)], axis=1)
    p = tf.concat([g, c_prev, tc, i], axis=1) * ds
    k_factor = _masked(mask, k, o * spec.act.derivative(tc))
    return [_masked(mask, k, p), tf.concat([k_factor, _one_where_masked(mask, k, f)], axis=1)]


@_compiled
def _lstm_backward(d_outputs, d_states, factors, weights, mask, spec):
    p, kf = factors
    recurrent_t = tf.transpose(weights[1])

    def step(k, carry):
        d = _upstream(d_outputs, k, carry[0])
        k_factor, f = tf.split(kf[k], 2, axis=1)
        dcell = carry[1] + d * k_factor
        dz = tf.concat([dcell, dcell, d, dcell], axis=1) * p[k]
        dh_prev = _passthrough(mask, k, tf.matmul(dz, recurrent_t), d)
        return [dh_prev, dcell * f], [dz]

    return _scan(step, tf.shape(p)[0], d_states, [p.shape[1:]], reverse=True)


_LSTM = _Kernel(_lstm_forward, _lstm_backward, _simple_rnn_weight_grads)


def _or_empty(tensor):
    """A native op's optional input: the tensor, or an empty one for `None`."""
    return tf.zeros((0,), tf.float32) if tensor is None else tensor


def _native_kernel(
    forward_op, backward_op, state_count, threads, reverse, weight_grads_inside=None
):
    """A `_Kernel` over a pair of native ops (`layers/native/*.cc`) on `threads` threads.

    The forward op returns `(*final_states, outputs, *factors)`, the backward op
    `(*d_initial_states, *d_pre)` (`_batch_major_weight_grads`); unkept outputs
    and unsaved factors are empty. With `reverse` the ops run from the last
    step of `x` and `mask` to the first, and outputs and factors are in the
    order the steps ran, as if `x` and `mask` had been flipped.

    `weight_grads_inside` is for a backward op that can also sum the weight
    gradients as it goes (the LSTM's; `None` for one that cannot). Where it is
    true the op does (`_inside_weight_grads`), from `x`, the initial state and
    the outputs, which the forward pass then saves with its factors.
    """

    def forward(x, states, weights, mask, spec, save, keep):
        results = forward_op(
            x,
            *states,
            *weights,
            _or_empty(mask),
            save=save,
            keep=keep,
            threads=threads,
            reverse=reverse,
        )
        final, outputs, factors = (
            results[:state_count],
            results[state_count],
            list(results[state_count + 1 :]),
        )
        if save and weight_grads_inside:
            factors += [x, states[0], outputs]
        return [*final, *([outputs] if keep else []), *(factors if save else [])]

    def backward(d_outputs, d_states, factors, weights, mask, spec):
        options = {}
        if weight_grads_inside is not None:
            options["weight_grads"] = weight_grads_inside
            if not weight_grads_inside:
                factors = [*factors, *[_or_empty(None)] * 3]  # no x, initial state, outputs
        results = backward_op(
            _or_empty(d_outputs),
            *d_states,
            *factors,
            weights[1],
            _or_empty(mask),
            threads=threads,
            reverse=reverse,
            **options,
        )
        d_initial, d_pre = list(results[:state_count]), list(results[state_count:])
        return d_initial, (d_pre[:2] if weight_grads_inside is False else d_pre)  # [d_z, d_bias]

    if weight_grads_inside:
        return _Kernel(forward, backward, _inside_weight_grads(reverse))
    return _Kernel(forward, backward, _batch_major_weight_grads(threads, reverse))


def _native_lstm(threads, reverse, weight_grads_inside=True):
    """The LSTM kernel with the native loops of `layers/native/lstm_ops.cc` (the
    factors of `_LSTM`). Takes Keras's weights as they are: the ops reorder the
    gates as they pack them, which a `tf.split` and `tf.concat` here would do
    at a cost (extra ops before the loop, which in a bidirectional layer wait
    for a pool thread busy with the other direction)."""
    ops = native.ops()
    return _native_kernel(
        ops.rnn_suite_lstm_forward,
        ops.rnn_suite_lstm_backward,
        2,
        threads,
        reverse,
        weight_grads_inside=weight_grads_inside,
    )


def _inside_weight_grads(reverse=False):
    """Weight gradients that the backward op summed a step at a time, each
    thread for its own units, while each step's gradients were in cache:
    `d_pre` is `[d_z, d_bias, d_kernel, d_recurrent]`. Only the input gradient
    is left, one matmul over all steps (and flipped back with `reverse`).

    The matmuls over all steps that this replaces would run after the loop, a
    large share of a training step, and in a bidirectional layer the first of
    them would take a core from the other direction's backward loop while it
    still runs."""

    def weight_grads(x, states, outputs, weights, factors, d_pre):
        d_z, d_bias, d_kernel, d_recurrent = d_pre
        dx = tf.reshape(tf.matmul(_flat(d_z), weights[0], transpose_b=True), tf.shape(x))
        if reverse:
            dx = tf.reverse(dx, [1])
        return dx, [d_kernel, d_recurrent, d_bias]

    return weight_grads


def _batch_major_weight_grads(parts, reverse=False):
    """Weight gradients of the native kernels, whose `outputs` and `d_pre` are
    batch major. `d_pre` is the gradients of the projections, then of the
    biases, which the backward op sums as it goes: `[d_z, d_bias]` (LSTM, the
    input and recurrent projections share one) or `[d_in, d_rec, d_input_bias,
    d_recurrent_bias]` (GRU).

    The sums over batch and steps are cut into `parts` slices of the batch,
    independent matmuls that TensorFlow runs side by side, which keeps every
    core busy where one matmul of this size would not. With `reverse`
    the gradients are in the order the steps ran, and `x` is flipped to match.
    """

    def weight_grads(x, states, outputs, weights, factors, d_pre):
        projections, biases = d_pre[: len(d_pre) // 2], d_pre[len(d_pre) // 2 :]
        d_in, d_rec = projections[0], projections[-1]
        if reverse:
            x = tf.reverse(x, [1])
        dx = tf.reshape(tf.matmul(_flat(d_in), weights[0], transpose_b=True), tf.shape(x))
        if reverse:
            dx = tf.reverse(dx, [1])
        previous = tf.concat([states[0][:, None], outputs[:, :-1]], axis=1)
        grads = [
            [_matmul_all_rows(x_part, d_in_part), _matmul_all_rows(h_part, d_rec_part)]
            for x_part, (h_part, d_in_part, d_rec_part), _ in _split_batch(
                parts, x, [previous, d_in, d_rec], None
            )
        ]
        return dx, [tf.add_n(list(g)) for g in zip(*grads, strict=True)] + biases

    return weight_grads


def _matmul_all_rows(a, b):
    """`sum over batch and steps of a^T @ b`, for `(batch, steps, m)` and `(batch, steps, n)`."""
    return tf.matmul(_flat(a), _flat(b), transpose_a=True)


# ----------------------------------------------------------------------- GRU


def gru(x, states, mask, weights, spec, training, keep_outputs):
    """GRU over a chain; `weights` `(W, U, input_bias, recurrent_bias)`.

    With a recurrent bias the reset gate acts after the recurrent matmul
    (Keras's `reset_after=True`); with `None`, before it.
    """
    if weights[3] is None:
        return _run(_GRU_BEFORE, x, states, mask, weights[:3], spec, training, keep_outputs)
    return _run(_GRU_AFTER, x, states, mask, weights, spec, training, keep_outputs)


def _update(h, z, hh):
    """`z * h + (1 - z) * hh`, in Keras's order of operations."""
    return z * h + (1.0 - z) * hh


@_compiled
def _gru_after_forward(x, states, weights, mask, spec, save, keep):
    kernel, recurrent, input_bias, recurrent_bias = weights
    units = recurrent.shape[0]

    def step(k, carry):
        (h,) = carry
        x_zr, x_h = tf.split(tf.matmul(x[:, k], kernel) + input_bias, [2 * units, units], axis=1)
        h_zr, h_h = tf.split(tf.matmul(h, recurrent) + recurrent_bias, [2 * units, units], axis=1)
        z, r = tf.split(spec.rec.apply(x_zr + h_zr), 2, axis=1)
        hh = spec.act.apply(x_h + r * h_h)
        rows = _gru_after_factors(mask, k, spec, h, z, r, hh, h_h) if save else []
        hn = _hold(mask, k, _update(h, z, hh), h)
        return [hn], ([hn] if keep else []) + rows

    shapes = _widths(units, *([1] if keep else []), *([3, 3, 1] if save else []))
    final, arrays = _scan(step, tf.shape(x)[1], states, shapes)
    return final + arrays


def _gru_after_factors(mask, k, spec, h, z, r, hh, h_h):
    """Factors such that, for `d3 = [dh, dh, dh]`, the gradients of the input
    and recurrent projections are `d3 * Q_in` and `d3 * Q_rec`, and
    `dh_prev = d_rec @ U^T + dh * Z`."""
    q_h = (1.0 - z) * spec.act.derivative(hh)
    q_z = (h - hh) * spec.rec.derivative(z)
    q_r = h_h * spec.rec.derivative(r) * q_h
    q_in = _masked(mask, k, tf.concat([q_z, q_r, q_h], axis=1))
    q_rec = _masked(mask, k, tf.concat([q_z, q_r, q_h * r], axis=1))
    return [q_in, q_rec, _one_where_masked(mask, k, z)]


@_compiled
def _gru_after_backward(d_outputs, d_states, factors, weights, mask, spec):
    q_in, q_rec, z = factors
    recurrent_t = tf.transpose(weights[1])

    def step(k, carry):
        d = _upstream(d_outputs, k, carry[0])
        d3 = tf.concat([d, d, d], axis=1)
        d_rec = d3 * q_rec[k]
        return [tf.matmul(d_rec, recurrent_t) + d * z[k]], [d3 * q_in[k], d_rec]

    return _scan(step, tf.shape(q_in)[0], d_states, [q_in.shape[1:]] * 2, reverse=True)


def _gru_after_weight_grads(x, states, outputs, weights, factors, d_pre):
    d_in, d_rec = d_pre
    dx, dw = _input_grads(x, d_in, weights[0])
    du = _matmul_over_steps(_previous(states[0], outputs), d_rec)
    return dx, [dw, du, _sum_rows(d_in), _sum_rows(d_rec)]


_GRU_AFTER = _Kernel(_gru_after_forward, _gru_after_backward, _gru_after_weight_grads)


def _native_gru(threads, reverse):
    """The GRU kernel (`reset_after=True`) with the native loops of
    `layers/native/gru_ops.cc` (the factors of `_GRU_AFTER`)."""
    ops = native.ops()
    return _native_kernel(
        ops.rnn_suite_gru_forward, ops.rnn_suite_gru_backward, 1, threads, reverse
    )


@_compiled
def _gru_before_forward(x, states, weights, mask, spec, save, keep):
    kernel, recurrent, bias = weights
    units = recurrent.shape[0]
    recurrent_zr, recurrent_h = recurrent[:, : 2 * units], recurrent[:, 2 * units :]

    def step(k, carry):
        (h,) = carry
        x_zr, x_h = tf.split(tf.matmul(x[:, k], kernel) + bias, [2 * units, units], axis=1)
        z, r = tf.split(spec.rec.apply(x_zr + tf.matmul(h, recurrent_zr)), 2, axis=1)
        rh = r * h
        hh = spec.act.apply(x_h + tf.matmul(rh, recurrent_h))
        rows = _gru_before_factors(mask, k, spec, h, z, r, hh) + [rh] if save else []
        hn = _hold(mask, k, _update(h, z, hh), h)
        return [hn], ([hn] if keep else []) + rows

    shapes = _widths(units, *([1] if keep else []), *([2, 3, 1] if save else []))
    final, arrays = _scan(step, tf.shape(x)[1], states, shapes)
    return final + arrays


def _gru_before_factors(mask, k, spec, h, z, r, hh):
    """Factors of the backward pass: `[q_z | q_h]` and `[q_r | r | Z]`.

    `d_zpre = dh * q_z`, `d_hpre = dh * q_h`, `d_rh = d_hpre @ U_h^T`,
    `d_rpre = d_rh * q_r` and
    `dh_prev = [d_zpre, d_rpre] @ U_zr^T + dh * Z + d_rh * r`.
    """
    q_zh = tf.concat([(h - hh) * spec.rec.derivative(z), (1.0 - z) * spec.act.derivative(hh)], 1)
    q_r = h * spec.rec.derivative(r)
    return [_masked(mask, k, q_zh), tf.concat([q_r, r, _one_where_masked(mask, k, z)], axis=1)]


@_compiled
def _gru_before_backward(d_outputs, d_states, factors, weights, mask, spec):
    q_zh, q_rrz, _ = factors
    units = weights[1].shape[0]
    zr_t = tf.transpose(weights[1][:, : 2 * units])
    h_t = tf.transpose(weights[1][:, 2 * units :])

    def step(k, carry):
        d = _upstream(d_outputs, k, carry[0])
        q_z, q_h = tf.split(q_zh[k], 2, axis=1)
        q_r, r, z = tf.split(q_rrz[k], 3, axis=1)
        d_hpre = d * q_h
        d_rh = tf.matmul(d_hpre, h_t)
        d_zr = tf.concat([d * q_z, d_rh * q_r], axis=1)
        return [tf.matmul(d_zr, zr_t) + d * z + d_rh * r], [d_zr, d_hpre]

    return _scan(step, tf.shape(q_zh)[0], d_states, _widths(units, 2, 1), reverse=True)


def _gru_before_weight_grads(x, states, outputs, weights, factors, d_pre):
    d_zr, d_hpre = d_pre
    d_in = tf.concat([d_zr, d_hpre], axis=2)
    dx, dw = _input_grads(x, d_in, weights[0])
    du_zr = _matmul_over_steps(_previous(states[0], outputs), d_zr)
    du = tf.concat([du_zr, _matmul_over_steps(factors[2], d_hpre)], axis=1)
    return dx, [dw, du, _sum_rows(d_in)]


_GRU_BEFORE = _Kernel(_gru_before_forward, _gru_before_backward, _gru_before_weight_grads)


# -------------------------------------------------------------------- chains


def read(variable) -> tf.Tensor:
    """The value of a (Keras) variable as a plain tensor.

    `tf.custom_gradient` must see tensors, not variables, so the weights are
    read before they enter a kernel.
    """
    return tf.convert_to_tensor(variable)


def chain_count(batch_size: int | None, concurrent_loops: int = 1) -> int:
    """How many independent chains to cut a batch into: one per core, each
    with at least `MIN_CHAIN_ROWS` rows when the batch size is known.

    `concurrent_loops` is how many such layers run side by side (2 for the two
    directions of `layers.Bidirectional`); they share the cores, so each takes
    its share. One direction per core also keeps each core on one set of weights.
    """
    cores = tf.config.threading.get_inter_op_parallelism_threads() or _usable_cores()
    cores = max(1, min(cores, MAX_CHAINS) // max(1, concurrent_loops))
    if batch_size is None:
        return cores
    return max(1, min(cores, batch_size // MIN_CHAIN_ROWS))


def _usable_cores():
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def run_chains(
    kernel,
    sequences,
    states,
    mask,
    weights,
    spec,
    training,
    keep_outputs,
    concurrent_loops=1,
    reverse=False,
):
    """Run `kernel` over batch-major `sequences` `(batch, steps, features)`.

    `mask` is `(batch, steps)` or `None`. With `reverse`, the steps run from
    the last to the first, as over flipped `sequences` and `mask` (Keras's
    `go_backwards`); outputs are in the order the steps ran. The native
    kernels do that in place; the XLA kernels get flipped copies.

    Where `kernel` has a native variant (`_native_variant`), that runs the
    whole batch on one core's share of threads each
    (`chain_count(None, concurrent_loops)`). Otherwise the batch
    is split into `chain_count(batch, concurrent_loops)` chains of the XLA
    kernel run side by side. Returns `(outputs, final_states)`, `outputs`
    batch major `(batch, steps, units)` if `keep_outputs`, else `None`.
    """
    if mask is not None:
        mask = tf.cast(mask, tf.float32)[:, :, None]
    threads = chain_count(None, concurrent_loops)
    native_kernel = _native_variant(kernel, spec, weights, threads, reverse)
    if native_kernel is not None:  # batch major in and out: no padding, no chains
        return _run(native_kernel, sequences, states, mask, weights, spec, training, keep_outputs)
    if reverse:
        sequences = tf.reverse(sequences, [1])
        mask = None if mask is None else tf.reverse(mask, [1])
    n = chain_count(sequences.shape[0], concurrent_loops)
    batch = tf.shape(sequences)[0]
    sequences, states, mask = _pad_batch(_bucket(batch) - batch, sequences, states, mask)
    results = [
        kernel(x, chain_states, chain_mask, weights, spec, training, keep_outputs)
        for x, chain_states, chain_mask in _split_batch(n, sequences, states, mask)
    ]
    outputs = None
    if keep_outputs:
        outputs = tf.transpose(tf.concat([out for out, _ in results], axis=1), [1, 0, 2])
        outputs = outputs[:batch]
    final_states = [
        _join(list(chain_states))[:batch]
        for chain_states in zip(*[f for _, f in results], strict=True)
    ]
    return outputs, final_states


# Kernels with a native variant, by name, and the activations those support.
_NATIVE_BUILDERS = {"lstm": _native_lstm, "gru": _native_gru}
NATIVE_KERNELS = tuple(_NATIVE_BUILDERS)
_NATIVE_SPEC = Spec("tanh", "sigmoid")


def has_native_variant(name: str | None, spec: Spec, reset_after: bool = True) -> bool:
    """Whether the kernel `name` has a native variant for `spec`: the LSTM and
    the GRU (`reset_after=True`) with Keras's default activations. It runs
    where, in addition, `native.enabled()`."""
    if name not in _NATIVE_BUILDERS or spec != _NATIVE_SPEC:
        return False
    return reset_after or name != "gru"


def _native_variant(kernel, spec, weights, threads, reverse=False):
    """The native kernel that replaces the XLA `kernel` for `spec`, or `None`.

    Native kernels exist where `has_native_variant`, and run where
    `native.enabled()`: the library is built and loads, is not switched off,
    and the trace is not inside `native.serving_kernels()`.
    """
    name = getattr(kernel, "__name__", None)
    reset_after = name != "gru" or weights[3] is not None
    if not has_native_variant(name, spec, reset_after) or not native.enabled():
        return None
    builder = _NATIVE_BUILDERS[name]
    if name == "lstm":
        return builder(threads, reverse, _weight_grads_inside(weights, threads))
    return builder(threads, reverse)


# The LSTM's backward op can keep each thread's weight gradients, (features +
# units) x 4 units / threads floats, and add each step's share while its
# gradients are in cache. That pays while a thread's share fits in a core's
# L2 cache beside the step's other data; where it no longer does, one matmul
# over all steps after the loop wins (`bench/` measures both ways).
_WEIGHT_GRADS_INSIDE_MAX_BYTES = 1.5 * 2**20


def _weight_grads_inside(weights, threads):
    """Whether the LSTM's backward op sums the weight gradients (`_inside_weight_grads`)."""
    features, units = weights[0].shape[0], weights[1].shape[0]
    threads = max(1, min(threads, units // 64))  # the op's ThreadCount
    per_thread = (features + units) * 4 * -(-units // threads) * 4
    return per_thread <= _WEIGHT_GRADS_INSIDE_MAX_BYTES


# XLA compiles a kernel once per input shape, which costs seconds. Padding the batch up
# to one of a few sizes bounds how many shapes a model meets (a last, smaller batch of
# an epoch, a serving request of any size) at the cost of computing at most twice the
# rows for such a batch. The padded rows start from zeros and are dropped afterwards, so
# they change neither the results nor, with no gradient flowing into them, the weights.
_BATCH_BUCKETS = tuple(2**i for i in range(11))  # 1, 2, 4, ..., 1024
_LARGE_BUCKET = 1024  # above the last bucket: a multiple of this


def _bucket(batch):
    """The padded batch size for a batch of `batch` rows (a scalar int32 tensor)."""
    buckets = tf.constant(_BATCH_BUCKETS, tf.int32)
    index = tf.searchsorted(buckets, tf.reshape(batch, [1]), side="left")[0]
    large = (batch + _LARGE_BUCKET - 1) // _LARGE_BUCKET * _LARGE_BUCKET
    return tf.where(
        index < len(_BATCH_BUCKETS),
        tf.gather(buckets, tf.minimum(index, len(_BATCH_BUCKETS) - 1)),
        large,
    )


def _pad_batch(extra, sequences, states, mask):
    """`sequences`, `states` and `mask` with `extra` rows of zeros appended to the batch."""

    def pad(t):
        return tf.pad(t, [[0, extra]] + [[0, 0]] * (len(t.shape) - 1))

    return pad(sequences), [pad(s) for s in states], None if mask is None else pad(mask)


def _split_batch(n, sequences, states, mask):
    """Yield `(sequences, states, mask)` for each of `n` slices of the batch."""
    if n == 1:
        yield sequences, states, mask
        return
    batch = tf.shape(sequences)[0]
    sizes = tf.stack([(batch + n - 1 - i) // n for i in range(n)])
    parts = [tf.split(t, sizes, num=n, axis=0) for t in [sequences, *states]]
    masks = tf.split(mask, sizes, num=n, axis=0) if mask is not None else [None] * n
    for i in range(n):
        yield parts[0][i], [p[i] for p in parts[1:]], masks[i]


def _join(tensors):
    return tensors[0] if len(tensors) == 1 else tf.concat(tensors, axis=0)
