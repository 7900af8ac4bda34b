"""Cells and fast layers survive get_config/from_config, `.keras` files and
SavedModel export (served by TensorFlow alone, in a fresh process)."""

import inspect
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import layers

# Runs in a fresh interpreter: loads each SavedModel with TensorFlow alone.
SERVE_SCRIPT = """
import sys
sys.modules["layers"] = None  # serving must not need the project's code
import numpy as np
import tensorflow as tf
x = tf.constant(np.load("inputs.npy"))
for path in sys.argv[1:]:
    loaded = tf.saved_model.load(path)  # keep a reference: `serve` needs its variables
    np.save(path + ".npy", loaded.serve(x).numpy())
"""


LAYER_KINDS = ["cell", "fast"]


def small_model(cell_case, steps, features, kind="cell"):
    """Masking -> Bidirectional(RNN) -> RNN -> Dense, both RNNs using our cell,
    in `keras.layers.RNN` (`kind="cell"`) or our fast layers (`"fast"`)."""
    make = cell_case.our_rnn if kind == "cell" else cell_case.our_layer
    inputs = keras.Input((steps, features))
    x = keras.layers.Masking(0.0)(inputs)
    x = keras.layers.Bidirectional(make(return_sequences=True))(x)
    x = make()(x)
    return keras.Model(inputs, keras.layers.Dense(2)(x))


def test_get_config_holds_every_constructor_argument(cell_case):
    cell = cell_case.our_cell()
    arguments = set(inspect.signature(type(cell).__init__).parameters) - {"self", "kwargs"}
    assert arguments <= set(cell.get_config())


@pytest.mark.parametrize("extra", [{}, {"dropout": 0.25, "recurrent_dropout": 0.5, "seed": 3}])
def test_config_round_trip(cell_case, extra):
    cell = cell_case.our_cell(**extra)
    config = cell.get_config()
    assert type(cell).from_config(config).get_config() == config


def test_registered_under_rnn_suite(cell_case):
    cell = cell_case.our_cell()
    serialized = keras.saving.serialize_keras_object(cell)
    assert serialized["registered_name"] == f"rnn_suite>{type(cell).__name__}"
    restored = keras.saving.deserialize_keras_object(serialized)
    assert type(restored) is type(cell)
    assert restored.get_config() == cell.get_config()


@pytest.mark.parametrize("kind", LAYER_KINDS)
def test_keras_file_round_trip(cell_case, kind, inputs, tmp_path):
    model = small_model(cell_case, *inputs.shape[1:], kind)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.layers[-2]) is type(model.layers[-2])
    assert type(loaded.layers[-2].cell) is cell_case.ours
    np.testing.assert_allclose(loaded.predict(inputs, verbose=0), model.predict(inputs, verbose=0))


def test_fast_layer_config_round_trip(cell_case):
    layer = cell_case.our_layer(return_sequences=True, go_backwards=True, dropout=0.25, seed=3)
    config = layer.get_config()
    assert config["units"] == 3 and config["go_backwards"] and config["dropout"] == 0.25
    restored = type(layer).from_config(config)
    assert restored.get_config() == config
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"] == f"rnn_suite>{type(layer).__name__}"


@pytest.fixture(scope="module")
def served_outputs(cell_cases, inputs, tmp_path_factory):
    """Per case id: (in-process output, output of its SavedModel in a fresh process)."""
    workdir = tmp_path_factory.mktemp("saved_models")
    np.save(workdir / "inputs.npy", inputs)
    expected = {}
    for case in cell_cases:
        for kind in LAYER_KINDS:
            name = f"{case.id}-{kind}"
            model = small_model(case, *inputs.shape[1:], kind)
            with layers.serving_kernels():  # TensorFlow's own ops only
                model.export(str(workdir / name), format="tf_saved_model", verbose=False)
            expected[name] = model.predict(inputs, verbose=0)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", SERVE_SCRIPT, *expected],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return {key: (value, np.load(workdir / f"{key}.npy")) for key, value in expected.items()}


@pytest.mark.parametrize("kind", LAYER_KINDS)
def test_saved_model_serves_in_fresh_process(cell_case, kind, served_outputs):
    expected, served = served_outputs[f"{cell_case.id}-{kind}"]
    np.testing.assert_allclose(served, expected, atol=1e-6)
