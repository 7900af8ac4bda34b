"""Helpers of the fault tests: child runs that SIGKILL themselves, and comparing run outputs."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np

from tests.helpers import REPO

KILLED = -signal.SIGKILL


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child run: this checkout first, no cluster of the parent's."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    for key in ("TF_CONFIG", "KERASTUNER_TUNER_ID"):
        env.pop(key, None)
    return env | extra


def cli(*args: str, cwd: Path, **env: str):
    """Run ``python -m pipelines ARGS``; returns the completed process."""
    return _child(["-m", "pipelines", *args], cwd, env)


def script(request: dict, *, cwd: Path, kill_at: str = "none", **env: str):
    """Run ``request`` through ``runner.run`` in a child that SIGKILLs itself at ``kill_at``.

    ``kill_at``: ``train:K:B``, ``export`` or ``none`` (``tests/faults/kill_script.py``).
    """
    return _child(["-m", "tests.faults.kill_script", kill_at, json.dumps(request)], cwd, env)


def _child(args: list[str], cwd: Path, env: dict[str, str]):
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=600,
    )


def model_weights(run_dir: Path) -> dict[str, np.ndarray]:
    """Every array of the ``model.weights.h5`` inside a run's ``model.keras``."""
    with zipfile.ZipFile(run_dir / "model.keras") as archive:
        data = archive.read("model.weights.h5")
    return h5_arrays(io.BytesIO(data))


def h5_arrays(source) -> dict[str, np.ndarray]:
    """Every dataset of an HDF5 file, by path."""
    arrays: dict[str, np.ndarray] = {}
    with h5py.File(source, "r") as handle:
        handle.visititems(
            lambda name, item: (
                arrays.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None
            )
        )
    return arrays


def history(run_dir: Path) -> list[dict[str, str]]:
    """The rows of a run's ``history.csv``."""
    return list(csv.DictReader((run_dir / "history.csv").read_text().splitlines()))


def free_ports(count: int) -> list[int]:
    """``count`` TCP ports free on 127.0.0.1 right now."""
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports
