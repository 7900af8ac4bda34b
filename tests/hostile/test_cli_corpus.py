"""The command-line half of the hostile corpus: every case of ``cases_cli.CASES`` must end
clean (see ``runner``). Most run in-process through ``pipelines.cli.main``; the cases of
class 1 run together in one child process whose peak resident memory is measured after each;
the cases of class 2 start a first run in a child process and the second command in-process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.hostile import cases_cli, report
from tests.hostile.cases_cli import BY_KEY, CASES, IN_PROCESS, LOCK_CHILD, MEMORY_CHILD
from tests.hostile.runner import MEMORY_BOUND_KIB, Ending, judge, run_in_process, snapshot

MIN_CASES = 300
CHILD_SECONDS = 900  # all the memory cases of one child process
FIRST_RUN_SECONDS = 300  # until a first run's partial folder holds a checkpoint


def _keys(where: str) -> list[str]:
    return [case.key for case in CASES if case.where == where]


def test_the_corpus_covers_every_pipeline_and_class():
    assert len(CASES) >= MIN_CASES
    assert len(BY_KEY) == len(CASES), "case keys must be unique"
    covered = Counter((case.pipeline, case.kind) for case in CASES)
    every_pipeline = set(cases_cli.CLASSES) - {cases_cli.TWO_RUNS}
    missing = [(p, k) for p in cases_cli.PIPELINES for k in every_pipeline if not covered[p, k]]
    assert not missing
    assert any(case.kind == cases_cli.TWO_RUNS for case in CASES)
    assert len(_keys(LOCK_CHILD)) <= 15, "child processes are for what needs isolation only"


def _record_and_check(case, call, ending: Ending, folder: Path, before: dict) -> None:
    problems = judge(case.outcome, call, ending, folder, before)
    if case.where == MEMORY_CHILD and ending.peak_kib > MEMORY_BOUND_KIB:
        problems.append(f"peak resident memory {ending.peak_kib:,} KiB > {MEMORY_BOUND_KIB:,}")
    measured = {"peak_kib": ending.peak_kib} if case.where == MEMORY_CHILD else {}
    report.check(
        "cli", case.pipeline, case.kind, case.key, problems, ending.first_line(), **measured
    )


def _build(case, folder: Path, finished_runs):
    try:
        return case.build(folder, finished_runs)
    except Exception as error:  # a case that cannot even be set up is a failing case too
        report.record("cli", case.pipeline, case.kind, case.key, ["setup failed"], repr(error))
        raise


@pytest.mark.parametrize("key", _keys(IN_PROCESS))
def test_in_process_case(key, tmp_path, finished_runs):
    case = BY_KEY[key]
    folder = tmp_path / "case"
    folder.mkdir()
    call = _build(case, folder, finished_runs)
    before = snapshot(folder)
    _record_and_check(case, call, run_in_process(call.argv, folder), folder, before)


# === Class 1: one child process for all, memory measured ===


@pytest.fixture(scope="module")
def memory_endings(tmp_path_factory, finished_runs):
    """Each memory case's (folder, Call, snapshot before, Ending), run in a child process."""
    prepared, jobs, endings = {}, [], {}
    for key in _keys(MEMORY_CHILD):
        folder = tmp_path_factory.mktemp("memory-case")
        try:
            call = BY_KEY[key].build(folder, finished_runs)
        except Exception as error:  # reported by the case's test, the others still run
            prepared[key] = (folder, None, {})
            endings[key] = Ending(None, "", f"setup failed: {error!r}")
            continue
        prepared[key] = (folder, call, snapshot(folder))
        jobs.append({"key": key, "argv": call.argv, "cwd": str(folder)})
    endings |= _run_in_children(jobs, tmp_path_factory.mktemp("memory-jobs"))
    return {key: (*prepared[key], endings[key]) for key in prepared}


def _run_in_children(jobs: list[dict], folder: Path) -> dict[str, Ending]:
    """Run ``jobs`` in ``tests.hostile.child`` processes, a fresh one after a crash, a
    timeout or a case over the memory bound; each job's Ending."""
    endings: dict[str, Ending] = {}
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    while len(endings) < len(jobs):
        remaining = [job for job in jobs if job["key"] not in endings]
        jobs_path, results_path = folder / "jobs.json", folder / "results.jsonl"
        jobs_path.write_text(json.dumps(remaining))
        results_path.write_text("")
        command = [sys.executable, "-m", "tests.hostile.child", str(jobs_path), str(results_path)]
        try:
            child = subprocess.run(
                command, cwd=REPO, env=env, capture_output=True, text=True, timeout=CHILD_SECONDS
            )
            why = f"the child process ended with status {child.returncode}: {child.stderr[-300:]}"
        except subprocess.TimeoutExpired:
            why = f"the child process ran past {CHILD_SECONDS} s"
        started, done = None, len(endings)
        for line in results_path.read_text().splitlines():
            record = json.loads(line)
            if record.pop("started", False):
                started = record["key"]
            else:
                key = record.pop("key")
                endings[key] = Ending(**record)
                started = None
        if started is None and len(endings) == done:  # no progress: the child cannot start
            started = remaining[0]["key"]
        if started is not None:
            endings[started] = Ending(None, "", why)
    return endings


@pytest.mark.parametrize("key", _keys(MEMORY_CHILD))
def test_memory_case(key, memory_endings):
    folder, call, before, ending = memory_endings[key]
    case = BY_KEY[key]
    if call is None:
        report.check("cli", case.pipeline, case.kind, key, ["setup failed"], ending.first_line())
    _record_and_check(case, call, ending, folder, before)


# === Class 2: a first run in a child process, the second command in-process ===


@pytest.mark.parametrize("key", _keys(LOCK_CHILD))
def test_second_command_on_one_folder(key, tmp_path, finished_runs):
    case = BY_KEY[key]
    folder = tmp_path / "case"
    folder.mkdir()
    call = _build(case, folder, finished_runs)
    first_argv = (folder / "first_argv").read_text().splitlines()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    first = subprocess.Popen(
        [sys.executable, "-m", "pipelines", *first_argv],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_a_checkpoint(first, Path(f"{call.others[0]}.partial"))
        if case.name == "resume_after_kill":
            first.kill()
            first.wait()
        before = snapshot(folder)
        ending = run_in_process(call.argv, folder)
    finally:
        if first.poll() is None:
            first.terminate()
            first.wait(60)
    _record_and_check(case, call, ending, folder, before)


def _wait_for_a_checkpoint(first: subprocess.Popen, partial: Path) -> None:
    deadline = time.monotonic() + FIRST_RUN_SECONDS
    while not (partial / "history.csv").exists():
        assert first.poll() is None, f"the first run ended (status {first.returncode}) too soon"
        assert time.monotonic() < deadline, "the first run wrote no checkpoint in time"
        time.sleep(0.05)
