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


def smoke_run_dir(tmp_path_factory, pipeline: str, *args: str) -> Path:
    """Run ``pipeline`` with ``--preset smoke ARGS`` through the CLI; its finished run directory."""
    root = tmp_path_factory.mktemp("smoke")
    result = run_cli("run", pipeline, "--preset", "smoke", *args, cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    latest = root / "runs" / pipeline / "latest"
    assert latest.is_symlink()
    return latest.resolve()
