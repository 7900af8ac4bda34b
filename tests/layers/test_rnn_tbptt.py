"""Truncated BPTT: stateful windows reproduce the full pass; gradients stop at window edges."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers import (
    CELL_KINDS,
    GRU,
    LSTM,
    LSTMCell,
    SimpleRNN,
    make_cell,
    reset_recurrent_states,
    split_into_windows,
    train_on_windows,
)


@pytest.mark.parametrize(
    ("steps", "window", "lengths"), [(7, 3, [3, 3, 1]), (6, 2, [2, 2, 2]), (4, 9, [4])]
)
def test_split_into_windows(steps, window, lengths):
    sequences = np.arange(2 * steps * 3).reshape(2, steps, 3)
    windows = split_into_windows(sequences, window)
    assert [w.shape for w in windows] == [(2, n, 3) for n in lengths]
    np.testing.assert_array_equal(np.concatenate(windows, axis=1), sequences)


FAST_LAYERS = {"simple_rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}


def make_rnn(kind, fast, **kwargs):
    """`keras.layers.RNN` around our cell, or (`fast`) our fast layer, returning
    sequences and states."""
    kwargs.update(return_sequences=True, return_state=True)
    if fast:
        return FAST_LAYERS[kind](3, **kwargs)
    return keras.layers.RNN(make_cell(kind, 3), **kwargs)


def stateful_twin(kind, batch_size, features, fast=False):
    """A stateful RNN and a plain one sharing weights."""
    stateful = make_rnn(kind, fast, stateful=True)
    plain = make_rnn(kind, fast)
    sample = np.zeros((batch_size, 1, features), "float32")
    stateful(sample)
    plain(sample)
    stateful.set_weights(plain.get_weights())
    stateful.reset_state()
    return stateful, plain


def run_windowed(rnn, sequences, window):
    """Feed `sequences` window by window; return the joined outputs and final states."""
    results = [rnn(w) for w in split_into_windows(sequences, window)]
    outputs = np.concatenate([r[0] for r in results], axis=1)
    return outputs, results[-1][1:]


@pytest.mark.parametrize("fast", [False, True], ids=["cell", "fast"])
@pytest.mark.parametrize("kind", CELL_KINDS)
@pytest.mark.parametrize("window", [1, 3, 7])
def test_stateful_windows_match_one_full_pass(kind, window, fast):
    rng = np.random.default_rng(0)
    stateful, plain = stateful_twin(kind, batch_size=3, features=4, fast=fast)
    for _ in range(2):  # two sequences: the reset must stop state leaking between them
        sequences = rng.normal(size=(3, 7, 4)).astype("float32")
        outputs, states = run_windowed(stateful, sequences, window)
        expected_outputs, *expected_states = plain(sequences)
        np.testing.assert_allclose(outputs, expected_outputs, atol=1e-6)
        for state, expected in zip(states, expected_states, strict=True):
            np.testing.assert_allclose(state, expected, atol=1e-6)
        stateful.reset_state()


def test_gradient_is_truncated_at_window_boundary():
    stateful, plain = stateful_twin("lstm", batch_size=3, features=4)
    sequences = np.random.default_rng(0).normal(size=(3, 6, 4)).astype("float32")
    first, second = split_into_windows(sequences, 3)
    first = tf.constant(first)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(first)
        stateful(first)
        truncated_loss = tf.reduce_sum(stateful(second)[0])
        _, *states = plain(first)
        full_loss = tf.reduce_sum(plain(second, initial_state=states)[0])
    assert tape.gradient(truncated_loss, first) is None
    assert np.any(tape.gradient(full_loss, first).numpy() != 0)


@pytest.mark.parametrize("fast", [False, True], ids=["cell", "fast"])
def test_train_on_windows_updates_weights_and_carries_state(fast):
    rnn = LSTM(3, stateful=True, return_sequences=True) if fast else None
    model = keras.Sequential(
        [
            keras.Input(batch_shape=(3, None, 4)),
            rnn or keras.layers.RNN(LSTMCell(3), stateful=True, return_sequences=True),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    rng = np.random.default_rng(0)
    sequences = rng.normal(size=(3, 6, 4)).astype("float32")
    targets = rng.normal(size=(3, 6, 1)).astype("float32")
    before = [w.copy() for w in model.get_weights()]

    losses = train_on_windows(model, sequences, targets, window=3)

    assert len(losses) == 2 and all(np.isfinite(losses))
    assert all(not np.allclose(b, a) for b, a in zip(before, model.get_weights(), strict=True))
    rnn = model.layers[0]
    assert all(np.any(state.numpy() != 0) for state in rnn.states)
    reset_recurrent_states(model)
    assert all(not np.any(state.numpy()) for state in rnn.states)
