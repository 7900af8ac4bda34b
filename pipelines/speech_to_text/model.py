"""The speech model: log-mel features in the graph -> convolutions -> bidirectional RNN -> CTC.

``audio`` float32 ``[batch, samples]`` at ``SAMPLE_RATE``, zero-padded at the end (the
padding is recognised: left out of the feature statistics, masked in the recurrent stack and
a certain blank in the output, so an utterance transcribes the same alone or in a padded
batch) -> log-mel features (25 ms windows every 10 ms, up to the audio's bandwidth,
normalised per utterance and band) -> SpecAugment-style time and frequency masks while
training -> two 1-D convolutions (the first keeps every third frame: 33 per second) -> the
recurrent stack of ``layers/`` -> a softmax over the characters plus the CTC blank (id 0),
as log-probabilities. With ``ensemble_members`` K > 1 the model holds K such acoustic models
after the features (an ensemble trained side by side). Trained with ``keras.ops.ctc_loss``;
decoded greedily, by beam search with ``keras.ops.ctc_decode``, or by beam search
constrained to the run's lexicon (``decoding.LexiconDecoder``), inside a ``tf.function``.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from pipelines.speech_to_text.config import (
    FRAME_STEP,
    SAMPLE_RATE,
    TIME_STRIDE,
    SpeechToTextConfig,
)
from pipelines.speech_to_text.data import SpeechToTextInfo
from pipelines.speech_to_text.decoding import LexiconDecoder, ids_to_text
from pipelines.training import compile_model, recurrent_stack_from

FRAME_LENGTH, FFT_LENGTH = 400, 512  # 25 ms windows, FRAME_STEP (10 ms) apart at 16 kHz
MIN_SAMPLES = FRAME_LENGTH  # the shortest audio the export accepts
# Batches are padded to one of these lengths (and max_seconds), so that the compiled
# recurrent kernels see few distinct shapes.
BUCKET_SECONDS = (1.0, 1.5, 2.0, 3.0, 4.5)


def bucket_lengths(max_samples: int) -> list[int]:
    """The padded lengths (samples) of batches: the bucket bounds below ``max_samples``, and it."""
    bounds = [int(s * SAMPLE_RATE) for s in BUCKET_SECONDS if s * SAMPLE_RATE < max_samples]
    return [*bounds, int(max_samples)]


def padded_length(samples: int, max_samples: int) -> int:
    """The smallest bucket length that holds ``samples`` (``samples`` itself beyond them all)."""
    return next((b for b in bucket_lengths(max_samples) if b >= samples), samples)


# === Layers ===


@keras.saving.register_keras_serializable(package="rnn_suite")
class LogMelFeatures(keras.layers.Layer):
    """Audio ``[batch, samples]`` -> normalised log-mel features ``[batch, frames, n_mels]``.

    The bands span 20 Hz to ``upper_hz`` (0: half of ``sample_rate``). Frames that hold only
    zeros (padding) are left out of the per-utterance, per-band mean and standard deviation
    and come out as 0.
    """

    def __init__(
        self, n_mels: int = 40, sample_rate: int = SAMPLE_RATE, upper_hz: int = 0, **kwargs
    ):
        super().__init__(**kwargs)
        self.n_mels = n_mels
        self.sample_rate = sample_rate
        self.upper_hz = upper_hz
        self.mel_matrix = tf.signal.linear_to_mel_weight_matrix(
            n_mels, FFT_LENGTH // 2 + 1, sample_rate, 20.0, upper_hz or sample_rate / 2
        )

    def call(self, audio):
        stft = tf.signal.stft(audio, FRAME_LENGTH, FRAME_STEP, FFT_LENGTH, pad_end=True)
        power = tf.square(tf.abs(stft))
        log_mel = tf.math.log(tf.tensordot(power, self.mel_matrix, 1) + 1e-6)
        valid = tf.cast(tf.reduce_sum(power, axis=-1, keepdims=True) > 1e-10, log_mel.dtype)
        count = tf.maximum(tf.reduce_sum(valid, axis=1, keepdims=True), 1.0)
        mean = tf.reduce_sum(log_mel * valid, axis=1, keepdims=True) / count
        variance = tf.reduce_sum(tf.square(log_mel - mean) * valid, axis=1, keepdims=True) / count
        return (log_mel - mean) * tf.math.rsqrt(variance + 1e-3) * valid

    def compute_output_shape(self, input_shape):
        return (input_shape[0], None, self.n_mels)

    def get_config(self):
        return {
            **super().get_config(),
            "n_mels": self.n_mels,
            "sample_rate": self.sample_rate,
            "upper_hz": self.upper_hz,
        }


@keras.saving.register_keras_serializable(package="rnn_suite")
class SpecAugment(keras.layers.Layer):
    """While training, zero ``time_masks`` random spans of up to ``time_width`` frames and
    ``freq_masks`` spans of up to ``freq_width`` bands of each example; identity otherwise."""

    def __init__(
        self,
        time_masks: int = 2,
        time_width: int = 10,
        freq_masks: int = 2,
        freq_width: int = 6,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.time_masks, self.time_width = time_masks, time_width
        self.freq_masks, self.freq_width = freq_masks, freq_width
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _mask(self, batch, size, width):
        widths = keras.random.randint((batch, 1), 0, width + 1, seed=self.seed_generator)
        starts = keras.random.uniform((batch, 1), seed=self.seed_generator)
        starts = keras.ops.cast(
            starts * keras.ops.cast(keras.ops.maximum(size - widths, 1), "float32"), "int32"
        )
        positions = keras.ops.arange(size)[None, :]
        return (positions >= starts) & (positions < starts + widths)

    def call(self, features, training=None):
        if not training:
            return features
        shape = keras.ops.shape(features)
        for _ in range(self.time_masks):
            mask = self._mask(shape[0], shape[1], self.time_width)
            features = features * keras.ops.cast(~mask, features.dtype)[:, :, None]
        for _ in range(self.freq_masks):
            mask = self._mask(shape[0], shape[2], self.freq_width)
            features = features * keras.ops.cast(~mask, features.dtype)[:, None, :]
        return features

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "time_masks": self.time_masks,
            "time_width": self.time_width,
            "freq_masks": self.freq_masks,
            "freq_width": self.freq_width,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="rnn_suite")
class ValidSteps(keras.layers.Layer):
    """(audio ``[batch, samples]``, steps ``[batch, T, ...]``) -> bool ``[batch, T]``: the
    steps that hold audio, up to its last non-zero sample (``output_lengths``)."""

    def call(self, inputs):
        audio, steps = inputs
        return tf.range(tf.shape(steps)[1])[None, :] < output_lengths(audio)[:, None]

    def compute_output_spec(self, inputs):
        return keras.KerasTensor((inputs[1].shape[0], inputs[1].shape[1]), dtype="bool")


@keras.saving.register_keras_serializable(package="rnn_suite")
class ZeroPadding(keras.layers.Layer):
    """(x ``[batch, T, d]``, valid ``[batch, T]``) -> x with the padding steps set to 0."""

    def call(self, inputs):
        x, valid = inputs
        return x * tf.cast(valid, x.dtype)[:, :, None]

    def compute_output_shape(self, input_shape):
        return input_shape[0]


@keras.saving.register_keras_serializable(package="rnn_suite")
class MaskedPadding(ZeroPadding):
    """``ZeroPadding`` that also hands ``valid`` on as the Keras mask, so that the recurrent
    stack after it skips the padding steps."""

    def compute_mask(self, inputs, previous_mask=None):
        return inputs[1]


@keras.saving.register_keras_serializable(package="rnn_suite")
class BlankPadding(keras.layers.Layer):
    """(log-probabilities, valid) -> the padding steps certain to be the blank (id 0), so that
    CTC over every step equals CTC over the steps that hold audio. The Keras mask stops here."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def compute_mask(self, inputs, mask=None):
        return None

    def call(self, inputs):
        log_probs, valid = inputs
        blank = tf.one_hot(0, tf.shape(log_probs)[-1], on_value=0.0, off_value=-1e4)
        return tf.where(valid[:, :, None], log_probs, tf.cast(blank, log_probs.dtype))

    def compute_output_shape(self, input_shape):
        return input_shape[0]


@keras.saving.register_keras_serializable(package="rnn_suite")
class StackMembers(keras.layers.Layer):
    """The ensemble members' log-probabilities ``[batch, steps, characters]`` each ->
    ``[batch, members, steps, characters]``."""

    def call(self, inputs):
        return tf.stack(inputs, axis=1)

    def compute_output_shape(self, input_shape):
        first = input_shape[0]
        return (first[0], len(input_shape), *first[1:])


@keras.saving.register_keras_serializable(package="rnn_suite")
def ctc_loss(y_true, y_pred):
    """CTC loss of padded character ids (0: blank and padding) under log-probabilities
    ``[batch, steps, characters]`` (the padding steps are certain blanks: ``BlankPadding``);
    of an ensemble's ``[batch, members, steps, characters]``, the members' mean loss."""
    y_true = keras.ops.cast(y_true, "int32")
    if len(y_pred.shape) == 4:
        members = y_pred.shape[1]
        shape = keras.ops.shape(y_pred)
        flat = keras.ops.reshape(y_pred, (-1, shape[2], shape[3]))
        losses = _ctc_loss(keras.ops.repeat(y_true, members, axis=0), flat)
        return keras.ops.mean(keras.ops.reshape(losses, (-1, members)), axis=1)
    return _ctc_loss(y_true, y_pred)


def _ctc_loss(y_true, y_pred):
    """CTC loss per example of ``[batch, steps, characters]`` log-probabilities."""
    target_length = keras.ops.sum(keras.ops.cast(keras.ops.not_equal(y_true, 0), "int32"), -1)
    shape = keras.ops.shape(y_pred)
    output_length = keras.ops.full((shape[0],), shape[1], dtype="int32")
    return keras.ops.ctc_loss(y_true, y_pred, target_length, output_length, mask_index=0)


# === Functional model ===


def build_model(config: SpeechToTextConfig, info: SpeechToTextInfo) -> keras.Model:
    """The compiled model: ``audio`` -> log-probabilities over ``info.vocabulary``,
    ``[batch, steps, characters]``; with ``ensemble_members`` K > 1, K acoustic models over
    the same features, ``[batch, K, steps, characters]`` (see ``member_log_probs``)."""
    audio = keras.Input(shape=(None,), dtype="float32", name="audio")
    features = LogMelFeatures(config.n_mels, info.sample_rate, info.mel_upper_hz, name="features")(
        audio
    )
    members = [
        _acoustic_model(features, audio, config, info, member_suffix(index))
        for index in range(config.ensemble_members)
    ]
    output = members[0] if len(members) == 1 else StackMembers(name="members")(members)
    model = keras.Model(audio, output, name="speech_to_text")
    compile_model(model, config, loss=ctc_loss)
    return model


def member_suffix(index: int) -> str:
    """The suffix of the layer names of ensemble member ``index`` (none for the first, so
    that a single model keeps the names it always had)."""
    return f"_member_{index}" if index else ""


def _acoustic_model(features, audio, config: SpeechToTextConfig, info, suffix: str):
    """One member: SpecAugment, convolutions, recurrent stack, characters' log-softmax."""
    x = _spec_augment(features, config, suffix)
    x, valid = _convolutions(x, audio, config, suffix)
    x = recurrent_stack_from(config, x, return_sequences=True, name=f"rnn{suffix}")
    x = keras.layers.Dropout(config.dropout, name=f"head_dropout{suffix}")(x)
    logits = keras.layers.Dense(len(info.vocabulary), name=f"characters{suffix}")(x)
    log_probs = keras.layers.Activation("log_softmax", name=f"character_softmax{suffix}")(logits)
    return BlankPadding(name=f"log_probs{suffix}")([log_probs, valid])


def _spec_augment(features, config: SpeechToTextConfig, suffix: str):
    """SpecAugment's masks while training (each member draws its own) when ``spec_augment``."""
    if not config.spec_augment:
        return features
    return SpecAugment(
        config.time_masks,
        config.time_mask_frames,
        config.freq_masks,
        config.freq_mask_bands,
        name=f"spec_augment{suffix}",
    )(features)


def _convolutions(x, audio, config: SpeechToTextConfig, suffix: str = ""):
    """The two convolutions: ``(features, valid steps)``, the features masked by those steps."""
    # The padding is explicit so that frames line up the same way whatever the audio length.
    x = keras.layers.ZeroPadding1D(2, name=f"conv_1_pad{suffix}")(x)
    x = keras.layers.Conv1D(
        config.conv_filters, 5, strides=TIME_STRIDE, padding="valid", name=f"conv_1{suffix}"
    )(x)
    valid = ValidSteps(name=f"valid_steps{suffix}")([audio, x])
    x = keras.layers.LayerNormalization(name=f"conv_1_norm{suffix}")(x)
    x = keras.layers.Activation("relu", name=f"conv_1_relu{suffix}")(x)
    x = ZeroPadding(name=f"conv_1_zero_padding{suffix}")([x, valid])
    x = keras.layers.Conv1D(
        config.conv_filters, 3, padding="same", activation="relu", name=f"conv_2{suffix}"
    )(x)
    return MaskedPadding(name=f"conv_2_zero_padding{suffix}")([x, valid]), valid


# === Decoding ===


def output_lengths(audio):
    """Output steps per example that hold audio: up to the last non-zero sample."""
    samples = tf.shape(audio)[1]
    nonzero = tf.not_equal(audio, 0.0)
    last = samples - tf.argmax(
        tf.cast(tf.reverse(nonzero, [1]), tf.int32), axis=1, output_type=tf.int32
    )
    last = tf.where(tf.reduce_any(nonzero, axis=1), last, 0)
    frames = (last + FRAME_STEP - 1) // FRAME_STEP
    return (frames + TIME_STRIDE - 1) // TIME_STRIDE


def decode(log_probs, lengths, vocabulary, beam_width):
    """CTC decoding (``beam_width`` 1: greedy) of log-probabilities -> strings ``[batch]``."""
    if beam_width > 1:
        ids, _ = keras.ops.ctc_decode(
            log_probs, lengths, strategy="beam_search", beam_width=beam_width, mask_index=0
        )
    else:
        ids, _ = keras.ops.ctc_decode(log_probs, lengths, strategy="greedy", mask_index=0)
    return ids_to_text(ids[0], vocabulary)


def input_checks(audio, max_samples: int):
    """Assertions that end a call with a clear error for too short, too long or bad audio."""
    samples = tf.shape(audio)[1]
    return [
        tf.debugging.assert_less_equal(
            samples,
            max_samples,
            message=f"speech-to-text: audio longer than {max_samples} samples "
            f"({max_samples / SAMPLE_RATE:g} s at {SAMPLE_RATE} Hz, max_seconds)",
        ),
        tf.debugging.assert_greater_equal(
            samples,
            MIN_SAMPLES,
            message=f"speech-to-text: audio shorter than {MIN_SAMPLES} samples "
            f"({1000 * MIN_SAMPLES / SAMPLE_RATE:g} ms at {SAMPLE_RATE} Hz)",
        ),
        tf.debugging.assert_all_finite(audio, message="speech-to-text: audio holds NaN or inf"),
    ]


def make_transcribe(
    model: keras.Model,
    info: SpeechToTextInfo,
    beam_width: int,
    lexicon: bool = True,
    member: int | None = None,
):
    """A ``tf.function`` ``audio [batch, samples] -> transcript strings [batch]``, bounded:
    greedy (``beam_width`` 1), beam search, or (``lexicon`` and ``info.lexicon`` not empty)
    beam search constrained to ``info.lexicon`` (``decoding.LexiconDecoder``). An ensemble
    is decoded whole, or only its member ``member``: its greedy and plain beam search
    output is the member's path of the highest mean CTC log-probability (the members' spikes
    need not fall on the same steps, so their probabilities are not averaged)."""
    vocabulary = tf.constant(info.vocabulary)
    words = info.lexicon if lexicon and beam_width > 1 else []
    decoder = LexiconDecoder(words, info.vocabulary)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="audio")])
    def transcribe(audio):
        members, lengths = _member_log_probs(model, audio, info.max_samples, member)
        if words or len(members) > 1:
            return decoder.decode(members, lengths, beam_width)
        return decode(members[0], lengths, vocabulary, beam_width)

    return transcribe


def make_candidates(model: keras.Model, info: SpeechToTextInfo, beam_width: int):
    """A ``tf.function`` ``audio -> (texts, ctc_scores, in_lexicon)``, each
    ``[batch, candidates]``: the candidates of ``LexiconDecoder.candidates``, for rescoring
    with a language model."""
    decoder = LexiconDecoder(info.lexicon, info.vocabulary)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="audio")])
    def candidates(audio):
        members, lengths = _member_log_probs(model, audio, info.max_samples)
        return decoder.candidates(members, lengths, max(beam_width, 2))

    return candidates


def member_log_probs(log_probs) -> list:
    """The model's output as a list of log-probabilities ``[batch, steps, characters]``: one
    per ensemble member (a single model: itself)."""
    if len(log_probs.shape) == 4:
        return tf.unstack(log_probs, axis=1)
    return [log_probs]


def _member_log_probs(model: keras.Model, audio, max_samples: int, member: int | None = None):
    """The checked audio's log-probabilities (a list: one per member, or only ``member``)
    and the output steps that hold audio."""
    with tf.control_dependencies(input_checks(audio, max_samples)):
        audio = tf.identity(audio)
    members = member_log_probs(model(audio, training=False))
    if member is not None:
        members = [members[member]]
    return members, tf.minimum(output_lengths(audio), tf.shape(members[0])[1])
