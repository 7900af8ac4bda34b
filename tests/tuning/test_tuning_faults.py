"""Tuning across faults and processes, through real child processes (``kill_script``).

- A search SIGKILLed in its second trial and resumed keeps the finished trial as it
  was, runs the interrupted one again and ends with the trials asked for.
- ``--tune-workers 2``: Keras Tuner's distributed mode (a chief oracle and two workers
  on 127.0.0.1) runs every trial exactly once and gathers them in the run directory.
"""

from __future__ import annotations

import json

import pandas as pd

from tests.faults.helpers import KILLED, cli, script

TUNE = {
    "pipeline": "sentiment",
    "preset": "smoke",
    "seed": 2,
    "tuning": {
        "max_trials": 3,
        "objective": {"name": "val_accuracy", "direction": "max"},
        "space": {"units": {"choices": [4, 6]}, "cell": None, "depth": None},
    },
    "settings": {"max_examples": 200, "tune_epochs": 1, "epochs": 1},
    "out": "run",
}


def _trials(project):
    return {
        path.parent.name: json.loads(path.read_text())
        for path in sorted(project.glob("trial_*/trial.json"))
    }


def test_search_killed_mid_trial_resumes_keeping_finished_trials(tmp_path):
    killed = script(TUNE, cwd=tmp_path, kill_at="train:2:1")  # first batch of the 2nd trial
    assert killed.returncode == KILLED, killed.stderr[-3000:]
    assert not (tmp_path / "run").exists()
    project = tmp_path / "run.partial" / "tuning" / "search"
    before = _trials(project)
    finished = {k: v for k, v in before.items() if v["status"] == "COMPLETED"}
    assert len(finished) == 1 and len(before) == 2, {k: v["status"] for k, v in before.items()}
    texts = {k: (project / k / "trial.json").read_text() for k in finished}

    resumed = cli("run", "sentiment", "--resume", "--out", "run", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    project = tmp_path / "run" / "tuning" / "search"
    after = _trials(project)
    assert len(after) == 3 and all(t["status"] == "COMPLETED" for t in after.values())
    for name, text in texts.items():  # the finished trial is kept, not run again
        assert (project / name / "trial.json").read_text() == text
    interrupted = (set(before) - set(finished)).pop()
    assert after[interrupted]["hyperparameters"] == before[interrupted]["hyperparameters"]
    table = pd.read_csv(tmp_path / "run" / "tuning" / "trials.csv")
    assert len(table) == 3 and table["trial_id"].nunique() == 3
    assert set(table["units"]) <= {4, 6}
    assert (table["status"] == "COMPLETED").all()


def test_two_tuner_workers_run_every_trial_once(tmp_path):
    result = script(TUNE | {"tuning": TUNE["tuning"] | {"workers": 2}}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    tuning = tmp_path / "run" / "tuning"
    table = pd.read_csv(tuning / "trials.csv")
    assert len(table) == 3 and (table["status"] == "COMPLETED").all()
    assert set(table["units"]) <= {4, 6} and "cell" not in table.columns  # the user's space
    assert table["score"].is_monotonic_decreasing  # val_accuracy, maximised
    chief = _trials(tuning / "search")
    assert len(chief) == 3
    ran = {
        worker.name: sorted(p.name for p in (worker / "search").glob("trial_*"))
        for worker in sorted((tuning / "workers").iterdir())
        if worker.is_dir()
    }
    assert set(ran) == {"tuner0", "tuner1"}
    done = [trial for trials in ran.values() for trial in trials]
    assert sorted(done) == sorted(chief), ran  # each trial once, by one worker
    assert (tuning / "best_hyperparameters.json").is_file()
    assert (tmp_path / "run" / "metrics.json").is_file()
    assert "2 workers" in result.stdout + result.stderr
