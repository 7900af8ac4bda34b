"""A Keras Tuner worker of a run's distributed search: ``python -m tuning.worker PARTIAL_DIR``.

Reads the run's ``config.json``, loads the same data, and runs trials that the
chief oracle (``KERASTUNER_ORACLE_IP``/``PORT``) hands it, in its own folder
``PARTIAL_DIR/tuning/workers/$KERASTUNER_TUNER_ID``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    """Run the trials the chief hands out; returns the exit status."""
    import keras
    import tensorflow as tf

    from pipelines import registry, rundir
    from tuning.hypermodel import PipelineHyperModel
    from tuning.search import make_tuner, search

    partial = Path(argv[0])
    saved = rundir.read_json(partial / "config.json")
    request = saved["request"]
    pipeline = registry.load_pipeline(saved["pipeline"])
    config = pipeline.config_class.from_dict(saved["config"])
    keras.utils.set_random_seed(request["seed"])
    if request.get("deterministic"):
        tf.config.experimental.enable_op_determinism()
    splits = pipeline.load_data(config, request["data"], request["seed"])
    hypermodel = PipelineHyperModel(pipeline, config, splits, pipeline.search_space)
    folder = partial / "tuning" / "workers" / os.environ["KERASTUNER_TUNER_ID"]
    tuner = make_tuner(
        hypermodel,
        request["tuner"],
        config.max_trials,
        config.tune_epochs,
        folder,
        request["seed"],
        resume=False,
    )
    search(tuner, config.tune_epochs, request["seed"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
