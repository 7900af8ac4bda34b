"""What the file predictions of the media pipelines share (``pipelines/*/files.py``): walking
a folder of input files, the reason a bad file gives, and one traced function per model."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pipelines.errors import UserError


def input_files(root: Path, suffixes: tuple[str, ...], what: str) -> Iterator[tuple[Path, str]]:
    """``(path, "")`` for each file of ``root`` (a folder, walked in sorted order, or one file)
    whose suffix is one of ``suffixes``; ``(path, reason)`` for one that cannot be read.

    Never leaves ``root``: a link whose target lies outside it is reported, not followed, and
    links to folders are not descended into. What is not a regular file (a FIFO, a socket, a
    device) and files of other suffixes are passed over. UserError for a ``root`` that is
    neither such a file nor a folder, and for a folder that holds none (``what`` names them).
    """
    if root.is_file() and not root.is_dir():
        if root.suffix.lower() not in suffixes:
            raise UserError(f"--input {root}: expected {what} ({', '.join(suffixes)}) or a folder")
        yield root, ""
        return
    if not root.is_dir():
        raise UserError(f"--input {root}: no such file or folder")
    found = 0
    inside = root.resolve()
    for folder, subfolders, names in os.walk(root, followlinks=False):
        subfolders.sort()
        for name in sorted(names):
            path = Path(folder) / name
            if path.suffix.lower() not in suffixes:
                continue
            reason = _unreadable(path, inside)
            if reason is None:
                continue
            found += 1
            yield path, reason
    if not found:
        raise UserError(f"--input {root}: the folder holds no {what} ({', '.join(suffixes)})")


def _unreadable(path: Path, inside: Path) -> str | None:
    """Why ``path`` cannot be read ("" when it can); None for what is passed over."""
    if path.is_symlink() and not path.resolve().is_relative_to(inside):
        return "a link to outside the input folder; not followed"
    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        return f"cannot be read ({err.strerror or type(err).__name__})"
    return "" if stat.S_ISREG(mode) else None


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
