"""Requests and responses in TensorFlow Serving's formats, to and from NumPy arrays.

REST: the row format (``instances`` -> ``predictions``) and the columnar format
(``inputs`` -> ``outputs``); strings are JSON strings, or ``{"b64": ...}`` for bytes that
are not UTF-8. gRPC: ``TensorProto`` maps. Every input is checked against the signature's
dtype and shape and the export's limits before the model sees it.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

from pipelines.serving.errors import BadRequestError, TooLargeError
from pipelines.serving.limits import Limits


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """One signature input: its dtype and shape (``None`` for an unknown rank or size)."""

    name: str
    dtype: tf.DType
    shape: tuple[int | None, ...] | None

    @property
    def is_string(self) -> bool:
        return self.dtype == tf.string

    @property
    def batched(self) -> bool:
        """Whether the first axis is the batch: of unknown size (a step count, a rank-0
        input, or a seed of fixed shape [2] is not)."""
        return self.shape is None or (len(self.shape) >= 1 and self.shape[0] is None)


def input_specs(signature: meta_graph_pb2.SignatureDef) -> dict[str, InputSpec]:
    """The signature's inputs by name."""
    specs = {}
    for name, info in signature.inputs.items():
        shape = None
        if not info.tensor_shape.unknown_rank:
            shape = tuple(None if d.size < 0 else d.size for d in info.tensor_shape.dim)
        specs[name] = InputSpec(name, tf.dtypes.as_dtype(info.dtype), shape)
    return specs


# === JSON in ===


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and "b64" in value


def _shape_of(value: Any, name: str) -> tuple[int, ...]:
    """The shape of nested lists; 400 when they are ragged."""
    if not isinstance(value, list):
        return ()
    if not value:
        return (0,)
    inner = _shape_of(value[0], name)
    for item in value[1:]:
        if _shape_of(item, name) != inner:
            raise BadRequestError(f"input {name!r}: the lists are of different lengths (ragged)")
    return (len(value), *inner)


def _flat_bytes(value: Any, name: str, out: list[bytes]) -> None:
    if isinstance(value, list):
        for item in value:
            _flat_bytes(item, name, out)
    elif isinstance(value, str):
        out.append(value.encode("utf-8", errors="surrogatepass"))
    elif _is_b64(value):
        try:
            out.append(base64.b64decode(value["b64"], validate=True))
        except (binascii.Error, TypeError, ValueError):
            raise BadRequestError(f'input {name!r}: a "b64" value is not valid base64') from None
    else:
        raise BadRequestError(f"input {name!r} takes strings, not {type(value).__name__}")


def json_to_array(value: Any, spec: InputSpec) -> np.ndarray:
    """One input's JSON value as an array of the signature's dtype and rank."""
    if spec.is_string:
        shape = _shape_of(value, spec.name)
        flat: list[bytes] = []
        _flat_bytes(value, spec.name, flat)
        array = np.array(flat, dtype=object).reshape(shape)
    else:
        array = _numbers(value, spec)
    check_shape(array, spec)
    return array


def _numbers(value: Any, spec: InputSpec) -> np.ndarray:
    """Nested lists of numbers as an array of the input's dtype: 400 for ragged lists, a
    string or object among them, or an integer the dtype cannot hold."""
    try:
        inferred = np.array(value)
    except (ValueError, TypeError, OverflowError):
        raise BadRequestError(
            f"input {spec.name!r}: not a rectangular array of {spec.dtype.name}"
        ) from None
    wanted = np.dtype(spec.dtype.as_numpy_dtype)
    kinds = "b" if wanted.kind == "b" else "iuf" if wanted.kind == "f" else "iu"
    if inferred.dtype.kind not in kinds and inferred.size:
        raise BadRequestError(f"input {spec.name!r} takes numbers of type {spec.dtype.name}")
    if wanted.kind in "iu" and inferred.size:
        info = np.iinfo(wanted)
        if inferred.min() < info.min or inferred.max() > info.max:
            raise BadRequestError(
                f"input {spec.name!r}: a number is out of {spec.dtype.name}'s range"
            )
    return inferred.astype(wanted, copy=False)


def check_shape(array: np.ndarray, spec: InputSpec) -> None:
    """400 unless ``array`` has the signature's rank and fixed sizes."""
    if spec.shape is None:
        return
    if array.ndim != len(spec.shape) or any(
        want is not None and want != got for want, got in zip(spec.shape, array.shape, strict=True)
    ):
        wanted = "[" + ", ".join("?" if d is None else str(d) for d in spec.shape) + "]"
        raise BadRequestError(
            f"input {spec.name!r} has shape {list(array.shape)}; the signature takes {wanted}"
        )


def _check_names(given: set[str], specs: dict[str, InputSpec]) -> None:
    missing = sorted(set(specs) - given)
    unknown = sorted(given - set(specs))
    if unknown:
        raise BadRequestError(f"unknown input(s) {unknown}; the signature takes {sorted(specs)}")
    if missing:
        raise BadRequestError(f"missing input(s) {missing}; the signature takes {sorted(specs)}")


def count_items(body: dict, specs: dict[str, InputSpec]) -> int:
    """Items in a parsed request body (the length of its batch axis), before any conversion."""
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise BadRequestError('"instances" must be a list')
        return len(instances)
    inputs = body["inputs"]
    if isinstance(inputs, dict) and not _is_b64(inputs):
        columns = {name: inputs.get(name) for name, spec in specs.items() if spec.batched}
    else:
        columns = {"": inputs}
    counts = [len(v) for v in columns.values() if isinstance(v, list)]
    return max(counts, default=1)


def decode_request(body: Any, specs: dict[str, InputSpec]) -> tuple[dict[str, np.ndarray], bool]:
    """The inputs of a REST predict body, and whether it used the row (``instances``) format."""
    if not isinstance(body, dict):
        raise BadRequestError("the request body must be a JSON object")
    if ("instances" in body) == ("inputs" in body):
        raise BadRequestError('the request must have exactly one of "instances" or "inputs"')
    if "instances" in body:
        return _decode_rows(body["instances"], specs), True
    inputs = body["inputs"]
    if isinstance(inputs, dict) and not _is_b64(inputs):
        _check_names(set(inputs), specs)
        return {name: json_to_array(inputs[name], spec) for name, spec in specs.items()}, False
    if len(specs) != 1:
        raise BadRequestError(f'"inputs" must name each of the signature\'s inputs {sorted(specs)}')
    (spec,) = specs.values()
    return {spec.name: json_to_array(inputs, spec)}, False


def _decode_rows(instances: Any, specs: dict[str, InputSpec]) -> dict[str, np.ndarray]:
    if not isinstance(instances, list) or not instances:
        raise BadRequestError('"instances" must be a non-empty list')
    if any(not spec.batched for spec in specs.values()):
        raise BadRequestError(
            'this signature has unbatched inputs: use the columnar "inputs" format'
        )
    named = all(isinstance(i, dict) and not _is_b64(i) for i in instances)
    if not named:
        if len(specs) != 1:
            raise BadRequestError(
                f"each instance must be an object with the inputs {sorted(specs)}"
            )
        (spec,) = specs.values()
        return {spec.name: json_to_array(instances, spec)}
    for instance in instances:
        _check_names(set(instance), specs)
    return {
        name: json_to_array([instance[name] for instance in instances], spec)
        for name, spec in specs.items()
    }


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
        array = tf.make_ndarray(proto)
    except (ValueError, TypeError) as error:
        raise BadRequestError(f"input {spec.name!r}: {error}") from None
    if tf.dtypes.as_dtype(proto.dtype) != spec.dtype:
        raise BadRequestError(
            f"input {spec.name!r} is {tf.dtypes.as_dtype(proto.dtype).name}; "
            f"the signature takes {spec.dtype.name}"
        )
    check_shape(array, spec)
    return array


def decode_protos(protos, specs: dict[str, InputSpec]) -> dict[str, np.ndarray]:
    """A ``PredictRequest``'s inputs as arrays."""
    _check_names(set(protos.keys()), specs)
    return {name: proto_to_array(protos[name], spec) for name, spec in specs.items()}
