"""Run directories: work in ``<dir>.partial``, rename into place when finished.

A killed or failed run therefore never leaves a directory that looks finished,
and ``runs/NAME/latest`` always points at a finished run.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any

from pipelines.errors import UserError

PARTIAL_SUFFIX = ".partial"


def new_run_dir(name: str, out: str | None, root: Path = Path("runs")) -> Path:
    """The final path of a new run (``--out`` or ``runs/NAME/RUN_ID``); UserError if taken."""
    if out:
        final = Path(out)
        if final.exists():
            raise UserError(f"--out {final} already exists; choose a new folder")
        if partial_of(final).exists():
            raise UserError(
                f"{partial_of(final)} holds an interrupted run: add --resume, or remove it"
            )
        return final
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    final = root / name / stamp
    suffix = 1
    while final.exists() or partial_of(final).exists():
        suffix += 1
        final = root / name / f"{stamp}-{suffix}"
    return final


def partial_of(final: Path) -> Path:
    """Where a run works until it finishes."""
    return final.with_name(final.name + PARTIAL_SUFFIX)


def final_of(partial: Path) -> Path:
    """The finished path of a partial run directory."""
    return partial.with_name(partial.name.removesuffix(PARTIAL_SUFFIX))


def find_interrupted(name: str, out: str | None, root: Path = Path("runs")) -> Path:
    """The partial directory ``--resume`` continues: ``--out``'s, else NAME's newest."""
    if out:
        candidates = [partial_of(Path(out))]
    else:
        candidates = sorted((root / name).glob("*" + PARTIAL_SUFFIX), key=os.path.getmtime)
    candidates = [c for c in candidates if (c / "config.json").is_file()]
    if not candidates:
        where = partial_of(Path(out)) if out else root / name / ("*" + PARTIAL_SUFFIX)
        raise UserError(f"--resume: no interrupted run found at {where}")
    return candidates[-1]


def finish(partial: Path, link_latest: bool) -> Path:
    """Rename a completed partial directory into place; optionally point ``latest`` at it."""
    final = final_of(partial)
    os.replace(partial, final)
    if not link_latest:
        return final
    latest = final.parent / "latest"
    temporary = final.parent / ".latest.tmp"
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    temporary.symlink_to(final.name)
    os.replace(temporary, latest)
    return final


def write_json(path: Path, value: Any) -> None:
    """Write JSON atomically (temporary file, then rename)."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(value, indent=2, sort_keys=False, default=_plain) + "\n")
    os.replace(temporary, path)


def read_json(path: Path) -> Any:
    """Read a JSON file of a run; UserError naming the file if it is missing or broken."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path} not found: is {path.parent} a run directory?") from None
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not valid JSON ({err})") from None


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, tuple | set):
        return list(value)
    return str(value)
