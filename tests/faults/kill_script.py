"""A fault test's child run: the pipeline through ``runner.run``, SIGKILLed at one point.

    python -m tests.faults.kill_script KILL_AT REQUEST_JSON

``KILL_AT`` is ``train:K:B`` (right after batch B of the K-th fit of this process,
both counted from 1: tuning trials, then the final training), ``export`` (right
after the SavedModel is written), ``pause:K:B:PATH`` (not killed: after that batch it
creates ``PATH.ready`` and waits until ``PATH.go`` exists, so a test can act while the
run is live) or ``none``. ``REQUEST_JSON`` holds an experiment's
values (``pipelines.experiment``), plus ``"resume": true`` to continue the
interrupted run of its pipeline (or of its ``out``) and ``"distribute"``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import keras


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KillAfterBatch(keras.callbacks.Callback):
    """SIGKILL this process right after batch ``batch`` of its ``fit``-th fit.

    Keras Tuner deep-copies callbacks for every trial, so fits are counted on the class.
    """

    fits_started = 0

    def __init__(self, fit: int, batch: int):
        super().__init__()
        self.target = (fit, batch)
        self.fit = self.batches = 0

    def on_train_begin(self, logs=None):
        KillAfterBatch.fits_started += 1
        self.fit, self.batches = KillAfterBatch.fits_started, 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        if (self.fit, self.batches) == self.target:
            _die()


class PauseAfterBatch(KillAfterBatch):
    """Stop right after batch ``batch`` of the ``fit``-th fit until the test says go."""

    def __init__(self, fit: int, batch: int, signal_path: str):
        super().__init__(fit, batch)
        self.ready = Path(signal_path + ".ready")
        self.go = Path(signal_path + ".go")

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        if (self.fit, self.batches) == self.target:
            self.ready.touch()
            while not self.go.exists():
                time.sleep(0.1)


def kill_after_export(pipeline) -> None:
    """Make ``pipeline.export`` SIGKILL the process once the SavedModel is written."""
    export = pipeline.export

    def export_then_die(*args, **kwargs):
        export(*args, **kwargs)
        _die()

    pipeline.export = export_then_die


def make_request(fields: dict[str, Any]):
    """The runner's request for ``fields``: the one place that knows how it is built."""
    from pipelines import experiment, runner

    fields = dict(fields)
    distribute = fields.pop("distribute", "none")
    if fields.pop("resume", False):
        return runner.resume_request(fields["pipeline"], fields.get("out"), distribute)
    resolved = experiment.resolve(experiment.parse(fields))
    return runner.RunRequest(resolved, distribute=distribute)


def main(argv: list[str]) -> int:
    """Run the request of ``argv[1]``, killed at ``argv[0]``; returns the exit status."""
    from pipelines import registry, runner

    kill_at, request = argv[0], make_request(json.loads(argv[1]))
    kind, _, where = kill_at.partition(":")
    callbacks = []
    if kind == "train":
        fit, _, batch = where.partition(":")
        callbacks.append(KillAfterBatch(int(fit), int(batch)))
    elif kind == "pause":
        fit, batch, signal_path = where.split(":", 2)
        callbacks.append(PauseAfterBatch(int(fit), int(batch), signal_path))
    elif kind == "export":
        kill_after_export(registry.load_pipeline(request.name))
    elif kind != "none":
        raise ValueError(f"unknown kill point {kill_at!r}")
    request.callbacks = callbacks
    runner.run(request)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
