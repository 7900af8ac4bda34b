"""The serving cases of the hostile corpus: REST and gRPC requests, generated as
class x model x variant, against small exports of all six pipelines.

A case sends one request and says what a clean answer is: ``REJECT`` (REST: a 4xx with a JSON
``{"error": ...}``; gRPC: a status other than OK, INTERNAL and UNKNOWN), ``OK`` (a 200 with
predictions) or ``EITHER``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable

import numpy as np

MODELS = ("sentiment", "forecasting", "speech", "music", "translation", "video")
INPUTS = {  # the serving_default input of each model, and its dtype
    "sentiment": ("text", "string"),
    "forecasting": ("window", "float32"),
    "speech": ("audio", "float32"),
    "music": ("primer", "int32"),
    "translation": ("text", "string"),
    "video": ("frames", "uint8"),
}
MAX_ITEMS = 64  # pipelines.serving.limits.DEFAULT_MAX_ITEMS: a request's bound without limits.json
SERVED_MAX_ITEMS: dict[str, int] = {}  # each served export's own max_items (set by the fixture)


def _over_max_items(model: str) -> int:
    """One item more than the served ``model`` takes in a request."""
    return SERVED_MAX_ITEMS.get(model, MAX_ITEMS) + 1


MAX_ITEM_BYTES = 256 * 1024  # over DEFAULT_MAX_ITEM_BYTES and every export's own text bound
MAX_REQUEST_BYTES = 4 * 1024 * 1024  # DEFAULT_MAX_REQUEST_BYTES: all string items of a request
BODY_LIMIT = 8 * 1024 * 1024  # the server's max_body_bytes in these tests

REJECT, OK, EITHER = "reject", "ok", "either"

WELL_FORMED = "well-formed"
MALFORMED = "malformed body"
WRONG_TYPE = "wrong type"
WRONG_SHAPE = "wrong shape"
BOUNDS = "over a bound"
NUMBERS = "numbers at the edges"
ENCODING = "encoding"
UNKNOWN = "unknown model/version/signature"
B64 = "b64 misuse"
NESTING = "deep nesting"


@dataclasses.dataclass(frozen=True)
class RestCase:
    """One REST request: ``body(example)`` gives the JSON value or raw bytes to POST to
    ``/v1/models/MODEL{path}``; ``example`` is the model's serving example (columnar)."""

    model: str
    kind: str
    name: str
    body: Callable[[dict], object]
    expect: str = REJECT
    path: str = ":predict"

    @property
    def key(self) -> str:
        """A unique id."""
        return f"rest/{self.model}/{self.name}"


@dataclasses.dataclass(frozen=True)
class GrpcCase:
    """One gRPC Predict: ``request(example, predict_pb2)`` builds the PredictRequest."""

    model: str
    kind: str
    name: str
    request: Callable
    expect: str = REJECT

    @property
    def key(self) -> str:
        """A unique id."""
        return f"grpc/{self.model}/{self.name}"


def _raw(text: str | bytes) -> Callable[[dict], bytes]:
    return lambda example: text.encode() if isinstance(text, str) else text


def _items(example: dict) -> list:
    """The example's items of the serving_default input, as a list."""
    return list(next(iter(example.values())))


def _first(model: str, example: dict):
    return example[INPUTS[model][0]][0]


def _nested(value, depth: int):
    for _ in range(depth):
        value = [value]
    return value


def _rest_generic(model: str) -> list[RestCase]:
    name, dtype = INPUTS[model]
    numeric = dtype != "string"
    wrong_type = "a string" if numeric else 3.5
    cases = [
        RestCase(model, WELL_FORMED, "columnar", lambda e: {"inputs": e}, OK),
        RestCase(model, WELL_FORMED, "rows", lambda e: {"instances": _items(e)}, OK),
        RestCase(
            model, WELL_FORMED, "one_item", lambda e, m=model: {"instances": [_first(m, e)]}, OK
        ),
        RestCase(model, MALFORMED, "not_json", _raw("{not json")),
        RestCase(model, MALFORMED, "empty_body", _raw(b"")),
        RestCase(model, MALFORMED, "json_list", _raw("[1, 2, 3]")),
        RestCase(model, MALFORMED, "json_string", _raw('"instances"')),
        RestCase(model, MALFORMED, "no_instances_or_inputs", lambda e: {"rows": _items(e)}),
        RestCase(
            model,
            MALFORMED,
            "both_instances_and_inputs",
            lambda e: {"instances": _items(e), "inputs": e},
        ),
        RestCase(model, MALFORMED, "instances_not_a_list", lambda e: {"instances": 5}),
        RestCase(model, MALFORMED, "empty_instances", lambda e: {"instances": []}),
        RestCase(
            model,
            MALFORMED,
            "truncated_json",
            lambda e: json.dumps({"instances": _items(e)})[:-3].encode(),
        ),
        RestCase(
            model,
            MALFORMED,
            "trailing_garbage",
            lambda e: json.dumps({"instances": _items(e)}).encode() + b" }{",
        ),
        RestCase(
            model,
            MALFORMED,
            "signature_name_a_number",
            lambda e: {"signature_name": 5, "instances": _items(e)},
        ),
        RestCase(model, WRONG_TYPE, "null_item", lambda e: {"instances": [None]}),
        RestCase(model, WRONG_TYPE, "bool_item", lambda e: {"instances": [True]}),
        RestCase(
            model, WRONG_TYPE, "object_item_unknown_key", lambda e: {"instances": [{"nope": 1}]}
        ),
        RestCase(
            model, WRONG_TYPE, "wrong_scalar_type", lambda e, w=wrong_type: {"inputs": {name: [w]}}
        ),
        RestCase(
            model,
            WRONG_TYPE,
            "unknown_input_name",
            lambda e, m=model: {"inputs": {"nope": e[INPUTS[m][0]]}},
        ),
        RestCase(
            model,
            WRONG_SHAPE,
            "extra_nesting",
            lambda e: {"inputs": {k: [v] for k, v in e.items()}},
        ),
        RestCase(
            model,
            WRONG_SHAPE,
            "scalar_input",
            lambda e, w=("x" if not numeric else 1): {"inputs": {name: w}},
        ),
        RestCase(
            model,
            BOUNDS,
            "too_many_items",
            lambda e, m=model: {"instances": [_first(m, e)] * _over_max_items(m)},
        ),
        RestCase(model, NUMBERS, "nan_literal", _raw('{"instances": [NaN]}')),
        RestCase(model, NUMBERS, "infinity_literal", _raw('{"instances": [Infinity]}')),
        RestCase(model, NUMBERS, "number_over_double", _raw('{"instances": [1e400]}')),
        RestCase(model, ENCODING, "latin1_body", _raw(b'{"instances": ["caf\xe9"]}')),
        RestCase(
            model,
            ENCODING,
            "utf16_body",
            lambda e: json.dumps({"instances": _items(e)}).encode("utf-16"),
        ),
        RestCase(
            model,
            NESTING,
            "deep_lists",
            _raw('{"instances": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        ),
        RestCase(
            model,
            NESTING,
            "deep_objects",
            _raw('{"instances": ' + '{"a": ' * 50_000 + "1" + "}" * 50_001),
        ),
        RestCase(
            model, UNKNOWN, "unknown_version", lambda e: {"inputs": e}, path="/versions/99:predict"
        ),
        RestCase(
            model,
            UNKNOWN,
            "version_not_a_number",
            lambda e: {"inputs": e},
            path="/versions/one:predict",
        ),
        RestCase(
            model, UNKNOWN, "unknown_signature", lambda e: {"signature_name": "nope", "inputs": e}
        ),
        RestCase(model, UNKNOWN, "unknown_verb", lambda e: {"inputs": e}, path=":explode"),
        RestCase(
            model, B64, "b64_not_base64", lambda e: {"instances": [{"b64": "!!not base64!!"}]}
        ),
        RestCase(model, B64, "b64_a_number", lambda e: {"instances": [{"b64": 5}]}),
        RestCase(
            model, B64, "b64_with_extra_key", lambda e: {"instances": [{"b64": "YQ==", "x": 1}]}
        ),
    ]
    if numeric:
        cases += [
            RestCase(model, B64, "b64_for_a_number", lambda e: {"instances": [{"b64": "YWJj"}]}),
            RestCase(
                model,
                NUMBERS,
                "value_over_float32",
                lambda e, m=model: {"instances": [_filled(_first(m, e), 1e39)]},
            ),
            RestCase(
                model,
                NUMBERS,
                "integer_10e30",
                lambda e, m=model: {"instances": [_filled(_first(m, e), 10**30)]},
                EITHER if dtype == "float32" else REJECT,  # float32 holds 1e30
            ),
            RestCase(
                model,
                WRONG_SHAPE,
                "ragged_items",
                lambda e, m=model: {"instances": _ragged(_first(m, e))},
            ),
        ]
    else:
        cases += [
            RestCase(
                model,
                B64,
                "b64_valid",
                lambda e: {"instances": [{"b64": base64.b64encode(b"one two").decode()}]},
                OK,
            ),
            RestCase(
                model,
                BOUNDS,
                "item_over_the_byte_bound",
                lambda e: {"instances": ["w" * (MAX_ITEM_BYTES + 1)]},
            ),
            RestCase(
                model,
                BOUNDS,
                "request_over_the_byte_bound",
                lambda e: {"instances": ["w " * 32_000] * (MAX_REQUEST_BYTES // 64_000 + 2)},
            ),
            RestCase(
                model,
                BOUNDS,
                "many_empty_strings",
                lambda e: {"instances": [""] * MAX_ITEMS},
                EITHER,
            ),
            RestCase(
                model,
                ENCODING,
                "lone_surrogate_escape",
                _raw('{"instances": ["\\ud800 film"]}'),
                EITHER,
            ),
            RestCase(model, ENCODING, "nul_in_text", lambda e: {"instances": ["a\x00b"]}, EITHER),
        ]
    return cases


def _filled(item, value):
    """``item`` (nested lists) with every number replaced by ``value``."""
    if isinstance(item, list):
        return [_filled(x, value) for x in item]
    return value


def _ragged(item) -> list:
    shorter = item[:-1] if isinstance(item, list) and len(item) > 1 else []
    return [item, shorter]


def _rest_specific() -> list[RestCase]:
    window = [[[10.0, 2.0]] * 8]
    audio_item = 2 * 1024 * 1024 + 1  # DEFAULT_MAX_ITEM_ELEMENTS + 1 samples
    return [
        RestCase(
            "forecasting", WRONG_SHAPE, "seven_steps", lambda e: {"instances": [[[1.0, 2.0]] * 7]}
        ),
        RestCase(
            "forecasting",
            WRONG_SHAPE,
            "three_features",
            lambda e: {"instances": [[[1.0, 2.0, 3.0]] * 8]},
        ),
        RestCase(
            "forecasting", NUMBERS, "nan_as_string", lambda e: {"instances": [[["NaN", 2.0]] * 8]}
        ),
        RestCase(
            "forecasting",
            NUMBERS,
            "near_float32_max",
            lambda e: {"instances": [[[3.4e38, 2.0]] * 8]},
            EITHER,
        ),
        RestCase(
            "forecasting",
            WELL_FORMED,
            "window_of_zeros",
            lambda e: {"instances": [[[0.0, 0.0]] * 8]},
            OK,
        ),
        RestCase(
            "forecasting",
            WELL_FORMED,
            "max_items",
            lambda e: {"instances": window * (_over_max_items("forecasting") - 1)},
            OK,
        ),
        RestCase("speech", WRONG_SHAPE, "empty_audio", lambda e: {"instances": [[]]}, EITHER),
        RestCase(
            "speech",
            BOUNDS,
            "item_over_the_sample_bound",
            _raw(b'{"instances": [[' + b"0," * (audio_item - 1) + b"0]]}"),
        ),
        RestCase(
            "speech",
            BOUNDS,
            "body_over_the_limit",
            _raw(b'{"instances": [[' + b"0," * (BODY_LIMIT // 2) + b"0]]}"),
        ),
        RestCase(
            "speech", NUMBERS, "clipping_samples", lambda e: {"instances": [[1e30] * 16000]}, EITHER
        ),
        RestCase(
            "music", NUMBERS, "token_over_vocabulary", lambda e: {"instances": [[500, 1, 2, 3]]}
        ),
        RestCase("music", NUMBERS, "negative_token", lambda e: {"instances": [[-1, 1, 2, 3]]}),
        RestCase("music", NUMBERS, "fractional_token", lambda e: {"instances": [[1.5, 1, 2, 3]]}),
        RestCase("music", WRONG_SHAPE, "empty_primer", lambda e: {"instances": [[]]}),
        RestCase("music", BOUNDS, "generate_steps_huge", lambda e: _generate(e, steps=10**9)),
        RestCase("music", NUMBERS, "generate_steps_negative", lambda e: _generate(e, steps=-5)),
        RestCase(
            "music",
            NUMBERS,
            "generate_temperature_zero",
            lambda e: _generate(e, temperature=0.0),
            EITHER,
        ),
        RestCase(
            "music",
            NUMBERS,
            "generate_temperature_nan",
            _raw(json.dumps(_generate({"primer": [[50, 45, 38, 27]]}, temperature=float("nan")))),
        ),
        RestCase(
            "music", NUMBERS, "generate_top_k_negative", lambda e: _generate(e, top_k=-3), EITHER
        ),
        RestCase("music", WELL_FORMED, "generate", lambda e: _generate(e), OK),
        RestCase("translation", WELL_FORMED, "empty_text", lambda e: {"instances": [""]}, EITHER),
        RestCase(
            "translation", WELL_FORMED, "unknown_words", lambda e: {"instances": ["zzz qqq"]}, OK
        ),
        RestCase(
            "sentiment",
            WELL_FORMED,
            "unicode_text",
            lambda e: {"instances": ["caf\u00e9 \u2603 \U0001f600"]},
            OK,
        ),
        RestCase(
            "video",
            NUMBERS,
            "pixel_over_255",
            lambda e: {"instances": [_filled(e["frames"][0], 300)]},
        ),
        RestCase(
            "video",
            NUMBERS,
            "negative_pixel",
            lambda e: {"instances": [_filled(e["frames"][0], -1)]},
        ),
        RestCase(
            "video",
            NUMBERS,
            "fractional_pixel",
            lambda e: {"instances": [_filled(e["frames"][0], 1.5)]},
            EITHER,
        ),
        RestCase(
            "video",
            WRONG_SHAPE,
            "one_frame_missing",
            lambda e: {"instances": [e["frames"][0][:-1]]},
            EITHER,
        ),
        RestCase(
            "video",
            WRONG_SHAPE,
            "two_channels",
            lambda e: {"instances": [_channels(e["frames"][0], 2)]},
        ),
    ]


def _generate(example: dict, steps: int = 3, temperature: float = 1.0, top_k: int = 0) -> dict:
    inputs = {"primer": example["primer"], "steps": steps, "temperature": temperature}
    return {"signature_name": "generate", "inputs": {**inputs, "top_k": top_k, "seed": [0, 1]}}


def _channels(item, count: int):
    return [[[pixel[:count] for pixel in row] for row in frame] for frame in item]


# === gRPC ===


def _tensor(value, dtype=None):
    import tensorflow as tf

    return tf.make_tensor_proto(value, dtype=dtype)


def _request(model: str, inputs: dict, predict_pb2, version: int | None = None, signature=""):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    if version is not None:
        request.model_spec.version.value = version
    if signature:
        request.model_spec.signature_name = signature
    for name, proto in inputs.items():
        request.inputs[name].CopyFrom(proto)
    return request


def _good(model: str, example: dict):
    name, dtype = INPUTS[model]
    return {
        name: _tensor(
            np.asarray(example[name]).astype(dtype if dtype != "string" else object),
            None if dtype != "string" else "string",
        )
    }


def _declared_only(dtype_enum: int, dims: list[int], content: bytes = b""):
    """A TensorProto that declares ``dims`` and holds only ``content``."""
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2

    shape = tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims]
    )
    return tensor_pb2.TensorProto(dtype=dtype_enum, tensor_shape=shape, tensor_content=content)


DT_FLOAT, DT_INT32, DT_UINT8, DT_STRING, DT_DOUBLE = 1, 3, 4, 7, 2
DTYPE_ENUMS = {"float32": DT_FLOAT, "int32": DT_INT32, "uint8": DT_UINT8, "string": DT_STRING}


def _grpc_generic(model: str) -> list[GrpcCase]:
    name, dtype = INPUTS[model]
    numeric = dtype != "string"
    wrong = (
        _tensor(np.array([1.0], np.float64))
        if not numeric
        else _tensor(np.array([b"x"], object), "string")
    )
    one_item_shape = list(np.asarray(_example_shape(model)))
    cases = [
        GrpcCase(
            model, WELL_FORMED, "example", lambda e, p, m=model: _request(m, _good(m, e), p), OK
        ),
        GrpcCase(
            model,
            UNKNOWN,
            "unknown_model",
            lambda e, p, m=model: _request("nosuch", _good(m, e), p),
        ),
        GrpcCase(
            model, UNKNOWN, "empty_model_name", lambda e, p, m=model: _request("", _good(m, e), p)
        ),
        GrpcCase(
            model,
            UNKNOWN,
            "unknown_version",
            lambda e, p, m=model: _request(m, _good(m, e), p, version=99),
        ),
        GrpcCase(
            model,
            UNKNOWN,
            "unknown_signature",
            lambda e, p, m=model: _request(m, _good(m, e), p, signature="nope"),
        ),
        GrpcCase(
            model,
            WRONG_TYPE,
            "unknown_input_name",
            lambda e, p, m=model: _request(m, {"nope": _good(m, e)[name]}, p),
        ),
        GrpcCase(model, WRONG_TYPE, "no_inputs", lambda e, p, m=model: _request(m, {}, p)),
        GrpcCase(
            model,
            WRONG_TYPE,
            "wrong_dtype",
            lambda e, p, m=model, w=wrong: _request(m, {name: w}, p),
        ),
        GrpcCase(
            model,
            WRONG_SHAPE,
            "scalar",
            lambda e, p, m=model: _request(
                m,
                {
                    name: _tensor(
                        np.asarray(_first(m, e)).ravel()[0] if numeric else b"x",
                        None if numeric else "string",
                    )
                },
                p,
            ),
        ),
        GrpcCase(
            model,
            WRONG_SHAPE,
            "empty_batch",
            lambda e, p, m=model, s=one_item_shape: _request(
                m, {name: _declared_only(DTYPE_ENUMS[dtype], [0, *s[1:]])}, p
            ),
            EITHER,
        ),
        GrpcCase(
            model,
            BOUNDS,
            "too_many_items",
            lambda e, p, m=model: _request(
                m,
                {
                    name: _tensor(
                        np.repeat(
                            np.asarray(e[name])[:1].astype(object if not numeric else dtype),
                            _over_max_items(m),
                            axis=0,
                        ),
                        None if numeric else "string",
                    )
                },
                p,
            ),
        ),
        GrpcCase(
            model,
            BOUNDS,
            "huge_declared_shape",
            lambda e, p, m=model, s=one_item_shape: _request(
                m,
                {
                    name: _declared_only(
                        DTYPE_ENUMS[dtype],
                        [2**20, *[max(d, 1) * 64 for d in s[1:]]] if numeric else [2**31],
                    )
                },
                p,
            ),
        ),
        GrpcCase(
            model,
            MALFORMED,
            "content_shorter_than_shape",
            lambda e, p, m=model, s=one_item_shape: _request(
                m, {name: _declared_only(DTYPE_ENUMS[dtype], [2, *s[1:]], b"\x01\x02\x03")}, p
            ),
        ),
        GrpcCase(
            model,
            MALFORMED,
            "negative_dimension",
            lambda e, p, m=model: _request(m, {name: _declared_only(DTYPE_ENUMS[dtype], [-5])}, p),
        ),
    ]
    if numeric and dtype == "float32":
        cases.append(
            GrpcCase(
                model,
                NUMBERS,
                "nan_values",
                lambda e, p, m=model: _request(
                    m, {name: _tensor(np.full_like(np.asarray(e[name], np.float32), np.nan))}, p
                ),
                EITHER if model == "speech" else REJECT,
            )
        )
        cases.append(
            GrpcCase(
                model,
                NUMBERS,
                "inf_values",
                lambda e, p, m=model: _request(
                    m, {name: _tensor(np.full_like(np.asarray(e[name], np.float32), np.inf))}, p
                ),
                EITHER if model == "speech" else REJECT,
            )
        )
    if not numeric:
        cases.append(
            GrpcCase(
                model,
                ENCODING,
                "invalid_utf8_bytes",
                lambda e, p, m=model: _request(
                    m, {name: _tensor(np.array([b"caf\xe9 \xff"], object), "string")}, p
                ),
                EITHER,
            )
        )
        cases.append(
            GrpcCase(
                model,
                BOUNDS,
                "item_over_the_byte_bound",
                lambda e, p, m=model: _request(
                    m, {name: _tensor(np.array([b"w" * (MAX_ITEM_BYTES + 1)], object), "string")}, p
                ),
            )
        )
    return cases


EXAMPLE_SHAPES = {  # one item of each serving example, batch first
    "sentiment": [1],
    "forecasting": [1, 8, 2],
    "speech": [1, 16000],
    "music": [1, 4],
    "translation": [1],
    "video": [1, 6, 16, 16, 3],
}


def _example_shape(model: str) -> list[int]:
    return EXAMPLE_SHAPES[model]


REST_CASES: list[RestCase] = [
    case for model in MODELS for case in _rest_generic(model)
] + _rest_specific()
GRPC_CASES: list[GrpcCase] = [case for model in MODELS for case in _grpc_generic(model)]
