"""The serving half of the hostile corpus: every request of ``cases_serving`` against one real
server holding small exports of all six pipelines. A clean answer is what the case expects
(REST: a 4xx with ``{"error": ...}`` and no traceback, or a 200 with predictions; gRPC: a
status other than OK, INTERNAL and UNKNOWN, or OK), and the server is still up after it.
"""

from __future__ import annotations

import contextlib
import json
import socket

import pytest

from tests.hostile import report
from tests.hostile.cases_serving import (
    EITHER,
    GRPC_CASES,
    MODELS,
    OK,
    REJECT,
    REST_CASES,
)
from tests.serving.server_process import http

MIN_REQUESTS = 100
REST_BY_KEY = {case.key: case for case in REST_CASES}
GRPC_BY_KEY = {case.key: case for case in GRPC_CASES}


def test_the_requests_cover_every_model_and_both_transports():
    assert len(REST_CASES) + len(GRPC_CASES) >= MIN_REQUESTS
    assert len(REST_BY_KEY) == len(REST_CASES) and len(GRPC_BY_KEY) == len(GRPC_CASES)
    assert {case.model for case in REST_CASES} == {case.model for case in GRPC_CASES} == set(MODELS)


def _alive(server) -> list[str]:
    if server.process.poll() is not None:
        tail = "".join(server.stderr_lines[-5:])
        return [f"the server exited with status {server.process.returncode}: {tail}"]
    status, _ = http("GET", f"{server.rest}/v1/models/sentiment")
    return [] if status == 200 else [f"the server stopped answering (status {status})"]


def _post(rest: str, path: str, body) -> tuple[int, object]:
    """POST ``body`` (bytes as they are, anything else as JSON) on a plain socket with
    ``Connection: close``; the status and JSON body of the answer (0 when none came). A server
    may answer a body over its limit and close before the body is sent: the answer is read."""
    data = body if isinstance(body, bytes) else json.dumps(body, allow_nan=True).encode()
    host, port = rest.removeprefix("http://").split(":")
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    )
    answer = b""
    try:
        with socket.create_connection((host, int(port)), timeout=120) as connection:
            connection.sendall(head.encode())
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                connection.sendall(data)
            with contextlib.suppress(ConnectionResetError):
                while chunk := connection.recv(65536):
                    answer += chunk
    except OSError as error:  # no connection at all, or a timeout
        return 0, f"no answer: {error!r}"
    if b"\r\n\r\n" not in answer:
        return 0, f"no answer: {answer[:200]!r}"
    head_bytes, text = answer.split(b"\r\n\r\n", 1)
    status = int(head_bytes.split()[1])
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text.decode(errors="replace")


def _judge_rest(expect: str, status: int, body) -> list[str]:
    if status == 200:
        if expect == REJECT:
            return ["answered 200 where a 4xx was expected"]
        ok = isinstance(body, dict) and ("predictions" in body or "outputs" in body)
        return [] if ok else [f"a 200 without predictions: {str(body)[:200]}"]
    if not 400 <= status < 500:
        return [f"answered {status}: {str(body)[:200]}"]
    if expect == OK:
        return [f"answered {status} where 200 was expected: {str(body)[:200]}"]
    problems = []
    if not (isinstance(body, dict) and set(body) == {"error"}):
        problems.append(f"a {status} whose body is not {{'error': ...}}: {str(body)[:200]}")
    if "Traceback" in str(body) or 'File "' in str(body):
        problems.append("a traceback in the answer")
    return problems


@pytest.mark.parametrize("key", sorted(REST_BY_KEY))
def test_rest_request(key, served):
    server, examples = served
    case = REST_BY_KEY[key]
    status, body = _post(
        server.rest, f"/v1/models/{case.model}{case.path}", case.body(examples[case.model])
    )
    problems = _judge_rest(case.expect, status, body) + _alive(server)
    said = f"{status} {str(body)[:200]}"
    report.check("rest", case.model, case.kind, key, problems, said)


@pytest.mark.parametrize("key", sorted(GRPC_BY_KEY))
def test_grpc_request(key, served):
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    server, examples = served
    case = GRPC_BY_KEY[key]
    problems = []
    try:
        request = case.request(examples[case.model], predict_pb2)
    except Exception as error:  # noqa: BLE001 - a request the client cannot build is reported
        report.record("grpc", case.model, case.kind, key, ["setup failed"], repr(error))
        raise
    with grpc.insecure_channel(server.grpc) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            stub.Predict(request, timeout=120)
            code, details = grpc.StatusCode.OK, ""
        except grpc.RpcError as error:
            code, details = error.code(), error.details() or ""
    if code == grpc.StatusCode.OK and case.expect == REJECT:
        problems.append("OK where an error status was expected")
    elif code != grpc.StatusCode.OK and case.expect == OK:
        problems.append(f"{code.name} where OK was expected: {details[:200]}")
    elif code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
        problems.append(f"{code.name}: {details[:200]}")
    if "Traceback" in details:
        problems.append("a traceback in the details")
    if (
        code not in (grpc.StatusCode.OK,)
        and case.expect == EITHER
        and code == grpc.StatusCode.UNAVAILABLE
    ):
        problems.append("UNAVAILABLE: the server may be down")
    problems += _alive(server)
    report.check("grpc", case.model, case.kind, key, problems, f"{code.name} {details[:200]}")
