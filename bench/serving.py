"""Serving throughput: our layers' exports against Keras's built-in layers' exports.

For each cell (LSTM, GRU) and shape, the same small model, two recurrent
layers (the first returning sequences) and a dense head, is built once on our
layers and once on `keras.layers.LSTM`/`GRU` with the same weights, exported the
same way (`pipelines.export.write_export`, which traces inside
`layers.serving_kernels()`: our layers then run their plain-TensorFlow serving
loops), loaded back with `tf.saved_model.load` as a model server would, and its
`serving_default` called on a batch of the shape. The exports run with TensorFlow
alone, XLA off as in TensorFlow Serving's model server. The rows give sequences
per second (median over interleaved rounds, `bench.measure`) and the ratio
ours/Keras, held against `SERVING_TARGET`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from bench.measure import interleaved_medians
from bench.workloads import KERAS_LAYERS, OUR_LAYERS, Shape

SERVING_CELLS = ("lstm", "gru")
# A request of one sequence, and a batch of them as a batching server would form.
SERVING_SHAPES = (Shape(1, 100, 64, 128), Shape(32, 100, 64, 128))
SERVING_ROUNDS = 5  # timed rounds; each row is their median
# Our export's throughput may fall at most 5 % short of Keras's built-in layer's.
SERVING_TARGET = 0.95
HEAD_UNITS = 2


def serving_model(impl: str, cell: str, shape: Shape) -> keras.Model:
    """Two recurrent layers of `cell` (`impl` "ours" or "keras") and a dense head."""
    layer_class = (OUR_LAYERS if impl == "ours" else KERAS_LAYERS)[cell]
    inputs = keras.Input((None, shape.features), name="x")
    hidden = layer_class(shape.units, return_sequences=True)(inputs)
    hidden = layer_class(shape.units)(hidden)
    return keras.Model(inputs, keras.layers.Dense(HEAD_UNITS)(hidden))


def export_and_load(model: keras.Model, features: int, path: Path):
    """`model` exported through `pipelines.export.write_export` to `path`, and
    its `serving_default` signature loaded back with `tf.saved_model.load`."""
    from pipelines.export import write_export

    spec = tf.TensorSpec((None, None, features), tf.float32, name="x")

    @tf.function(input_signature=[spec])
    def serve(x):
        return {"y": model(x, training=False)}

    write_export(model, {"serving_default": serve}, path)
    return tf.saved_model.load(str(path)).signatures["serving_default"]


def serving_variants(cell: str, shape: Shape, folder: Path) -> dict[tuple, Callable]:
    """`{("keras"|"ours", cell): call}` calling each loaded export on one batch;
    both models share Keras's weights."""
    keras_model = serving_model("keras", cell, shape)
    ours = serving_model("ours", cell, shape)
    ours.set_weights(keras_model.get_weights())
    x = np.random.default_rng(0).normal(size=(shape.batch, shape.steps, shape.features))
    x = tf.constant(x.astype("float32"))
    variants = {}
    for impl, model in (("keras", keras_model), ("ours", ours)):
        serve = export_and_load(model, shape.features, folder / f"{impl}_{cell}")
        variants[(impl, cell)] = lambda serve=serve: serve(x=x)["y"]
    expected, got = variants[("keras", cell)]().numpy(), variants[("ours", cell)]().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)  # the same model, served
    return variants


def measure_serving(shapes, cells, rounds: int, min_seconds: float, progress=None) -> list[dict]:
    """One row per shape and cell: sequences per second served by each export
    (median over `rounds` interleaved rounds), the ratio ours/Keras and its verdict."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as folder:
        for shape in shapes:
            variants = {}
            for cell in cells:
                variants.update(serving_variants(cell, shape, Path(folder) / str(shape.batch)))
            seconds, other_load = interleaved_medians(variants, rounds, min_seconds, progress)
            for cell in cells:
                rate = {impl: shape.batch / seconds[(impl, cell)] for impl in ("ours", "keras")}
                ratio = rate["ours"] / rate["keras"]
                rows.append(
                    {
                        "shape": vars(shape),
                        "cell": cell,
                        "model": f"2 x {cell} ({shape.units} units) + dense, masks off",
                        "export": "pipelines.export.write_export, tf.saved_model.load",
                        "seq_per_s": rate,
                        "ratio_ours_keras": ratio,
                        "target_ratio": SERVING_TARGET,
                        "verdict": "met" if ratio >= SERVING_TARGET else "missed",
                        "other_processes_cores": other_load,
                    }
                )
    return rows


def serving_table(rows: list[dict]) -> str:
    """The serving rows as an aligned text table."""
    header = (
        f"{'serving BxTxF->U':18} {'cell':5} {'ours/s':>9} {'keras/s':>9} {'ratio':>6} "
        f"{'target':>6} verdict"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        rate = row["seq_per_s"]
        lines.append(
            f"{Shape(**row['shape'])!s:18} {row['cell']:5} {rate['ours']:9.0f} "
            f"{rate['keras']:9.0f} {row['ratio_ours_keras']:5.2f}x "
            f"{row['target_ratio']:5.2f}x {row['verdict']}"
        )
    return "\n".join(lines)
