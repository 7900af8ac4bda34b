"""Shared test helpers: running the CLI in a child process, the shared data folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """``python -m pipelines ARGS`` in a child process; returns its exit status and output."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "pipelines", *args],
        cwd=cwd or REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def shared_data(relative: str) -> Path:
    """A path under ../shared/data; skips the test with a reason when it is absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"{path} is not present (the shared data folder beside the checkout)")
    return path


_SMOKE_RUNS: dict[tuple[str, ...], Path] = {}


def smoke_run_dir(tmp_path_factory, pipeline: str, *args: str) -> Path:
    """Run ``pipeline`` with ``--preset smoke ARGS`` through the CLI; its finished run directory.

    One run per pipeline and arguments in a test session: the contract tests and each
    pipeline's own tests read the same run (they never write into it).
    """
    key = (pipeline, *args)
    if key not in _SMOKE_RUNS:
        root = tmp_path_factory.mktemp("smoke")
        result = run_cli("run", pipeline, "--preset", "smoke", *args, cwd=root)
        assert result.returncode == 0, result.stderr[-3000:]
        latest = root / "runs" / pipeline / "latest"
        assert latest.is_symlink()
        _SMOKE_RUNS[key] = latest.resolve()
    return _SMOKE_RUNS[key]


def run_python_without_project(script: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``script`` in a fresh Python whose path does not hold this project (as a client)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def run_saved_model_cli(saved_model: Path, *inputs: str) -> subprocess.CompletedProcess:
    """``saved_model_cli run`` on ``serving_default`` of ``saved_model`` with ``inputs`` flags."""
    cli = Path(sys.executable).with_name("saved_model_cli")
    command = [str(cli), "run", "--dir", str(saved_model), "--tag_set", "serve"]
    command += ["--signature_def", "serving_default", *inputs]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


# Runs ``python -m pipelines`` and, at exit, writes the process's own peak resident memory
# (VmHWM) to the file named by the environment. ``ru_maxrss`` of a child cannot be used: a
# process started from a large one (pytest with TensorFlow loaded) inherits its parent's peak.
_PEAK_WRAPPER = """
import atexit, os, runpy, sys
def _write_peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            open(os.environ["RNN_SUITE_PEAK_FILE"], "w").write(line.split()[1])
atexit.register(_write_peak)
sys.argv = ["pipelines", *sys.argv[1:]]
runpy.run_module("pipelines", run_name="__main__", alter_sys=True)
"""


def run_cli_with_peak(
    *args: str, cwd: Path, timeout: float = 600
) -> tuple[subprocess.CompletedProcess, int]:
    """``run_cli`` that also returns the child's own peak resident memory in bytes."""
    peak_file = cwd / f".peak-{os.getpid()}-{id(args)}"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    env["RNN_SUITE_PEAK_FILE"] = str(peak_file)
    result = subprocess.run(
        [sys.executable, "-c", _PEAK_WRAPPER, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    peak = int(peak_file.read_text()) * 1024 if peak_file.exists() else 0
    peak_file.unlink(missing_ok=True)
    return result, peak
