"""The server's errors: each carries its HTTP status and gRPC code and a message for the client."""

from __future__ import annotations

import grpc


class ServingError(Exception):
    """A request the server answers with an error (never a stack trace)."""

    http_status = 500
    grpc_code = grpc.StatusCode.INTERNAL

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadRequestError(ServingError):
    """A malformed request or one the model rejects (400 / INVALID_ARGUMENT)."""

    http_status = 400
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class NotFoundError(ServingError):
    """An unknown model, version or signature (404 / NOT_FOUND)."""

    http_status = 404
    grpc_code = grpc.StatusCode.NOT_FOUND


class TooLargeError(ServingError):
    """A request over a bound: body bytes, items, bytes or elements (413 / RESOURCE_EXHAUSTED)."""

    http_status = 413
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class RequestTimeoutError(ServingError):
    """A request whose body did not arrive in time (408 / DEADLINE_EXCEEDED)."""

    http_status = 408
    grpc_code = grpc.StatusCode.DEADLINE_EXCEEDED


class OverloadedError(ServingError):
    """Too many requests in flight, or the server is shutting down (503 / UNAVAILABLE)."""

    http_status = 503
    grpc_code = grpc.StatusCode.UNAVAILABLE
