"""Dropout and recurrent dropout: active only in training, drawn like Keras's."""

import numpy as np
import pytest

RATES = [
    pytest.param({"dropout": 0.5}, id="input"),
    pytest.param({"recurrent_dropout": 0.5}, id="recurrent"),
    pytest.param({"dropout": 0.3, "recurrent_dropout": 0.4}, id="both"),
]


# Our side runs the cell in `keras.layers.RNN`, or our fast layer (which runs
# the fast path except for recurrent dropout in training, where it falls back).
KINDS = ["cell", "fast"]


def make(cell_case, kind, **kwargs):
    """Our RNN of the given kind."""
    return (cell_case.our_rnn if kind == "cell" else cell_case.our_layer)(**kwargs)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("rates", RATES)
def test_dropout_only_in_training(cell_case, rates, kind, inputs):
    rnn = make(cell_case, kind, cell_kwargs={**rates, "seed": 1}, return_sequences=True)
    plain = make(cell_case, kind, return_sequences=True)
    plain(inputs)
    rnn(inputs)
    rnn.set_weights(plain.get_weights())

    inference = rnn(inputs, training=False)
    first, second = rnn(inputs, training=True), rnn(inputs, training=True)

    np.testing.assert_allclose(inference, plain(inputs), atol=1e-6)
    assert not np.allclose(first, inference, atol=1e-3)
    assert not np.allclose(first, second, atol=1e-3), "each batch should draw new masks"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("rates", RATES)
def test_seeded_dropout_matches_keras(cell_case, rates, kind, inputs):
    cell_kwargs = {**rates, "seed": 7}
    ours = make(cell_case, kind, cell_kwargs=cell_kwargs, return_sequences=True)
    theirs = cell_case.keras_rnn(cell_kwargs=cell_kwargs, return_sequences=True)
    theirs(inputs)
    ours(inputs)
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(
        ours(inputs, training=True),
        theirs(inputs, training=True),
        atol=1e-6 if kind == "cell" else 2e-6,
    )
