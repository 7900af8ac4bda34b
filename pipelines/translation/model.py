"""The translation model: encoder-decoder on the cells of ``layers/`` with attention.

Training (teacher forcing): ``source`` strings -> subword piece ids (``subwords.SubwordIds``,
standard TensorFlow ops) -> embedding
-> recurrent encoder (optionally bidirectional, deep) -> encoder outputs; the decoder (one
recurrent layer, initial state from a dense bridge over the masked mean of the encoder
outputs) reads the target one step behind (``target_in``); attention (Luong multiplicative:
``keras.layers.Attention``; or Bahdanau additive: ``keras.layers.AdditiveAttention``) of each
decoder output over the encoder outputs; ``[decoder output; context]`` -> dense tanh ->
softmax over the target vocabulary.

Decoding (``Decoder``, ``make_translate``): the same trained layers one step at a time inside a
``tf.function``; beam search with a GNMT length penalty, greedy decoding = beam width 1;
the target pieces joined back into cased, detokenized text.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from layers import make_cell
from pipelines.training import compile_model, recurrent_stack_from
from pipelines.translation import data
from pipelines.translation.config import TranslationConfig
from pipelines.translation.data import TranslationInfo
from pipelines.translation.subwords import SubwordIds, detokenize

START_ID, END_ID = data.RESERVED.index(data.START), data.RESERVED.index(data.END)


def build_model(config: TranslationConfig, info: TranslationInfo) -> keras.Model:
    """The compiled teacher-forced model: (source strings, target_in ids) -> probabilities."""
    source = keras.Input(shape=(), dtype="string", name="source")
    target_in = keras.Input(shape=(None,), dtype="int32", name="target_in")
    encoded = _encoder(config, info, source)
    probabilities = _decoder(config, info, target_in, encoded)
    model = keras.Model([source, target_in], probabilities, name="translation")
    compile_model(model, config, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _encoder(config: TranslationConfig, info: TranslationInfo, source):
    """Source strings -> piece ids -> embedding -> the recurrent encoder's outputs."""
    vectorize = SubwordIds(
        info.source_vocabulary, config.max_source_length, name="source_vectorize"
    )
    source_ids = vectorize(source)
    x = keras.layers.Embedding(
        vectorize.vocabulary_size(), config.embedding_dim, mask_zero=True, name="source_embedding"
    )(source_ids)
    return recurrent_stack_from(config, x, return_sequences=True, name="encoder")


def _decoder(config: TranslationConfig, info: TranslationInfo, target_in, encoded):
    """The decoder over ``target_in``, started from a bridge over the encoder's mean output,
    attending over ``encoded``; probabilities over the target vocabulary."""
    decoder_units = config.units * (2 if config.bidirectional else 1)
    summary = keras.layers.GlobalAveragePooling1D(name="source_mean")(encoded)
    states = [
        keras.layers.Dense(decoder_units, activation="tanh", name=f"bridge_{i}")(summary)
        for i in range(2 if config.cell == "lstm" else 1)
    ]
    vocabulary_size = len(info.target_vocabulary)
    y = keras.layers.Embedding(
        vocabulary_size, config.embedding_dim, mask_zero=True, name="target_embedding"
    )(target_in)
    cell = make_cell(config.cell, decoder_units, dropout=config.dropout)
    y = keras.layers.RNN(cell, return_sequences=True, name="decoder")(y, initial_state=states)
    attention_class = (
        keras.layers.Attention if config.attention == "luong" else keras.layers.AdditiveAttention
    )
    context = attention_class(name="attention")([y, encoded])
    y = keras.layers.Concatenate(name="with_context")([y, context])
    y = keras.layers.Dense(decoder_units, activation="tanh", name="combine")(y)
    y = keras.layers.Dropout(config.dropout, name="head_dropout")(y)
    logits = keras.layers.Dense(vocabulary_size, name="head")(y)
    return keras.layers.Activation("softmax", name="probabilities")(logits)


# === Decoding ===


class Decoder:
    """Greedy and beam-search decoding with the trained layers, in-graph.

    ``translate(source, beam_width, length_penalty)`` -> output strings ``[batch]``;
    ``decode`` -> token ids ``[batch, max_target_length + 1]``.
    """

    def __init__(self, model: keras.Model, info: TranslationInfo):
        self.vocabulary = tf.constant(info.target_vocabulary)
        self.vocab_size = len(info.target_vocabulary)
        self.max_length = info.max_target_length + 1  # room for the end token
        self.max_source_length = info.max_source_length
        self.source_pieces = model.get_layer("source_vectorize")
        depth = sum(1 for layer in model.layers if layer.name.startswith("encoder_"))
        bridges = [layer for layer in model.layers if layer.name.startswith("bridge_")]
        self.encoder = keras.Model(
            model.inputs[0],
            [
                model.get_layer("source_vectorize").output,
                model.get_layer(f"encoder_{depth - 1}").output,
                *[b.output for b in bridges],
            ],
            name="encoder_part",
        )
        self.embedding = model.get_layer("target_embedding")
        self.cell = model.get_layer("decoder").cell
        self.attention = model.get_layer("attention")
        self.combine = model.get_layer("combine")
        self.head = model.get_layer("head")

    def encode(self, source):
        """(encoder outputs, source mask, the decoder's initial states) of source strings."""
        source_ids, encoded, *states = self.encoder(source, training=False)
        return encoded, tf.not_equal(source_ids, 0), list(states)

    def step(self, tokens, states, encoded, mask):
        """One decoder step: (log-probabilities [n, vocab], states, attention [n, source])."""
        embedded = tf.gather(self.embedding.embeddings, tokens)  # no mask attached
        h, states = self.cell(embedded, states, training=False)
        states = list(states) if isinstance(states, list | tuple) else [states]
        context, scores = self.attention(
            [h[:, None, :], encoded], mask=[None, mask], return_attention_scores=True
        )
        logits = self.head(self.combine(tf.concat([h, context[:, 0]], axis=-1)))
        return tf.nn.log_softmax(logits), states, scores[:, 0]

    def decode(self, source, beam_width, length_penalty):
        """Beam search (beam_width 1: greedy); token ids [batch, max_length], 0 after end."""
        batch, k, steps = tf.shape(source)[0], beam_width, self.max_length
        encoded, mask, states = self.encode(source)
        encoded, mask = tf.repeat(encoded, k, axis=0), tf.repeat(mask, k, axis=0)
        states = [tf.repeat(s, k, axis=0) for s in states]
        tokens = tf.fill([batch * k], START_ID)
        first = tf.concat([tf.zeros([1]), tf.fill([k - 1], -1e9)], axis=0)
        scores = tf.tile(first[None, :], [batch, 1])  # one live beam to start from
        finished = tf.zeros([batch, k], tf.bool)
        lengths = tf.zeros([batch, k], tf.int32)
        sequences = tf.zeros([batch, k, steps], tf.int32)
        t = tf.constant(0)
        while tf.logical_and(t < steps, tf.logical_not(tf.reduce_all(finished))):
            tf.autograph.experimental.set_loop_options(
                shape_invariants=[
                    (scores, tf.TensorShape([None, None])),
                    (finished, tf.TensorShape([None, None])),
                    (lengths, tf.TensorShape([None, None])),
                    (sequences, tf.TensorShape([None, None, None])),
                ]
            )
            log_probs, states, _ = self.step(tokens, states, encoded, mask)
            log_probs = self._allowed(tf.reshape(log_probs, [batch, k, -1]), t, finished)
            total = tf.reshape(scores[..., None] + log_probs, [batch, k * self.vocab_size])
            scores, index = tf.math.top_k(total, k=k)
            beam, token = index // self.vocab_size, index % self.vocab_size
            sequences, finished, lengths = self._extend(
                sequences, finished, lengths, beam, token, t
            )
            flat = tf.reshape(beam + k * tf.range(batch)[:, None], [-1])
            states = [tf.gather(s, flat) for s in states]
            tokens = tf.reshape(token, [-1])
            t += 1
        penalty = tf.pow((5.0 + tf.cast(lengths, tf.float32)) / 6.0, length_penalty)
        best = tf.argmax(scores / penalty, axis=-1, output_type=tf.int32)
        return tf.gather(sequences, best, batch_dims=1)

    def _allowed(self, log_probs, t, finished):
        """``log_probs`` [batch, k, vocab] under the search's rules: a live beam never emits
        padding or start and must end at the last step; a finished beam only pads."""
        vocab = self.vocab_size
        never = tf.reduce_sum(tf.one_hot([0, START_ID], vocab, on_value=-1e9, off_value=0.0), 0)
        pad_only = tf.one_hot(0, vocab, on_value=0.0, off_value=-1e9)
        end_only = tf.one_hot(END_ID, vocab, on_value=0.0, off_value=-1e9)
        last = tf.cast(tf.equal(t, self.max_length - 1), tf.float32)
        log_probs = log_probs + never + last * end_only
        return tf.where(finished[..., None], pad_only, log_probs)

    def _extend(self, sequences, finished, lengths, beam, token, t):
        """The chosen ``beam``s' sequences with ``token`` written at step ``t``, and their
        finished flags and lengths (a beam grows until it has ended)."""
        sequences = tf.gather(sequences, beam, batch_dims=1)
        step = tf.one_hot(t, self.max_length, dtype=tf.int32)[None, None, :]
        sequences += step * token[..., None]
        was_finished = tf.gather(finished, beam, batch_dims=1)
        lengths = tf.gather(lengths, beam, batch_dims=1) + tf.cast(~was_finished, tf.int32)
        return sequences, was_finished | tf.equal(token, END_ID), lengths

    def to_text(self, ids):
        """Piece ids -> text: the pieces before the end token, joined and detokenized."""
        before_end = tf.equal(tf.cumsum(tf.cast(tf.equal(ids, END_ID), tf.int32), axis=1), 0)
        keep = before_end & (tf.greater(ids, END_ID) | tf.equal(ids, data.UNK_ID))
        return detokenize(tf.ragged.boolean_mask(tf.gather(self.vocabulary, ids), keep))

    def check(self, source):
        """Assertions that end a call with a clear error for an input over
        ``data.MAX_TEXT_BYTES`` bytes (checked before anything reads it), empty, or longer
        than ``max_source_length`` tokens."""
        size = tf.debugging.assert_less_equal(
            tf.strings.length(source),
            data.MAX_TEXT_BYTES,
            message=f"translation: an input text is longer than {data.MAX_TEXT_BYTES} bytes",
        )
        with tf.control_dependencies([size]):
            counts = self.source_pieces.segment(source)[1]
        return [
            tf.debugging.assert_positive(
                counts, message="translation: an input text is empty (no words)"
            ),
            tf.debugging.assert_less_equal(
                counts,
                tf.cast(self.max_source_length, counts.dtype),
                message=f"translation: an input text is longer than {self.max_source_length} "
                "tokens (subword pieces, max_source_length)",
            ),
        ]

    def translate(self, source, beam_width, length_penalty):
        """Checked source strings [batch] -> translation strings [batch]."""
        with tf.control_dependencies(self.check(source)):
            source = tf.identity(source)
        return self.to_text(self.decode(source, beam_width, length_penalty))


def make_translate(model: keras.Model, info: TranslationInfo, beam_width: int, alpha: float):
    """A ``tf.function`` ``source strings [batch] -> translation strings [batch]``."""
    decoder = Decoder(model, info)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def translate(text):
        """Checked source strings -> translations by beam search."""
        return decoder.translate(text, tf.constant(beam_width), tf.constant(alpha, tf.float32))

    return translate
