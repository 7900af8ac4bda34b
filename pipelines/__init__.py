"""End-to-end recurrent-network pipelines; ``python -m pipelines --help``.

``from pipelines import run`` runs an experiment from Python (``pipelines.api``).
"""

from pipelines.api import RunResult, run

__all__ = ["RunResult", "run"]
