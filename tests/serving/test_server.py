"""The model server, driven as TensorFlow Serving's clients drive it: plain HTTP JSON and the
``tensorflow-serving-api`` gRPC stubs, against small exports of three pipelines.

One server (``served``) answers most tests; the tests that stop a server or need other
settings start their own.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.serving import exports
from tests.serving.server_process import http, running_server

MODELS = ("sentiment", "forecasting", "speech", "music", "translation", "video")
DTYPES = {
    "text": "string",
    "window": "float32",
    "audio": "float32",
    "primer": "int32",
    "frames": "uint8",
}
MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_IN_FLIGHT = 4
LIMITED_MAX_ITEMS = 3
LIMITED_MAX_ITEM_BYTES = 40
POLL_SECONDS = 0.3


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    """A models folder with the three exports, a copy of sentiment with a limits.json
    (``limited``) and folders the server must ignore; each model's example request."""
    root = tmp_path_factory.mktemp("models")
    examples = {name: exports.export(name, root / name / "1") for name in MODELS}
    shutil.copytree(root / "sentiment" / "1", root / "limited" / "1")
    limits = {
        "max_items": LIMITED_MAX_ITEMS,
        "inputs": {"text": {"dtype": "string", "max_item_bytes": LIMITED_MAX_ITEM_BYTES}},
    }
    extra = root / "limited" / "1" / "assets.extra"
    extra.mkdir(exist_ok=True)
    (extra / "limits.json").write_text(json.dumps(limits))
    (root / "speech" / "7").mkdir()  # a partial copy: no saved_model.pb
    shutil.copytree(root / "sentiment" / "1", root / "sentiment" / ".tmp-9")  # not an integer
    (root / "notes.txt").write_text("not a model")
    return root, examples


@pytest.fixture(scope="module")
def served(repository):
    root, examples = repository
    with running_server(
        root,
        max_body_bytes=MAX_BODY_BYTES,
        max_in_flight=MAX_IN_FLIGHT,
        poll_seconds=POLL_SECONDS,
    ) as server:
        yield server, examples


def _grpc_stubs(address: str):
    import grpc
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    channel = grpc.insecure_channel(address)
    return (
        prediction_service_pb2_grpc.PredictionServiceStub(channel),
        model_service_pb2_grpc.ModelServiceStub(channel),
    )


def _grpc_predict(address: str, model: str, inputs: dict, version: int | None = None):
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    prediction, _ = _grpc_stubs(address)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    if version is not None:
        request.model_spec.version.value = version
    for name, value in inputs.items():
        dtype = None if isinstance(value, np.ndarray) else DTYPES.get(name)  # an array: as is
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value, dtype=dtype))
    response = prediction.Predict(request, timeout=120)
    return response, {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


def _same(rest_value, grpc_value) -> None:
    grpc_value = np.asarray(grpc_value)
    if grpc_value.dtype == object:
        assert [v.decode() for v in grpc_value.ravel()] == list(np.ravel(rest_value))
    else:
        np.testing.assert_allclose(np.asarray(rest_value), grpc_value, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("model", MODELS)
def test_each_model_answers_rest_and_grpc_alike(served, model):
    from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

    server, examples = served
    example = examples[model]
    base = f"{server.rest}/v1/models/{model}"

    status, body = http("GET", base)
    assert status == 200
    assert body["model_version_status"] == [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    ]
    status, body = http("GET", f"{base}/versions/1/metadata")
    assert status == 200 and body["model_spec"]["name"] == model
    signature = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert set(signature["inputs"]) == set(example)

    status, columnar = http("POST", f"{base}:predict", {"inputs": example})
    assert status == 200, columnar
    items = len(next(iter(example.values())))
    rows = [{name: values[i] for name, values in example.items()} for i in range(items)]
    status, by_row = http("POST", f"{base}/versions/1:predict", {"instances": rows})
    assert status == 200, by_row
    assert len(by_row["predictions"]) == items

    response, outputs = _grpc_predict(server.grpc, model, example)
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"
    rest_outputs = columnar["outputs"]
    if not isinstance(rest_outputs, dict):
        rest_outputs = {next(iter(outputs)): rest_outputs}
    assert set(rest_outputs) == set(outputs)
    for name, value in outputs.items():
        _same(rest_outputs[name], value)

    prediction, model_service = _grpc_stubs(server.grpc)
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = model
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    prediction.GetModelMetadata(request, timeout=60).metadata["signature_def"].Unpack(signature_map)
    assert set(signature_map.signature_def["serving_default"].inputs) == set(example)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = model
    (version,) = model_service.GetModelStatus(request, timeout=60).model_version_status
    assert version.version == 1
    assert version.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE


def test_a_named_signature_is_reachable(served):
    server, examples = served
    request = {
        "signature_name": "generate",
        "inputs": {
            **examples["music"],
            "steps": 3,
            "temperature": 1.0,
            "top_k": 0,
            "seed": [0, 1],
        },
    }
    status, body = http("POST", f"{server.rest}/v1/models/music:predict", request)
    assert status == 200, body
    assert np.asarray(body["outputs"]).shape == (2, 3 * 4)  # three steps of four voices
    first = {
        name: value[0] if name == "primer" else value for name, value in request["inputs"].items()
    }
    request = {"signature_name": "generate", "instances": [first]}
    _error(*http("POST", f"{server.rest}/v1/models/music:predict", request), 400, "columnar")


def test_strings_may_be_sent_as_base64(served):
    server, _ = served
    text = base64.b64encode(b"a good film").decode()
    status, body = http(
        "POST", f"{server.rest}/v1/models/sentiment:predict", {"instances": [{"b64": text}]}
    )
    assert status == 200 and body["predictions"][0]["label"] in ("neg", "pos")


def _error(status: int, body, expected_status: int, *words: str) -> None:
    assert status == expected_status, body
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert "Traceback" not in body["error"] and 'File "' not in body["error"]
    for word in words:
        assert word in body["error"], body


def test_bad_requests_are_400(served):
    server, _ = served
    url = f"{server.rest}/v1/models/"
    _error(*http("POST", url + "sentiment:predict", b"{not json"), 400, "JSON")
    _error(*http("POST", url + "sentiment:predict", {"instances": [1, 2]}), 400, "strings")
    _error(*http("POST", url + "sentiment:predict", {"rows": ["x"]}), 400, "instances")
    _error(*http("POST", url + "speech:predict", {"inputs": {"audio": [[0.1], [0.1, 0.2]]}}), 400)
    _error(*http("POST", url + "forecasting:predict", {"inputs": {"frames": [1]}}), 400, "window")
    window = [[[1.0, 2.0]] * 3]  # three steps: the export checks for eight
    _error(*http("POST", url + "forecasting:predict", {"instances": window}), 400, "8 steps")


def test_unknown_models_versions_and_signatures_are_404(served):
    server, _ = served
    url = f"{server.rest}/v1/models/"
    request = {"instances": ["a film"]}
    _error(*http("GET", url + "nosuch"), 404, "nosuch")
    _error(*http("POST", url + "nosuch:predict", request), 404)
    _error(*http("POST", url + "sentiment/versions/9:predict", request), 404)
    _error(*http("POST", url + "sentiment/versions/7:predict", request), 404)
    _error(*http("GET", url + "sentiment/versions/..%2F..%2Fetc"), 404)
    _error(*http("GET", url + "sentiment/labels/stable"), 404)
    _error(*http("POST", url + "sentiment:explode", request), 404)
    request["signature_name"] = "generate"
    _error(*http("POST", url + "sentiment:predict", request), 404, "generate")


def test_requests_over_a_limit_are_413(served):
    server, _ = served
    url = f"{server.rest}/v1/models/"
    too_many = {"instances": ["a film"] * (LIMITED_MAX_ITEMS + 1)}
    _error(*http("POST", url + "limited:predict", too_many), 413, "items")
    too_long = {"instances": ["w" * (LIMITED_MAX_ITEM_BYTES + 1)]}
    _error(*http("POST", url + "limited:predict", too_long), 413, "bytes")
    # Declared too large: answered from the headers, before any of the body is read.
    head = f"Content-Length: {MAX_BODY_BYTES + 1}\r\n"
    status, body = _raw_post(server.rest, "/v1/models/sentiment:predict", head, [])
    _error(status, body, 413, "body")
    # Chunked, so no length is declared: refused once the bytes read pass the limit.
    chunk = b"x" * 65536
    chunks = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * (MAX_BODY_BYTES // len(chunk) + 1)
    head = "Transfer-Encoding: chunked\r\n"
    status, body = _raw_post(server.rest, "/v1/models/sentiment:predict", head, chunks)
    _error(status, body, 413, "body")


def _raw_post(rest: str, path: str, head: str, parts: list[bytes]) -> tuple[int, dict]:
    """A POST written by hand on a socket (headers ``head``, then ``parts``); the answer."""
    host, port = rest.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=120) as connection:
        connection.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{head}\r\n".encode())
        for part in parts:
            connection.sendall(part)
        return _read_answer(connection)


def _read_answer(connection: socket.socket) -> tuple[int, dict]:
    """Status and JSON body of one HTTP answer with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
        chunk = connection.recv(65536)
        if not chunk:
            break
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    return int(head.split()[1]), json.loads(body)


class HeldRequest:
    """A predict request whose body is sent in two parts, so it stays in flight between them."""

    def __init__(self, rest: str, model: str, body: dict):
        host, port = rest.removeprefix("http://").split(":")
        self.payload = json.dumps(body).encode()
        self.socket = socket.create_connection((host, int(port)), timeout=120)
        head = (
            f"POST /v1/models/{model}:predict HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(self.payload)}\r\n\r\n"
        )
        self.socket.sendall(head.encode() + self.payload[:1])

    def finish(self) -> tuple[int, dict]:
        """Send the rest of the body; the status and JSON body of the answer."""
        self.socket.sendall(self.payload[1:])
        with self.socket:
            return _read_answer(self.socket)


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


def _in_flight(rest: str) -> float:
    status, text = http("GET", f"{rest}/monitoring/prometheus/metrics")
    match = [
        line for line in text.splitlines() if line.startswith(":tensorflow:serving:requests_in")
    ]
    return float(match[0].split()[-1]) if match else 0.0


def _wait_for(condition, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.05)


def test_requests_over_the_in_flight_bound_are_503(served):
    import grpc

    server, examples = served
    held = [
        HeldRequest(server.rest, "sentiment", {"instances": ["a film"]})
        for _ in range(MAX_IN_FLIGHT)
    ]
    _wait_for(lambda: _in_flight(server.rest) == MAX_IN_FLIGHT)
    status, body = http("POST", f"{server.rest}/v1/models/sentiment:predict", {"inputs": ["x"]})
    _error(status, body, 503)
    with pytest.raises(grpc.RpcError) as caught:
        _grpc_predict(server.grpc, "sentiment", {"text": ["x"]})
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    for request in held:
        assert request.finish()[0] == 200
    assert http("POST", f"{server.rest}/v1/models/sentiment:predict", {"inputs": ["x"]})[0] == 200


def test_grpc_errors_carry_the_matching_codes(served):
    import grpc

    server, examples = served
    cases = [
        ("nosuch", {"text": ["x"]}, grpc.StatusCode.NOT_FOUND),
        ("sentiment", {"words": ["x"]}, grpc.StatusCode.INVALID_ARGUMENT),
        ("sentiment", {"text": np.array([1.0], np.float32)}, grpc.StatusCode.INVALID_ARGUMENT),
        ("limited", {"text": ["x"] * 4}, grpc.StatusCode.RESOURCE_EXHAUSTED),
    ]
    for model, inputs, code in cases:
        with pytest.raises(grpc.RpcError) as caught:
            _grpc_predict(server.grpc, model, inputs)
        assert caught.value.code() == code, (model, inputs, caught.value.details())
        assert "Traceback" not in caught.value.details()


def test_metrics_count_requests_errors_and_latency(served):
    server, _ = served
    http("POST", f"{server.rest}/v1/models/forecasting:predict", {"instances": [[[0.0, 1.0]]]})
    status, text = http("GET", f"{server.rest}/monitoring/prometheus/metrics")
    assert status == 200
    assert 'model="forecasting"' in text and 'version="1"' in text
    assert ":tensorflow:serving:request_count_total{" in text
    assert ":tensorflow:serving:request_errors_total{" in text and 'status="400"' in text
    assert ":tensorflow:serving:request_latency_seconds_bucket{" in text


def test_a_published_version_is_picked_up_and_a_removed_one_retired(served, repository):
    root, _ = repository
    server, _ = served
    base = f"{server.rest}/v1/models/fresh"
    staging = root / ".staging-fresh"
    shutil.copytree(root / "sentiment" / "1", staging)
    (root / "fresh").mkdir()
    staging.rename(root / "fresh" / "1")
    _wait_for(lambda: http("GET", base)[0] == 200)

    # version 2 appears (atomically, as publish does) while requests keep arriving
    with ThreadPoolExecutor(4) as pool:
        answers = pool.map(
            lambda _: http("POST", f"{base}:predict", {"instances": ["a film"]})[0], range(40)
        )
        shutil.copytree(root / "sentiment" / "1", staging)
        staging.rename(root / "fresh" / "2")
        assert set(answers) == {200}
    _wait_for(lambda: http("GET", base)[1]["model_version_status"][0]["version"] == "2")
    assert http("POST", f"{base}/versions/2:predict", {"instances": ["a film"]})[0] == 200
    assert http("POST", f"{base}/versions/1:predict", {"instances": ["a film"]})[0] == 404

    shutil.rmtree(root / "fresh" / "2")  # removed: version 1 is served again
    _wait_for(lambda: http("GET", base)[1]["model_version_status"][0]["version"] == "1")
    shutil.rmtree(root / "fresh")
    _wait_for(lambda: http("GET", base)[0] == 404)


@pytest.fixture(scope="module")
def sentiment_and_speech(repository):
    """A models folder holding only the sentiment and speech exports."""
    root, examples = repository
    folder = root.parent / "two-models"
    if not folder.exists():
        for name in ("sentiment", "speech"):
            shutil.copytree(root / name / "1", folder / name / "1")
    return folder, examples


def _batches(rest: str, model: str) -> tuple[float, float]:
    """(batches run, items in them) from the batch-size histogram of ``model``."""
    text = http("GET", f"{rest}/monitoring/prometheus/metrics")[1]
    values = {}
    for line in text.splitlines():
        if line.startswith(":tensorflow:serving:batch_size_") and f'model="{model}"' in line:
            values[line.split("{")[0].rsplit("_", 1)[1]] = float(line.split()[-1])
    return values.get("count", 0.0), values.get("sum", 0.0)


def test_batching_combines_concurrent_requests(sentiment_and_speech):
    folder, _ = sentiment_and_speech
    rate = exports.SPEECH_RATE
    clips = [np.zeros(rate // 4 * (i + 1), np.float32).tolist() for i in range(4)]
    # A long timeout and a batch of four: four requests sent together make one batch.
    with running_server(folder, max_batch_size=4, batch_timeout_ms=20_000) as server:
        url = f"{server.rest}/v1/models/speech:predict"
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda clip: http("POST", url, {"instances": [clip]}), clips))
        assert [status for status, _ in answers] == [200] * 4
        assert all(len(body["predictions"]) == 1 for _, body in answers)
        assert _batches(server.rest, "speech") == (1.0, 4.0)


def test_sigterm_finishes_the_requests_in_flight_and_exits_0(sentiment_and_speech):
    folder, _ = sentiment_and_speech
    with running_server(folder) as server:
        held = HeldRequest(server.rest, "sentiment", {"instances": ["a good film"]})
        _wait_for(lambda: _in_flight(server.rest) == 1)
        server.terminate()
        time.sleep(1)  # the server is draining now: it takes no new connection
        host, port = server.rest.removeprefix("http://").split(":")
        with pytest.raises(OSError):
            socket.create_connection((host, int(port)), timeout=5)
        status, body = held.finish()
        assert status == 200 and len(body["predictions"]) == 1
        assert server.process.wait(120) == 0


def test_serve_refuses_a_missing_folder_and_bad_settings(tmp_path):
    from pipelines.errors import UserError
    from pipelines.serving.server import serve

    with pytest.raises(UserError, match="no such models folder"):
        serve(tmp_path / "absent")
    with pytest.raises(UserError, match="max_batch_size"):
        serve(tmp_path, max_batch_size=0)
    with pytest.raises(UserError, match="batch_size"):
        serve(tmp_path, batch_size=4)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(UserError, match=f"cannot listen on 127.0.0.1:{port} .REST"):
            serve(tmp_path, rest_port=port, grpc_port=0)
        with pytest.raises(UserError, match=f"cannot listen on 127.0.0.1:{port} .gRPC"):
            serve(tmp_path, rest_port=0, grpc_port=port)


def test_a_fault_of_ours_is_a_500_without_a_trace(tmp_path):
    import asyncio

    import httpx

    from pipelines.serving.options import ServeOptions
    from pipelines.serving.rest import create_app
    from pipelines.serving.service import ModelService

    service = ModelService(tmp_path, ServeOptions())

    def broken(name, version=None):
        raise RuntimeError("a bug")

    service.repository.get = broken
    transport = httpx.ASGITransport(app=create_app(service), raise_app_exceptions=False)

    async def post():
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/v1/models/any:predict", json={"instances": [1]})

    response = asyncio.run(post())
    assert response.status_code == 500
    assert set(response.json()) == {"error"} and "a bug" not in response.json()["error"]
    assert "Traceback" not in response.text


def test_warm_up_requests_run_when_a_version_loads(repository, tmp_path):
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    from pipelines.serving.repository import WARMUP_FILE, load_version, warm_up

    root, examples = repository
    version_dir = tmp_path / "sentiment" / "1"
    shutil.copytree(root / "sentiment" / "1", version_dir)
    (version_dir / "assets.extra").mkdir(exist_ok=True)
    entry = prediction_log_pb2.PredictionLog()
    entry.predict_log.request.model_spec.name = "sentiment"
    entry.predict_log.request.inputs["text"].CopyFrom(
        tf.make_tensor_proto(examples["sentiment"]["text"])
    )
    with tf.io.TFRecordWriter(str(version_dir / "assets.extra" / WARMUP_FILE)) as writer:
        writer.write(entry.SerializeToString())
        writer.write(entry.SerializeToString())
    loaded = load_version("sentiment", 1, version_dir)  # runs the two requests
    assert warm_up(loaded) == 2
