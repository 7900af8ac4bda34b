"""Writing a serving SavedModel whose signatures take raw inputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import keras


def write_export(model: keras.Model, endpoints: dict[str, Callable], path: Path) -> None:
    """Export ``model`` with named ``tf.function`` endpoints (``serving_default`` first)."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, function in endpoints.items():
        archive.add_endpoint(name, function)
    archive.write_out(str(path), verbose=False)
