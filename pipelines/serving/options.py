"""The model server's settings, each declared once with its meaning and default."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ServeOptions(BaseModel):
    """How ``serve`` listens, batches and bounds what it accepts (the CLI's flags)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(
        "127.0.0.1", description="address to bind both servers to (loopback unless told otherwise)"
    )
    rest_port: int = Field(8501, ge=0, le=65535, description="port of the REST API")
    grpc_port: int = Field(8500, ge=0, le=65535, description="port of the gRPC API")
    enable_batching: bool = Field(
        True, description="combine concurrent requests to one model into one batch"
    )
    max_batch_size: int = Field(
        32,
        ge=1,
        description="most items in one combined batch (never above the export's max_items)",
    )
    batch_timeout_ms: float = Field(
        5.0,
        ge=0,
        description="how long a batch waits for more requests before it runs; a batch that "
        "holds every request in the server runs at once, so a lone client is not delayed",
    )
    max_body_bytes: int = Field(
        32 * 1024 * 1024, ge=1024, description="largest request body accepted (larger: 413)"
    )
    max_in_flight: int = Field(
        64, ge=1, description="requests handled at once; one more is answered 503"
    )
    read_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="longest time a client may take to send a request's head (else the "
        "connection is closed) or its body (else 408)",
    )
    decode_processes: int = Field(
        2,
        ge=0,
        description="worker processes that parse large REST bodies outside the server's "
        "interpreter lock, and bound how many are parsed at once (0: parse in its threads)",
    )
    poll_seconds: float = Field(
        2.0, gt=0, description="how often the models folder is read for new or removed versions"
    )
    drain_seconds: float = Field(
        30.0, ge=0, description="on SIGTERM, how long requests in flight may take to finish"
    )
