"""Keras Tuner's own distributed mode on one machine: a chief oracle and N worker processes.

The chief (this process, ``KERASTUNER_TUNER_ID=chief``) serves the oracle on
``KERASTUNER_ORACLE_IP:KERASTUNER_ORACLE_PORT``; each worker
(``KERASTUNER_TUNER_ID=tunerN``) asks it for trials, trains them and reports the
scores. The chief's project folder then holds every trial, as in a local search.
On a real cluster, start the same command on each host with those variables
(README, "Faults, resuming and clusters").
"""

from __future__ import annotations

import _thread
import os
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipelines.progress import log

ENV_KEYS = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_workers(command: Sequence[str], count: int, port: int, logs: Path) -> list:
    """Start ``count`` worker processes running ``command`` with the Keras Tuner variables."""
    logs.mkdir(parents=True, exist_ok=True)
    workers = []
    for index in range(count):
        env = {
            **os.environ,
            "KERASTUNER_TUNER_ID": f"tuner{index}",
            "KERASTUNER_ORACLE_IP": "127.0.0.1",
            "KERASTUNER_ORACLE_PORT": str(port),
        }
        with open(logs / f"tuner{index}.log", "w") as output:
            workers.append(
                subprocess.Popen(list(command), env=env, stdout=output, stderr=subprocess.STDOUT)
            )
    return workers


def _watch(workers: list, done: threading.Event, grace: float = 120.0) -> None:
    """Interrupt the chief if every worker has exited and the search still waits on them."""
    while not done.wait(2.0):
        if all(worker.poll() is not None for worker in workers):
            if done.wait(grace):
                return
            _thread.interrupt_main()
            return


def run_as_chief(search, workers: list) -> Any:
    """Run ``search()`` as the chief oracle while ``workers`` do the trials."""
    saved = {key: os.environ.get(key) for key in ENV_KEYS[:2]}
    os.environ["KERASTUNER_TUNER_ID"] = "chief"
    os.environ["KERASTUNER_ORACLE_IP"] = "127.0.0.1"
    done = threading.Event()
    threading.Thread(target=_watch, args=(workers, done), daemon=True).start()
    started = time.perf_counter()
    try:
        return search()
    finally:
        done.set()
        for worker in workers:
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        codes = [worker.returncode for worker in workers]
        log(f"tuning: {len(workers)} workers done in {time.perf_counter() - started:.0f}s {codes}")


def distributed_search(search, worker_command: Sequence[str], count: int, logs: Path) -> Any:
    """Start ``count`` workers and run ``search()`` as their chief on a free local port."""
    port = free_port()
    saved = os.environ.get("KERASTUNER_ORACLE_PORT")
    os.environ["KERASTUNER_ORACLE_PORT"] = str(port)
    try:
        workers = start_workers(worker_command, count, port, logs)
        log(f"tuning: chief oracle on 127.0.0.1:{port}, {count} workers")
        return run_as_chief(search, workers)
    finally:
        if saved is None:
            os.environ.pop("KERASTUNER_ORACLE_PORT", None)
        else:
            os.environ["KERASTUNER_ORACLE_PORT"] = saved
