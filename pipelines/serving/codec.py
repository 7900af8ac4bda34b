"""Requests and responses in TensorFlow Serving's formats, to and from NumPy arrays.

REST bodies are read by ``pipelines.serving.rest_body``; here: the signature's inputs,
the export's limits, REST responses (``predictions`` for the row format, ``outputs`` for
the columnar one; bytes that are not UTF-8 as ``{"b64": ...}``) and gRPC ``TensorProto``
maps. Every input is checked against the signature's dtype and shape and the export's
limits before the model sees it.
"""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

from pipelines.serving.errors import BadRequestError, TooLargeError
from pipelines.serving.limits import Limits
from pipelines.serving.rest_body import InputSpec, check_names, check_shape

__all__ = ["InputSpec", "check_limits", "decode_protos", "encode_response", "input_specs"]


def input_specs(signature: meta_graph_pb2.SignatureDef) -> dict[str, InputSpec]:
    """The signature's inputs by name."""
    specs = {}
    for name, info in signature.inputs.items():
        shape = None
        if not info.tensor_shape.unknown_rank:
            shape = tuple(None if d.size < 0 else d.size for d in info.tensor_shape.dim)
        specs[name] = InputSpec(name, tf.dtypes.as_dtype(info.dtype).name, shape)
    return specs


def check_limits(inputs: dict[str, np.ndarray], specs: dict[str, InputSpec], limits: Limits):
    """413 when an input is over the export's per-item or per-request bound."""
    for name, array in inputs.items():
        spec = specs[name]
        bounds = limits.for_input(name, spec.is_string)
        items = array.shape[0] if spec.batched and array.ndim else 1
        if spec.batched and array.ndim and items > limits.max_items:
            raise TooLargeError(
                f"{items} items is more than the {limits.max_items} a request may have"
            )
        if spec.is_string:
            sizes = np.vectorize(len, otypes=[np.int64])(array) if array.size else np.zeros(0)
            per_item = sizes.reshape(items, -1).sum(axis=1) if array.size else sizes
            _over(per_item.max(initial=0), bounds.max_item_bytes, name, "bytes in one item")
            _over(int(sizes.sum()), bounds.max_request_bytes, name, "bytes in one request")
        else:
            per_item = array.size // max(items, 1)
            _over(per_item, bounds.max_item_elements, name, "elements in one item")
            _over(array.size, bounds.max_request_elements, name, "elements in one request")


def _over(value: int, bound: int | None, name: str, what: str) -> None:
    if bound is not None and value > bound:
        raise TooLargeError(f"input {name!r} has {int(value):,} {what}; the limit is {bound:,}")


# === JSON out ===


def _jsonable(value: Any) -> Any:
    """Lists and numbers as they are, bytes as UTF-8 text or ``{"b64": ...}``."""
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, float) and not np.isfinite(value):
        return None  # strict JSON has no NaN or infinity
    return value


def encode_response(outputs: dict[str, np.ndarray], rows: bool) -> dict[str, Any]:
    """TensorFlow Serving's response: ``predictions`` (row format) or ``outputs``."""
    values = {name: _jsonable(array.tolist()) for name, array in sorted(outputs.items())}
    if not rows:
        return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    lengths = {len(v) if isinstance(v, list) else -1 for v in values.values()}
    if len(lengths) != 1 or -1 in lengths:
        raise BadRequestError('the outputs differ in batch size: use the columnar "inputs" format')
    count = lengths.pop()
    return {"predictions": [{name: v[i] for name, v in values.items()} for i in range(count)]}


# === gRPC ===


def proto_to_array(proto, spec: InputSpec) -> np.ndarray:
    """One ``TensorProto`` input as an array, checked against the signature."""
    try:
        given = tf.dtypes.as_dtype(proto.dtype).name
    except TypeError:  # not a DataType TensorFlow knows
        given = f"dtype {proto.dtype}"
    if given != spec.dtype:
        raise BadRequestError(f"input {spec.name!r} is {given}; the signature takes {spec.dtype}")
    try:
        array = tf.make_ndarray(proto)
    except (ValueError, TypeError) as error:
        raise BadRequestError(f"input {spec.name!r}: {error}") from None
    check_shape(array, spec)
    return array


def _check_declared_size(proto, spec: InputSpec, limits: Limits) -> None:
    """413 when a tensor's declared shape holds more elements than the request bound: a
    few values in a small message are repeated to fill the shape it declares."""
    sizes = [dim.size for dim in proto.tensor_shape.dim]
    if any(size < 0 for size in sizes):
        raise BadRequestError(f"input {spec.name!r}: a dimension is negative")
    bounds = limits.for_input(spec.name, spec.is_string)
    bound = bounds.max_request_bytes if spec.is_string else bounds.max_request_elements
    _over(math.prod(sizes), bound, spec.name, "elements in one request")


def decode_protos(protos, specs: dict[str, InputSpec], limits: Limits) -> dict[str, np.ndarray]:
    """A ``PredictRequest``'s inputs as arrays, their declared sizes bounded first."""
    check_names(set(protos.keys()), specs)
    for name, spec in specs.items():
        _check_declared_size(protos[name], spec, limits)
    return {name: proto_to_array(protos[name], spec) for name, spec in specs.items()}
