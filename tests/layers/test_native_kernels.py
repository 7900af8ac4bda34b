"""The native (C++) LSTM and GRU kernels of the fast path (`layers/native`):
built where a compiler is, equal to the XLA kernels on every thread count, left
out of graphs traced inside `layers.serving_kernels()`, and switched off on request."""

import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from layers import GRU, LSTM, Bidirectional, _kernels, native, serving_kernels

pytestmark = pytest.mark.skipif(
    not native.available(),
    reason="native kernels not built: run `make venv` or `python -m layers.native`",
)
NATIVE_OPS = (
    "RnnSuiteLstmForward",
    "RnnSuiteLstmBackward",
    "RnnSuiteGruForward",
    "RnnSuiteGruBackward",
)
LAYERS = {"lstm": LSTM, "gru": GRU}
FEATURES, STEPS = 6, 9
KERAS_LAYERS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


def _inputs(batch, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, STEPS, FEATURES)).astype("float32")


def _mask(batch):
    mask = np.ones((batch, STEPS), bool)
    mask[0, 5:] = False  # padding at the end
    mask[-1, :3] = False  # at the start
    if batch > 2:
        mask[1, 2:4] = False  # a hole
    return mask


def _results(layer, inputs, mask, training, native_on=True):
    """Outputs, final states and the gradients of a loss on them (inputs, states, weights)."""
    dtype = layer.compute_dtype
    x = tf.constant(inputs.astype(dtype))
    state = tf.constant(np.full((len(inputs), layer.units), 0.3, dtype))
    states = [state] * (2 if isinstance(layer, LSTM | keras.layers.LSTM) else 1)
    with native.use_native(native_on), tf.GradientTape() as tape:
        tape.watch([x, *states])
        out = layer(x, mask=mask, training=training, initial_state=states)
        loss = tf.add_n([tf.reduce_sum(o * tf.cos(o)) for o in out])
    grads = tape.gradient(loss, [x, *states, *layer.trainable_weights])
    return [o.numpy() for o in out] + [g.numpy() for g in grads]


def _op_types(function, *specs):
    graph = tf.function(function).get_concrete_function(*specs).graph
    types = {op.type for op in graph.get_operations()}
    for function_def in graph.as_graph_def().library.function:
        types |= {node.op for node in function_def.node_def}
    return types


def test_the_library_is_built_where_a_compiler_is():
    compiler = native.compile_command()[0]
    if shutil.which(compiler) is None:
        pytest.skip(f"no C++ compiler ({compiler})")
    assert native.LIBRARY.exists()
    assert native.enabled()


@pytest.mark.parametrize("cell", sorted(LAYERS))
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize(("units", "batch"), [(200, 5), (128, 2), (33, 1)])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("go_backwards", [True, False])
def test_native_equals_the_xla_kernels(
    cell, threads, units, batch, training, go_backwards, monkeypatch
):
    """Uneven unit slices (200 on 3 threads = 64 + 64 + 72; 33 on one), batches down to one row,
    masks with holes, initial states, both directions, every gradient.

    Both kernels round in float32, each in its own order, so each is held against Keras's
    layer in float64: the native kernels' largest error in every output and gradient must
    stay within twice the XLA kernels' (measured: at most equal to it).
    """
    _assert_native_equals_the_xla_kernels(
        cell, threads, units, batch, training, go_backwards, monkeypatch
    )


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("go_backwards", [True, False])
def test_lstm_weight_gradients_after_the_loop_equal_the_xla_kernels(
    threads, go_backwards, monkeypatch
):
    """Layers too wide for the LSTM's backward op to keep their weight gradients in cache
    take them from matmuls over all steps after its loop (`_kernels._weight_grads_inside`)."""
    assert _kernels._weight_grads_inside([tf.zeros((64, 512)), tf.zeros((128, 512))], 1)
    assert not _kernels._weight_grads_inside([tf.zeros((128, 2048)), tf.zeros((512, 2048))], 2)
    monkeypatch.setattr(_kernels, "_weight_grads_inside", lambda weights, threads: False)
    _assert_native_equals_the_xla_kernels("lstm", threads, 200, 5, True, go_backwards, monkeypatch)


def _assert_native_equals_the_xla_kernels(
    cell, threads, units, batch, training, go_backwards, monkeypatch
):
    monkeypatch.setattr(_kernels, "chain_count", lambda batch_size, concurrent_loops=1: threads)
    arguments = {"return_sequences": True, "return_state": True, "go_backwards": go_backwards}
    layer = LAYERS[cell](units, **arguments)
    inputs = _inputs(batch)
    layer(inputs)
    layer.set_weights([w + 0.05 for w in layer.get_weights()])
    exact = KERAS_LAYERS[cell](units, **arguments, dtype="float64")
    exact(inputs.astype("float64"))
    exact.set_weights([w.astype("float64") for w in layer.get_weights()])
    mask = _mask(batch)
    got = _results(layer, inputs, mask, training, native_on=True)
    xla = _results(layer, inputs, mask, training, native_on=False)
    for native_result, xla_result, reference in zip(
        got, xla, _results(exact, inputs, mask, training), strict=True
    ):
        floor = 2e-6 * max(1.0, float(np.abs(reference).max()))
        xla_error = float(np.abs(xla_result - reference).max())
        np.testing.assert_allclose(native_result, reference, atol=max(2 * xla_error, floor), rtol=0)


@pytest.mark.parametrize("cell", sorted(LAYERS))
def test_nan_and_saturating_inputs_come_out_as_from_the_xla_kernels(cell):
    """The native sigmoid and tanh clamp their inputs: a NaN must still come out as NaN
    (from its step on, in its row only) and saturated gates as the XLA kernels' do."""
    layer = LAYERS[cell](16, return_sequences=True)
    inputs = _inputs(3)
    inputs[0, 4, 2] = np.nan
    inputs[1] *= 1e4  # every gate saturates
    layer(inputs)
    with native.use_native(True):
        got = layer(inputs).numpy()
    with native.use_native(False):
        xla = layer(inputs).numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(xla))
    assert np.isnan(got[0, 4:]).all() and not np.isnan(got[0, :4]).any()
    assert not np.isnan(got[1:]).any()
    np.testing.assert_allclose(np.nan_to_num(got), np.nan_to_num(xla), atol=1e-6, rtol=0)


def test_the_native_ops_run_only_where_switched_on(monkeypatch):
    layer = LSTM(32)
    spec = tf.TensorSpec((None, STEPS, FEATURES))
    assert "RnnSuiteLstmForward" in _op_types(layer, spec)
    assert "RnnSuiteGruForward" in _op_types(GRU(32), spec)
    for other in (GRU(32, reset_after=False), LSTM(32, activation="relu")):
        assert not set(NATIVE_OPS) & _op_types(other, spec)  # the XLA kernels
    with native.use_native(False):
        assert not set(NATIVE_OPS) & _op_types(layer, spec)
        with native.use_native(True):
            assert "RnnSuiteLstmForward" in _op_types(layer, spec)
    monkeypatch.setenv(native.NATIVE_ENV, "0")
    assert not native.enabled()
    assert not set(NATIVE_OPS) & _op_types(layer, spec)
    with native.use_native(True):
        assert native.enabled()


def test_serving_kernels_leave_the_native_ops_out_whatever_else_is_switched_on():
    layer = LSTM(32)
    spec = tf.TensorSpec((None, STEPS, FEATURES))
    with serving_kernels():
        assert not native.enabled()
        assert not set(NATIVE_OPS) & _op_types(layer, spec)
        with native.use_native(True):
            assert not set(NATIVE_OPS) & _op_types(layer, spec)
    assert "RnnSuiteLstmForward" in _op_types(layer, spec)


@pytest.mark.parametrize("cell", sorted(LAYERS))
def test_go_backwards_runs_the_steps_in_reverse_without_flipping_a_copy(cell):
    """The native ops read the steps from the last: no ReverseV2 of the sequences
    (0.17 ms before a bidirectional direction could start, at 64x100x64->128)."""
    model = keras.Sequential([keras.Input((STEPS, FEATURES)), LAYERS[cell](8, go_backwards=True)])
    spec = tf.TensorSpec((None, STEPS, FEATURES))
    types = _op_types(lambda x: model(x, training=False), spec)
    assert {"RnnSuiteLstmForward", "RnnSuiteGruForward"} & types
    assert "ReverseV2" not in types


@pytest.mark.parametrize("cell", sorted(LAYERS))
def test_keras_does_not_compile_models_that_may_run_the_native_ops_with_xla(cell):
    """XLA cannot compile the native ops: the layers tell Keras (`supports_jit`), which
    then compiles without XLA, as for its own cuDNN LSTM."""
    layer = LAYERS[cell](16)
    assert layer.may_run_native() and not layer.supports_jit
    for other in (GRU(16, reset_after=False), LSTM(16, activation="relu"), LSTM(16, unroll=True)):
        assert not other.may_run_native() and other.supports_jit
    inputs = keras.Input((STEPS, FEATURES))
    model = keras.Model(inputs, keras.layers.Dense(1)(Bidirectional(layer)(inputs)))
    with pytest.warns(UserWarning, match="jit_compile"):
        model.compile(optimizer="adam", loss="mse", jit_compile=True)
    assert not model.jit_compile
    model.compile(optimizer="adam", loss="mse")  # "auto"
    assert not model.jit_compile
    x, y = _inputs(8), np.zeros((8, 1), "float32")
    model.fit(x, y, epochs=1, verbose=0)


@pytest.mark.parametrize("cell", sorted(LAYERS))
def test_whole_functions_compiled_by_xla_inside_serving_kernels_leave_the_native_ops_out(cell):
    inputs = keras.Input((STEPS, FEATURES))
    model = keras.Model(inputs, keras.layers.Dense(1)(LAYERS[cell](16)(inputs)))
    x = _inputs(8)
    compiled = tf.function(model, jit_compile=True)
    with serving_kernels():
        np.testing.assert_allclose(compiled(x), model(x), atol=1e-5)
        assert not set(NATIVE_OPS) & _op_types(compiled, tf.TensorSpec((None, STEPS, FEATURES)))


@pytest.mark.parametrize("cell", sorted(LAYERS))
def test_a_training_step_runs_the_native_backward(cell):
    layer = LAYERS[cell](32)
    layer(_inputs(2))

    def step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x, training=True))
        return tape.gradient(loss, layer.trainable_weights)

    prefix = f"RnnSuite{cell.capitalize()}"
    expected = {f"{prefix}Forward", f"{prefix}Backward"}
    assert expected <= _op_types(step, tf.TensorSpec((None, STEPS, FEATURES)))


def _saved_op_types(path):
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((path / "saved_model.pb").read_bytes())
    types = set()
    for graph in saved.meta_graphs:
        types |= {node.op for node in graph.graph_def.node}
        for function_def in graph.graph_def.library.function:
            types |= {node.op for node in function_def.node_def}
    return types


_SERVE = """
import sys, numpy as np, tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
x = np.load(sys.argv[2])
np.save(sys.argv[3], loaded.serve(tf.constant(x)).numpy())
"""


def test_exports_inside_serving_kernels_leave_the_native_ops_out_and_serve_with_tensorflow_alone(
    tmp_path,
):
    inputs = keras.Input((STEPS, FEATURES))
    hidden = Bidirectional(LSTM(32, return_sequences=True))(inputs)
    model = keras.Model(inputs, GRU(16)(hidden))
    x = _inputs(4)
    expected = model.predict(x, verbose=0)
    spec = [tf.TensorSpec((None, STEPS, FEATURES))]
    with serving_kernels():
        model.export(str(tmp_path / "exported"), format="tf_saved_model", verbose=False)
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serve", model.call, spec)
        archive.write_out(str(tmp_path / "archive"), verbose=False)
        module = tf.Module()
        module.model = model
        module.serve = tf.function(lambda x: model(x), input_signature=spec)
        tf.saved_model.save(module, str(tmp_path / "module"))
    np.save(tmp_path / "x.npy", x)
    for name in ("exported", "archive", "module"):
        assert not _saved_op_types(tmp_path / name) & set(NATIVE_OPS), name
        out = tmp_path / f"{name}.npy"
        env = {**os.environ, "PYTHONPATH": ""}  # TensorFlow alone, not this project
        subprocess.run(
            [sys.executable, "-c", _SERVE, str(tmp_path / name), str(tmp_path / "x.npy"), str(out)],
            check=True,
            env=env,
            cwd=tmp_path,
        )
        np.testing.assert_allclose(np.load(out), expected, atol=1e-5)


def test_build_without_a_compiler_says_so_and_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CXX", "no-such-compiler")
    target = tmp_path / "lib.so"
    with pytest.raises(RuntimeError, match="no C\\+\\+ compiler"):
        native.build(target)
    assert list(tmp_path.iterdir()) == []
    result = subprocess.run(
        [sys.executable, "-m", "layers.native"],
        capture_output=True,
        text=True,
        env={**os.environ, "CXX": "no-such-compiler"},
    )
    assert result.returncode == 0
    assert "build failed; the layers use their XLA kernels" in result.stdout
    assert native.LIBRARY.exists()  # the built library is left in place
