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
    """A finished run: its folder, its metrics and the files a user reads next.

    Attributes:
        run_dir: the finished run directory.
        metrics: ``metrics.json``: the test metrics, the baselines', the data set.
        config_file: ``config.json``, the experiment file that reruns this run.
        report: ``report.md``: metrics beside baselines, plots.
        model: ``model.keras``: the trained Keras model.
        saved_model: ``saved_model/``: the serving export.
    """

    run_dir: Path
    metrics: dict[str, Any]
    config_file: Path
    report: Path
    model: Path
    saved_model: Path

    @classmethod
    def of(cls, run_dir: Path) -> RunResult:
        """The result of the finished run in ``run_dir``."""
        names = {"config_file": "config.json", "report": "report.md", "model": "model.keras"}
        return cls(
            run_dir=run_dir,
            metrics=json.loads((run_dir / "metrics.json").read_text()),
            saved_model=run_dir / "saved_model",
            **{field: run_dir / name for field, name in names.items()},
        )


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

    return RunResult.of(runner.run(runner.RunRequest(resolved, callbacks=tuple(callbacks))))
