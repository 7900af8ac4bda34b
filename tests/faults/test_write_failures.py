"""A write the file system refuses mid-run ends in one error line and a resumable run.

The child run has a file-size limit (``RLIMIT_FSIZE``, with ``SIGXFSZ`` ignored so that
the write fails with ``EFBIG`` instead of killing it) smaller than its first large write:
a training backup inside the epoch, or, with backups at epoch ends only, the HDF5
best-weights checkpoint (whose failed write could crash the process, so its room is
checked first). It stops there with ``error: writing PATH: File too large; ...`` and exit
status 2, keeping its partial folder. ``--resume`` without the limit then finishes it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults.helpers import child_env, cli

# Above the run's config and data files, below its first training backup.
FILE_SIZE_LIMIT_BYTES = 40_000
ARGS = (
    "run",
    "sentiment",
    "--preset",
    "smoke",
    "--set",
    "max_examples=400",
    "epochs=2",
    "units=8",
)
LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from pipelines.cli import main
sys.exit(main(sys.argv[2:]))
"""


# --checkpoint-steps -> the file the limit stops: a backup mid-epoch, or the HDF5 checkpoint.
FIRST_LARGE_WRITE = {"2": "backup/state-", "0": "checkpoints/best.weights.h5"}


@pytest.mark.parametrize("steps", sorted(FIRST_LARGE_WRITE))
def test_a_file_size_limit_mid_run_is_one_error_and_resume_finishes(steps, tmp_path):
    out = tmp_path / "run"
    partial = Path(f"{out}.partial")
    args = [*ARGS, "--checkpoint-steps", steps, "--out", str(out)]
    limited = subprocess.run(
        [sys.executable, "-c", LIMITED, str(FILE_SIZE_LIMIT_BYTES), *args],
        cwd=tmp_path,
        env=child_env(PYTHONDONTWRITEBYTECODE="1"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert limited.returncode == 2, limited.stderr[-3000:]
    errors = [line for line in limited.stderr.splitlines() if not line.startswith("[rnn-suite]")]
    assert len(errors) == 1, limited.stderr[-3000:]
    assert errors[0].startswith(f"error: writing {partial}/{FIRST_LARGE_WRITE[steps]}"), errors[0]
    assert errors[0].endswith(
        f": File too large; the run is kept in {partial}, "
        f"'rnn-suite run --resume --out {out}' continues it"
    )
    assert (partial / "config.json").is_file() and not out.exists()
    resumed = cli("run", "--resume", "--out", str(out), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (out / "metrics.json").is_file() and not partial.exists()
