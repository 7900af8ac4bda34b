"""The Python API: run an experiment from a dict, a file or an ``Experiment``.

```python
from pipelines import run

result = run({"pipeline": "sentiment", "preset": "smoke", "settings": {"units": 16}})
result.metrics["test"]["accuracy"], result.run_dir
```
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pipelines import experiment as experiments


@dataclasses.dataclass(frozen=True)
class RunResult:
    """A finished run: its folder and its metrics.

    Attributes:
        run_dir: the finished run directory.
        metrics: ``metrics.json``: the test metrics, the baselines', the data set.
    """

    run_dir: Path
    metrics: dict[str, Any]

    @property
    def config_file(self) -> Path:
        """``config.json``: the experiment file that reruns this run."""
        return self.run_dir / "config.json"

    @property
    def report(self) -> Path:
        """``report.md``: metrics beside baselines, plots."""
        return self.run_dir / "report.md"

    @property
    def model(self) -> Path:
        """``model.keras``: the trained Keras model."""
        return self.run_dir / "model.keras"

    @property
    def saved_model(self) -> Path:
        """``saved_model/``: the serving export."""
        return self.run_dir / "saved_model"


def run(
    experiment: Mapping[str, Any] | str | Path | experiments.Experiment,
    *,
    callbacks: Sequence[Any] = (),
    **overrides: Any,
) -> RunResult:
    """Run an experiment end to end and return its run directory and metrics.

    Args:
        experiment: a mapping in the experiment-file shape, the path of a YAML or JSON
            experiment file, or an ``Experiment``.
        callbacks: extra Keras callbacks given to every fit of the run.
        **overrides: top-level experiment keys that replace the file's (``out``, ``seed``,
            ``preset``, ``data``, ``settings``, ...).

    Raises:
        pipelines.errors.UserError: for a mistake in the experiment or its data.
    """
    if isinstance(experiment, str | Path):
        values = experiments.read_file(experiment)
        where = str(experiment)
    elif isinstance(experiment, experiments.Experiment):
        values, where = experiment.model_dump(exclude_none=True), "experiment"
    else:
        values, where = dict(experiment), "experiment"
    parsed = experiments.parse({**values, **overrides}, where)
    resolved = experiments.resolve(parsed, where)

    from pipelines import runner

    run_dir = runner.run(runner.RunRequest(resolved, callbacks=tuple(callbacks)))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return RunResult(run_dir=run_dir, metrics=metrics)
