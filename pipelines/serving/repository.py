"""The models folder (``MODELS_DIR/NAME/N/saved_model.pb``) and the versions loaded from it.

Each model serves its newest complete version, as TensorFlow Serving's default version
policy does (the newest that loads, if one fails); an entry that is not a complete version
(no ``saved_model.pb``, a publish's temporary folder, a partial copy) is ignored with one
warning. A poll picks up a version published while the server runs and retires one that
was removed; a request that already holds a version finishes on it. Names and versions
from a request are only ever looked up in ``Repository.models``, never joined into a path.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import re
import threading
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from pipelines.serving.codec import InputSpec, input_specs
from pipelines.serving.errors import BadRequestError, NotFoundError
from pipelines.serving.limits import Limits, read_limits
from pipelines.serving.rest_body import DEFAULT_SIGNATURE, unknown_signature

log = logging.getLogger(__name__)

MODEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")  # a folder name that is a model
VERSION_NAME = re.compile(r"[1-9][0-9]{0,17}\Z")  # a positive integer that fits int64
SHARD_NAME = re.compile(r"variables\.data-[0-9]+-of-([0-9]+)\Z")  # a checkpoint data shard
WARMUP_FILE = "tf_serving_warmup_requests"  # in assets.extra/, as TensorFlow Serving reads it
MAX_WARMUP = 1000  # TensorFlow Serving's own bound on warm-up records
# Lines of a TensorFlow error message that are its trace, not its meaning.
NOISE = ("File ", "Detected at node", "[[", "Graph execution")


@dataclasses.dataclass
class LoadedVersion:
    """One loaded version of a model: its signatures, their definitions and its limits."""

    name: str
    version: int
    path: Path
    signature_defs: dict[str, meta_graph_pb2.SignatureDef]
    limits: Limits
    loaded: object = dataclasses.field(repr=False)  # keeps the SavedModel's resources alive

    def signature(self, name: str) -> meta_graph_pb2.SignatureDef:
        """The definition of signature ``name`` (empty: ``serving_default``); 404 if absent."""
        name = name or DEFAULT_SIGNATURE
        if name not in self.signature_defs or name not in self.loaded.signatures:
            raise unknown_signature(self.name, self.version, name)
        return self.signature_defs[name]

    @functools.cached_property
    def input_specs(self) -> dict[str, dict[str, InputSpec]]:
        """The inputs of each signature that can be called, by signature name."""
        return {
            name: input_specs(definition)
            for name, definition in self.signature_defs.items()
            if name in self.loaded.signatures
        }

    def run(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Call ``signature`` on ``inputs``; the model's own checks become a 400."""
        function = self.loaded.signatures[signature or DEFAULT_SIGNATURE]
        try:
            outputs = function(**{k: tf.constant(v) for k, v in inputs.items()})
        except (tf.errors.InvalidArgumentError, tf.errors.OutOfRangeError) as error:
            raise BadRequestError(model_error_message(error.message)) from None
        return {key: value.numpy() for key, value in outputs.items()}


def model_error_message(message: str) -> str:
    """A TensorFlow error's meaning: an assertion's own message, else the first lines
    without the graph trace or node names."""
    assertion = re.search(r"assertion failed: \[([^\]]+)\]", message)
    if assertion:
        return assertion[1]
    message = message.replace("<stack traces unavailable>", "")
    kept = []
    for line in message.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(NOISE):
            continue
        kept.append(stripped)
    return " ".join(kept[:3]) or "the model rejected the request"


def incomplete_reason(version_dir: Path) -> str | None:
    """Why ``version_dir`` is not a complete SavedModel (``None`` when it is): no
    ``saved_model.pb``, or a ``variables/`` folder without its index or one of the data
    shards the shard names count (a partial copy)."""
    if not (version_dir / "saved_model.pb").is_file():
        return "no saved_model.pb"
    variables = version_dir / "variables"
    if not variables.is_dir():
        return None
    shards = [p.name for p in variables.iterdir() if p.name.startswith("variables.data-")]
    if not (variables / "variables.index").is_file():
        return "no variables/variables.index" if shards else None
    counts = {match[1] for name in shards if (match := SHARD_NAME.match(name))}
    if len(counts) != 1:
        return "no variables/variables.data-* shard" if not counts else "mixed shard counts"
    total = int(counts.pop())
    missing = [
        f"variables.data-{index:05d}-of-{total:05d}"
        for index in range(total)
        if not (variables / f"variables.data-{index:05d}-of-{total:05d}").is_file()
    ]
    return f"missing variables/{missing[0]}" if missing else None


def version_folders(model_dir: Path) -> tuple[dict[int, Path], dict[Path, str]]:
    """The complete version folders of ``model_dir`` by number, and every other entry
    with the reason it is not one (a temporary or partial folder, a stray file)."""
    versions, ignored = {}, {}
    for child in model_dir.iterdir():
        if not VERSION_NAME.match(child.name) or not child.is_dir():
            ignored[child] = "not a version folder (its name is not a positive integer)"
            continue
        reason = incomplete_reason(child)
        if reason is None:
            versions[int(child.name)] = child
        else:
            ignored[child] = f"not a complete version ({reason})"
    return versions, ignored


def folder_state(folder: Path) -> tuple:
    """Each file's relative path, size and modification time: changes while a copy goes on."""
    state = []
    for path in sorted(folder.rglob("*")):
        with contextlib.suppress(OSError):
            info = path.stat()
            state.append((str(path.relative_to(folder)), info.st_size, info.st_mtime_ns))
    return tuple(state)


def read_signature_defs(version_dir: Path) -> dict[str, meta_graph_pb2.SignatureDef]:
    """The ``serve`` meta graph's signature definitions, read from ``saved_model.pb``."""
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((version_dir / "saved_model.pb").read_bytes())
    for meta_graph in saved.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return {
                key: value
                for key, value in meta_graph.signature_def.items()
                if not key.startswith("__")  # TensorFlow's internal saver signature
            }
    return {}


def load_version(name: str, version: int, path: Path) -> LoadedVersion:
    """Load one version folder (its SavedModel, signature definitions and limits) and run
    its warm-up requests, so that the first real request is not the slow one."""
    loaded = tf.saved_model.load(str(path))
    served = LoadedVersion(
        name, version, path, read_signature_defs(path), read_limits(path), loaded
    )
    warm_up(served)
    return served


def warm_up(version: LoadedVersion) -> int:
    """Run the ``PredictRequest``s of ``assets.extra/tf_serving_warmup_requests`` (TensorFlow
    Serving's warm-up file: a TFRecord of ``PredictionLog``s), at most ``MAX_WARMUP``; how
    many ran. A request that fails is logged: the version is served all the same."""
    from tensorflow_serving.apis import prediction_log_pb2

    path = version.path / "assets.extra" / WARMUP_FILE
    if not path.is_file():
        return 0
    ran = 0
    try:
        for record in tf.data.TFRecordDataset(str(path)).take(MAX_WARMUP):
            log_entry = prediction_log_pb2.PredictionLog.FromString(record.numpy())
            if not log_entry.HasField("predict_log"):
                continue
            request = log_entry.predict_log.request
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            version.run(request.model_spec.signature_name, inputs)
            ran += 1
    except Exception as error:  # noqa: BLE001 - a bad warm-up file must not stop serving
        log.warning("%s: warm-up request %d failed: %s", path, ran + 1, error)
    return ran


class Repository:
    """The loaded models of one folder, refreshed by ``poll``.

    ``models`` maps a model name to its served version; it is replaced, never mutated,
    so a reader needs no lock. ``on_retire`` is called with a version when it stops being
    served (its batchers finish the requests they hold).
    """

    def __init__(self, models_dir: Path, on_retire=None):
        self.models_dir = Path(models_dir)
        self.models: dict[str, LoadedVersion] = {}
        self.on_retire = on_retire or (lambda version: None)
        # Folders that failed to load, with their state then: retried once it changes (a
        # copy that was still going on), not on every poll.
        self._failed: dict[Path, tuple] = {}
        self._ignored: dict[Path, str] = {}  # entries warned about, with the reason
        self._lock = threading.Lock()  # one poll at a time

    def get(self, name: str, version: int | None = None) -> LoadedVersion:
        """The served version of model ``name`` (``version`` if given); 404 if there is none."""
        served = self.models.get(name)
        if served is None:
            raise NotFoundError(f"Servable not found for request: Latest({name})")
        if version is not None and version != served.version:
            raise NotFoundError(f"Servable not found for request: Specific({name}, {version})")
        return served

    def poll(self) -> None:
        """Read the folder once: serve each model's newest complete version that loads,
        retire the rest."""
        with self._lock:
            found = self._complete_versions()
            current = dict(self.models)
            for name, versions in found.items():
                chosen = self._newest_loadable(name, versions, current.get(name))
                if chosen is not None:
                    current[name] = chosen
            for name in list(current):
                if current[name].version not in found.get(name, {}):
                    log.info("retiring %s version %d (removed)", name, current[name].version)
                    del current[name]
            retired = [v for n, v in self.models.items() if current.get(n) is not v]
            self.models = current
        for version in retired:
            self.on_retire(version)

    def _newest_loadable(
        self, name: str, versions: dict[int, Path], served: LoadedVersion | None
    ) -> LoadedVersion | None:
        """The newest of ``versions`` that is ``served`` or loads; ``None`` if none does. A
        folder that failed to load is tried again only once its files have changed."""
        for number in sorted(versions, reverse=True):
            path = versions[number]
            if served is not None and served.version == number and served.path == path:
                return served
            if path in self._failed and self._failed[path] == folder_state(path):
                continue
            try:
                loaded = load_version(name, number, path)
            except Exception as error:  # noqa: BLE001 - a broken export must not stop the others
                log.error("cannot load %s version %d from %s: %s", name, number, path, error)
                self._failed[path] = folder_state(path)
                continue
            log.info("serving %s version %d from %s", name, number, path)
            self._failed.pop(path, None)
            return loaded
        return None

    def _complete_versions(self) -> dict[str, dict[int, Path]]:
        """Each model folder's complete versions (models with none are left out); a warning
        for each entry that is not one."""
        found, ignored = {}, {}
        if not self.models_dir.is_dir():
            return found
        for model_dir in sorted(self.models_dir.iterdir()):
            if not model_dir.is_dir() or not MODEL_NAME.match(model_dir.name):
                continue
            try:
                versions, ignored_here = version_folders(model_dir)
            except OSError:  # removed while being read
                continue
            ignored.update(ignored_here)
            if versions:
                found[model_dir.name] = versions
        self._warn_ignored(ignored)
        return found

    def _warn_ignored(self, ignored: dict[Path, str]) -> None:
        """Warn once about each entry that is not a complete version (again if its reason
        changes); forget those that are gone or complete now."""
        for path, reason in ignored.items():
            if self._ignored.get(path) != reason:
                log.warning("ignoring %s: %s", path, reason)
        self._ignored = ignored
