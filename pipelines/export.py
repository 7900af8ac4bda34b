"""Writing a serving SavedModel whose signatures take raw inputs, with what a server needs
beside it: the limits the export enforces and TensorFlow Serving's warm-up requests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

import layers
from pipelines import progress, rundir

# Beside the SavedModel, in the folder TensorFlow Serving keeps for files it reads itself.
EXTRA_FOLDER = "assets.extra"
LIMITS_FILE = "limits.json"  # what the export enforces, read by `pipelines serve`
WARMUP_FILE = "tf_serving_warmup_requests"  # the name TensorFlow Serving looks for
SERVING_SIGNATURE = "serving_default"

# The input dtypes a limits file names, and the bound keys each kind of input carries.
LIMIT_DTYPES = ("string", "float32", "uint8", "int32")
STRING_BOUNDS = ("max_item_bytes", "max_request_bytes")
NUMBER_BOUNDS = ("max_item_elements", "max_request_elements")
# Beside the inputs' bounds: what the export bounds over a whole request that no one input's
# size says (music's generated steps: primers x steps), each a positive integer.
TOTAL_PREFIX = "max_request_total_"


def write_export(
    model: keras.Model,
    endpoints: dict[str, Callable],
    path: Path,
    limits: dict[str, Any] | None = None,
    example: dict[str, Any] | None = None,
) -> None:
    """Export ``model`` with named ``tf.function`` endpoints (``serving_default`` first).

    Traced and written inside ``layers.serving_kernels()``, so that the SavedModel
    holds only TensorFlow's standard ops and serves with TensorFlow alone.
    ``add_endpoint`` traces each endpoint, so the block covers it as well as
    ``write_out``. An endpoint must not have been traced before, outside the block:
    its cached trace would be reused.

    ``limits`` (a pipeline's ``serving_limits``) is written to
    ``assets.extra/limits.json``; ``example`` (its ``serving_example``) becomes the
    request of ``assets.extra/tf_serving_warmup_requests``.
    """
    if limits is not None:
        check_limits(limits)
    steps = progress.bar(total=len(endpoints) + 1, description="exporting", unit=" steps")
    with steps, layers.serving_kernels():
        archive = keras.export.ExportArchive()
        archive.track(model)
        for name, function in endpoints.items():
            steps.set_postfix_str(f"tracing {name}")
            archive.add_endpoint(name, function)
            steps.update()
        steps.set_postfix_str("writing")
        archive.write_out(str(path), verbose=False)
        steps.update()
    extra = Path(path) / EXTRA_FOLDER
    if limits is not None:
        extra.mkdir(exist_ok=True)
        rundir.write_json(extra / LIMITS_FILE, limits)
    if example is not None:
        extra.mkdir(exist_ok=True)
        dtypes = {spec.name: spec.dtype for spec in endpoints[SERVING_SIGNATURE].input_signature}
        write_warmup(extra / WARMUP_FILE, [warmup_request(example, dtypes)])


# === Limits ===


def string_input(max_item_bytes: int, max_request_bytes: int) -> dict[str, Any]:
    """The limits entry of a string input: UTF-8 bytes per item and in the whole request."""
    return {
        "dtype": "string",
        "max_item_bytes": int(max_item_bytes),
        "max_request_bytes": int(max(max_request_bytes, max_item_bytes)),
    }


def number_input(dtype: str, max_item_elements: int, max_request_elements: int) -> dict[str, Any]:
    """The limits entry of a numeric input: elements per item and in the whole request
    (never less than one item's, so that one largest item is always accepted)."""
    return {
        "dtype": dtype,
        "max_item_elements": int(max_item_elements),
        "max_request_elements": int(max(max_request_elements, max_item_elements)),
    }


def check_limits(limits: dict[str, Any]) -> None:
    """ValueError unless ``limits`` has the shape of ``Pipeline.serving_limits``."""
    totals = {key for key in limits if key.startswith(TOTAL_PREFIX)}
    if set(limits) - totals != {"max_items", "inputs"} or not limits["inputs"]:
        raise ValueError(
            f"limits need max_items and inputs (and {TOTAL_PREFIX}*), not {sorted(limits)}"
        )
    _positive(limits["max_items"], "max_items")
    for key in totals:
        _positive(limits[key], key)
    for name, entry in limits["inputs"].items():
        if entry.get("dtype") not in LIMIT_DTYPES:
            raise ValueError(f"limits of {name!r}: dtype must be one of {LIMIT_DTYPES}")
        bounds = STRING_BOUNDS if entry["dtype"] == "string" else NUMBER_BOUNDS
        if set(entry) != {"dtype", *bounds}:
            raise ValueError(f"limits of {name!r}: need exactly dtype, {', '.join(bounds)}")
        for key in bounds:
            _positive(entry[key], f"{name}.{key}")


def _positive(value: Any, where: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"limits: {where} must be a positive integer, not {value!r}")


def request_checks(inputs: dict[str, tf.Tensor], limits: dict[str, Any], label: str) -> list:
    """Assertions that a request is within ``limits`` as a whole: at most ``max_items``
    items, and each input's bytes (strings) or elements (numbers) over all its items at
    most its ``max_request_*``. Per-item bounds are the exports' own checks."""
    max_items = limits["max_items"]
    checks = []
    for name, tensor in inputs.items():
        bounds = limits["inputs"][name]
        checks.append(
            tf.debugging.assert_less_equal(
                tf.shape(tensor, out_type=tf.int64)[0],
                np.int64(max_items),
                message=f"{label}: more than {max_items} items in one request (max_items)",
            )
        )
        if bounds["dtype"] == "string":
            total = tf.reduce_sum(tf.cast(tf.strings.length(tensor), tf.int64))
            bound, unit = bounds["max_request_bytes"], "bytes"
        else:
            total = tf.size(tensor, out_type=tf.int64)
            bound, unit = bounds["max_request_elements"], "values"
        checks.append(
            tf.debugging.assert_less_equal(
                total,
                np.int64(bound),
                message=f"{label}: {name} holds more than {bound} {unit} over the whole request "
                "(send fewer or shorter items per request)",
            )
        )
    return checks


# === TensorFlow Serving's warm-up requests ===


def warmup_request(
    example: dict[str, Any], dtypes: dict[str, tf.DType]
) -> predict_pb2.PredictRequest:
    """A ``PredictRequest`` on ``serving_default`` of ``example`` (input name -> nested
    lists), each input of its signature dtype."""
    request = predict_pb2.PredictRequest()
    request.model_spec.signature_name = SERVING_SIGNATURE
    for name, value in example.items():
        dtype = dtypes[name]
        array = np.asarray(value, dtype=object if dtype == tf.string else dtype.as_numpy_dtype)
        request.inputs[name].CopyFrom(tf.make_tensor_proto(array, dtype=dtype))
    return request


def write_warmup(path: Path, requests: list[predict_pb2.PredictRequest]) -> None:
    """A TFRecord file of ``PredictionLog`` records, one per request: the warm-up file
    TensorFlow Serving replays when it loads a version, before it serves it."""
    with tf.io.TFRecordWriter(str(path)) as writer:
        for request in requests:
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
