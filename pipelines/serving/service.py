"""What the REST and gRPC front ends share: the repository, the batchers, the bound on
requests in flight and the metrics."""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import numpy as np

from pipelines.serving.batching import Batcher
from pipelines.serving.codec import InputSpec, check_limits
from pipelines.serving.errors import OverloadedError, ServingError
from pipelines.serving.metrics import Metrics
from pipelines.serving.options import ServeOptions
from pipelines.serving.repository import LoadedVersion, Repository
from pipelines.serving.rest_body import (
    DEFAULT_SIGNATURE,
    BodyDecoder,
    check_item_count,
    unknown_signature,
)


class ModelService:
    """Predictions, status and metadata of the models in one folder.

    ``decoder`` parses large REST bodies in worker processes once started (``serve`` does).
    """

    def __init__(self, models_dir: Path, options: ServeOptions):
        self.options = options
        self.metrics = Metrics()
        self.repository = Repository(models_dir, on_retire=self._retire)
        self.decoder = BodyDecoder(options.decode_processes)
        self._batchers: dict[tuple[int, str], Batcher] = {}  # (id of version, signature)
        self._lock = threading.Lock()
        self._in_flight = 0
        self.accepting = True

    # --- bounds ---

    @contextlib.contextmanager
    def slot(self):
        """Hold one of ``max_in_flight`` request slots; 503 when none is free or shutting down."""
        with self._lock:
            if not self.accepting:
                raise OverloadedError("the server is shutting down")
            if self._in_flight >= self.options.max_in_flight:
                raise OverloadedError(
                    f"{self._in_flight} requests are in flight, the most this server takes; "
                    "retry later"
                )
            self._in_flight += 1
            self.metrics.in_flight.set(self._in_flight)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
                self.metrics.in_flight.set(self._in_flight)

    def check_items(self, version: LoadedVersion, items: int) -> None:
        """413 when a request has more items than the export takes."""
        check_item_count(items, version.limits.max_items, version.name)

    # --- prediction ---

    def specs(self, version: LoadedVersion, signature: str) -> dict[str, InputSpec]:
        """The inputs of ``signature`` of ``version`` (404 for an unknown signature)."""
        signature = signature or DEFAULT_SIGNATURE
        specs = version.input_specs.get(signature)
        if specs is None:
            raise unknown_signature(version.name, version.version, signature)
        return specs

    def predict_async(
        self, version: LoadedVersion, signature: str, inputs: dict[str, np.ndarray]
    ) -> Future:
        """Check ``inputs`` against the export's limits and run them, batched when enabled."""
        signature = signature or DEFAULT_SIGNATURE
        specs = self.specs(version, signature)
        check_limits(inputs, specs, version.limits)
        batchable = all(spec.batched for spec in specs.values())
        retired = self.repository.models.get(version.name) is not version
        if not (self.options.enable_batching and batchable) or retired:
            future: Future = Future()
            try:
                future.set_result(self._run(version, signature, inputs))
            except Exception as error:  # noqa: BLE001 - handed to the caller
                future.set_exception(error)
            return future
        items = next(iter(inputs.values())).shape[0]
        return self._batcher(version, signature, specs).submit(inputs, items)

    def _run(self, version: LoadedVersion, signature: str, inputs: dict[str, np.ndarray]):
        arrays = [a for a in inputs.values() if a.ndim]
        if arrays:
            self.metrics.batch_size.labels(version.name, str(version.version)).observe(
                arrays[0].shape[0]
            )
        return version.run(signature, inputs)

    def _batcher(self, version: LoadedVersion, signature: str, specs) -> Batcher:
        key = (id(version), signature)
        with self._lock:
            batcher = self._batchers.get(key)
            if batcher is None or batcher.stopped:
                batcher = Batcher(
                    lambda inputs: self._run(version, signature, inputs),
                    specs,
                    version.limits,
                    self.options.max_batch_size,
                    self.options.batch_timeout_ms,
                    in_flight=lambda: self._in_flight,
                )
                self._batchers[key] = batcher
            return batcher

    def _retire(self, version: LoadedVersion) -> None:
        """Close the retired version's batchers; they finish what they hold, then stop."""
        with self._lock:
            for key in [k for k in self._batchers if k[0] == id(version)]:
                self._batchers.pop(key).close()

    # --- bookkeeping ---

    def observe(self, model: str, version: str, api: str, method: str, started: float, status):
        """Record one answered request in the metrics."""
        self.metrics.observe(model, version, api, method, str(status), time.monotonic() - started)


def error_status(error: Exception) -> tuple[int, str]:
    """The HTTP status and the client's message of any exception (500: a fault of ours)."""
    if isinstance(error, ServingError):
        return error.http_status, error.message
    return 500, "internal error: the server could not answer this request (see its log)"
