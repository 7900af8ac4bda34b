"""A run SIGKILLed mid-epoch, then again during export, resumes to the uninterrupted result.

One sequence of real child processes in one folder (``runs/sentiment``); the first
three run ``runner.run`` through ``kill_script`` (a test callback or a wrapped export
kills them), the last is the command line's ``--resume``:

1. a reference run that is never interrupted (``latest`` points at it);
2. the same run SIGKILLed after step 15 of 30 (epoch 2 of 3, 1 step past its last
   backup, which is at step 4 of that epoch);
3. ``--resume``, SIGKILLed again right after the SavedModel is written;
4. ``--resume`` again, which must not train again and finishes.

Op determinism is on (``--deterministic``) and dropout is on, so equality needs the
dropout seed state, the step inside the epoch, the metric sums and the data order
of the resumed epoch all restored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from tests.faults.helpers import KILLED, cli, history, model_weights, script

EXPERIMENT = {
    "pipeline": "sentiment",
    "preset": "smoke",
    "seed": 3,
    "deterministic": True,
    "checkpoint_steps": 2,
    "settings": {
        "max_examples": 400,
        "epochs": 3,
        "patience": 3,
        "units": 8,
        "batch_size": 32,
        "dropout": 0.2,
        "token_dropout": 0.1,
    },
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """The four child runs above; what each left behind."""
    root = tmp_path_factory.mktemp("faults")
    folder = root / "runs" / "sentiment"
    seen: dict = {}
    reference = script(EXPERIMENT, cwd=root)
    assert reference.returncode == 0, reference.stderr[-3000:]
    seen["reference"] = (folder / "latest").resolve()
    killed = script(EXPERIMENT, cwd=root, kill_at="train:1:15")
    seen["killed_in_training"] = killed.returncode
    seen["after_training_kill"] = _snapshot(folder)
    killed = script({"pipeline": "sentiment", "resume": True}, cwd=root, kill_at="export")
    seen["killed_in_export"] = killed.returncode
    seen["export_kill_log"] = killed.stderr[-3000:]
    seen["after_export_kill"] = _snapshot(folder)
    resumed = cli("run", "sentiment", "--resume", cwd=root)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    seen["last_resume_log"] = resumed.stdout + resumed.stderr
    seen["resumed"] = (folder / "latest").resolve()
    return seen


def _snapshot(folder: Path) -> dict:
    return {
        "latest": os.readlink(folder / "latest"),
        "finished": sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.is_symlink()),
    }


def test_both_kills_were_real_sigkills(runs):
    assert runs["killed_in_training"] == KILLED
    assert runs["killed_in_export"] == KILLED, runs["export_kill_log"]


def test_a_killed_run_never_looks_finished_and_latest_stays_valid(runs):
    reference = runs["reference"]
    for key in ("after_training_kill", "after_export_kill"):
        snapshot = runs[key]
        assert snapshot["latest"] == reference.name, key
        finished = [n for n in snapshot["finished"] if not n.endswith(".partial")]
        assert finished == [reference.name], key
        assert (reference / "metrics.json").is_file() and (reference / "model.keras").is_file()


def test_resume_after_the_export_kill_does_not_train_again(runs):
    assert "already finished before the interruption" in runs["last_resume_log"]
    assert runs["resumed"] != runs["reference"]
    assert not list(runs["resumed"].parent.glob("*.partial"))
    assert not (runs["resumed"] / "backup").exists()


def test_resumed_run_ends_with_the_uninterrupted_weights(runs):
    expected, actual = model_weights(runs["reference"]), model_weights(runs["resumed"])
    assert expected.keys() == actual.keys()
    for name, value in expected.items():
        np.testing.assert_array_equal(actual[name], value, err_msg=name)


def test_resumed_run_ends_with_the_uninterrupted_metrics_and_history(runs):
    metrics = [json.loads((runs[k] / "metrics.json").read_text()) for k in ("reference", "resumed")]
    assert metrics[1]["test"] == metrics[0]["test"]
    assert metrics[1]["epochs_run"] == metrics[0]["epochs_run"] == 3
    rows = [history(runs[k]) for k in ("reference", "resumed")]
    assert len(rows[0]) == 3
    assert rows[1] == rows[0]
