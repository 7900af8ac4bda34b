"""``report.md``: what a person reads after a run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.base import Evaluation
from pipelines.plotting import plot_learning_curves
from pipelines.sources import markdown_row
from pipelines.strict_json import REASON_SUFFIX, is_metric_key
from tuning.space import Dimension


def metrics_frame(metrics: dict[str, Any]) -> pd.DataFrame:
    """One row for the model and one per baseline, same metric columns (reasons left out)."""
    rows = {
        "model": metrics["test"],
        **{f"baseline: {k}": v for k, v in metrics["baselines"].items()},
    }
    rows = {name: _metric_values(values) for name, values in rows.items()}
    return pd.DataFrame.from_dict(rows, orient="index")


def metrics_table(metrics: dict[str, Any]) -> str:
    """The test metrics beside the baselines, as a Markdown table; an undefined metric
    shows as ``n/a``, with its reason below the table."""
    frame = metrics_frame(metrics).astype(object)
    table = frame.where(frame.notna(), None).to_markdown(floatfmt=".4f", missingval="n/a")
    notes = _undefined_notes(metrics)
    return table + ("\n\n" + "\n".join(notes) if notes else "")


def _metric_values(values: dict[str, Any]) -> dict[str, Any]:
    """The metrics of one row, ``null`` ones as NaN (shown ``n/a``), reasons dropped."""
    return {k: float("nan") if v is None else v for k, v in values.items() if is_metric_key(k)}


def _undefined_notes(metrics: dict[str, Any]) -> list[str]:
    """One line per distinct reason a metric is undefined, naming the metric."""
    rows = [metrics["test"], *metrics["baselines"].values()]
    reasons = {
        key.removesuffix(REASON_SUFFIX): reason
        for row in rows
        for key, reason in row.items()
        if not is_metric_key(key)
    }
    return [f"n/a: {name} is {reason}" for name, reason in reasons.items()]


def write_report(run_dir: Path, metrics: dict[str, Any], config, evaluation: Evaluation) -> None:
    """Write ``report.md`` and ``learning_curves.png`` into ``run_dir``."""
    dataset = metrics["dataset"]
    lines = [
        f"# {metrics['pipeline']} run `{run_dir.name.removesuffix('.partial')}`",
        "",
        f"Data: **{dataset['name']}** — {dataset['source']}.  ",
        "Splits (examples): "
        + ", ".join(f"{k} {v:,}" for k, v in dataset["splits"].items())
        + f"; seed {metrics['seed']}.",
        "",
        "## Test metrics beside the baselines (same test split, same run)",
        "",
        metrics_table(metrics),
        "",
        f"Training: {metrics.get('epochs_run')} epochs in {metrics.get('train_seconds')} s "
        f"({metrics.get('train_samples_per_second')} training examples/s).",
        "",
    ]
    if plot_learning_curves(run_dir / "history.csv", run_dir / "learning_curves.png"):
        lines += ["## Learning curves", "", "![learning curves](learning_curves.png)", ""]
    for title, file_name in evaluation.plots.items():
        lines += [f"## {title}", "", f"![{title}]({file_name})", ""]
    if evaluation.report:
        lines += [evaluation.report, ""]
    lines += _tuning_section(run_dir / "tuning")
    lines += [
        "## Configuration",
        "",
        "```",
        *(f"{k} = {v!r}" for k, v in config.to_dict().items()),
        "```",
        "",
    ]
    (run_dir / "report.md").write_text("\n".join(lines))


def _tuning_section(folder: Path) -> list[str]:
    """The searched space, objective and best trials, when the run was tuned."""
    if not (folder / "search.json").is_file():
        return []
    search = json.loads((folder / "search.json").read_text())
    objective = search["objective"]
    lines = [
        "## Hyperparameter search",
        "",
        f"{search['tuner']} search for **{objective['name']}** ({objective['direction']}), "
        "over this space:",
        "",
        "| setting | values |",
        "| --- | --- |",
    ]
    for name, dimension in search["space"].items():
        lines.append(markdown_row([f"`{name}`", Dimension(**dimension).describe()]))
    if (folder / "trials.csv").is_file():
        best = pd.read_csv(folder / "trials.csv").head(5)
        lines += [
            "",
            "Best trials (`tuning/trials.csv` has all):",
            "",
            best.to_markdown(index=False),
        ]
    return [*lines, ""]
