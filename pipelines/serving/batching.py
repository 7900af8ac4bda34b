"""Server-side batching, as TensorFlow Serving's ``--enable_batching``.

Concurrent requests to one signature of one model version queue in a ``Batcher``; its
thread takes the first, waits up to the timeout for more (unless no other request is in
the server), and runs them as one batch of at most ``max_batch_size`` items (never above
the export's ``max_items`` nor its per-request bounds once padded). Each input is padded to
the longest item in the batch (zeros, or empty strings) and each output is split back by
the requests' item counts.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np

from pipelines.serving.codec import InputSpec
from pipelines.serving.errors import BadRequestError, ServingError
from pipelines.serving.limits import Limits

log = logging.getLogger(__name__)

IDLE_CHECK_SECONDS = 0.5  # how often an idle batcher checks whether it was closed

Arrays = dict[str, np.ndarray]


@dataclasses.dataclass
class Pending:
    """One request waiting in a batch: its inputs, item count and the future of its outputs."""

    inputs: Arrays
    items: int
    future: Future = dataclasses.field(default_factory=Future)


def pad_and_stack(arrays: list[np.ndarray]) -> np.ndarray:
    """Concatenate along the batch axis, each padded at the end of every other axis to the
    longest in the list (zeros for numbers, empty strings for strings)."""
    if all(a.shape[1:] == arrays[0].shape[1:] for a in arrays):
        return np.concatenate(arrays, axis=0)
    inner = tuple(max(sizes) for sizes in zip(*(a.shape[1:] for a in arrays), strict=True))
    total = sum(a.shape[0] for a in arrays)
    fill = b"" if arrays[0].dtype == object else 0
    out = np.full((total, *inner), fill, dtype=arrays[0].dtype)
    start = 0
    for a in arrays:
        out[(slice(start, start + a.shape[0]), *(slice(0, n) for n in a.shape[1:]))] = a
        start += a.shape[0]
    return out


class Batcher:
    """Combines requests to ``run`` (one signature of one loaded version).

    ``in_flight`` counts the requests the server holds (this batch's among them). When the
    batch holds all of them, no other client is waiting on the server, so the batch runs
    at once rather than after the timeout: a lone client pays no batching delay.
    """

    def __init__(
        self,
        run: Callable[[Arrays], Arrays],
        specs: dict[str, InputSpec],
        limits: Limits,
        max_batch_size: int,
        timeout_ms: float,
        in_flight: Callable[[], int] | None = None,
    ):
        self.run = run
        self.in_flight = in_flight
        self.specs = specs
        self.limits = limits
        self.max_items = max(1, min(max_batch_size, limits.max_items))
        self.timeout = timeout_ms / 1000
        self.queue: queue.Queue[Pending] = queue.Queue()
        self.closed = False
        self.stopped = False
        self._lock = threading.Lock()
        self._carry: Pending | None = None  # a request that did not fit the last batch
        self._thread = threading.Thread(target=self._loop, name="batcher", daemon=True)
        self._thread.start()

    def submit(self, inputs: Arrays, items: int) -> Future:
        """Queue one request; its future gives its outputs or raises its ``ServingError``."""
        pending = Pending(inputs, items)
        with self._lock:
            if not self.stopped:
                self.queue.put(pending)
                return pending.future
        self._run_one(pending)  # the batcher was retired: run alone
        return pending.future

    def close(self) -> None:
        """Stop once the queue is empty (the version was retired)."""
        self.closed = True

    def _loop(self) -> None:
        while True:
            first = self._carry
            self._carry = None
            if first is None:
                try:
                    first = self.queue.get(timeout=IDLE_CHECK_SECONDS)
                except queue.Empty:
                    with self._lock:
                        if self.closed and self.queue.empty():
                            self.stopped = True
                            return
                    continue
            self._run_batch(self._collect(first))

    def _collect(self, first: Pending) -> list[Pending]:
        """``first`` and whatever else arrives before the timeout, while the batch fits."""
        batch = [first]
        deadline = time.monotonic() + self.timeout
        while sum(p.items for p in batch) < self.max_items:
            remaining = deadline - time.monotonic()
            if self.in_flight is not None and self.in_flight() <= len(batch):
                remaining = 0  # take what is queued; no other request is in the server
            try:
                nxt = (
                    self.queue.get(timeout=remaining) if remaining > 0 else self.queue.get_nowait()
                )
            except queue.Empty:
                break
            if not self._fits(batch + [nxt]):
                self._carry = nxt
                break
            batch.append(nxt)
        return batch

    def _fits(self, batch: list[Pending]) -> bool:
        """Whether ``batch``, padded, stays within the item bound and each input's bounds."""
        items = sum(p.items for p in batch)
        if items > self.max_items:
            return False
        for name, spec in self.specs.items():
            arrays = [p.inputs[name] for p in batch]
            if any(a.ndim != arrays[0].ndim for a in arrays):
                return False
            bounds = self.limits.for_input(name, spec.is_string)
            if spec.is_string:
                total = sum(_string_bytes(a) for a in arrays)
                if bounds.max_request_bytes is not None and total > bounds.max_request_bytes:
                    return False
            else:
                inner = [max(s) for s in zip(*(a.shape[1:] for a in arrays), strict=True)]
                padded = items * math.prod(inner)
                if bounds.max_request_elements is not None and padded > bounds.max_request_elements:
                    return False
        return True

    def _run_batch(self, batch: list[Pending]) -> None:
        if len(batch) == 1:
            self._run_one(batch[0])
            return
        try:
            inputs = {name: pad_and_stack([p.inputs[name] for p in batch]) for name in self.specs}
            outputs = self.run(inputs)
        except BadRequestError:
            for pending in batch:  # one bad request must not fail the others
                self._run_one(pending)
            return
        except Exception as error:  # noqa: BLE001 - handed to each waiting request
            for pending in batch:
                pending.future.set_exception(error)
            return
        start = 0
        total = sum(p.items for p in batch)
        for pending in batch:
            end = start + pending.items
            try:
                pending.future.set_result(
                    {name: _rows(value, start, end, total, name) for name, value in outputs.items()}
                )
            except ServingError as error:
                pending.future.set_exception(error)
            start = end

    def _run_one(self, pending: Pending) -> None:
        try:
            pending.future.set_result(self.run(pending.inputs))
        except Exception as error:  # noqa: BLE001 - handed to the waiting request
            pending.future.set_exception(error)


def _string_bytes(array: np.ndarray) -> int:
    return sum(len(item) for item in array.ravel())


def _rows(value: np.ndarray, start: int, end: int, total: int, name: str) -> np.ndarray:
    if value.ndim == 0 or value.shape[0] != total:
        raise ServingError(f"output {name!r} is not batch-major; it cannot be batched")
    return value[start:end]
