"""Fixtures of the hostile corpus (finished runs to read) and its closing table.

Each case records whether it was clean; at the end of the session the table of cases per
suite, pipeline and class (clean, failed) is printed and written, with every failing case
and what it printed, to ``build/hostile-corpus.json``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.hostile import cases_cli, report
from tests.hostile.cases_serving import BODY_LIMIT, MODELS, SERVED_MAX_ITEMS
from tests.hostile.runner import run_in_process
from tests.serving import exports
from tests.serving.server_process import running_server

REPORT_PATH = REPO / "build" / "hostile-corpus.json"


class FinishedRuns:
    """One smoke run per pipeline on tiny data, trained in-process the first time a case asks
    for it; each case gets its own copy (cases may write into a run or rename it)."""

    def __init__(self, root: Path):
        self.root = root
        self.runs: dict[str, Path] = {}

    def copy(self, pipeline: str, dest: Path) -> Path:
        """A copy of ``pipeline``'s finished run at ``dest``."""
        shutil.copytree(self._finished(pipeline), dest, symlinks=True)
        return dest

    def _finished(self, pipeline: str) -> Path:
        if pipeline not in self.runs:
            folder = Path(tempfile.mkdtemp(prefix=f"{pipeline}-", dir=self.root))
            out = folder / "run"
            ending = run_in_process(cases_cli.run_argv(pipeline, folder, out), folder)
            if ending.status != 0:
                why = ending.exception or ending.stderr[-3000:]
                raise RuntimeError(f"the {pipeline} smoke run a case reads failed:\n{why}")
            self.runs[pipeline] = out
        return self.runs[pipeline]


@pytest.fixture(scope="session")
def finished_runs(tmp_path_factory) -> FinishedRuns:
    """Finished smoke runs of every pipeline, made on first use."""
    return FinishedRuns(tmp_path_factory.mktemp("finished-runs"))


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    """The model server on a folder of small exports of all six pipelines, started once;
    each model's serving example."""
    root = tmp_path_factory.mktemp("hostile-models")
    examples = {name: exports.export(name, root / name / "1") for name in MODELS}
    for name in MODELS:
        limits = root / name / "1" / "assets.extra" / "limits.json"
        if limits.is_file():
            SERVED_MAX_ITEMS[name] = json.loads(limits.read_text())["max_items"]
    with running_server(root, max_body_bytes=BODY_LIMIT) as server:
        yield server, examples


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print the corpus table and write it, with the failing cases, as JSON."""
    if not report.RESULTS:
        return
    rows: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for result in report.RESULTS:
        rows[(result["suite"], result["pipeline"], result["kind"])][
            0 if result["clean"] else 1
        ] += 1
    write = terminalreporter.write_line
    terminalreporter.section("hostile corpus")
    write(f"{'suite':<8} {'pipeline':<15} {'class':<30} {'cases':>5} {'clean':>5} {'failed':>6}")
    totals = [0, 0]
    for (suite, pipeline, kind), (clean, failed) in sorted(rows.items()):
        write(f"{suite:<8} {pipeline:<15} {kind:<30} {clean + failed:>5} {clean:>5} {failed:>6}")
        totals[0] += clean
        totals[1] += failed
    write(f"{'total':<55} {sum(totals):>5} {totals[0]:>5} {totals[1]:>6}")
    REPORT_PATH.parent.mkdir(exist_ok=True)
    table = [
        {"suite": s, "pipeline": p, "class": k, "cases": c + f, "clean": c, "failed": f}
        for (s, p, k), (c, f) in sorted(rows.items())
    ]
    failing = [result for result in report.RESULTS if not result["clean"]]
    peaks = [result["peak_kib"] for result in report.RESULTS if "peak_kib" in result]
    if peaks:
        write(f"memory cases: peak resident memory {min(peaks):,} to {max(peaks):,} KiB")
    summary = {"table": table, "failing": failing, "memory_peaks_kib": sorted(set(peaks))}
    REPORT_PATH.write_text(json.dumps(summary, indent=1) + "\n")
    write(f"table and failing cases: {REPORT_PATH}")
