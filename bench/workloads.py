"""The timed workloads: one training step and one inference pass per variant.

Each workload is the recurrent layer alone on random inputs `(batch, steps,
features)`, returning its last output (the concatenated last outputs when
bidirectional); training minimises the mean squared distance of that output
to a constant with Adam.
"""

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import layers  # noqa: E402

# Every variant builds its own tf.function: the retracing warnings say nothing here.
tf.get_logger().setLevel("ERROR")

CELLS = ("lstm", "gru", "simple_rnn")
GATES = {"lstm": 4, "gru": 3, "simple_rnn": 1}
KERAS_LAYERS = {
    "lstm": keras.layers.LSTM,
    "gru": keras.layers.GRU,
    "simple_rnn": keras.layers.SimpleRNN,
}
OUR_LAYERS = {"lstm": layers.LSTM, "gru": layers.GRU, "simple_rnn": layers.SimpleRNN}
TORCH_LAYERS = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "RNN"}


@dataclass(frozen=True)
class Shape:
    """A benchmark shape."""

    batch: int
    steps: int
    features: int
    units: int

    def __str__(self):
        return f"{self.batch}x{self.steps}x{self.features}->{self.units}"


SHAPES = [Shape(64, 100, 64, 128), Shape(32, 500, 32, 256), Shape(256, 50, 128, 512)]


def parse_shape(text: str) -> Shape:
    """`BxTxFxU` (batch, steps, features, units), or `1`-`3` for a default shape."""
    if text.isdigit() and 1 <= int(text) <= len(SHAPES):
        return SHAPES[int(text) - 1]
    parts = text.lower().replace("->", "x").split("x")
    if len(parts) != 4 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected BATCHxSTEPSxFEATURESxUNITS, got {text!r}")
    return Shape(*map(int, parts))


def flops(cell: str, shape: Shape, bidirectional: bool, training: bool) -> float:
    """Nominal float32 operations of one pass: the recurrent layer's matmuls.

    A step's forward pass costs `2 * gates * units * (features + units)`
    operations per sequence; a training step counts three times that
    (forward, then the gradients of the inputs/states and of the weights).
    """
    per_step = 2 * GATES[cell] * shape.units * (shape.features + shape.units)
    total = per_step * shape.batch * shape.steps * (2 if bidirectional else 1)
    return float(total * (3 if training else 1))


def _inputs(shape: Shape, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(shape.batch, shape.steps, shape.features)).astype("float32")


def keras_workloads(
    layer: keras.layers.Layer, shape: Shape, jit_compile: bool = False
) -> dict[str, Callable]:
    """`{"train": step, "infer": step}` for a Keras layer; each call runs once
    and returns a tensor to wait on. `jit_compile` compiles each whole step
    with XLA; our layers are then traced inside `layers.serving_kernels()`,
    since XLA cannot compile the native ops (they run their plain-TensorFlow
    loops, which XLA compiles with the rest of the step)."""
    spec = tf.TensorSpec((None, shape.steps, shape.features))
    inputs = keras.Input((shape.steps, shape.features))
    model = keras.Model(inputs, layer(inputs))
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(model.trainable_variables)
    x = tf.constant(_inputs(shape))

    @tf.function(input_signature=[spec], jit_compile=jit_compile)
    def train(x):
        with tf.GradientTape() as tape:
            output = tf.cast(model(x, training=True), "float32")
            loss = tf.reduce_mean(tf.square(output - 0.1))
        optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        return loss

    @tf.function(input_signature=[spec], jit_compile=jit_compile)
    def infer(x):
        return model(x, training=False)

    if jit_compile:  # traced once here, for the signature every call has
        with layers.serving_kernels():
            train.get_concrete_function()
            infer.get_concrete_function()
    return {"train": lambda: train(x), "infer": lambda: infer(x)}


def make_keras_layer(impl: str, cell: str, units: int, bidirectional: bool) -> keras.layers.Layer:
    """Keras's built-in layer (`impl="keras"`) or ours (`"ours"`)."""
    layer = (KERAS_LAYERS if impl == "keras" else OUR_LAYERS)[cell](units)
    return bidirectional_of(layer) if bidirectional else layer


def bidirectional_of(layer: keras.layers.Layer) -> keras.layers.Layer:
    """`layers.Bidirectional` around our layers (what `recurrent_stack` builds),
    `keras.layers.Bidirectional` around Keras's."""
    wrapper = (
        layers.Bidirectional if isinstance(layer, layers.FastRNN) else keras.layers.Bidirectional
    )
    return wrapper(layer)


def torch_workloads(cell: str, shape: Shape, bidirectional: bool) -> dict[str, Callable] | None:
    """The same workloads for `torch.nn.LSTM`, `GRU` or `RNN`; `None` without PyTorch."""
    torch = _torch()
    if torch is None:
        return None
    module = getattr(torch.nn, TORCH_LAYERS[cell])(
        shape.features, shape.units, batch_first=True, bidirectional=bidirectional
    )
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    x = torch.from_numpy(_inputs(shape))

    def last_output():
        out = module(x)[0]
        if not bidirectional:
            return out[:, -1]
        # Keras's Bidirectional: last forward output, and the backward
        # direction's output after the whole (reversed) sequence.
        return torch.cat([out[:, -1, : shape.units], out[:, 0, shape.units :]], dim=1)

    def train():
        optimizer.zero_grad()
        loss = torch.mean(torch.square(last_output() - 0.1))
        loss.backward()
        optimizer.step()
        return loss

    def infer():
        with torch.inference_mode():
            return last_output()

    return {"train": train, "infer": infer}


def _torch():
    """The `torch` module, or `None` where it is not importable (or broken)."""
    try:
        import torch
    except Exception:  # noqa: BLE001 - a half-installed torch raises OSError
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    torch.set_num_threads(cores or 1)
    return torch


def torch_version() -> str | None:
    """PyTorch's version, or `None` when it is not importable."""
    torch = _torch()
    return None if torch is None else torch.__version__


def matmul_loop_workloads(cell: str, shape: Shape, bidirectional: bool) -> dict[str, Callable]:
    """`{"train": step, "infer": step}` doing only the matmuls of the XLA kernels.

    The same matmuls (`flops`) in the same layout, in plain TensorFlow: per
    direction, the batch is cut into `chain_count` chains, each a compiled
    loop whose step is one `[x_t, h] @ [W; U]` (GRU: `x_t @ W + h @ U`, as its
    kernel has it); training adds, per chain, the loop of `dz @ U^T` from the
    last step back and the weight gradients as matmuls over all steps. Left
    out are every elementwise op but what carries the state to the next step,
    the stored factors and Adam. So its speed bounds what a kernel of this
    design can reach on this machine (up to noise): `keras seconds / these
    seconds` is the row's `loop_bound_ratio` where ours ran the XLA kernels.
    The native kernels' layout (threads splitting each step by units) has no
    such plain-TensorFlow twin, so their rows have no loop bound.
    """
    from layers import _kernels

    gates, units, features = GATES[cell], shape.units, shape.features
    directions = 2 if bidirectional else 1
    chains = _kernels.chain_count(shape.batch, concurrent_loops=directions)
    rng = np.random.default_rng(1)

    def constant(*dims, scale=1.0):
        return tf.constant((rng.normal(size=dims) * scale).astype("float32"))

    # Weights small enough that the state neither grows without bound nor dies out.
    stacked = constant(features + units, gates * units, scale=(gates * (features + units)) ** -0.5)
    recurrent_t = tf.transpose(stacked[features:])
    # GRU's kernel multiplies x_t and h separately (reset after), the others jointly.
    step_weights = [stacked[:features], stacked[features:]] if cell == "gru" else [stacked]
    # Every chain of every direction gets inputs of its own, lest TensorFlow
    # merge identical calls.
    rows = [len(r) for r in np.array_split(np.arange(shape.batch), chains)]
    loops = [
        (
            constant(r, shape.steps, features),
            constant(shape.steps, r, gates * units, scale=0.01),
            constant(shape.steps * r, features + units),
        )
        for _ in range(directions)
        for r in rows
    ]

    @tf.function(autograph=False)
    def infer():
        return _first_values([_forward_matmuls(x, step_weights, gates) for x, _, _ in loops])

    @tf.function(autograph=False)
    def train():
        return _first_values(
            [
                g
                for x, d_pre, step_inputs in loops
                for g in _backward_matmuls(
                    d_pre,
                    step_inputs,
                    stacked,
                    recurrent_t,
                    start=_forward_matmuls(x, step_weights, gates),
                )
            ]
        )

    return {"train": train, "infer": infer}


def _first_values(tensors):
    """One scalar to wait on for all of `tensors`."""
    return tf.add_n([t[0, 0] for t in tensors])


@tf.function(jit_compile=True, autograph=False)
def _forward_matmuls(x, weights, gates):
    """The last state of `h_t = sum over gates of ([x_t, h_{t-1}] @ [W; U])`:
    one matmul a step for `weights` `[stacked]`, `x_t @ W + h_{t-1} @ U` for
    `[W, U]` (sliced outside the loop, which XLA would copy every step)."""
    batch, steps = x.shape[0], x.shape[1]
    units = weights[-1].shape[1] // gates

    def step(t, h):
        if len(weights) == 1:
            z = tf.matmul(tf.concat([x[:, t], h], axis=1), weights[0])
        else:
            z = tf.matmul(x[:, t], weights[0]) + tf.matmul(h, weights[1])
        return t + 1, tf.reduce_sum(tf.reshape(z, (-1, gates, units)), axis=1)

    return tf.while_loop(lambda t, _: t < steps, step, (0, tf.zeros((batch, units))))[1]


@tf.function(jit_compile=True, autograph=False)
def _backward_matmuls(d_pre, step_inputs, stacked, recurrent_t, start):
    """The gradient's matmuls from `start` (the forward loop's last state):
    the loop `dh = (tile(dh) + d_pre[t]) @ U^T` from the last step to the
    first, then `step_inputs^T @ d_pre` (weights) over all steps. No input
    gradient: the benchmark's layer takes the data, so its training step
    needs none (TensorFlow prunes it from ours and Keras's)."""
    gates = recurrent_t.shape[0] // recurrent_t.shape[1]

    def step(t, dh):
        dz = tf.tile(dh, [1, gates]) + d_pre[t]
        return t - 1, tf.matmul(dz, recurrent_t)

    dh = tf.while_loop(lambda t, _: t >= 0, step, (d_pre.shape[0] - 1, start))[1]
    d_flat = tf.reshape(d_pre, (-1, d_pre.shape[-1]))
    return [dh, tf.matmul(step_inputs, d_flat, transpose_a=True)]


MATMUL_SIZE = 2048
MATMUL_FLOPS = 2 * MATMUL_SIZE**3


def matmul_probe(
    size: int = MATMUL_SIZE, dtype: str = "float32", jit_compile: bool = False
) -> Callable:
    """A call running one `size` x `size` `tf.matmul` (`MATMUL_FLOPS`) in `dtype`,
    compiled with XLA if `jit_compile`."""
    a = tf.cast(tf.random.normal((size, size)), dtype)
    b = tf.cast(tf.random.normal((size, size)), dtype)
    return tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)), jit_compile=jit_compile)


def matmul_peak(repeats: int = 10, dtype: str = "float32", jit_compile: bool = False) -> float:
    """Matmul throughput (GFLOP/s): best of `repeats` `matmul_probe` calls."""
    import time

    run = matmul_probe(dtype=dtype, jit_compile=jit_compile)
    run().numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run().numpy()
        best = min(best, time.perf_counter() - start)
    return MATMUL_FLOPS / best / 1e9
