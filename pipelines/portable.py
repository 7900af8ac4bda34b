"""Portable exports of a finished run: TensorFlow Lite and ONNX.

``export_portable(run_dir, fmt)`` writes ``RUN_DIR/export/model.tflite`` (converted with
``tf.lite.TFLiteConverter``, TensorFlow Lite's builtin ops only) or ``RUN_DIR/export/model.onnx``
(converted with tf2onnx), and beside it ``signature.json`` (the input and output names,
dtypes and shapes, and what the numbers mean: class names, columns).

Neither format runs TensorFlow's string ops, so the portable sentiment model starts after
its ``TextVectorization`` layer: it takes token ids, and the vocabulary is written beside
it (``vocabulary.txt``, line ``i`` holding the token of id ``i``). Forecasting converts
whole: windows in original units in, forecasts in original units out, the normalisation
inside. The other pipelines do not convert (``NOT_PORTABLE`` says why).

The model is traced inside ``layers.serving_kernels()``, so that no native op and no
function marked for XLA compilation can enter the graph (``_check_plain`` makes sure), and
with its recurrent layers unrolled over their fixed number of steps: each step is plain
matmuls and activations, and the batch size stays free. The serving path's recurrent
``tf.while_loop`` does not convert reliably: where a layer returns its whole sequence, the
loop collects the steps' outputs in a ``TensorArray``, which the TFLite converter lowers to
builtins only where its element shape is fully known (not over a batch of unknown size)
and from which tf2onnx writes a model that does not load; and what the loop body holds
decides whether the TFLite builtins cover it at all.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

import layers
from pipelines import locks, rundir, strict_json
from pipelines.errors import UserError
from pipelines.runner import load_run, resolved_from_run

# Format -> the file written into the run's export folder.
FORMATS = {"tflite": "model.tflite", "onnx": "model.onnx"}
EXPORT_FOLDER = "export"
VOCABULARY_FILE = "vocabulary.txt"  # sentiment: line i is the token of id i
SIGNATURE_FILE = "signature.json"
# ONNX operator set the models are written for (current onnxruntime releases run it).
ONNX_OPSET = 17
# Node attributes that mark a function for XLA compilation: none may reach a portable graph.
XLA_ATTRIBUTES = ("_XlaMustCompile", "_XlaCompile", "_XlaScope")

# Pipelines without a portable export, and why.
NOT_PORTABLE = {
    "translation": (
        "its model reads and writes text (tokenisation and detokenisation are string ops in "
        "the graph) and decodes with beam search, a loop of data-dependent length"
    ),
    "speech-to-text": (
        "its graph computes audio features of any length (STFT, mel filters) and decodes "
        "with CTC beam search, neither of which the TFLite builtins or ONNX provide"
    ),
    "video-activity": (
        "its graph samples and resizes frames of clips of any size and length "
        "(video preprocessing with a data-dependent shape)"
    ),
    "music": (
        "its primers have any number of steps, which its recurrent layers need fixed to be "
        "unrolled for conversion, and generation samples in a loop whose length is a request "
        "argument"
    ),
}


@dataclasses.dataclass
class Portable:
    """What converts: a Keras model over one input, and what is written beside it.

    Attributes:
        model: the Keras model the portable graph runs (its recurrent layers get unrolled).
        input_spec: the one input (name, dtype, shape with a free batch size).
        output_name: the name of the one output.
        signature: ``signature.json``'s content.
        files: other text files for the export folder, by name.
    """

    model: keras.Model
    input_spec: tf.TensorSpec
    output_name: str
    signature: dict[str, Any]
    files: dict[str, str] = dataclasses.field(default_factory=dict)


def export_portable(run_dir: str | Path, fmt: str, overwrite: bool = False) -> Path:
    """Write a finished run's model as ``RUN_DIR/export/model.tflite`` or ``model.onnx``.

    ``fmt`` is ``tflite`` or ``onnx``. Each file of the export folder is replaced atomically
    (written beside, then renamed), so none is ever half-written; the files are made from
    the run alone, so exporting again writes an equivalent model. The run's lock is held
    while writing; a model file already there is replaced only with ``overwrite``. Returns
    the model's path. UserError for an unknown format, an unfinished run, an existing
    export, or a pipeline that does not convert.
    """
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    path = rundir.finished_run(Path(run_dir), files=("config.json",))
    name = resolved_from_run(path).name
    if name not in _BUILDERS:
        reason = NOT_PORTABLE.get(name, "it has no portable form")
        raise UserError(f"{path}: a {name} model does not convert to {fmt}: {reason}")
    rundir.finished_run(path)
    folder = path / EXPORT_FOLDER
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} is a file; the export needs that name for its folder")
    rundir.check_writable(folder, f"export {folder / FORMATS[fmt]}")
    with locks.hold(path):
        if os.path.lexists(folder / FORMATS[fmt]) and not overwrite:
            raise UserError(
                f"{folder / FORMATS[fmt]} already exists; add --overwrite to replace it"
            )
        return _export_locked(path, name, fmt)


def _export_locked(path: Path, name: str, fmt: str) -> Path:
    """``export_portable``'s work for a ``name`` run, the run's lock held."""
    _, resolved, info, model = load_run(str(path))
    portable = _BUILDERS[name](model, resolved.config, info)
    function = trace(portable)
    content = _CONVERTERS[fmt](function, portable)
    folder = path / EXPORT_FOLDER
    folder.mkdir(exist_ok=True)
    for file_name, text in portable.files.items():
        _write_atomically(folder / file_name, text.encode("utf-8"))
    signature = strict_json.dumps(portable.signature, indent=2) + "\n"
    _write_atomically(folder / SIGNATURE_FILE, signature.encode("utf-8"))
    target = folder / FORMATS[fmt]
    _write_atomically(target, content)
    return target


# === What each pipeline exports ===


def _sentiment(model: keras.Model, config, info) -> Portable:
    """Token ids ``[batch, sequence_length]`` int32 -> ``probabilities`` ``[batch, classes]``.

    The ids are what the run's ``TextVectorization`` layer makes of a text; the portable
    model is the Keras model from that layer's output on.
    """
    vectorize = model.get_layer("vectorize")
    vocabulary = vectorize.get_vocabulary()
    length = config.sequence_length
    after_tokens = keras.Model(vectorize.output, model.output, name="sentiment_from_tokens")
    signature = {
        "pipeline": "sentiment",
        "inputs": {"token_ids": {"dtype": "int32", "shape": [None, length]}},
        "outputs": {"probabilities": {"dtype": "float32", "shape": [None, len(info.class_names)]}},
        "class_names": list(info.class_names),
        "tokenizer": {
            "vocabulary": VOCABULARY_FILE,
            "lowercase": "ASCII letters only",
            "strip": "ASCII punctuation (Python's string.punctuation)",
            "split": "runs of ASCII whitespace",
            "padding_id": 0,
            "oov_id": 1,
            "sequence_length": length,
            "truncate_and_pad": "keep the first sequence_length tokens, pad with 0 at the end",
        },
    }
    return Portable(
        model=after_tokens,
        input_spec=tf.TensorSpec([None, length], tf.int32, name="token_ids"),
        output_name="probabilities",
        signature=signature,
        files={VOCABULARY_FILE: "".join(f"{token}\n" for token in vocabulary)},
    )


def _forecasting(model: keras.Model, config, info) -> Portable:
    """``window`` ``[batch, steps, features]`` float32 in original units -> ``forecast``
    ``[batch, horizon, targets]`` in original units (log returns where the run's targets are)."""
    steps, features = info.window, len(info.feature_columns)
    units = "log returns" if info.transform == "log_return" else "original units"
    signature = {
        "pipeline": "forecasting",
        "inputs": {"window": {"dtype": "float32", "shape": [None, steps, features]}},
        "outputs": {
            "forecast": {
                "dtype": "float32",
                "shape": [None, info.horizon, len(info.target_columns)],
            }
        },
        "feature_columns": list(info.feature_columns),
        "target_columns": list(info.target_columns),
        "forecast_units": units,
    }
    return Portable(
        model=model,
        input_spec=tf.TensorSpec([None, steps, features], tf.float32, name="window"),
        output_name="forecast",
        signature=signature,
    )


_BUILDERS: dict[str, Callable[..., Portable]] = {
    "sentiment": _sentiment,
    "forecasting": _forecasting,
}


# === Tracing ===


def trace(portable: Portable):
    """The concrete function ``{output_name: model(input)}`` the converters read.

    Traced inside ``layers.serving_kernels()`` with every recurrent layer unrolled (the
    model is changed in place: pass one loaded for the purpose); RuntimeError if the graph
    still holds an op that is not TensorFlow's own or a function marked for XLA.
    """
    for layer in _recurrent_layers(portable.model):
        layer.unroll = True  # read when the call is traced
        if layer.go_backwards:
            # Keras's unrolled loop zeroes the outputs of masked steps with the mask in
            # input order, while a backward layer's outputs are in reverse order: it would
            # zero kept steps. Off, a masked step repeats the last kept output instead,
            # which the layers after ignore (the mask travels with the outputs).
            layer.zero_output_for_mask = False

    @tf.function(input_signature=[portable.input_spec], autograph=False)
    def serve(inputs):
        return {portable.output_name: portable.model(inputs, training=False)}

    with layers.serving_kernels():
        function = serve.get_concrete_function()
    _check_plain(function.graph.as_graph_def())
    return function


def _recurrent_layers(layer):
    """Every ``keras.layers.RNN`` in ``layer``, inside wrappers and nested models too."""
    if isinstance(layer, keras.layers.RNN):
        yield layer
    if isinstance(layer, keras.layers.Bidirectional):
        yield from _recurrent_layers(layer.forward_layer)
        yield from _recurrent_layers(layer.backward_layer)
    for inner in getattr(layer, "layers", ()):
        yield from _recurrent_layers(inner)
    wrapped = getattr(layer, "layer", None)  # TimeDistributed and other wrappers
    if isinstance(wrapped, keras.layers.Layer):
        yield from _recurrent_layers(wrapped)


def _check_plain(graph: tf.compat.v1.GraphDef) -> None:
    """RuntimeError unless every node (also in the function library) is a standard
    TensorFlow op without an XLA compilation mark."""
    nodes = [*graph.node, *(node for f in graph.library.function for node in f.node_def)]
    marked = [f.signature.name for f in graph.library.function if _xla_marked(f.attr)]
    marked += [node.name for node in nodes if _xla_marked(node.attr)]
    foreign = sorted({node.op for node in nodes if not hasattr(tf.raw_ops, node.op)})
    if marked or foreign:
        raise RuntimeError(
            f"the traced graph is not plain TensorFlow: marked for XLA {marked[:5]}, "
            f"ops not TensorFlow's own {foreign[:5]}"
        )


def _xla_marked(attributes) -> bool:
    return any(name in attributes for name in XLA_ATTRIBUTES)


# === Converters ===


def _to_tflite(function, portable: Portable) -> bytes:
    """A ``.tflite`` flatbuffer of TensorFlow Lite's builtin ops (no TensorFlow ops inside)."""
    holder = tf.Module()
    # The TensorFlow variables behind Keras's: given with the function, the converter
    # folds their values in as constants (without them it would leave them unset).
    holder.weights = [weight.value for weight in portable.model.weights]
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], holder)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def _to_onnx(function, portable: Portable) -> bytes:
    """An ONNX model (``ONNX_OPSET``) whose input and output carry the signature's names."""
    import tf2onnx
    from tf2onnx import tf_loader

    logging.getLogger("tf2onnx").setLevel(logging.ERROR)  # it logs every step at INFO
    # Variables and captured constants (the normalisation statistics) become constants
    # (tf2onnx's own freezing); otherwise tf2onnx would make the captured ones extra inputs.
    input_name, output_name = function.inputs[0].name, function.outputs[0].name
    frozen = tf_loader.from_function(function, [input_name], [output_name])
    proto, _ = tf2onnx.convert.from_graph_def(
        frozen,
        input_names=[input_name],
        output_names=[output_name],
        opset=ONNX_OPSET,
        custom_op_handlers={"SelectV2": (_select_as_where, [])},
        tensors_to_rename={input_name: portable.input_spec.name, output_name: portable.output_name},
    )
    return proto.SerializeToString()


def _select_as_where(ctx, node, name, args) -> None:
    """``tf.where`` as ONNX ``Where``. tf2onnx's own handler writes a float select as
    ``cond * a + (1 - cond) * b``, which makes NaN of an infinite branch (``0 * inf``),
    as in the masked max pooling's ``-inf`` for padding steps."""
    node.type = "Where"


_CONVERTERS: dict[str, Callable[[Any, Portable], bytes]] = {
    "tflite": _to_tflite,
    "onnx": _to_onnx,
}


def _write_atomically(path: Path, content: bytes) -> None:
    """Write ``path`` whole or not at all (a temporary file beside it, then a rename)."""
    temporary = path.with_name(f".{path.name}.partial")
    try:
        temporary.write_bytes(content)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
