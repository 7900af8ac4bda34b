"""Test-wide settings and fixtures: quiet TensorFlow logs in this process and in child
processes; untrained exports of every pipeline."""

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="session")
def untrained_exports(tmp_path_factory):
    """Pipeline name -> (pipeline, info, export folder) of an untrained model built from the
    pipeline's smoke config and hand-made data info; each written once, on first use."""
    from pipelines import registry
    from tests.serving.exports import record

    written = {}

    def export(name: str):
        if name not in written:
            pipeline = registry.load_pipeline(name)
            _, config, info = record(name)
            path = tmp_path_factory.mktemp(name) / "saved_model"
            pipeline.export(pipeline.build_model(config, info), info, path)
            written[name] = pipeline, info, path
        return written[name]

    return export
