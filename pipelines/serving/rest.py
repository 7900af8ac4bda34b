"""TensorFlow Serving's REST API on FastAPI.

``GET /v1/models/NAME[/versions/N]`` (version status), ``GET .../metadata`` (signature
definitions), ``POST .../NAME[/versions/N]:predict`` (``instances`` or ``inputs``, optional
``signature_name``) and ``GET /monitoring/prometheus/metrics``. Every error is
``{"error": "..."}``; a fault of ours is a 500 whose details go to the log only.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from concurrent.futures.process import BrokenProcessPool

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from google.protobuf import json_format
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from tensorflow_serving.apis import get_model_metadata_pb2

from pipelines.serving.codec import encode_response
from pipelines.serving.errors import (
    BadRequestError,
    NotFoundError,
    OverloadedError,
    RequestTimeoutError,
    ServingError,
    TooLargeError,
)
from pipelines.serving.repository import LoadedVersion
from pipelines.serving.rest_body import parse_predict
from pipelines.serving.service import ModelService, error_status

log = logging.getLogger(__name__)

# NAME, then an optional /versions/N or /labels/LABEL, then /metadata or :predict (or nothing).
MODEL_PATH = re.compile(
    r"(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<suffix>/metadata|:[A-Za-z]+)?\Z"
)


def _parse_path(path: str) -> tuple[str, int | None, str]:
    """``(name, version or None, suffix)`` of the part after ``/v1/models/``; 404 otherwise."""
    match = MODEL_PATH.match(path)
    if match is None:
        raise NotFoundError(f"Malformed request: no such resource /v1/models/{path}")
    if match["label"] is not None:
        raise NotFoundError(
            f"version label {match['label']!r} is not configured for {match['name']!r}"
        )
    version = None
    if match["version"] is not None:
        if not re.fullmatch(r"[0-9]{1,18}", match["version"]):
            raise NotFoundError(f"version {match['version']!r} is not a version number")
        version = int(match["version"])
    return match["name"], version, match["suffix"] or ""


def version_status(version: LoadedVersion) -> dict:
    """TensorFlow Serving's ``GetModelStatus`` answer, as its REST API writes it."""
    return {
        "model_version_status": [
            {
                "version": str(version.version),
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }


def signature_def_map(version: LoadedVersion) -> get_model_metadata_pb2.SignatureDefMap:
    """The version's signature definitions as the metadata API's ``SignatureDefMap``."""
    mapping = get_model_metadata_pb2.SignatureDefMap()
    for key, value in version.signature_defs.items():
        mapping.signature_def[key].CopyFrom(value)
    return mapping


def metadata(version: LoadedVersion) -> dict:
    """TensorFlow Serving's ``GetModelMetadata`` answer, as its REST API writes it."""
    signatures = json_format.MessageToDict(
        signature_def_map(version),
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )
    return {
        "model_spec": {"name": version.name, "signature_name": "", "version": str(version.version)},
        "metadata": {"signature_def": signatures},
    }


async def _read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The request body, refused with 413 as soon as it is over ``limit`` bytes and with
    408 when it has not all arrived within ``timeout`` seconds (a client sending slowly)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequestError("Content-Length is not a number")
        if int(declared) > limit:
            raise TooLargeError(
                f"the request body is {int(declared):,} bytes; the limit is {limit:,}"
            )
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise TooLargeError(f"the request body is over the limit of {limit:,} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeoutError(
            f"the request body did not arrive within {timeout:g} s (read_timeout_seconds)"
        ) from None
    return b"".join(chunks)


async def _parse(service: ModelService, version: LoadedVersion, raw: bytes):
    """``parse_predict`` of a body: in a worker process when it is large, else in a thread."""
    arguments = (raw, version.input_specs, version.limits.max_items, version.name, version.version)
    future = service.decoder.submit(*arguments)
    if future is None:
        return await run_in_threadpool(parse_predict, *arguments)
    try:
        return await asyncio.wrap_future(future)
    except BrokenProcessPool:
        service.decoder.worker_died()
        raise OverloadedError("the process parsing this request ended; retry later") from None


def _encode(outputs, rows: bool) -> bytes:
    return orjson.dumps(encode_response(outputs, rows))


def error_response(error: Exception) -> JSONResponse:
    """``{"error": ...}`` with the error's status."""
    status, message = error_status(error)
    if status == 500:
        log.error("request failed", exc_info=error)
    return JSONResponse({"error": message}, status_code=status)


def create_app(service: ModelService) -> FastAPI:
    """The REST application over ``service``."""
    app = FastAPI(title="RNN Suite model server", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception):
        return error_response(error)

    @app.get("/monitoring/prometheus/metrics")
    async def prometheus_metrics():
        return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models/{path:path}")
    async def get_model(path: str):
        started, label, status = time.monotonic(), ("", ""), 200
        try:
            name, number, suffix = _parse_path(path)
            if suffix not in ("", "/metadata"):
                raise NotFoundError(f"Malformed request: GET /v1/models/{path}")
            version = service.repository.get(name, number)
            label = (version.name, str(version.version))
            return JSONResponse(metadata(version) if suffix else version_status(version))
        except ServingError as error:
            status = error.http_status
            return error_response(error)
        finally:
            method = "metadata" if path.endswith("/metadata") else "status"
            service.observe(*label, "rest", method, started, status)

    @app.post("/v1/models/{path:path}")
    async def post_model(path: str, request: Request):
        started, label, status = time.monotonic(), ("", ""), 200
        try:
            name, number, suffix = _parse_path(path)
            if suffix != ":predict":
                raise NotFoundError(f"Malformed request: POST /v1/models/{path} (only :predict)")
            with service.slot():
                version = service.repository.get(name, number)
                label = (version.name, str(version.version))
                options = service.options
                raw = await _read_body(
                    request, options.max_body_bytes, options.read_timeout_seconds
                )
                signature, inputs, rows = await _parse(service, version, raw)
                future = await run_in_threadpool(service.predict_async, version, signature, inputs)
                outputs = await asyncio.wrap_future(future)
                content = await run_in_threadpool(_encode, outputs, rows)
            return Response(content, media_type="application/json")
        except Exception as error:  # noqa: BLE001 - every error becomes {"error": ...}
            status = error_status(error)[0]
            return error_response(error)
        finally:
            service.observe(*label, "rest", "predict", started, status)

    return app
