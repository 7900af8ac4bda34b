"""The music models (next-event prediction with teacher forcing) and in-graph generation.

Token model: tokens [batch, steps] -> token embedding + voice-slot embedding -> recurrent stack
(return sequences) -> softmax over the next token. Frame model (``jsb:``): 88-key frames one
step behind -> recurrent stack -> 88 sigmoids for the next frame.

``make_generate`` runs the trained cells one step at a time inside a ``tf.function``
(the same weights, no re-reading of the past) and samples with
``tf.random.stateless_categorical`` / ``stateless_uniform``, so a seed fixes the output.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from pipelines.music.config import MusicConfig
from pipelines.music.data import MusicInfo
from pipelines.training import compile_model, recurrent_stack_from

# === Layers ===


@keras.saving.register_keras_serializable(package="rnn_suite")
class VoiceSlot(keras.layers.Layer):
    """The voice slot of each token of a stream that starts on a step boundary.

    Args:
        voices: tokens per step.

    Call arguments:
        tokens: int ``[batch, steps]``.

    Returns int32 ``[batch, steps]``: position modulo ``voices``.
    """

    def __init__(self, voices: int, **kwargs):
        super().__init__(**kwargs)
        self.voices = int(voices)

    def call(self, tokens):
        positions = ops.arange(ops.shape(tokens)[1], dtype="int32") % self.voices
        return ops.broadcast_to(positions[None, :], ops.shape(tokens))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "voices": self.voices}


@keras.saving.register_keras_serializable(package="rnn_suite")
class SummedBinaryCrossentropy(keras.losses.Loss):
    """Bernoulli negative log-likelihood of a frame, summed over its keys (nats per step)."""

    def __init__(self, name: str = "frame_nll", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        y_pred = ops.clip(y_pred, 1e-7, 1.0 - 1e-7)
        y_true = ops.cast(y_true, y_pred.dtype)
        nll = -(y_true * ops.log(y_pred) + (1.0 - y_true) * ops.log(1.0 - y_pred))
        return ops.sum(nll, axis=-1)


# === Functional models ===


def build_model(config: MusicConfig, info: MusicInfo) -> keras.Model:
    """The compiled token model, or the frame model for ``info.kind == "frame"``."""
    if info.kind == "frame":
        return build_frame_model(config, info)
    return build_token_model(config, info)


def build_token_model(config: MusicConfig, info: MusicInfo) -> keras.Model:
    """tokens int32 [batch, steps] -> probabilities of the next token [batch, steps, vocab]."""
    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(info.vocab_size, config.embedding_dim, name="token_embedding")(
        tokens
    )
    slot = VoiceSlot(info.voices, name="voice_slot")(tokens)
    voice = keras.layers.Embedding(info.voices, config.embedding_dim, name="voice_embedding")
    return _next_event_model(
        tokens,
        x + voice(slot),
        config,
        (info.vocab_size, "softmax", "music_tokens"),
        loss="sparse_categorical_crossentropy",
        metric=keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
    )


def build_frame_model(config: MusicConfig, info: MusicInfo) -> keras.Model:
    """frames one step behind [batch, steps, 88] -> next-frame key probabilities."""
    frames = keras.Input(shape=(None, info.keys), dtype="float32", name="frames")
    return _next_event_model(
        frames,
        frames,
        config,
        (info.keys, "sigmoid", "music_frames"),
        loss=SummedBinaryCrossentropy(),
        metric=keras.metrics.BinaryAccuracy(name="key_accuracy"),
    )


def _next_event_model(inputs, x, config: MusicConfig, head: tuple, *, loss, metric):
    """The recurrent stack over ``x`` (every step's output), dropout, and a ``head``
    ``(width, activation, model name)`` giving the next event's probabilities; compiled."""
    width, activation, name = head
    x = recurrent_stack_from(config, x, return_sequences=True)
    x = keras.layers.Dropout(config.dropout, name="head_dropout")(x)
    logits = keras.layers.Dense(width, name="head")(x)
    probabilities = keras.layers.Activation(activation, name="probabilities")(logits)
    model = keras.Model(inputs, probabilities, name=name)
    compile_model(model, config, loss=loss, metrics=[metric])
    return model


# === Generation ===


def _cells(model: keras.Model) -> list:
    # Every recurrent layer of the stack wraps a cell (keras.layers.RNN or a subclass).
    rnns = [
        layer for layer in model.layers if isinstance(getattr(layer, "cell", None), keras.Layer)
    ]
    if not rnns:
        raise ValueError("the model has no recurrent layer")
    return [rnn.cell for rnn in rnns]


def make_step(model: keras.Model, info: MusicInfo):
    """``step(x, position, states) -> (logits, states)``: one event through the trained layers.

    ``x`` is a token ``[batch]`` (token model) or the previous frame ``[batch, 88]``.
    """
    cells, head = _cells(model), model.get_layer("head")
    frame = info.kind == "frame"
    if not frame:
        token_embedding = model.get_layer("token_embedding")
        voice_embedding = model.get_layer("voice_embedding")
        voices = info.voices

    def initial_states(batch):
        return [cell.get_initial_state(batch) for cell in cells]

    def step(x, position, states):
        if frame:
            h = x
        else:
            slot = tf.fill(tf.shape(x), position % voices)
            h = token_embedding(x) + voice_embedding(slot)
        new_states = []
        for cell, state in zip(cells, states, strict=True):
            h, state = cell(h, state, training=False)
            new_states.append(list(state) if isinstance(state, list | tuple) else [state])
        return head(h), new_states

    return step, initial_states


def make_generate(model: keras.Model, info: MusicInfo):
    """A ``tf.function`` ``generate(primer, steps, temperature, top_k, seed)``.

    Token model: ``primer`` int32 [batch, tokens] (whole steps) -> int32
    [batch, steps * voices], the continuation. Frame model: ``primer`` float32
    [batch, frames, 88] -> float32 [batch, steps, 88]. ``top_k`` > 0 keeps the k most
    likely tokens (keys) before sampling; ``seed`` int32 [2] makes it reproducible.
    """
    frame = info.kind == "frame"
    step, initial_states = make_step(model, info)
    width = info.keys if frame else info.vocab_size

    def generate(primer, steps, temperature, top_k, seed):
        batch = tf.shape(primer)[0]
        if frame:  # the model reads each frame one step behind: silence first
            primer = tf.concat([tf.zeros([batch, 1, width], primer.dtype), primer], axis=1)
        states, logits = _read_primer(step, primer, initial_states(batch), width)
        total = steps if frame else steps * info.voices
        offset = tf.shape(primer)[1]
        out = tf.TensorArray(tf.float32 if frame else tf.int32, size=total)

        def write(j, states, logits, out):
            scaled = _keep_top_k(logits / temperature, top_k, width)
            event = _draw(scaled, tf.random.experimental.stateless_fold_in(seed, j), frame)
            logits, states = step(event, offset + j, states)
            return j + 1, states, logits, out.write(j, event)

        _, _, _, out = tf.while_loop(
            lambda j, *_: j < total, write, (tf.constant(0), states, logits, out)
        )
        stacked = out.stack()  # [total, batch, ...]
        return tf.transpose(stacked, [1, 0, 2] if frame else [1, 0])

    return generate


def _read_primer(step, primer, states, width: int):
    """Run ``step`` over every event of ``primer``: the states and logits after its last."""
    logits = tf.zeros([tf.shape(primer)[0], width])

    def read(i, states, logits):
        logits, states = step(primer[:, i], i, states)
        return i + 1, states, logits

    _, states, logits = tf.while_loop(
        lambda i, *_: i < tf.shape(primer)[1], read, (tf.constant(0), states, logits)
    )
    return states, logits


def _keep_top_k(logits, top_k, width: int):
    """``logits`` with all but the ``top_k`` largest of each row pushed out (0: all kept)."""
    k = tf.where(top_k > 0, tf.minimum(top_k, width), width)
    kth = tf.math.top_k(logits, k=k).values[:, -1:]
    return tf.where(logits < kth, tf.fill(tf.shape(logits), -1e9), logits)


def _draw(logits, seed, frame: bool):
    """One sampled event per row: a token (softmax), or a frame of independent keys."""
    if frame:
        uniform = tf.random.stateless_uniform(tf.shape(logits), seed=seed)
        return tf.cast(uniform < tf.sigmoid(logits), tf.float32)
    event = tf.random.stateless_categorical(logits, 1, seed=seed)[:, 0]
    return tf.cast(event, tf.int32)


def sampler(model: keras.Model, info: MusicInfo):
    """``sample(primers, steps, temperature=1.0, top_k=0, seed=0)``: ``make_generate``
    traced once, numpy arrays in and out."""
    generate = tf.function(make_generate(model, info), input_signature=generate_signature(info))

    def sample(primers, steps: int, temperature: float = 1.0, top_k: int = 0, seed: int = 0):
        return generate(
            tf.constant(primers),
            tf.constant(steps),
            tf.constant(temperature, tf.float32),
            tf.constant(top_k),
            tf.constant([seed, 0], tf.int32),
        ).numpy()

    return sample


def generate_signature(info: MusicInfo) -> list[tf.TensorSpec]:
    """The input signature of ``generate``."""
    if info.kind == "frame":
        primer = tf.TensorSpec([None, None, info.keys], tf.float32, name="primer")
    else:
        primer = tf.TensorSpec([None, None], tf.int32, name="primer")
    return [
        primer,
        tf.TensorSpec([], tf.int32, name="steps"),
        tf.TensorSpec([], tf.float32, name="temperature"),
        tf.TensorSpec([], tf.int32, name="top_k"),
        tf.TensorSpec([2], tf.int32, name="seed"),
    ]
