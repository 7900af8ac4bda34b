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

    from pipelines import registry, runner
    from tuning.hypermodel import PipelineHyperModel
    from tuning.search import make_tuner, search

    partial = Path(argv[0])
    resolved = runner.resolved_from_run(partial)  # config.json: the experiment, untuned
    experiment, config = resolved.experiment, resolved.config
    tuning = experiment.tuning
    pipeline = registry.load_pipeline(resolved.name)
    keras.utils.set_random_seed(experiment.seed)
    if experiment.deterministic:
        tf.config.experimental.enable_op_determinism()
    splits = pipeline.load_data(config, resolved.data, experiment.seed)
    hypermodel = PipelineHyperModel(pipeline, config, splits, resolved.space)
    folder = partial / "tuning" / "workers" / os.environ["KERASTUNER_TUNER_ID"]
    epochs = tuning.max_epochs or config.tune_epochs
    tuner = make_tuner(
        hypermodel,
        tuning.tuner,
        resolved.max_trials,
        epochs,
        folder,
        experiment.seed,
        resume=False,
        objective=tuning.objective,
    )
    search(tuner, epochs, experiment.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
