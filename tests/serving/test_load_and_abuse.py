"""The model server under load and abuse: 32 well-formed clients (REST and gRPC, sentiment
and speech) hold it busy while other clients send malformed, oversized, unknown and slow
requests. Every well-formed request must get the in-process model's answer, every bad one
its 4xx (or gRPC code), the server must stay up, and its peak resident memory (the
kernel's high-water mark of the server process) must stay under ``PEAK_RSS_BOUND``.

Everything runs on loopback and is bounded in count and time.
"""

from __future__ import annotations

import json
import socket
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from pathlib import Path

import numpy as np
import pytest

from tests.serving import exports
from tests.serving.server_process import http, running_server

GOOD_CLIENTS = 32  # half REST, half gRPC; each alternates between the two models
REQUESTS_PER_CLIENT = 4
ABUSE_ROUNDS = 2  # how many times the whole list of bad requests is sent
MAX_BODY_BYTES = 1024 * 1024
MAX_IN_FLIGHT = 64  # above the good clients and every bad one at once: none sees a 503
READ_TIMEOUT_SECONDS = 2.0
STALLED_CONNECTIONS = 8
# The server's peak resident memory: TensorFlow and the two small models take about
# 0.8 GiB; the requests in flight add at most MAX_IN_FLIGHT bodies of MAX_BODY_BYTES
# (64 MiB) and a few batches. Large bodies are parsed in the decoder's worker processes,
# one body at a time each: NumPy and a parsed body of MAX_BODY_BYTES fit in the second bound.
PEAK_RSS_BOUND_MIB = 1024
WORKER_PEAK_RSS_BOUND_MIB = 256
SENTENCES = ["a witty and moving film", "dull, dull, dull"]
TONES_HZ = (220, 440)


def _clip(frequency: float) -> np.ndarray:
    rate = exports.SPEECH_RATE
    time_axis = np.arange(rate) / rate  # one second
    return (0.3 * np.sin(2 * np.pi * frequency * time_axis)).astype(np.float32)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("models")
    for name in ("sentiment", "speech"):
        exports.export(name, root / name / "1")
    return root


@pytest.fixture(scope="module")
def items(models):
    """Each model's request items with the in-process model's outputs for each."""
    import tensorflow as tf

    cases = {
        "sentiment": ("text", [np.array([s], dtype=object) for s in SENTENCES]),
        "speech": ("audio", [_clip(f)[None, :] for f in TONES_HZ]),
    }
    result = {}
    for model, (name, values) in cases.items():
        function = tf.saved_model.load(str(models / model / "1")).signatures["serving_default"]
        result[model] = [
            (name, value, {k: v.numpy()[0] for k, v in function(**{name: value}).items()})
            for value in values
        ]
    return result


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _same(got, expected) -> bool:
    got, expected = np.asarray(got), np.asarray(expected)
    if expected.dtype.kind in "OS":
        return [_text(v) for v in got.ravel()] == [_text(v) for v in expected.ravel()]
    return got.shape == expected.shape and np.allclose(got, expected, rtol=1e-4, atol=1e-5)


def _rest_good(rest: str, model: str, name: str, value: np.ndarray, expected: dict) -> bool:
    item = value[0] if value.dtype == object else value[0].tolist()
    status, body = http("POST", f"{rest}/v1/models/{model}:predict", {"instances": [item]})
    if status != 200:
        return False
    (prediction,) = body["predictions"]
    if not isinstance(prediction, dict):
        prediction = {next(iter(expected)): prediction}
    return set(prediction) == set(expected) and all(
        _same(prediction[k], v) for k, v in expected.items()
    )


def _grpc_good(stub, model: str, name: str, value: np.ndarray, expected: dict) -> bool:
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    response = stub.Predict(request, timeout=120)
    outputs = {k: tf.make_ndarray(v)[0] for k, v in response.outputs.items()}
    return set(outputs) == set(expected) and all(_same(outputs[k], v) for k, v in expected.items())


def _good_client(server, index: int, items: dict) -> list[bool]:
    """One well-formed client: its answers, each True when it matched the in-process one."""
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    answers = []
    with grpc.insecure_channel(server.grpc) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for turn in range(REQUESTS_PER_CLIENT):
            model = ("sentiment", "speech")[(index // 2 + turn) % 2]
            name, value, expected = items[model][(index + turn) % len(items[model])]
            if index % 2:
                answers.append(_grpc_good(stub, model, name, value, expected))
            else:
                answers.append(_rest_good(server.rest, model, name, value, expected))
    return answers


# === bad REST requests: (description, path, raw body, expected status) ===


def _rest_cases() -> list[tuple[str, str, bytes, int]]:
    speech = "/v1/models/speech:predict"
    sentiment = "/v1/models/sentiment:predict"
    deep = b'{"instances": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    large = json.dumps({"instances": [[0.5] * 20000]}).encode()
    large_ragged = json.dumps({"instances": [[0.5] * 20000, [0.5]]}).encode()
    return [
        ("malformed JSON", speech, b'{"instances": [[0.1, 0.2', 400),
        ("not an object", speech, b"[1, 2, 3]", 400),
        ("both formats", speech, b'{"instances": [[0.1]], "inputs": [[0.1]]}', 400),
        ("neither format", speech, b'{"signature_name": ""}', 400),
        ("strings for float32", speech, b'{"instances": [["a", "b"]]}', 400),
        ("b64 for float32", speech, b'{"instances": [{"b64": "AAAA"}]}', 400),
        ("rank 3 for rank 2", speech, b'{"instances": [[[0.1, 0.2]]]}', 400),
        ("ragged", speech, b'{"instances": [[0.1, 0.2], [0.1]]}', 400),
        ("NaN literal", speech, b'{"instances": [[NaN, 0.2]]}', 400),
        ("large and ragged", speech, large_ragged, 400),  # parsed in a worker process
        ("large, cut short", speech, large[:-9], 400),
        ("nested 5000 deep", speech, deep, 400),
        ("number for a string", sentiment, b'{"instances": [12]}', 400),
        ("bad base64", sentiment, b'{"instances": [{"b64": "%%%"}]}', 400),
        ("unknown model", "/v1/models/nosuch:predict", b'{"instances": [1]}', 404),
        ("unknown version", "/v1/models/speech/versions/9:predict", b'{"instances": [[0.1]]}', 404),
        ("path-like model", "/v1/models/..%2F..%2Fetc:predict", b'{"instances": [1]}', 404),
        ("unknown signature", speech, b'{"signature_name": "x", "instances": [[0.1]]}', 404),
        ("too many items", sentiment, json.dumps({"instances": ["a"] * 1025}).encode(), 413),
        ("item over its bound", speech, json.dumps({"instances": [[0.0] * 48001]}).encode(), 413),
        ("body over the limit", speech, b'{"instances": [' + b"0," * MAX_BODY_BYTES + b"0]}", 413),
    ]


def _post_raw(rest: str, path: str, body: bytes, chunked: bool = False) -> int:
    host, port = rest.removeprefix("http://").split(":")
    connection = HTTPConnection(host, int(port), timeout=120)
    try:
        headers = {"Content-Type": "application/json"}
        if chunked:  # no Content-Length: the limit must hold while the body streams in
            pieces = (body[i : i + 65536] for i in range(0, len(body), 65536))
            connection.request("POST", path, pieces, headers, encode_chunked=True)
        else:
            connection.request("POST", path, body, headers)
        response = connection.getresponse()
        answer = json.loads(response.read())
        assert set(answer) == {"error"} and "Traceback" not in answer["error"]
        return response.status
    except (ConnectionError, BrokenPipeError):
        return -1  # the server closed the connection while a too-large body was being sent
    finally:
        connection.close()


def _rest_abuser(rest: str) -> list[tuple[str, int, int]]:
    """Every bad REST request; (description, expected, got) for each that went wrong."""
    wrong = []
    for description, path, body, expected in _rest_cases():
        got = _post_raw(rest, path, body)
        if got != expected and not (expected == 413 and got == -1):
            wrong.append((description, expected, got))
    got = _post_raw(rest, "/v1/models/speech:predict", b"[" + b"0," * MAX_BODY_BYTES, True)
    if got not in (413, -1):
        wrong.append(("chunked body over the limit", 413, got))
    return wrong


# === bad gRPC requests ===


def _grpc_abuser(address: str) -> list[tuple[str, str, str]]:
    """Every bad gRPC request; (description, expected code, got) for each that went wrong."""
    import grpc
    import tensorflow as tf
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    def request(model="speech", name="audio", tensor=None, signature=""):
        message = predict_pb2.PredictRequest()
        message.model_spec.name = model
        message.model_spec.signature_name = signature
        message.inputs[name].CopyFrom(tensor if tensor is not None else ok_tensor)
        return message

    ok_tensor = tf.make_tensor_proto(np.zeros((1, 100), np.float32))
    # A 40-byte message that declares 4 billion elements: one value, repeated to fill them.
    repeated = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in (1, 4_000_000_000)]
        ),
        float_val=[0.5],
    )
    codes = grpc.StatusCode
    cases = [
        (
            "int32 for float32",
            request(tensor=tf.make_tensor_proto(np.zeros((1, 9), np.int32))),
            codes.INVALID_ARGUMENT,
        ),
        (
            "rank 3 for rank 2",
            request(tensor=tf.make_tensor_proto(np.zeros((1, 2, 3), np.float32))),
            codes.INVALID_ARGUMENT,
        ),
        ("unknown input name", request(name="sound"), codes.INVALID_ARGUMENT),
        ("unknown model", request(model="nosuch"), codes.NOT_FOUND),
        ("unknown signature", request(signature="nosuch"), codes.NOT_FOUND),
        ("declared shape of 4e9 elements", request(tensor=repeated), codes.RESOURCE_EXHAUSTED),
        (
            "too many items",
            request(tensor=tf.make_tensor_proto(np.zeros((129, 1), np.float32))),
            codes.RESOURCE_EXHAUSTED,
        ),
        (
            "message over the limit",
            request(tensor=tf.make_tensor_proto(np.zeros((1, MAX_BODY_BYTES // 2), np.float32))),
            codes.RESOURCE_EXHAUSTED,
        ),
    ]
    wrong = []
    with grpc.insecure_channel(address) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for description, message, expected in cases:
            try:
                stub.Predict(message, timeout=120)
                got = codes.OK
            except grpc.RpcError as error:
                got = error.code()
            if got != expected:
                wrong.append((description, expected.name, got.name))
    return wrong


# === slow clients ===


def _closed_by_server(connection: socket.socket, seconds: float) -> bool:
    """Whether the server closes ``connection`` (an empty read, or a reset) within ``seconds``."""
    connection.settimeout(seconds)
    try:
        while connection.recv(4096):
            pass  # an error answer before the close is fine
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _stalled_connection(address: tuple[str, int]) -> bool:
    """Opens a connection and sends nothing: the server must close it."""
    with socket.create_connection(address, timeout=10) as connection:
        return _closed_by_server(connection, READ_TIMEOUT_SECONDS + 15)


def _slow_head(address: tuple[str, int]) -> bool:
    """Sends a request head one byte every half second: closed before it ends."""
    head = b"POST /v1/models/speech:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"
    with socket.create_connection(address, timeout=10) as connection:
        connection.settimeout(0.5)
        for byte in head[:-4]:
            try:
                connection.sendall(bytes([byte]))
                if connection.recv(4096) == b"":
                    return True
            except TimeoutError:
                continue
            except (ConnectionResetError, BrokenPipeError):
                return True
        return _closed_by_server(connection, READ_TIMEOUT_SECONDS + 15)


def _slow_body(address: tuple[str, int]) -> int:
    """Sends a head announcing 1000 bytes, then 10 of them, then stalls: a 408."""
    head = (
        b"POST /v1/models/speech:predict HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    with socket.create_connection(address, timeout=READ_TIMEOUT_SECONDS + 30) as connection:
        connection.sendall(head + b'{"instance')
        answer = b""
        while b"\r\n" not in answer:
            chunk = connection.recv(4096)
            if not chunk:
                return -1
            answer += chunk
        return int(answer.split()[1])


def _vm_hwm_mib(pid: int) -> float:
    """The peak resident memory of process ``pid`` (the kernel's high-water mark), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


def _children(pid: int) -> list[int]:
    """The child processes of ``pid`` (the decoder's workers)."""
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_the_server_answers_well_formed_clients_under_abuse_and_stays_bounded(models, items):
    settings = {
        "max_body_bytes": MAX_BODY_BYTES,
        "max_in_flight": MAX_IN_FLIGHT,
        "read_timeout_seconds": READ_TIMEOUT_SECONDS,
        "max_batch_size": GOOD_CLIENTS,
    }
    with running_server(models, **settings) as server:
        host, port = server.rest.removeprefix("http://").split(":")
        address = (host, int(port))
        assert host == "127.0.0.1"
        started_at = _vm_hwm_mib(server.process.pid)
        with ThreadPoolExecutor(GOOD_CLIENTS + 4 * ABUSE_ROUNDS + STALLED_CONNECTIONS + 2) as pool:
            stalled = [
                pool.submit(_stalled_connection, address) for _ in range(STALLED_CONNECTIONS)
            ]
            slow = [pool.submit(_slow_head, address), pool.submit(_slow_body, address)]
            rest_abuse = [pool.submit(_rest_abuser, server.rest) for _ in range(ABUSE_ROUNDS)]
            grpc_abuse = [pool.submit(_grpc_abuser, server.grpc) for _ in range(ABUSE_ROUNDS)]
            good = [pool.submit(_good_client, server, i, items) for i in range(GOOD_CLIENTS)]
            answers = [answer for future in good for answer in future.result()]
            wrong_rest = [case for future in rest_abuse for case in future.result()]
            wrong_grpc = [case for future in grpc_abuse for case in future.result()]
            closed = [future.result() for future in stalled]
            slow_head_closed, slow_body_status = (future.result() for future in slow)

        assert len(answers) == GOOD_CLIENTS * REQUESTS_PER_CLIENT
        assert all(answers), f"{answers.count(False)} well-formed requests answered wrongly"
        assert wrong_rest == [], wrong_rest
        assert wrong_grpc == [], wrong_grpc
        assert all(closed), "a connection that sent nothing was not closed"
        assert slow_head_closed, "a connection sending its head slowly was not closed"
        assert slow_body_status == 408

        assert server.process.poll() is None, "the server is down"
        name, value, expected = items["speech"][0]
        assert _rest_good(server.rest, "speech", name, value, expected)
        peak = _vm_hwm_mib(server.process.pid)
        workers = [_vm_hwm_mib(child) for child in _children(server.process.pid)]
        print(
            f"server peak RSS: {started_at:.0f} MiB after start, {peak:.0f} MiB after the "
            f"load; its workers' peaks: {', '.join(f'{w:.0f}' for w in workers)} MiB"
        )
        assert peak < PEAK_RSS_BOUND_MIB
        assert workers and max(workers) < WORKER_PEAK_RSS_BOUND_MIB


def test_responses_are_not_held_back_by_nagles_algorithm():
    """The REST listener names TCP as its protocol, so asyncio turns Nagle's algorithm off
    on each connection; with it on, a response's body waits out the client's delayed ACK
    of its head (tens of milliseconds per request)."""
    import asyncio

    from pipelines.serving.server import _listen

    async def nodelay_of_an_accepted_connection() -> int:
        accepted = asyncio.get_running_loop().create_future()

        async def on_connection(reader, writer):
            sock = writer.get_extra_info("socket")
            accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        listener = _listen("127.0.0.1", 0)
        server = await asyncio.start_server(on_connection, sock=listener)
        async with server:
            port = listener.getsockname()[1]
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            value = await asyncio.wait_for(accepted, 30)
            writer.close()
        return value

    assert asyncio.run(nodelay_of_an_accepted_connection()) != 0
