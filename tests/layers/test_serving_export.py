"""A SavedModel written by `pipelines.export.write_export` for a model with our LSTM
and GRU holds only ops of TensorFlow's standard registry, and serves the Keras model's
outputs with TensorFlow alone (in a fresh process that never loads our op library)."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import tensorflow as tf

from layers import GRU, LSTM, Bidirectional, native
from pipelines.export import write_export

STEPS, FEATURES = 7, 5

# Runs in a fresh interpreter without this project: TensorFlow's own op registry
# holds no op of ours there. Reads saved_model.pb, prints every op type its graphs and
# functions use that the registry lacks (function calls by name aside), then serves.
CHECK_SCRIPT = """
import json, sys
sys.modules["layers"] = None  # serving must not need the project's code
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

path, inputs, outputs = sys.argv[1:]
saved = saved_model_pb2.SavedModel()
with open(path + "/saved_model.pb", "rb") as f:
    saved.ParseFromString(f.read())
types, functions = set(), set()
for graph in saved.meta_graphs:
    types |= {node.op for node in graph.graph_def.node}
    for function in graph.graph_def.library.function:
        functions.add(function.signature.name)
        types |= {node.op for node in function.node_def}
unknown = sorted(t for t in types - functions if op_def_registry.get(t) is None)
print(json.dumps({"unknown": unknown, "types": sorted(types - functions)}), flush=True)
loaded = tf.saved_model.load(path)
served = loaded.signatures["serving_default"](x=tf.constant(np.load(inputs)))
np.save(outputs, served["y"].numpy())
"""


def _model():
    inputs = keras.Input((STEPS, FEATURES))
    hidden = Bidirectional(LSTM(32, return_sequences=True))(inputs)
    hidden = LSTM(32, return_sequences=True, go_backwards=True)(hidden)
    return keras.Model(inputs, keras.layers.Dense(2)(GRU(16)(hidden)))


def test_write_export_holds_only_standard_ops_and_serves_the_keras_outputs(tmp_path):
    model = _model()
    x = np.random.default_rng(0).normal(size=(3, STEPS, FEATURES)).astype("float32")
    expected = model.predict(x, verbose=0)  # traced outside: may run the native ops

    @tf.function(input_signature=[tf.TensorSpec((None, STEPS, FEATURES), name="x")])
    def serve(x):
        return {"y": model(x, training=False)}

    write_export(model, {"serving_default": serve}, tmp_path / "export")
    np.save(tmp_path / "x.npy", x)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            CHECK_SCRIPT,
            str(tmp_path / "export"),
            str(tmp_path / "x.npy"),
            str(tmp_path / "y.npy"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    lines = result.stdout.strip().splitlines()
    assert lines, result.stderr[-3000:]
    report = json.loads(lines[-1])
    assert report["unknown"] == []
    assert not [t for t in report["types"] if t.startswith("RnnSuite")]
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, atol=1e-5)
    if native.enabled():  # the check catches our ops: traced outside the block, they are there
        spec = tf.TensorSpec((None, STEPS, FEATURES))
        traced = tf.function(serve.python_function).get_concrete_function(spec).graph
        types = {op.type for op in traced.get_operations()}
        for function in traced.as_graph_def().library.function:
            types |= {node.op for node in function.node_def}
        assert {"RnnSuiteLstmForward", "RnnSuiteGruForward"} <= types
