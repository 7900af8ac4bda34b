"""``--distribute multiworker``: two workers on 127.0.0.1 train as one on the same global batches.

Keras 3's ``model.fit`` fails under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585),
so the trainer's custom loop (``Trainer.loop``) is what runs here. Dropout and gradient
clipping are off: both are per replica, so they would differ from one process by design.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.faults.helpers import child_env, cli, free_ports, h5_arrays, model_weights

SETTINGS = [
    "--preset",
    "smoke",
    "--seed",
    "5",
    "--deterministic",
    "--distribute",
    "multiworker",
    "--set",
    "max_examples=300",
    "epochs=2",
    "units=8",
    "batch_size=16",
    "clipnorm=0",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two workers (one cluster) and one single process, trained the same way."""
    root = tmp_path_factory.mktemp("multiworker")
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    workers = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        workers.append(
            subprocess.Popen(
                [sys.executable, "-m", "pipelines", "run", "sentiment", *SETTINGS, "--out", "two"],
                cwd=root,
                env=child_env(TF_CONFIG=tf_config),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    single = cli("run", "sentiment", *SETTINGS, "--out", "one", cwd=root)
    outputs = [worker.communicate(timeout=600)[0] for worker in workers]
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output[-3000:]
    assert single.returncode == 0, single.stderr[-3000:]
    return root, outputs


def _layers(arrays):
    return {k: v for k, v in arrays.items() if k.startswith("layers/")}


def test_both_workers_trained_in_one_cluster(trained):
    root, outputs = trained
    assert all("2 replicas" in output for output in outputs)
    assert (root / "two" / "metrics.json").is_file() and (root / "two" / "saved_model").is_dir()
    assert (root / "two.worker-1" / "model.weights.h5").is_file()
    assert not (root / "two.worker-1" / "metrics.json").exists()
    rows = (root / "two" / "history.csv").read_text().splitlines()
    assert rows[0] == "epoch,loss,val_loss" and len(rows) == 3


def test_both_workers_end_with_the_same_weights(trained):
    root, _ = trained
    chief = _layers(model_weights(root / "two"))
    worker = _layers(h5_arrays(root / "two.worker-1" / "model.weights.h5"))
    assert chief.keys() == worker.keys() and chief
    for name, value in chief.items():
        np.testing.assert_array_equal(worker[name], value, err_msg=name)


def test_two_workers_equal_one_process_on_the_same_global_batches(trained):
    root, _ = trained
    two, one = _layers(model_weights(root / "two")), _layers(model_weights(root / "one"))
    assert two.keys() == one.keys()
    for name, value in one.items():
        np.testing.assert_allclose(two[name], value, atol=1e-5, err_msg=name)
    before = model_weights(root / "one")  # and training did change the weights
    assert any(np.abs(v).sum() > 0 for v in before.values())
