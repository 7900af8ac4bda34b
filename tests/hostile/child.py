"""Runs memory cases one after another in this process and records each one's ending and the
process's peak resident memory after it (``python -m tests.hostile.child JOBS RESULTS``).

JOBS is a JSON list of ``{"key", "argv", "cwd"}``; a JSON line per case is appended to RESULTS
as soon as the case ends, so that a crash loses only the case it happened in. The process
stops after a case that pushed its peak over ``MEMORY_BOUND_KIB`` (the next cases then start
in a fresh process). The address space is capped as a safety net for the machine, not as the
measure: a case that tries to allocate gigabytes fails instead of swapping.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
from pathlib import Path

ADDRESS_SPACE_CAP = 12 * 1024**3
CASE_SECONDS = 120
OVER_BOUND_EXIT = 3


class CaseTimeoutError(Exception):
    """A case ran past ``CASE_SECONDS``."""


def _alarm(signum, frame):
    raise CaseTimeoutError(f"the case ran past {CASE_SECONDS} s")


def peak_kib() -> int:
    """This process's peak resident memory in KiB: ``VmHWM``, which starts afresh at exec.
    (``ru_maxrss`` does not: a child forked from a large test process inherits its peak.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(jobs_path: str, results_path: str) -> int:
    """Run the jobs in order; the exit status says whether all ran (0) or one went over (3)."""
    from tests.hostile.runner import MEMORY_BOUND_KIB, run_in_process

    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_CAP, ADDRESS_SPACE_CAP))
    signal.signal(signal.SIGALRM, _alarm)
    run_in_process(["list"], Path.cwd())  # imports the CLI; TensorFlow comes with the first case
    with open(results_path, "a") as results:
        for job in json.loads(Path(jobs_path).read_text()):
            results.write(json.dumps({"key": job["key"], "started": True}) + "\n")
            results.flush()
            signal.alarm(CASE_SECONDS)
            ending = run_in_process(job["argv"], Path(job["cwd"]))
            signal.alarm(0)
            record = {"key": job["key"], **ending.__dict__, "peak_kib": peak_kib()}
            results.write(json.dumps(record) + "\n")
            results.flush()
            if record["peak_kib"] > MEMORY_BOUND_KIB:
                return OVER_BOUND_EXIT
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main(*sys.argv[1:3]))
