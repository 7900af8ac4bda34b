"""Run directories: work in ``<dir>.partial``, rename into place when finished.

A killed or failed run therefore never leaves a directory that looks finished,
and ``runs/NAME/latest`` always points at a finished run.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import gc
import json
import os
import resource
import shutil
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipelines import strict_json
from pipelines.errors import UserError

PARTIAL_SUFFIX = ".partial"
# Writes the file system refuses (disk full, quota, file-size limit, permission, read-only):
# a command stops with one error line naming the file; a run keeps its partial folder.
WRITE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM, errno.EROFS}
)
# What a finished run always holds; an interrupted one (its .partial folder) may lack them.
FINISHED_FILES = ("config.json", "metrics.json", "model.keras", "saved_model/saved_model.pb")


def new_run_dir(name: str, out: str | None, root: Path = Path("runs")) -> Path:
    """The final path of a new run: ``--out``, or a free ``runs/NAME/RUN_ID``.

    Only picks the path: ``check_new_run_dir`` refuses one that is taken, once its lock
    is held (so a live run is reported as in use, not as interrupted).
    """
    if out:
        return Path(out)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    final = root / name / stamp
    suffix = 1
    while os.path.lexists(final) or partial_of(final).exists():
        suffix += 1
        final = root / name / f"{stamp}-{suffix}"
    return final


def check_new_run_dir(final: Path) -> None:
    """UserError unless ``final`` and its partial folder are free for a new run."""
    if final.is_symlink() and not final.exists():
        raise UserError(
            f"--out {final} is a symbolic link to {os.readlink(final)}, which does not exist; "
            "choose a new folder"
        )
    if os.path.lexists(final):
        kind = "folder" if final.is_dir() else "file"
        raise UserError(f"--out {final} already exists (a {kind}); choose a new folder")
    if partial_of(final).exists():
        raise UserError(f"{partial_of(final)} holds an interrupted run: add --resume, or remove it")


def check_writable(folder: Path, what: str) -> None:
    """UserError naming ``what`` and the cause unless files can be created in ``folder``.

    A folder still to be made is checked at its nearest existing ancestor, which must be
    a folder; nothing is left behind (the probe file is removed, no folder is made).
    """
    existing = folder
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if existing.is_symlink() and not existing.exists():
        raise UserError(
            f"{what}: {existing} is a symbolic link to {os.readlink(existing)}, which does "
            "not exist"
        )
    if not existing.is_dir():
        raise UserError(f"{what}: {existing} is a file, not a folder")
    probe = existing / f".rnn-suite-probe-{os.getpid()}"
    try:
        probe.touch(exist_ok=False)
        probe.unlink()
    except OSError as error:
        raise UserError(f"{what}: cannot write in {existing} ({error.strerror})") from None


def write_failure(error: BaseException) -> OSError | None:
    """The OSError behind ``error`` (itself, or what it was raised from) when it is a write
    the file system refused (``WRITE_ERRNOS``); None for anything else."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in WRITE_ERRNOS:
            return current
        current = current.__cause__ or current.__context__
    return None


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Make an OSError raised while writing ``path`` name it, with the plain cause.

    Errors of file objects and of HDF5 carry no file name (HDF5's a message of many lines);
    the error raised instead is ``OSError(errno, strerror, path)``. The failed writer's
    frames are cleared first, so the handles it left open are freed here, quietly, rather
    than complaining later when the garbage collector gets to them.
    """
    try:
        yield
    except OSError as error:
        if error.errno is None:
            raise
        number = error.errno
        hook = sys.unraisablehook
        sys.unraisablehook = lambda unraisable: None
        try:
            traceback.clear_frames(error.__traceback__)
            del error
            gc.collect()
        finally:
            sys.unraisablehook = hook
        raise OSError(number, os.strerror(number), str(path)) from None


def check_room(path: Path, size: int) -> None:
    """OSError (ENOSPC or EFBIG, naming ``path``) when ``size`` bytes cannot be written to
    ``path``: less free space on its file system, or a smaller file-size limit.

    For writers that cannot fail cleanly: HDF5 may crash the process when a write fails
    midway, so its files are checked before they are written.
    """
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and size > limit:
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG), str(path))
    existing = next(parent for parent in (path, *path.parents) if parent.exists())
    if shutil.disk_usage(existing).free < size:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


@contextlib.contextmanager
def parents_made(path: Path) -> Iterator[None]:
    """Make ``path``'s missing parent folders for the ``with`` block; those still empty at
    its end are removed again, so a run refused before it wrote anything leaves nothing."""
    missing = []
    parent = path.parent
    while not os.path.lexists(parent) and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield
    finally:
        for folder in missing:  # innermost first
            with contextlib.suppress(OSError):
                folder.rmdir()


def resume_hint(final: Path) -> str:
    """How to continue the interrupted run of ``final``."""
    return f"'rnn-suite run --resume --out {final}' continues it"


def finished_run(run: Path, files: tuple[str, ...] = FINISHED_FILES) -> Path:
    """``run`` if it is a finished run directory holding ``files``; UserError otherwise.

    A ``.partial`` folder, or a final path whose run is still partial, is refused with the
    command that continues it. ``FINISHED_FILES`` are what a finished run always has.
    """
    if run.name.endswith(PARTIAL_SUFFIX):
        raise UserError(f"{run} has not finished; {resume_hint(final_of(run))}")
    if not run.exists() and partial_of(run).is_dir():
        raise UserError(
            f"{run} has not finished (it is still {partial_of(run)}); {resume_hint(run)}"
        )
    if not run.is_dir():
        raise UserError(f"run folder {run} not found")
    for relative in files:
        if not (run / relative).is_file():
            raise UserError(
                f"{run} is not a finished run: {run / relative} is missing; if it was "
                f"interrupted, {resume_hint(run)}"
            )
    return run


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
    """Write strict JSON (no NaN or infinity) atomically: temporary file, then rename.

    A value that is not finite is a ``ValueError`` naming the file and the key, raised
    before anything is written.
    """
    try:
        text = strict_json.dumps(value, indent=2, sort_keys=False, default=_plain) + "\n"
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
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
    return strict_json.plain(value)
