"""Masked pooling over time: padding steps never take part."""

import keras
import numpy as np

from layers.pooling import MaskedAttentionPooling1D, MaskedGlobalMaxPooling1D


def test_padding_steps_do_not_take_part():
    values = np.array(
        [[[1.0, -2.0], [3.0, -1.0], [9.0, 9.0]], [[-5.0, -6.0], [7.0, 8.0], [9.0, 9.0]]],
        dtype="float32",
    )
    mask = np.array([[True, True, False], [False, False, False]])
    pooled = keras.ops.convert_to_numpy(MaskedGlobalMaxPooling1D()(values, mask=mask))
    np.testing.assert_array_equal(pooled, [[3.0, -1.0], [0.0, 0.0]])


def test_without_a_mask_it_is_a_plain_max():
    values = np.random.default_rng(0).normal(size=(2, 4, 3)).astype("float32")
    pooled = keras.ops.convert_to_numpy(MaskedGlobalMaxPooling1D()(values))
    np.testing.assert_allclose(pooled, values.max(axis=1))


def test_round_trip_through_a_keras_file(tmp_path):
    inputs = keras.Input((None,), dtype="int32")
    embedded = keras.layers.Embedding(10, 3, mask_zero=True)(inputs)
    model = keras.Model(inputs, MaskedGlobalMaxPooling1D()(embedded))
    tokens = np.array([[1, 2, 0], [3, 0, 0]])
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(tokens, verbose=0), model.predict(tokens, verbose=0))


def test_attention_gives_padding_no_weight():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(2, 4, 3)).astype("float32")
    mask = np.array([[True, True, False, False], [True, False, False, False]])
    layer = MaskedAttentionPooling1D(attention_units=5)
    pooled = keras.ops.convert_to_numpy(layer(values, mask=mask))
    changed = values.copy()
    changed[:, 2:] = 100.0  # padding content must not matter
    changed[1, 1] = -100.0
    again = keras.ops.convert_to_numpy(layer(changed, mask=mask))
    np.testing.assert_allclose(pooled, again, rtol=1e-6)
    np.testing.assert_allclose(pooled[1], values[1, 0], rtol=1e-6)  # one kept step: itself


def test_attention_is_a_convex_combination_of_kept_steps():
    values = np.random.default_rng(1).normal(size=(3, 5, 2)).astype("float32")
    pooled = keras.ops.convert_to_numpy(MaskedAttentionPooling1D()(values))
    assert np.all(pooled <= values.max(axis=1) + 1e-6)
    assert np.all(pooled >= values.min(axis=1) - 1e-6)


def test_attention_round_trip_through_a_keras_file(tmp_path):
    inputs = keras.Input((None,), dtype="int32")
    embedded = keras.layers.Embedding(10, 3, mask_zero=True)(inputs)
    model = keras.Model(inputs, MaskedAttentionPooling1D(attention_units=4)(embedded))
    tokens = np.array([[1, 2, 0], [3, 0, 0]])
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(tokens, verbose=0), model.predict(tokens, verbose=0))
