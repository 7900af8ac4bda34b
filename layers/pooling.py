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
