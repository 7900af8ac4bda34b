"""Our cells match Keras's own layers, forward and backward, both inside
`keras.layers.RNN` (Keras's generic loop) and through our layers' fast path."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers import LSTMCell


@dataclasses.dataclass(frozen=True)
class Scenario:
    """How the recurrent layers are wired and fed."""

    return_sequences: bool = True
    go_backwards: bool = False
    masked: bool = False
    bidirectional: bool = False
    depth: int = 1


SCENARIOS = [
    pytest.param(Scenario(), id="sequences"),
    pytest.param(Scenario(masked=True), id="masked"),
    pytest.param(Scenario(return_sequences=False, masked=True), id="masked_last_output"),
    pytest.param(Scenario(go_backwards=True), id="go_backwards"),
    pytest.param(Scenario(go_backwards=True, masked=True), id="go_backwards_masked"),
    pytest.param(Scenario(bidirectional=True), id="bidirectional"),
    pytest.param(Scenario(bidirectional=True, masked=True), id="bidirectional_masked"),
    pytest.param(Scenario(depth=2, return_sequences=False), id="stacked"),
]


def build_stack(make_rnn, scenario):
    """The layers of `scenario`, each RNN made by `make_rnn(**rnn_kwargs)`."""
    stack = []
    for i in range(scenario.depth):
        rnn = make_rnn(
            return_sequences=scenario.return_sequences or i < scenario.depth - 1,
            go_backwards=scenario.go_backwards,
        )
        stack.append(keras.layers.Bidirectional(rnn) if scenario.bidirectional else rnn)
    return stack


# How our side of the comparison runs: the cell in `keras.layers.RNN`, or our
# layer's fast path with the training-mode backward pass (factors kept by the
# forward loop) or the inference-mode one (the forward pass recomputed). The
# inference mode is checked on a few scenarios only, to keep the suite quick.
INFERENCE_SCENARIOS = ("masked_last_output", "go_backwards_masked", "bidirectional_masked")
CASES = [
    pytest.param(scenario.values[0], how, training, id=f"{scenario.id}-{path_id}")
    for scenario in SCENARIOS
    for how, training, path_id in [
        ("cell", False, "cell"),
        ("fast", True, "fast_training"),
        ("fast", False, "fast_inference"),
    ]
    if path_id != "fast_inference" or scenario.id in INFERENCE_SCENARIOS
]


def run_stack(stack, x, mask, training=False):
    """Apply the layers in turn, passing the mask to each."""
    for layer in stack:
        x = layer(x, mask=mask, training=training)
    return x


def forward_and_gradients(stack, x, mask, probe, training=False):
    """Output, and gradients of `sum(output * probe)` w.r.t. `x` and every weight."""
    x = tf.constant(x)
    weights = [w for layer in stack for w in layer.trainable_weights]
    with tf.GradientTape() as tape:
        tape.watch(x)
        output = run_stack(stack, x, mask, training)
        loss = tf.reduce_sum(output * probe)
    return output.numpy(), [g.numpy() for g in tape.gradient(loss, [x, *weights])]


def rnn_layers(stack):
    """The recurrent layers of a stack, unwrapping `Bidirectional`."""
    for layer in stack:
        if isinstance(layer, keras.layers.Bidirectional):
            yield from (layer.forward_layer, layer.backward_layer)
        else:
            yield layer


def copy_random_weights(ours, theirs):
    """Give Keras's layers random weights (non-zero biases) and copy them to ours."""
    rng = np.random.default_rng(1)
    for our_layer, their_layer in zip(ours, theirs, strict=True):
        their_layer.set_weights([0.5 * rng.normal(size=w.shape) for w in their_layer.get_weights()])
        our_layer.set_weights(their_layer.get_weights())


def assert_close(actual, expected, exact):
    """Equal within 1e-6, or, unless `exact`, within a few float32 rounding
    steps of the array's largest value: the fast path sums in another order."""
    atol = 1e-6 if exact else 2e-6 * max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, atol=atol, rtol=0)


@pytest.mark.parametrize(("scenario", "how", "training"), CASES)
def test_matches_keras_forward_and_gradients(
    cell_case, scenario, how, training, inputs, padding_mask
):
    mask = padding_mask if scenario.masked else None
    ours = build_stack(cell_case.our_rnn if how == "cell" else cell_case.our_layer, scenario)
    theirs = build_stack(cell_case.keras_rnn, scenario)
    run_stack(ours, inputs, mask)
    expected = run_stack(theirs, inputs, mask)
    copy_random_weights(ours, theirs)
    probe = np.random.default_rng(2).normal(size=expected.shape).astype("float32")
    if how == "fast":
        assert all(layer.fallback_reason(training) is None for layer in rnn_layers(ours))

    our_out, our_grads = forward_and_gradients(ours, inputs, mask, probe, training)
    their_out, their_grads = forward_and_gradients(theirs, inputs, mask, probe)

    assert_close(our_out, their_out, exact=how == "cell")
    assert len(our_grads) == len(their_grads)
    for ours_g, theirs_g in zip(our_grads, their_grads, strict=True):
        assert_close(ours_g, theirs_g, exact=how == "cell")


def test_weight_layout_matches_keras_cell(cell_case, inputs):
    ours, theirs = cell_case.our_rnn(), cell_case.keras_rnn()
    ours(inputs)
    theirs(inputs)
    assert [(w.name, w.shape) for w in ours.weights] == [(w.name, w.shape) for w in theirs.weights]


def test_state_and_output_sizes_match_keras_cell(cell_case):
    ours, theirs = cell_case.our_rnn().cell, cell_case.keras_rnn().cell
    assert ours.state_size == theirs.state_size
    assert ours.output_size == theirs.output_size


def test_initial_state_matches_keras_cell(cell_case):
    ours, theirs = cell_case.our_rnn().cell, cell_case.keras_rnn().cell
    our_states, their_states = ours.get_initial_state(2), theirs.get_initial_state(2)
    assert [s.shape for s in our_states] == [s.shape for s in their_states]
    assert all(not np.any(s) for s in our_states)


@pytest.mark.parametrize("unit_forget_bias", [True, False])
def test_lstm_forget_bias_initialisation(unit_forget_bias, inputs):
    rnn = keras.layers.RNN(LSTMCell(3, unit_forget_bias=unit_forget_bias))
    rnn(inputs)
    expected = np.zeros(12)
    expected[3:6] = 1.0 if unit_forget_bias else 0.0
    np.testing.assert_array_equal(rnn.cell.bias.numpy(), expected)
