"""``serve``: the REST and gRPC servers over one models folder, until SIGTERM or SIGINT.

On a signal both stop accepting, the requests in flight finish (up to ``drain_seconds``)
and ``serve`` returns, so the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
import threading
from pathlib import Path

import h11
import pydantic
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from pipelines import progress
from pipelines.errors import UserError
from pipelines.serving.grpc_service import create_grpc_server
from pipelines.serving.options import ServeOptions
from pipelines.serving.rest import create_app
from pipelines.serving.service import ModelService

log = logging.getLogger(__name__)


class _UvicornServer(uvicorn.Server):
    """uvicorn without its own signal handling: ``serve`` installs one handler for both
    servers (uvicorn's would re-raise the signal after a graceful stop and exit non-zero)."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


class _HeadTimeoutProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol that also closes a connection whose request head has not
    arrived ``head_timeout`` seconds after the connection opened or its first bytes came
    (uvicorn itself times out only idle keep-alive connections, so a client that opens a
    connection and stalls, or sends its headers slowly, would hold it for ever)."""

    head_timeout = ServeOptions().read_timeout_seconds  # set per server by ``_protocol``

    def connection_made(self, transport) -> None:
        self._head_timer = None
        super().connection_made(transport)
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:
            self._arm_head_timer()
        elif self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def connection_lost(self, exc) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        if self._head_timer is None and not self.transport.is_closing():
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE:  # still no complete request head
            self.transport.close()


def _protocol(options: ServeOptions) -> type[H11Protocol]:
    """``_HeadTimeoutProtocol`` with the server's read timeout."""
    return type(
        "HeadTimeoutProtocol",
        (_HeadTimeoutProtocol,),
        {"head_timeout": options.read_timeout_seconds},
    )


def _log_to_stderr() -> None:
    """Show the server's own log (versions loaded and retired, faults) and uvicorn's
    warnings on stderr, as the project's lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(progress.ProjectLineFormatter())
    for name, level in (("pipelines.serving", logging.INFO), ("uvicorn", logging.WARNING)):
        logger = logging.getLogger(name)
        if not logger.handlers:
            logger.addHandler(handler)
            logger.setLevel(level)


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket for the REST server (bound here, so that a taken port is a
    UserError rather than uvicorn's exit)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # The protocol is named, not left 0 as socket.create_server leaves it: asyncio turns
    # Nagle's algorithm off (TCP_NODELAY) only on accepted sockets that say they are TCP,
    # and with it on, a response's body waits for the client's delayed ACK of its head.
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        listener.bind((host, port))
        listener.listen(2048)
    except OSError as error:
        listener.close()
        raise UserError(f"cannot listen on {host}:{port} (REST): {error.strerror}") from None
    return listener


def _grpc_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _options(options: ServeOptions | None, settings: dict) -> ServeOptions:
    """``options`` with ``settings`` applied and checked; UserError naming a bad setting."""
    try:
        return ServeOptions.model_validate({**(options or ServeOptions()).model_dump(), **settings})
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise UserError(f"serve: {key}: {first['msg']}") from None


def serve(models_dir: str | Path, options: ServeOptions | None = None, **settings) -> None:
    """Serve every model in ``models_dir`` until SIGTERM/SIGINT.

    ``settings`` are ``ServeOptions`` fields (``host``, ``rest_port``, ``grpc_port``,
    ``max_batch_size``, ``batch_timeout_ms``, ``max_body_bytes``, ``max_in_flight``,
    ``enable_batching``, ``read_timeout_seconds``, ``decode_processes``, ``poll_seconds``,
    ``drain_seconds``) and override ``options``.
    Prints one line to stderr once both servers listen, naming their ports (a port of 0
    picks a free one). UserError for a models folder that does not exist or a setting
    out of range.
    """
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        raise UserError(f"{models_dir}: no such models folder")
    options = _options(options, settings)
    _log_to_stderr()
    stopping = threading.Event()

    def on_signal(signum, frame):
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    service = ModelService(models_dir, options)
    try:
        service.decoder.start()
        service.repository.poll()
        if not stopping.is_set():
            asyncio.run(_run(service, options, stopping))
    finally:
        service.decoder.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


async def _run(service: ModelService, options: ServeOptions, stopping: threading.Event) -> None:
    """Run both servers and the folder poll until ``stopping`` is set; then drain."""
    grpc_server, grpc_port = create_grpc_server(
        service, _grpc_address(options.host, options.grpc_port)
    )
    config = uvicorn.Config(
        create_app(service),
        host=options.host,
        port=options.rest_port,
        log_config=None,  # uvicorn's loggers go through _log_to_stderr's handler
        access_log=False,
        lifespan="off",
        http=_protocol(options),
        timeout_graceful_shutdown=options.drain_seconds,
    )
    rest = _UvicornServer(config)
    listener = _listen(options.host, options.rest_port)
    rest_port = listener.getsockname()[1]
    grpc_server.start()
    rest_task = asyncio.create_task(rest.serve(sockets=[listener]))
    try:
        while not rest.started and not rest_task.done():
            await asyncio.sleep(0.05)
        names = ", ".join(sorted(service.repository.models)) or "none yet"
        print(
            f"{progress.PREFIX} serving models from {service.repository.models_dir} ({names}): "
            f"REST http://{options.host}:{rest_port} gRPC {options.host}:{grpc_port}",
            file=sys.stderr,
            flush=True,
        )
        while not stopping.is_set() and not rest_task.done():
            await asyncio.to_thread(stopping.wait, options.poll_seconds)
            if not stopping.is_set():
                await asyncio.to_thread(service.repository.poll)
    finally:
        log.info("stopping: finishing the requests in flight")
        grpc_stopped = grpc_server.stop(options.drain_seconds)
        rest.should_exit = True
        await rest_task
        await asyncio.to_thread(grpc_stopped.wait)
