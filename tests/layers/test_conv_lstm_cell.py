"""`ConvLSTMCell` matches `keras.layers.ConvLSTM2D`, forward and backward, inside
`keras.layers.RNN`; it saves and loads, and every weight gets a gradient."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers.conv_lstm_cell import ConvLSTM, ConvLSTMCell

BATCH, STEPS, SIZE, CHANNELS, FILTERS = 2, 4, 6, 3, 5

CASES = [
    pytest.param({"padding": "same"}, id="same"),
    pytest.param({"padding": "valid"}, id="valid"),
    pytest.param({"padding": "same", "use_bias": False}, id="no_bias"),
    pytest.param(
        {"padding": "same", "activation": "relu", "recurrent_activation": "tanh"}, id="relu_tanh"
    ),
]


@pytest.fixture
def sequences() -> np.ndarray:
    """A `(BATCH, STEPS, SIZE, SIZE, CHANNELS)` float32 batch of frame sequences."""
    rng = np.random.default_rng(0)
    return rng.normal(size=(BATCH, STEPS, SIZE, SIZE, CHANNELS)).astype("float32")


def _pair(kwargs, return_sequences):
    """Keras's ConvLSTM2D and our cell in `keras.layers.RNN`, same weights."""
    reference = keras.layers.ConvLSTM2D(FILTERS, 3, return_sequences=return_sequences, **kwargs)
    ours = keras.layers.RNN(ConvLSTMCell(FILTERS, 3, **kwargs), return_sequences=return_sequences)
    return reference, ours


def _forward_and_gradients(layer, x, probe):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(layer(x) * probe)
    return layer(x), tape.gradient(loss, [x, *layer.trainable_weights])


@pytest.mark.parametrize("return_sequences", [True, False], ids=["sequences", "last"])
@pytest.mark.parametrize("kwargs", CASES)
def test_matches_keras_conv_lstm2d_forward_and_backward(sequences, kwargs, return_sequences):
    keras.utils.set_random_seed(0)
    reference, ours = _pair(kwargs, return_sequences)
    reference(sequences)
    ours(sequences)
    assert [w.shape for w in ours.weights] == [w.shape for w in reference.weights]
    # Random, not initial, biases: the forget-gate ones would hide a gate-order mistake.
    for mine, theirs in zip(ours.weights, reference.weights, strict=True):
        value = np.random.default_rng(1).normal(scale=0.3, size=theirs.shape).astype("float32")
        theirs.assign(value)
        mine.assign(value)
    probe = np.random.default_rng(2).normal(size=reference(sequences).shape).astype("float32")
    out_ref, grads_ref = _forward_and_gradients(reference, sequences, probe)
    out, grads = _forward_and_gradients(ours, sequences, probe)
    np.testing.assert_allclose(out, out_ref, atol=1e-5)
    for grad, grad_ref in zip(grads, grads_ref, strict=True):
        np.testing.assert_allclose(grad, grad_ref, atol=1e-4)


def test_forget_bias_starts_at_one():
    cell = ConvLSTMCell(FILTERS, 3)
    cell.build((None, SIZE, SIZE, CHANNELS))
    bias = keras.ops.convert_to_numpy(cell.bias)
    np.testing.assert_array_equal(bias[FILTERS : 2 * FILTERS], 1.0)
    np.testing.assert_array_equal(np.delete(bias, np.s_[FILTERS : 2 * FILTERS]), 0.0)


def _model(return_sequences=False):
    inputs = keras.Input((STEPS, SIZE, SIZE, CHANNELS))
    x = ConvLSTM(ConvLSTMCell(FILTERS, 3), return_sequences=return_sequences)(inputs)
    x = keras.layers.GlobalAveragePooling3D()(x) if return_sequences else x
    x = keras.layers.Flatten()(x) if not return_sequences else x
    return keras.Model(inputs, keras.layers.Dense(2)(x))


@pytest.mark.parametrize("return_sequences", [True, False], ids=["sequences", "last"])
def test_functional_output_shape(sequences, return_sequences):
    layer = ConvLSTM(ConvLSTMCell(FILTERS, 3, padding="valid"), return_sequences=return_sequences)
    symbolic = layer(keras.Input((STEPS, SIZE, SIZE, CHANNELS)))
    assert tuple(layer(sequences).shape)[1:] == tuple(symbolic.shape)[1:]


def test_keras_file_round_trip(sequences, tmp_path):
    keras.utils.set_random_seed(0)
    model = _model()
    expected = model.predict(sequences, verbose=0)
    model.save(tmp_path / "model.keras")
    restored = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(restored.predict(sequences, verbose=0), expected, atol=1e-6)
    cell = restored.layers[1].cell
    assert isinstance(cell, ConvLSTMCell)
    assert keras.saving.serialize_keras_object(cell)["registered_name"] == "rnn_suite>ConvLSTMCell"


def test_config_round_trip():
    cell = ConvLSTMCell(FILTERS, (3, 1), padding="valid", use_bias=False, unit_forget_bias=False)
    config = cell.get_config()
    assert ConvLSTMCell.from_config(config).get_config() == config


def test_every_weight_gets_a_gradient(sequences):
    keras.utils.set_random_seed(0)
    model = _model(return_sequences=True)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(sequences) ** 2)
    gradients = tape.gradient(loss, model.trainable_weights)
    for weight, gradient in zip(model.trainable_weights, gradients, strict=True):
        assert gradient is not None and np.any(np.abs(gradient) > 0), weight.path


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"filters": 0, "kernel_size": 3}, "filters"),
        ({"filters": 2, "kernel_size": (3, 3, 3)}, "kernel_size"),
        ({"filters": 2, "kernel_size": 3, "padding": "causal"}, "padding"),
        ({"filters": 2, "kernel_size": 3, "activation": "softmax"}, "activation"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConvLSTMCell(**kwargs)
