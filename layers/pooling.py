"""Pooling over time that respects a sequence mask."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="rnn_suite")
class MaskedGlobalMaxPooling1D(keras.layers.Layer):
    """Maximum over the time steps a mask keeps; zeros for a sequence with none kept.

    Keras's ``GlobalMaxPooling1D`` drops the mask, so padding steps take part in
    the maximum. Here they do not.

    Call arguments:
        inputs: ``[batch, steps, features]``.
        mask: optional boolean ``[batch, steps]``, as propagated by Keras.

    Returns ``[batch, features]``.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        """Masked maximum over axis 1."""
        if mask is None:
            return ops.max(inputs, axis=1)
        keep = ops.expand_dims(ops.cast(mask, "bool"), -1)
        lowest = ops.full_like(inputs, float("-inf"))
        pooled = ops.max(ops.where(keep, inputs, lowest), axis=1)
        return ops.where(ops.any(keep, axis=1), pooled, ops.zeros_like(pooled))

    def compute_mask(self, inputs, mask=None):
        """The time axis is gone, and with it the mask."""
        return None

    def compute_output_shape(self, input_shape):
        """``(batch, features)``."""
        return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package="rnn_suite")
class MaskedAttentionPooling1D(keras.layers.Layer):
    """A learned weighted average over the time steps a mask keeps (additive attention).

    Each step gets a score ``v . tanh(W x_t + b)``; the scores of masked steps are set
    to minus infinity before the softmax over time, so padding gets no weight. A
    sequence with no kept step pools to zeros. This is the attention pooling of
    Yang et al. (2016) for document classification.

    Args:
        attention_units: width of the hidden scoring layer.

    Call arguments:
        inputs: ``[batch, steps, features]``.
        mask: optional boolean ``[batch, steps]``, as propagated by Keras.

    Returns ``[batch, features]``.
    """

    def __init__(self, attention_units: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.attention_units = attention_units
        self.supports_masking = True

    def build(self, input_shape):
        """A ``features x attention_units`` projection and a scoring vector."""
        features = input_shape[-1]
        self.projection = self.add_weight(
            name="projection", shape=(features, self.attention_units), initializer="glorot_uniform"
        )
        self.projection_bias = self.add_weight(
            name="projection_bias", shape=(self.attention_units,), initializer="zeros"
        )
        self.score_vector = self.add_weight(
            name="score_vector", shape=(self.attention_units, 1), initializer="glorot_uniform"
        )

    def call(self, inputs, mask=None):
        """Attention-weighted sum over axis 1."""
        hidden = ops.tanh(ops.matmul(inputs, self.projection) + self.projection_bias)
        scores = ops.squeeze(ops.matmul(hidden, self.score_vector), axis=-1)
        if mask is None:
            return ops.sum(inputs * ops.expand_dims(ops.softmax(scores, axis=-1), -1), axis=1)
        keep = ops.cast(mask, "bool")
        scores = ops.where(keep, scores, ops.full_like(scores, -1e9))
        weights = ops.softmax(scores, axis=-1) * ops.cast(keep, inputs.dtype)
        return ops.sum(inputs * ops.expand_dims(weights, -1), axis=1)

    def compute_mask(self, inputs, mask=None):
        """The time axis is gone, and with it the mask."""
        return None

    def compute_output_shape(self, input_shape):
        """``(batch, features)``."""
        return (input_shape[0], input_shape[2])

    def get_config(self):
        """The layer's arguments, for saving."""
        return {**super().get_config(), "attention_units": self.attention_units}
