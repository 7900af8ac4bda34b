"""What the folder loaders share (training data folders and the file predictions of
``pipelines/*/files.py``): one walker of an input folder, the reason a bad file gives, and one
traced function per model.

The walker never leaves the folder it is given: a link whose target lies outside it is
reported, not followed, links to folders are not descended into, and what is not a regular
file (a FIFO, a socket, a device) is passed over with a warning and never opened (a FIFO
would block the read forever). It takes at most ``MAX_INPUT_FILES`` files.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pipelines.errors import UserError
from pipelines.progress import log

MAX_INPUT_FILES = 100_000  # files one input folder may hold, so that its listing stays small
OUTSIDE_LINK = "a link to outside the input folder; not followed"


def walk_files(
    root: Path, suffixes: tuple[str, ...], max_depth: int | None = None
) -> Iterator[tuple[Path, str]]:
    """``(path, "")`` for each regular file under the folder ``root`` (sorted, subfolders to
    ``max_depth`` levels, None: all) whose suffix is one of ``suffixes``; ``(path, reason)``
    for one that cannot be read or lies outside ``root``. Other entries are passed over, a
    FIFO, socket, device or link to a folder with a warning. UserError past
    ``MAX_INPUT_FILES`` files."""
    inside = root.resolve()
    taken = 0
    for folder, subfolders, names in os.walk(root, followlinks=False):
        depth = len(Path(folder).relative_to(root).parts) + 1
        _prune(Path(folder), subfolders, max_depth is not None and depth >= max_depth)
        for name in sorted(names):
            path = Path(folder) / name
            if path.suffix.lower() not in suffixes:
                continue
            reason = _unreadable(path, inside)
            if reason is None:
                continue
            taken += 1
            if taken > MAX_INPUT_FILES:
                raise UserError(
                    f"{root}: the folder holds more than {MAX_INPUT_FILES:,} files of "
                    f"{', '.join(suffixes)}, the limit of one input folder; split it"
                )
            yield path, reason


def _prune(folder: Path, subfolders: list[str], deepest: bool) -> None:
    """Sort ``subfolders`` in place for the walk; drop links (with a warning) and, at the
    deepest level, all of them."""
    kept = []
    for name in sorted(subfolders):
        if (folder / name).is_symlink():
            log(f"warning: {folder / name}: a link to a folder; not followed")
        elif not deepest:
            kept.append(name)
    subfolders[:] = kept


def _unreadable(path: Path, inside: Path) -> str | None:
    """Why ``path`` cannot be read ("" when it can); None for what is passed over."""
    if path.is_symlink() and not path.resolve().is_relative_to(inside):
        return OUTSIDE_LINK
    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        return f"cannot be read ({err.strerror or type(err).__name__})"
    if stat.S_ISREG(mode):
        return ""
    log(f"warning: {path}: not a regular file (a FIFO, socket or device); passed over")
    return None


def input_files(root: Path, suffixes: tuple[str, ...], what: str) -> Iterator[tuple[Path, str]]:
    """``(path, "")`` for each file of ``root`` (a folder, walked by ``walk_files``, or one
    file) whose suffix is one of ``suffixes``; ``(path, reason)`` for one that cannot be read.

    UserError for a ``root`` that is neither such a file nor a folder, and for a folder that
    holds none (``what`` names them).
    """
    if root.is_file() and not root.is_dir():
        if root.suffix.lower() not in suffixes:
            raise UserError(f"--input {root}: expected {what} ({', '.join(suffixes)}) or a folder")
        yield root, ""
        return
    if not root.is_dir():
        raise UserError(f"--input {root}: no such file or folder")
    found = 0
    for path, reason in walk_files(root, suffixes):
        found += 1
        yield path, reason
    if not found:
        raise UserError(f"--input {root}: the folder holds no {what} ({', '.join(suffixes)})")


def folder_files(root: Path, suffixes: tuple[str, ...], max_depth: int | None = None) -> list[Path]:
    """The readable files of a training data folder (``walk_files``); the others are passed
    over with a warning naming each and why."""
    files = []
    for path, reason in walk_files(root, suffixes, max_depth):
        if reason:
            log(f"warning: {path}: {reason}; passed over")
        else:
            files.append(path)
    return files


def reason_of(error: UserError, path: Path) -> str:
    """The message of a UserError about ``path``, without the path it begins with."""
    return str(error).removeprefix(f"{path}: ")


class TracedOnce:
    """``make(model, info)`` built once for the model in use and reused for every batch
    (``predict_items`` runs once per batch; a new ``tf.function`` would trace again)."""

    def __init__(self, make: Callable[[Any, Any], Callable]):
        self.make = make
        self._model: Any = None
        self._function: Callable | None = None

    def __call__(self, model, info) -> Callable:
        """The function for ``model``, built at its first batch."""
        if self._function is None or self._model is not model:
            self._model, self._function = model, self.make(model, info)
        return self._function
