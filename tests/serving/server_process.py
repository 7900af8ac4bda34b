"""The model server in a child process on free loopback ports, always shut down, and the
plain clients the tests drive it with (HTTP JSON and the ``tensorflow-serving-api`` stubs)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

from tests.helpers import REPO

READY = re.compile(r"REST http://(?P<rest>\S+) gRPC (?P<grpc>\S+)")
START_SECONDS = 300  # loading TensorFlow and the models on a busy machine


class ServerProcess:
    """``serve(models_dir, rest_port=0, grpc_port=0, **settings)`` in a child process."""

    def __init__(self, models_dir: Path, **settings):
        self.models_dir = models_dir
        self.settings = {"rest_port": 0, "grpc_port": 0, **settings}
        self.stderr_lines: list[str] = []
        self.rest = self.grpc = ""
        self._ready = threading.Event()

    def start(self) -> ServerProcess:
        script = (
            "from pipelines.serving.server import serve\n"
            f"serve({str(self.models_dir)!r}, **{self.settings!r})\n"
        )
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
        self.process = subprocess.Popen(
            [sys.executable, "-c", script],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read_stderr, daemon=True).start()
        if not self._ready.wait(START_SECONDS) or not self.rest:
            self.stop()
            raise RuntimeError("the server did not start:\n" + "".join(self.stderr_lines[-40:]))
        return self

    def _read_stderr(self) -> None:
        for line in self.process.stderr:
            self.stderr_lines.append(line)
            match = READY.search(line)
            if match:
                self.rest, self.grpc = f"http://{match['rest']}", match["grpc"]
                self._ready.set()
        self._ready.set()  # the process ended

    def terminate(self) -> None:
        """Send SIGTERM (a graceful stop)."""
        self.process.send_signal(signal.SIGTERM)

    def stop(self) -> int:
        """Stop the process (SIGTERM, then SIGKILL after a while); its exit status."""
        if self.process.poll() is None:
            self.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@contextlib.contextmanager
def running_server(models_dir: Path, **settings):
    """A started ``ServerProcess``, stopped on exit."""
    server = ServerProcess(models_dir, **settings).start()
    try:
        yield server
    finally:
        server.stop()


def http(method: str, url: str, body: bytes | dict | None = None) -> tuple[int, dict | str]:
    """One HTTP request with urllib: the status and the JSON body (or the text, if not JSON)."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    try:
        return status, json.loads(text)
    except json.JSONDecodeError:
        return status, text
