"""REST predict bodies to NumPy arrays, in TensorFlow Serving's documented forms only.

The row format (``instances``) and the columnar format (``inputs``); strings are JSON
strings, or ``{"b64": ...}`` for bytes that are not UTF-8 (string inputs only). Every input
is checked against the signature's dtype and shape. Imports no TensorFlow, so that
``BodyDecoder``'s worker processes start small and fast: large bodies are parsed there,
outside the server's interpreter lock, and no more of them at once than there are workers.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
import multiprocessing
import signal
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np
import orjson

from pipelines.serving.errors import BadRequestError, NotFoundError, TooLargeError

log = logging.getLogger(__name__)

DEFAULT_SIGNATURE = "serving_default"
# Bodies smaller than this are parsed in the server's own threads: sending them to a
# worker process and the arrays back would cost more than parsing them.
PROCESS_MIN_BYTES = 64 * 1024

Arrays = dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """One signature input: its dtype and shape (``None`` for an unknown rank or size)."""

    name: str
    dtype: str  # TensorFlow's name of the dtype: "float32", "string", ...
    shape: tuple[int | None, ...] | None

    @property
    def is_string(self) -> bool:
        return self.dtype == "string"

    @property
    def numpy_dtype(self) -> np.dtype:
        """The NumPy dtype of a numeric input (bfloat16 comes from ml_dtypes, as in TensorFlow)."""
        if self.dtype == "bfloat16":
            import ml_dtypes

            return np.dtype(ml_dtypes.bfloat16)
        return np.dtype(self.dtype)

    @property
    def batched(self) -> bool:
        """Whether the first axis is the batch: of unknown size (a step count, a rank-0
        input, or a seed of fixed shape [2] is not)."""
        return self.shape is None or (len(self.shape) >= 1 and self.shape[0] is None)


# === JSON to arrays ===


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and "b64" in value


def _shape_of(value: Any, name: str) -> tuple[int, ...]:
    """The shape of nested lists; 400 when they are ragged."""
    if not isinstance(value, list):
        return ()
    if not value:
        return (0,)
    inner = _shape_of(value[0], name)
    for item in value[1:]:
        if _shape_of(item, name) != inner:
            raise BadRequestError(f"input {name!r}: the lists are of different lengths (ragged)")
    return (len(value), *inner)


def _flat_bytes(value: Any, name: str, out: list[bytes]) -> None:
    if isinstance(value, list):
        for item in value:
            _flat_bytes(item, name, out)
    elif isinstance(value, str):
        out.append(value.encode("utf-8", errors="surrogatepass"))
    elif _is_b64(value):
        try:
            out.append(base64.b64decode(value["b64"], validate=True))
        except (binascii.Error, TypeError, ValueError):
            raise BadRequestError(f'input {name!r}: a "b64" value is not valid base64') from None
    else:
        raise BadRequestError(f"input {name!r} takes strings, not {type(value).__name__}")


def json_to_array(value: Any, spec: InputSpec) -> np.ndarray:
    """One input's JSON value as an array of the signature's dtype and rank."""
    if spec.is_string:
        shape = _shape_of(value, spec.name)
        flat: list[bytes] = []
        _flat_bytes(value, spec.name, flat)
        array = np.array(flat, dtype=object).reshape(shape)
    else:
        array = _numbers(value, spec)
    check_shape(array, spec)
    return array


def _numbers(value: Any, spec: InputSpec) -> np.ndarray:
    """Nested lists of numbers as an array of the input's dtype: 400 for ragged lists, a
    string or object among them, or an integer the dtype cannot hold."""
    try:
        inferred = np.array(value)
    except (ValueError, TypeError, OverflowError):
        raise BadRequestError(
            f"input {spec.name!r}: not a rectangular array of {spec.dtype}"
        ) from None
    wanted = spec.numpy_dtype
    kinds = "b" if wanted.kind == "b" else "iuf" if wanted.kind == "f" else "iu"
    if inferred.dtype.kind not in kinds and inferred.size:
        raise BadRequestError(f"input {spec.name!r} takes numbers of type {spec.dtype}")
    if wanted.kind in "iu" and inferred.size:
        info = np.iinfo(wanted)
        if inferred.min() < info.min or inferred.max() > info.max:
            raise BadRequestError(f"input {spec.name!r}: a number is out of {spec.dtype}'s range")
    return inferred.astype(wanted, copy=False)


def check_shape(array: np.ndarray, spec: InputSpec) -> None:
    """400 unless ``array`` has the signature's rank and fixed sizes."""
    if spec.shape is None:
        return
    if array.ndim != len(spec.shape) or any(
        want is not None and want != got for want, got in zip(spec.shape, array.shape, strict=True)
    ):
        wanted = "[" + ", ".join("?" if d is None else str(d) for d in spec.shape) + "]"
        raise BadRequestError(
            f"input {spec.name!r} has shape {list(array.shape)}; the signature takes {wanted}"
        )


def check_names(given: set[str], specs: dict[str, InputSpec]) -> None:
    missing = sorted(set(specs) - given)
    unknown = sorted(given - set(specs))
    if unknown:
        raise BadRequestError(f"unknown input(s) {unknown}; the signature takes {sorted(specs)}")
    if missing:
        raise BadRequestError(f"missing input(s) {missing}; the signature takes {sorted(specs)}")


def count_items(body: dict, specs: dict[str, InputSpec]) -> int:
    """Items in a parsed request body (the length of its batch axis), before any conversion."""
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise BadRequestError('"instances" must be a list')
        return len(instances)
    inputs = body["inputs"]
    if isinstance(inputs, dict) and not _is_b64(inputs):
        columns = {name: inputs.get(name) for name, spec in specs.items() if spec.batched}
    else:
        columns = {"": inputs}
    counts = [len(v) for v in columns.values() if isinstance(v, list)]
    return max(counts, default=1)


def decode_request(body: Any, specs: dict[str, InputSpec]) -> tuple[dict[str, np.ndarray], bool]:
    """The inputs of a REST predict body, and whether it used the row (``instances``) format."""
    if not isinstance(body, dict):
        raise BadRequestError("the request body must be a JSON object")
    if ("instances" in body) == ("inputs" in body):
        raise BadRequestError('the request must have exactly one of "instances" or "inputs"')
    if "instances" in body:
        return _decode_rows(body["instances"], specs), True
    inputs = body["inputs"]
    if isinstance(inputs, dict) and not _is_b64(inputs):
        check_names(set(inputs), specs)
        return {name: json_to_array(inputs[name], spec) for name, spec in specs.items()}, False
    if len(specs) != 1:
        raise BadRequestError(f'"inputs" must name each of the signature\'s inputs {sorted(specs)}')
    (spec,) = specs.values()
    return {spec.name: json_to_array(inputs, spec)}, False


def _decode_rows(instances: Any, specs: dict[str, InputSpec]) -> dict[str, np.ndarray]:
    if not isinstance(instances, list) or not instances:
        raise BadRequestError('"instances" must be a non-empty list')
    if any(not spec.batched for spec in specs.values()):
        raise BadRequestError(
            'this signature has unbatched inputs: use the columnar "inputs" format'
        )
    named = all(isinstance(i, dict) and not _is_b64(i) for i in instances)
    if not named:
        if len(specs) != 1:
            raise BadRequestError(
                f"each instance must be an object with the inputs {sorted(specs)}"
            )
        (spec,) = specs.values()
        return {spec.name: json_to_array(instances, spec)}
    for instance in instances:
        check_names(set(instance), specs)
    return {
        name: json_to_array([instance[name] for instance in instances], spec)
        for name, spec in specs.items()
    }


# === a whole predict body ===


def unknown_signature(model: str, version: int, name: str) -> NotFoundError:
    """The 404 for a signature the version does not have (TensorFlow Serving's wording)."""
    return NotFoundError(
        f'Serving signature name: "{name}" not found in signature def of model '
        f"{model!r} version {version}"
    )


def check_item_count(items: int, max_items: int, model: str) -> None:
    """413 when a request has more items than the export takes."""
    if items > max_items:
        raise TooLargeError(
            f"{items} items is more than the {max_items} a request to {model!r} may have"
        )


def parse_predict(
    raw: bytes,
    signatures: dict[str, dict[str, InputSpec]],
    max_items: int,
    model: str,
    version: int,
) -> tuple[str, Arrays, bool]:
    """A REST predict body as (signature name, inputs, whether it used the row format).

    ``signatures`` maps each signature's name to its inputs. The item count is bounded
    before any input is converted.
    """
    try:
        body = orjson.loads(raw)  # several times faster than json on long lists of numbers
    except orjson.JSONDecodeError as error:
        raise BadRequestError(f"JSON Parse error: {error}") from None
    if not isinstance(body, dict):
        raise BadRequestError("the request body must be a JSON object")
    signature = body.get("signature_name", "")
    if not isinstance(signature, str):
        raise BadRequestError('"signature_name" must be a string')
    signature = signature or DEFAULT_SIGNATURE
    specs = signatures.get(signature)
    if specs is None:
        raise unknown_signature(model, version, signature)
    if ("instances" in body) == ("inputs" in body):
        raise BadRequestError('the request must have exactly one of "instances" or "inputs"')
    check_item_count(count_items(body, specs), max_items, model)
    inputs, rows = decode_request(body, specs)
    return signature, inputs, rows


# === worker processes ===


def _worker_started() -> None:
    # A terminal's Ctrl-C reaches the whole process group: the server stops its workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _ready() -> bool:
    return True


class BodyDecoder:
    """Worker processes that run ``parse_predict`` on large bodies (``processes`` of them;
    none when it is 0). ``submit`` returns ``None`` for a body the caller parses itself."""

    def __init__(self, processes: int):
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> None:
        """Start the workers and wait until each has started."""
        if not self.processes:
            return
        pool = self._new_pool()
        with self._lock:
            if not self._closed:
                self._pool, pool = pool, None
        if pool is not None:  # closed meanwhile
            pool.shutdown(wait=False)

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: the server's process has TensorFlow's threads running
        pool = ProcessPoolExecutor(
            self.processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_started,
        )
        for started in [pool.submit(_ready) for _ in range(self.processes)]:
            started.result()
        return pool

    def submit(self, raw: bytes, *arguments) -> Future | None:
        """``parse_predict(raw, *arguments)`` in a worker; ``None`` for a small body, or
        when there are no workers (not started, or being replaced)."""
        pool = self._pool
        if pool is None or len(raw) < PROCESS_MIN_BYTES:
            return None
        try:
            return pool.submit(parse_predict, raw, *arguments)
        except (BrokenProcessPool, RuntimeError):  # a worker died, or the pool was shut
            self.worker_died()
            return None

    def worker_died(self) -> None:
        """Replace the workers after one ended (killed, out of memory); the bodies that
        arrive meanwhile are parsed in the server's threads."""
        with self._lock:
            broken, self._pool = self._pool, None
        if broken is None:
            return
        log.warning("a body-parsing worker process ended; starting new ones")
        broken.shutdown(wait=False, cancel_futures=True)
        threading.Thread(target=self.start, name="decoder-restart", daemon=True).start()

    def close(self) -> None:
        """Stop the workers (once the requests in flight have finished)."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
