"""What a command prints on stdout: the project's own lines and its progress bars.

stderr is kept for the one ``error:`` line. Every line a run prints is either a progress
line (``[rnn-suite] ...``), a progress bar (shown only on a terminal, never with
``--quiet``) or a results table (``|``-delimited markdown). ``--verbose`` lets TensorFlow's
and absl's own logging through as well. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from tqdm import tqdm

PREFIX = "[rnn-suite]"
# Epoch-log keys printed first, in this order; the rest follow alphabetically.
_FIRST_KEYS = ("loss", "val_loss")


@dataclasses.dataclass
class OutputMode:
    """How much a command prints: ``quiet`` hides progress bars, ``verbose`` lets
    TensorFlow's own logging through."""

    quiet: bool = False
    verbose: bool = False


MODE = OutputMode()


def configure(*, quiet: bool = False, verbose: bool = False) -> None:
    """Set the output mode of this process (the CLI's ``--quiet`` and ``--verbose``)."""
    MODE.quiet = quiet
    MODE.verbose = verbose


def bars_shown() -> bool:
    """Whether progress bars are drawn: stdout is a terminal and ``--quiet`` is not given."""
    return not MODE.quiet and sys.stdout.isatty()


def keras_verbose() -> int:
    """Keras's ``verbose`` for fit: its progress bar (rate, time left) where bars are shown,
    else nothing (the trainer then logs one line per epoch)."""
    return 1 if bars_shown() else 0


def log(message: str) -> None:
    """Print one progress line."""
    print(f"{PREFIX} {message}", file=sys.stdout, flush=True)


class ProjectLineFormatter(logging.Formatter):
    """A log record as one of the project's lines: ``[rnn-suite] message``, with
    ``warning:`` or ``error:`` before it at those levels; the record's traceback follows
    only with ``--verbose``."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            message = f"{record.levelname.lower()}: {message}"
        if record.exc_info and MODE.verbose:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        elif record.exc_info:
            error = record.exc_info[1]
            message = f"{message}: {type(error).__name__}: {error}"
        return f"{PREFIX} {message}"


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` outside ``--verbose``: a library's warning as one of the
    project's lines, without the library's file and source line."""
    log(f"warning: {category.__name__}: {str(message).splitlines()[0]}")


def bar(
    iterable: Iterable[Any] | None = None,
    *,
    description: str,
    total: int | None = None,
    unit: str = " items",
    scaled: bool = False,
) -> tqdm:
    """A progress bar with rate and time left over ``iterable`` (or updated by hand),
    drawn only where ``bars_shown()``; ``scaled`` shows counts as k, M, G (for bytes)."""
    return tqdm(
        iterable,
        desc=f"{PREFIX} {description}",
        total=total,
        unit=unit,
        unit_scale=scaled,
        file=sys.stdout,
        disable=not bars_shown(),
        dynamic_ncols=True,
        leave=False,
    )


def epoch_line(epoch: int, epochs: int, seconds: float, logs: Mapping[str, Any]) -> str:
    """One epoch's summary line: ``epoch 2/10 (3.1 s): loss 0.4512, val_loss ...``."""
    keys = [k for k in _FIRST_KEYS if k in logs] + sorted(k for k in logs if k not in _FIRST_KEYS)
    values = ", ".join(f"{key} {_number(logs[key])}" for key in keys)
    return f"epoch {epoch}/{epochs} ({seconds:.1f} s): {values}"


def _number(value: Any) -> str:
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return str(value)
