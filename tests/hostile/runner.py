"""Running a command-line case and judging how it ended.

A case is clean when it ends in success (exit 0) or in exactly one stderr line ``error: ...``
naming what it must name, with exit status 2; with no traceback; with no file of the user's
changed (the case folder is snapshot before and compared after, the declared outputs of a
success aside); with no ``.partial`` folder left by a refusal; and with every JSON a success
wrote strict (no NaN or Infinity).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import traceback
from pathlib import Path

from tests.hostile.cases_cli import EITHER, ERROR, SUCCESS, Call

MEMORY_BOUND_KIB = 2 * 1024 * 1024  # peak resident memory of a child running memory cases


@dataclasses.dataclass
class Ending:
    """How a command ended: exit status, captured stderr, and an escaped exception."""

    status: int | None
    stderr: str
    exception: str = ""
    peak_kib: int = 0  # the child's peak resident memory after the case (memory cases)

    def first_line(self) -> str:
        """The first line worth quoting: the exception, or stderr's first line."""
        if self.exception:
            return self.exception.strip().splitlines()[-1][:300]
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return (lines[0] if lines else f"(exit {self.status}, nothing on stderr)")[:300]


def run_in_process(argv: list[str], cwd: Path) -> Ending:
    """``pipelines.cli.main(argv)`` in ``cwd`` with stdout and stderr captured."""
    from pipelines.cli import main

    stderr, stdout = io.StringIO(), io.StringIO()
    with (
        contextlib.chdir(cwd),
        contextlib.redirect_stderr(stderr),
        contextlib.redirect_stdout(stdout),
    ):
        try:
            status = main(list(argv))
        except SystemExit as exit_:
            status = exit_.code if isinstance(exit_.code, int) else 1
        except BaseException:  # noqa: BLE001 - an escaped exception is what the corpus reports
            return Ending(None, stderr.getvalue(), traceback.format_exc())
    return Ending(status, stderr.getvalue())


# === Snapshots of the case folder ===


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under ``folder`` (symlinks not followed): kind, size, mtime and a hash."""
    entries = {}
    for root, dirs, names in os.walk(folder):
        for name in dirs + names:
            path = Path(root) / name
            relative = str(path.relative_to(folder))
            if path.is_symlink():
                entries[relative] = ("link", os.readlink(path))
            elif path.is_dir():
                entries[relative] = ("dir",)
            else:
                stat = path.stat()
                entries[relative] = ("file", stat.st_size, stat.st_mtime_ns, _digest(path))
    return entries


def _digest(path: Path) -> str:
    digest = hashlib.sha1()
    with contextlib.suppress(OSError), path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _under(relative: str, folder: Path, paths: tuple[Path, ...]) -> bool:
    path = folder / relative
    for allowed in paths:
        allowed = Path(allowed)
        if path == allowed or allowed in path.parents:
            return True
    return False


# === Judging ===


def judge(outcome: str, call: Call, ending: Ending, folder: Path, before: dict) -> list[str]:
    """The ways a case's ending is not clean (empty: clean)."""
    problems = _judge_ending(outcome, call, ending)
    succeeded = ending.status == 0 and not ending.exception
    after = snapshot(folder)
    allowed = call.others + (call.outputs if succeeded else ())
    for relative, entry in before.items():
        if _under(relative, folder, allowed) or relative.endswith(".lock"):
            continue
        if relative not in after:
            problems.append(f"removed the user's {relative}")
        elif after[relative] != entry and entry[0] != "dir":
            problems.append(f"changed the user's {relative}")
    for relative in sorted(set(after) - set(before)):
        if _under(relative, folder, allowed) or relative.endswith(".lock"):
            continue
        if relative.endswith(".partial"):
            problems.append(f"left a partial folder {relative} after refusing")
        elif succeeded:
            problems.append(f"wrote {relative}, outside its declared outputs")
        else:
            problems.append(f"left {relative} after refusing")
    if succeeded:
        problems += _loose_json(call.outputs)
    return problems[:6]


def _judge_ending(outcome: str, call: Call, ending: Ending) -> list[str]:
    if ending.exception:
        return [f"exception escaped main: {ending.first_line()}"]
    if "Traceback" in ending.stderr:
        return [f"traceback on stderr: {ending.first_line()}"]
    if ending.status == 0:
        return [] if outcome in (SUCCESS, EITHER) else ["exit 0 where a refusal was expected"]
    if outcome == SUCCESS:
        return [f"exit {ending.status} where success was expected: {ending.first_line()}"]
    problems = []
    lines = [line for line in ending.stderr.splitlines() if line.strip()]
    if ending.status != 2:
        problems.append(f"exit status {ending.status}, not 2")
    if len(lines) != 1 or not lines[0].startswith("error: "):
        problems.append(f"{len(lines)} stderr line(s), not one 'error: ' line")
    elif outcome in (ERROR, EITHER):
        for text in call.named:
            if text not in lines[0]:
                problems.append(f"the error line does not name {text!r}")
    return problems


def _loose_json(outputs: tuple[Path, ...]) -> list[str]:
    """JSON files among ``outputs`` that hold NaN or Infinity (not strict JSON)."""
    problems = []
    for output in outputs:
        paths = [output] if Path(output).is_file() else Path(output).rglob("*.json")
        for path in paths:
            if path.suffix != ".json" or not path.is_file():
                continue
            try:
                json.loads(path.read_text(), parse_constant=_refuse_constant)
            except ValueError as error:
                problems.append(f"{path.name} is not strict JSON ({error})")
    return problems


def _refuse_constant(name: str):
    raise ValueError(f"holds {name}")
