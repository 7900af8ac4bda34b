"""Progress lines of a run, on stdout (stderr is kept for the one ``error:`` line)."""

import sys


def log(message: str) -> None:
    """Print one progress line."""
    print(f"[rnn-suite] {message}", file=sys.stdout, flush=True)
