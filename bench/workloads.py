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
    with XLA."""
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
