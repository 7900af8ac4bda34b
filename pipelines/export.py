"""Writing a serving SavedModel whose signatures take raw inputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import keras

import layers


def write_export(model: keras.Model, endpoints: dict[str, Callable], path: Path) -> None:
    """Export ``model`` with named ``tf.function`` endpoints (``serving_default`` first).

    Traced and written inside ``layers.serving_kernels()``, so that the SavedModel
    holds only TensorFlow's standard ops and serves with TensorFlow alone.
    ``add_endpoint`` traces each endpoint, so the block covers it as well as
    ``write_out``. An endpoint must not have been traced before, outside the block:
    its cached trace would be reused.
    """
    with layers.serving_kernels():
        archive = keras.export.ExportArchive()
        archive.track(model)
        for name, function in endpoints.items():
            archive.add_endpoint(name, function)
        archive.write_out(str(path), verbose=False)
