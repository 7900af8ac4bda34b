"""One writer per run folder, with real processes.

A run is paused mid-training (``tests/faults/kill_script.py``'s ``pause``) while a second
``run`` and a ``--resume`` on the same ``--out`` are refused, naming the live run's
process; the paused run then finishes cleanly. A run SIGKILLed while holding its lock
does not block the ``--resume`` that continues it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.faults.helpers import KILLED, child_env, cli, history

SETTINGS = {"max_examples": 400, "epochs": 2, "patience": 2, "units": 8, "batch_size": 32}
READY_TIMEOUT_SECONDS = 300


def _paused_run(out: Path, signal_path: Path) -> subprocess.Popen:
    """A child run of ``out`` that pauses after batch 2 of its training."""
    request = {"pipeline": "sentiment", "preset": "smoke", "out": str(out), "settings": SETTINGS}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.faults.kill_script",
            f"pause:1:2:{signal_path}",
            json.dumps(request),
        ],
        cwd=out.parent,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_until_paused(child: subprocess.Popen, signal_path: Path) -> None:
    ready = Path(f"{signal_path}.ready")
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not ready.exists():
        if child.poll() is not None:
            pytest.fail(f"the run ended before pausing: {child.communicate()[1][-3000:]}")
        if time.monotonic() > deadline:
            child.kill()
            pytest.fail("the run did not reach its pause")
        time.sleep(0.2)


def test_a_live_run_is_in_use_and_finishes_cleanly(tmp_path):
    out, signal_path = tmp_path / "run", tmp_path / "pause"
    live = _paused_run(out, signal_path)
    try:
        _wait_until_paused(live, signal_path)
        expected = f"error: {out} is in use by process {live.pid}"
        second = cli("run", "sentiment", "--preset", "smoke", "--out", str(out), cwd=tmp_path)
        resumed = cli("run", "--resume", "--out", str(out), cwd=tmp_path)
    finally:
        Path(f"{signal_path}.go").touch()
        _, stderr = live.communicate(timeout=600)
    assert (second.returncode, second.stderr.strip().splitlines()[-1]) == (2, expected)
    assert (resumed.returncode, resumed.stderr.strip().splitlines()[-1]) == (2, expected)
    assert "interrupted" not in second.stderr + resumed.stderr
    assert live.returncode == 0, stderr[-3000:]
    assert (out / "metrics.json").is_file() and not Path(f"{out}.partial").exists()
    header = (out / "history.csv").read_text().splitlines()[0]
    assert (out / "history.csv").read_text().count(header) == 1
    assert len(history(out)) == SETTINGS["epochs"]
    assert not Path(f"{out}.lock").exists()


def test_a_killed_runs_lock_does_not_block_its_resume(tmp_path):
    out, signal_path = tmp_path / "run", tmp_path / "pause"
    killed = _paused_run(out, signal_path)
    _wait_until_paused(killed, signal_path)
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=60)
    assert killed.returncode == KILLED
    assert Path(f"{out}.lock").read_text().strip() == str(killed.pid)  # stale, not held
    resumed = cli("run", "--resume", "--out", str(out), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (out / "metrics.json").is_file() and not Path(f"{out}.partial").exists()
    assert not Path(f"{out}.lock").exists()
