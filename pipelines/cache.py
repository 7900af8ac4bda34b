"""Where downloaded packages and parsed data are cached, shared by every pipeline."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Where downloaded packages and parsed data are cached (``$RNN_SUITE_CACHE``)."""
    default = Path.home() / ".cache" / "rnn_suite"
    path = Path(os.environ.get("RNN_SUITE_CACHE", default))
    path.mkdir(parents=True, exist_ok=True)
    return path
