"""The documentation: generated parts up to date, every error classed, make help complete."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from pipelines import reference
from pipelines.errors import UserError
from tests.helpers import REPO

MAX_README_LINES = 200


def test_generated_parts_of_every_page_are_up_to_date():
    stale = [str(path.relative_to(REPO)) for path in reference.stale_pages()]
    assert stale == [], f"stale generated parts in {stale}: run `make reference`"


def test_every_user_error_site_falls_in_a_documented_class():
    sites = reference.error_sites()
    assert len(sites) > 100  # the walk found the code's raise sites
    # error_class raises, naming the message, when no class matches it.
    classes = {reference.error_class(message) for _, message in sites}
    assert classes == set(range(len(reference.ERROR_CLASSES))), "a class with no message"


def test_readme_is_short_and_no_page_points_outside_the_repository():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= MAX_README_LINES
    for page in reference.filled_pages():
        written = reference.BLOCK.sub("", page.read_text())  # the hand-written parts
        assert "../shared" not in written, f"{page} names a folder outside the repository"


def test_a_recorded_run_renders_beside_its_baselines(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    metrics = {
        "pipeline": "forecasting",
        "dataset": {"splits": {"train": 10, "validation": 2, "test": 3}},
        "test": {"mae": 1.5, "rmse": 2.0},
        "baselines": {"persistence": {"mae": 1.75, "rmse": 2.5}, "mean": {"mae": 3.0}},
    }
    (run / "metrics.json").write_text(json.dumps(metrics))
    config = {"pipeline": "forecasting", "preset": "default", "data": "builtin", "seed": 2}
    (run / "config.json").write_text(json.dumps(config))
    path = reference.record(run, folder=tmp_path / "results")
    assert path.name == "forecasting.json"
    table = reference.results_tables("forecasting", folder=tmp_path / "results")
    assert "`rnn-suite run forecasting --preset default --seed 2`" in table
    assert "| **model** | 1.5000 | 2.0000 |" in table
    assert "| baseline: mean | 3.0000 | n/a |" in table
    assert reference._headline(json.loads(path.read_text())) == ("mae", 1.5, "persistence", 1.75)


def test_runs_of_several_seeds_record_their_mean_and_spread(tmp_path):
    runs = []
    for seed, accuracy in ((0, 0.80), (1, 0.84), (2, 0.82)):
        run = tmp_path / f"run{seed}"
        (run / "evaluations" / "dev").mkdir(parents=True)
        config = {"pipeline": "sentiment", "preset": "default", "data": "tsv:t.tsv", "seed": seed}
        (run / "config.json").write_text(json.dumps(config))
        evaluated = {
            "pipeline": "sentiment",
            "evaluated_on": "tsv:dev.tsv",
            "test": {"accuracy": accuracy},
            "baselines": {"majority": {"accuracy": 0.5}},
        }
        (run / "evaluations" / "dev" / "metrics.json").write_text(json.dumps(evaluated))
        runs.append(run)
    path = reference.record(
        runs, "dev", folder=tmp_path / "results", evaluation="dev", command="see the example"
    )
    result = json.loads(path.read_text())
    assert result["seeds"] == [0, 1, 2] and result["evaluated_on"] == "tsv:dev.tsv"
    assert result["test"]["accuracy"] == pytest.approx(0.82)
    assert result["test_spread"]["accuracy"] == pytest.approx(0.02)
    table = reference.results_tables("sentiment", folder=tmp_path / "results")
    assert "mean of 3 seeds (0, 1, 2)" in table
    assert "| **model** | 0.8200 ± 0.0200 |" in table
    with pytest.raises(UserError, match="evaluation 'test' of run"):
        reference.record(runs[0], folder=tmp_path / "results", evaluation="test")


def test_a_run_that_is_not_finished_is_not_recorded(tmp_path):
    with pytest.raises(reference.UserError, match="not a finished run"):
        reference.record(tmp_path, folder=tmp_path / "results")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_help_lists_every_target_with_one_line():
    makefile = (REPO / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*?)(?<!\\)\n", makefile, re.MULTILINE | re.DOTALL)[1]
    phony = re.sub(r"\$\(addprefix (\S+?),\$\(PIPELINES\)\)", r"\1NAME", phony)
    targets = set(phony.replace("\\", " ").split())
    shown = subprocess.run(
        ["make", "-s", "--no-print-directory", "help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    listed = re.findall(r"^make (\S+) +\S", shown, re.MULTILINE)
    assert sorted(listed) == sorted(targets)
