"""Video models: a per-frame CNN (TimeDistributed) then recurrence over the frames.

``recurrence=rnn``: CNN -> feature vector per frame -> the recurrent stack of
``layers/``. ``recurrence=conv_lstm``: CNN feature maps -> ``layers.ConvLSTM``.
``build_frame_average_baseline`` is the same per-frame network with the
recurrence replaced by an average over frames: it cannot see frame order.
"""

from __future__ import annotations

import keras

from layers.conv_lstm_cell import ConvLSTM, ConvLSTMCell
from pipelines.training import compile_model, recurrent_stack_from
from pipelines.video_activity.config import VideoConfig
from pipelines.video_activity.data import VideoInfo


def build_model(config: VideoConfig, info: VideoInfo) -> keras.Model:
    """A compiled classifier of uint8 clips ``[batch, frames, size, size, 3]`` (``frames``)."""
    clips, frames = _inputs(info)
    if config.recurrence == "conv_lstm":
        maps = keras.layers.TimeDistributed(frame_cnn(config, flatten=False), name="frame_cnn")(
            frames
        )
        cell = ConvLSTMCell(config.conv_lstm_filters, 3, name="conv_lstm_cell")
        features = ConvLSTM(cell, name="conv_lstm")(maps)
        features = keras.layers.GlobalMaxPooling2D(name="max_pool")(features)
    else:
        per_frame = keras.layers.TimeDistributed(frame_cnn(config), name="frame_cnn")(frames)
        features = recurrent_stack_from(config, per_frame)
    return _classifier(clips, features, config, info, "video_activity")


def build_frame_average_baseline(config: VideoConfig, info: VideoInfo) -> keras.Model:
    """The same per-frame CNN, features averaged over frames (no recurrence), then softmax."""
    clips, frames = _inputs(info)
    per_frame = keras.layers.TimeDistributed(frame_cnn(config), name="frame_cnn")(frames)
    features = keras.layers.GlobalAveragePooling1D(name="frame_average")(per_frame)
    return _classifier(clips, features, config, info, "frame_average")


def frame_cnn(config: VideoConfig, flatten: bool = True) -> keras.Sequential:
    """Conv layers that each halve the frame; then (``flatten``) a dense feature vector.

    Flattening, not global pooling, keeps where things are in the frame, which
    the recurrence needs to see motion.
    """
    stack: list[keras.layers.Layer] = [keras.Input((config.frame_size, config.frame_size, 3))]
    for i, filters in enumerate(config.conv_filters):
        stack += [
            keras.layers.Conv2D(filters, 3, padding="same", name=f"conv_{i}"),
            keras.layers.BatchNormalization(name=f"norm_{i}"),
            keras.layers.ReLU(name=f"relu_{i}"),
            keras.layers.MaxPooling2D(2, name=f"pool_{i}"),
        ]
    if flatten:
        stack += [
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(config.frame_features, activation="relu", name="features"),
        ]
    return keras.Sequential(stack, name="frame_cnn")


def _inputs(info: VideoInfo):
    shape = (info.frames, info.frame_size, info.frame_size, 3)
    clips = keras.Input(shape=shape, dtype="uint8", name="frames")
    return clips, keras.layers.Rescaling(1.0 / 255.0, name="scale")(clips)


def _classifier(clips, features, config: VideoConfig, info: VideoInfo, name: str) -> keras.Model:
    features = keras.layers.Dropout(config.dropout, name="head_dropout")(features)
    probabilities = keras.layers.Dense(
        len(info.class_names), activation="softmax", name="probabilities"
    )(features)
    model = keras.Model(clips, probabilities, name=name)
    k = min(config.top_k, len(info.class_names))
    compile_model(
        model,
        config,
        loss="sparse_categorical_crossentropy",
        metrics=[
            "accuracy",
            keras.metrics.SparseTopKCategoricalAccuracy(k=k, name=f"top_{k}_accuracy"),
        ],
    )
    return model
