"""`make_cell`, `recurrent_layers` and `recurrent_stack`, plus argument validation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers import (
    CELL_KINDS,
    GRUCell,
    LSTMCell,
    SimpleRNNCell,
    make_cell,
    recurrent_layers,
    recurrent_stack,
    split_into_windows,
)

KIND_CLASSES = {"simple_rnn": SimpleRNNCell, "lstm": LSTMCell, "gru": GRUCell}


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_make_cell_builds_the_kind_asked_for(kind):
    cell = make_cell(kind, 5, dropout=0.1, recurrent_dropout=0.2, activation="relu", seed=4)
    assert type(cell) is KIND_CLASSES[kind]
    config = cell.get_config()
    assert (config["units"], config["activation"], config["seed"]) == (5, "relu", 4)
    assert (config["dropout"], config["recurrent_dropout"]) == (0.1, 0.2)


def test_make_cell_passes_extra_arguments():
    assert make_cell("gru", 2, reset_after=False).reset_after is False


@pytest.mark.parametrize(
    ("build", "match"),
    [
        pytest.param(lambda: SimpleRNNCell(3, activation="softmax"), "softmax", id="activation"),
        pytest.param(lambda: LSTMCell(3, recurrent_activation="swish"), "swish", id="recurrent"),
        pytest.param(lambda: GRUCell(0), "units.*0", id="cell_units_0"),
        pytest.param(lambda: LSTMCell(3, dropout=1.5), "dropout.*1.5", id="cell_dropout"),
        pytest.param(lambda: make_cell("transformer", 3), "transformer.*simple_rnn", id="kind"),
        pytest.param(lambda: recurrent_layers(units=0), "units.*0", id="units_0"),
        pytest.param(lambda: recurrent_layers(dropout=1.5), "dropout.*1.5", id="dropout"),
        pytest.param(
            lambda: recurrent_layers(recurrent_dropout=-0.1), "recurrent_dropout", id="rec_dropout"
        ),
        pytest.param(lambda: recurrent_layers(depth=0), "depth.*0", id="depth_0"),
        pytest.param(lambda: recurrent_layers(cell="cnn"), "cnn", id="stack_kind"),
        pytest.param(lambda: split_into_windows(np.zeros((1, 4, 1)), 0), "window", id="window"),
    ],
)
def test_bad_arguments_raise_value_error(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize("kind", CELL_KINDS)
@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_recurrent_stack_shapes(kind, depth, bidirectional, return_sequences):
    inputs = keras.Input((5, 4))
    outputs = recurrent_stack(
        inputs,
        cell=kind,
        units=3,
        depth=depth,
        bidirectional=bidirectional,
        return_sequences=return_sequences,
        name="rec",
    )
    features = 6 if bidirectional else 3
    assert outputs.shape == ((None, 5, features) if return_sequences else (None, features))
    model = keras.Model(inputs, outputs)
    names = [layer.name for layer in model.layers[1:]]
    assert names == [f"rec_{i}" for i in range(depth)]


@pytest.mark.parametrize("bidirectional", [False, True])
def test_recurrent_layers_wiring(bidirectional):
    stack = recurrent_layers(cell="gru", units=2, depth=3, bidirectional=bidirectional, seed=5)
    rnns = [layer.forward_layer if bidirectional else layer for layer in stack]
    assert all(isinstance(layer, keras.layers.Bidirectional) == bidirectional for layer in stack)
    assert [rnn.return_sequences for rnn in rnns] == [True, True, False]
    assert [rnn.cell.seed for rnn in rnns] == [5, 6, 7]


def test_recurrent_layers_stateful():
    stack = recurrent_layers(units=2, depth=2, stateful=True)
    assert all(layer.stateful for layer in stack)


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_masks_propagate_through_the_stack(kind):
    """Zero padding behind a Masking layer changes nothing, in both directions."""
    inputs = keras.Input((None, 4))
    masked = keras.layers.Masking(0.0)(inputs)
    outputs = recurrent_stack(masked, cell=kind, units=3, depth=2, bidirectional=True)
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(0).normal(size=(2, 3, 4)).astype("float32")
    padded = np.concatenate([x, np.zeros((2, 2, 4), "float32")], axis=1)
    np.testing.assert_allclose(model(padded), model(x), atol=1e-6)


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_every_weight_gets_a_gradient(kind, inputs):
    inputs_layer = keras.Input(inputs.shape[1:])
    outputs = recurrent_stack(inputs_layer, cell=kind, units=3, depth=2, bidirectional=True)
    model = keras.Model(inputs_layer, outputs)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(model(inputs) - 0.3))
    gradients = tape.gradient(loss, model.trainable_weights)
    assert len(gradients) == 2 * 2 * 3  # depth x directions x (kernel, recurrent, bias)
    for weight, gradient in zip(model.trainable_weights, gradients, strict=True):
        assert gradient is not None, weight.path
        assert np.all(gradient.numpy() != 0), weight.path


def test_stack_dropout_is_active_only_in_training(inputs):
    inputs_layer = keras.Input(inputs.shape[1:])
    outputs = recurrent_stack(
        inputs_layer, units=3, depth=2, bidirectional=True, dropout=0.5, recurrent_dropout=0.5
    )
    model = keras.Model(inputs_layer, outputs)
    np.testing.assert_allclose(model(inputs), model(inputs))
    assert not np.allclose(model(inputs, training=True), model(inputs), atol=1e-3)


def test_numpy_integer_sizes_are_accepted():
    cell = make_cell("lstm", np.int64(3))
    assert cell.units == 3 and type(cell.units) is int
    assert len(recurrent_layers(units=3, depth=np.int32(2))) == 2
