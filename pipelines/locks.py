"""One writer per folder: an exclusive ``filelock`` lock beside it, naming its holder.

``hold(target)`` locks ``<target>.lock`` (``fcntl.flock`` through ``filelock.FileLock``)
and writes the holder's process id into it. A second process is refused with
``<target> is in use by process N``. The operating system drops the lock when its
holder dies, so the file a killed process leaves behind (its id still inside) does
not block anyone: only a lock that cannot be taken counts as held.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import filelock

from pipelines.errors import UserError

LOCK_SUFFIX = ".lock"
# A holder writes its id right after taking the lock: how often a refused process reads
# the file before it reports the holder as unknown.
HOLDER_READ_ATTEMPTS = 20
HOLDER_READ_PAUSE_SECONDS = 0.05


def lock_path(target: Path) -> Path:
    """The lock file of ``target`` (a real path): beside it, ``<target>.lock``."""
    return target.with_name(target.name + LOCK_SUFFIX)


@contextlib.contextmanager
def hold(target: Path, lock_file: Path | None = None, wait_seconds: float = 0) -> Iterator[None]:
    """Hold the exclusive lock of ``target`` for the ``with`` block.

    ``lock_file`` defaults to ``lock_path(target)``; ``wait_seconds`` is how long to wait
    for another holder to finish. UserError ``<target> is in use by process N`` when the
    lock stays held, or naming the lock file when it cannot be created.
    """
    path = lock_file or lock_path(_real(target))
    lock = filelock.FileLock(str(path), timeout=wait_seconds, on_acquired=_write_holder)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise UserError(f"{target} is in use by {_holder(path)}") from None
    except OSError as error:
        raise UserError(f"cannot create the lock file {path}: {error.strerror}") from None
    try:
        yield
    finally:
        # Removed while still locked: a process that opened the old file before this
        # finds it unlinked once it gets the lock, and filelock then starts over.
        path.unlink(missing_ok=True)
        lock.release()


def _real(target: Path) -> Path:
    """``target``'s real path, so that a run reached through a link (``runs/NAME/latest``)
    has one lock; a name not there yet (or a dangling link) is kept, in its real folder."""
    return target.resolve() if target.exists() else target.parent.resolve() / target.name


def _write_holder(descriptor: int) -> None:
    """Record this process's id in the lock file just taken."""
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)


def _holder(path: Path) -> str:
    """``process N`` from the lock file a live holder has written, else ``another process``."""
    for _ in range(HOLDER_READ_ATTEMPTS):
        try:
            text = path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            text = ""
        if text.isdigit():
            return f"process {text}"
        time.sleep(HOLDER_READ_PAUSE_SECONDS)  # taken, but the id not yet written
    return "another process"


def check_free(target: Path) -> None:
    """UserError ``<target> is in use by process N`` if another process holds its lock."""
    if lock_path(_real(target)).exists():
        with hold(target):
            pass
