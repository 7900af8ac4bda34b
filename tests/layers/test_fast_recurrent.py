"""The whole-sequence fast path (layers.recurrent) equals Keras's built-in layers."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers.recurrent import GRU, LSTM, SimpleRNN

CASES = {
    "lstm": (LSTM, keras.layers.LSTM, {}),
    "gru": (GRU, keras.layers.GRU, {}),
    "gru_reset_before": (GRU, keras.layers.GRU, {"reset_after": False}),
    "simple_rnn": (SimpleRNN, keras.layers.SimpleRNN, {}),
}


def _pair(case, **kwargs):
    ours_class, keras_class, extra = CASES[case]
    ours = ours_class(5, **extra, **kwargs)
    theirs = keras_class(5, **extra, **kwargs)
    inputs = np.random.default_rng(1).normal(size=(32, 7, 4)).astype("float32")
    ours(inputs[:2])
    theirs(inputs[:2])
    weights = [w + 0.1 for w in theirs.get_weights()]  # non-zero biases
    theirs.set_weights(weights)
    ours.set_weights(weights)
    return ours, theirs, inputs


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_forward_and_gradients_equal_keras(case, go_backwards, masked):
    ours, theirs, inputs = _pair(case, return_sequences=True, go_backwards=go_backwards)
    assert ours.fallback_reason(training=True) is None, "the fast path must run"
    mask = None
    if masked:
        lengths = np.random.default_rng(2).integers(1, 8, size=32)
        mask = np.arange(7)[None, :] < lengths[:, None]
    results = []
    for layer in (ours, theirs):
        x = tf.constant(inputs)
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = layer(x, mask=mask, training=True)
            loss = tf.reduce_sum(out * tf.cos(out))
        grads = tape.gradient(loss, [x, *layer.trainable_weights])
        results.append([out.numpy(), *[g.numpy() for g in grads]])
    for got, expected in zip(results[0], results[1], strict=True):
        np.testing.assert_allclose(got, expected, atol=2e-5, rtol=1e-4)
