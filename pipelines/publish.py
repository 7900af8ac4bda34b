"""Publishing a finished run's export into a TensorFlow Serving model folder.

The folder has TensorFlow Serving's layout, so ``tensorflow/serving`` (with
``--model_config_file``) and ``python -m pipelines serve`` both read it::

    MODELS_DIR/models.config        model_config_list: one config { } per model
    MODELS_DIR/NAME/N/saved_model.pb, variables/, assets/, assets.extra/

A version folder is copied under a temporary name and renamed into place, so it appears
complete or not at all; ``models.config`` is replaced in one rename too. One publish at a
time writes a models folder (``pipelines.locks``, its lock file inside it).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from pipelines import locks, rundir
from pipelines.errors import UserError
from pipelines.progress import log
from pipelines.rundir import PARTIAL_SUFFIX

MODELS_CONFIG = "models.config"  # the file given to the model server's --model_config_file
LOCK_FILE = ".publish.lock"  # held in MODELS_DIR while a publish writes it
LOCK_TIMEOUT_SECONDS = 60.0  # how long a publish waits for another one on the same folder
MODEL_PLATFORM = "tensorflow"
# A model name is a folder name and appears in URLs: a plain identifier, short enough for
# every file system's limit on a name.
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
MAX_NAME_LENGTH = 255
MAX_VERSION = 2**63 - 1  # TensorFlow Serving's version numbers are int64
VERSION_FOLDER = re.compile(r"[0-9]+")  # what the model server takes for a version folder


def publish(
    run_dir: str | Path,
    models_dir: str | Path,
    name: str | None = None,
    version: int | str | None = None,
    base_path_prefix: str | None = None,
) -> Path:
    """Copy ``RUN_DIR/saved_model`` to ``MODELS_DIR/NAME/N/`` and list NAME in
    ``MODELS_DIR/models.config``; returns the version folder.

    Args:
        run_dir: a finished run directory.
        models_dir: the models folder (created if missing).
        name: the model name; default the run's pipeline, with ``_`` for ``-``.
        version: the version number; default one more than the newest present (or 1).
        base_path_prefix: what ``base_path`` in ``models.config`` starts with, e.g.
            ``/models`` where the folder is mounted in a container; default the folder's
            absolute path.

    UserError for an unfinished run, a name that is not a plain identifier, a version that
    is not a positive integer or is already there, or a ``models.config`` that cannot be read.
    """
    run = Path(run_dir)
    export = rundir.finished_run(run) / "saved_model"
    name = _check_name(name if name is not None else _pipeline_name(run).replace("-", "_"))
    number = _check_version(version)
    models = Path(models_dir)
    prefix = _check_prefix(base_path_prefix)
    rundir.check_writable(models, f"models folder {models}")
    models.mkdir(parents=True, exist_ok=True)
    with locks.hold(models, models / LOCK_FILE, wait_seconds=LOCK_TIMEOUT_SECONDS):
        target = _publish_locked(export, models, name, number, prefix)
    log(f"published {run} as model {name!r} version {target.name}: {target}")
    return target


def _publish_locked(export: Path, models: Path, name: str, number: int | None, prefix) -> Path:
    """Copy ``export`` into its version folder and update ``models.config`` (lock held)."""
    config_path = models / MODELS_CONFIG
    config = read_models_config(config_path)
    model_dir = models / name
    if model_dir.exists() and not model_dir.is_dir():
        raise UserError(f"{model_dir} is a file, not a model folder")
    present = versions(model_dir)
    if number is None:
        number = max(present, default=0) + 1
    elif number in present:
        raise UserError(
            f"{model_dir / present[number]} already exists: model {name!r} has version "
            f"{number}; give another --version, or leave it out for the next ({max(present) + 1})"
        )
    base_path = str(models.resolve() / name) if prefix is None else f"{prefix}/{name}"
    set_model(config, name, base_path)
    target = model_dir / str(number)
    model_dir.mkdir(exist_ok=True)
    _copy_into_place(export, target)
    try:
        _write_atomically(config_path, text_format.MessageToString(config))
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)  # not listed, so not published
        raise
    return target


# === The run ===


def _pipeline_name(run: Path) -> str:
    """The registry name of the pipeline ``run`` was made with (its ``config.json``)."""
    from pipelines.runner import resolved_from_run  # imports TensorFlow and Keras

    return resolved_from_run(run).name


# === Names, versions and base paths ===


def _check_name(name: str) -> str:
    """``name`` if it is a plain identifier; UserError otherwise."""
    if not NAME_PATTERN.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
        raise UserError(
            f"--name {name!r}: a model name is a letter, then letters, digits or _ "
            f"(at most {MAX_NAME_LENGTH} characters)"
        )
    return name


def _check_version(version: int | str | None) -> int | None:
    """``version`` as an int, None for the next; UserError unless a positive integer."""
    if version is None:
        return None
    text = str(version).strip()
    if isinstance(version, bool) or not VERSION_FOLDER.fullmatch(text):
        raise UserError(f"--version {version!r}: must be a positive integer")
    number = int(text)
    if not 1 <= number <= MAX_VERSION:
        raise UserError(f"--version {version!r}: must be a positive integer up to {MAX_VERSION}")
    return number


def _check_prefix(prefix: str | None) -> str | None:
    """``prefix`` without a trailing ``/``; UserError if empty."""
    if prefix is None:
        return None
    if not prefix.strip():
        raise UserError("--base-path-prefix is empty; give a folder such as /models")
    return prefix.rstrip("/") if prefix.strip("/") else ""


def versions(model_dir: Path) -> dict[int, str]:
    """The version folders under ``model_dir`` as number -> folder name (the names the
    model server reads as versions, complete or not)."""
    if not model_dir.is_dir():
        return {}
    return {
        int(child.name): child.name
        for child in model_dir.iterdir()
        if VERSION_FOLDER.fullmatch(child.name)
    }


# === models.config ===


def read_models_config(path: Path) -> model_server_config_pb2.ModelServerConfig:
    """The model server config in ``path`` (empty if there is none); UserError if it is not
    a ``model_config_list`` in TensorFlow Serving's text format."""
    config = model_server_config_pb2.ModelServerConfig()
    if not path.exists():
        return config
    try:
        text_format.Parse(path.read_text(encoding="utf-8"), config)
    except (text_format.ParseError, UnicodeDecodeError) as error:
        raise UserError(
            f"{path}: not a TensorFlow Serving model config ({error}); fix or remove it"
        ) from None
    if config.WhichOneof("config") == "custom_model_config":
        raise UserError(f"{path}: holds a custom_model_config; publish writes model_config_list")
    return config


def set_model(config: model_server_config_pb2.ModelServerConfig, name: str, base_path: str):
    """List model ``name`` at ``base_path`` in ``config``, keeping its other settings."""
    for entry in config.model_config_list.config:
        if entry.name == name:
            entry.base_path = base_path
            entry.model_platform = MODEL_PLATFORM
            return
    config.model_config_list.config.add(
        name=name, base_path=base_path, model_platform=MODEL_PLATFORM
    )


# === Writing ===


def _copy_into_place(export: Path, target: Path) -> None:
    """Copy ``export`` to a temporary folder beside ``target``, then rename it to ``target``."""
    temporary = target.with_name(f".{target.name}{PARTIAL_SUFFIX}")
    shutil.rmtree(temporary, ignore_errors=True)  # left by a killed publish (the lock is ours)
    try:
        shutil.copytree(export, temporary)
        os.rename(temporary, target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and one rename."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
