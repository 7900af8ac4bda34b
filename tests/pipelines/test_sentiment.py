"""The sentiment pipeline end to end: smoke run, run directory, serving export, bad input."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import (
    run_cli,
    run_python_without_project,
    run_saved_model_cli,
    shared_data,
    smoke_run_dir,
)

TEXTS = ["a gorgeous, witty film", "a dull and tedious mess", "fine", ""]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> Path:
    """One smoke run of the built-in data through the command line."""
    return smoke_run_dir(tmp_path_factory, "sentiment", "--seed", "1")


def test_run_directory_holds_every_artifact(smoke_run):
    for name in (
        "config.json",
        "metrics.json",
        "history.csv",
        "report.md",
        "model.keras",
        "confusion_matrix.png",
        "learning_curves.png",
        "saved_model",
        "logs",
    ):
        assert (smoke_run / name).exists(), name
    assert not list(smoke_run.parent.glob("*.partial"))
    config = json.loads((smoke_run / "config.json").read_text())
    assert config["seed"] == 1 and config["data"] == "builtin"


def test_metrics_sit_beside_baselines_with_the_same_keys(smoke_run):
    metrics = json.loads((smoke_run / "metrics.json").read_text())
    assert metrics["pipeline"] == "sentiment"
    assert set(metrics["baselines"]) == {"majority", "bag_of_words", "bag_of_ngrams"}
    for baseline in metrics["baselines"].values():
        assert set(baseline) == set(metrics["test"]) == {"accuracy", "macro_f1"}
    splits = metrics["dataset"]["splits"]
    assert splits["train"] > splits["test"] > 0 and metrics["train_seconds"] > 0


def test_saved_model_serves_raw_text_in_a_fresh_process(smoke_run, tmp_path):
    import keras

    import layers  # noqa: F401  (registers the cells)

    expected = keras.models.load_model(smoke_run / "model.keras").predict(
        np.array(TEXTS, dtype=object), verbose=0
    )
    # The child blocks the project's packages: the export must need none of our code.
    child = textwrap.dedent(f"""
        import sys, json
        for name in ("layers", "pipelines", "tuning"):
            sys.modules[name] = None
        import numpy as np, tensorflow as tf
        export = tf.saved_model.load({str(smoke_run / "saved_model")!r})
        serve = export.signatures["serving_default"]
        out = serve(text=tf.constant({TEXTS!r}))
        np.save("probabilities.npy", out["probabilities"].numpy())
        json.dump([s.decode() for s in out["label"].numpy()], open("labels.json", "w"))
    """)
    result = run_python_without_project(child, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    probabilities = np.load(tmp_path / "probabilities.npy")
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    class_names = json.loads((smoke_run / "data_info.json").read_text())["fields"]["class_names"]
    labels = json.loads((tmp_path / "labels.json").read_text())
    assert labels == [class_names[i] for i in expected.argmax(axis=-1)]


def test_saved_model_cli_answers(smoke_run):
    result = run_saved_model_cli(
        smoke_run / "saved_model", "--input_exprs", 'text=["a witty film"]'
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "probabilities" in result.stdout and "label" in result.stdout


def test_evaluate_on_other_test_data_and_predict(smoke_run, tmp_path):
    test_file = tmp_path / "extra.tsv"
    test_file.write_text(
        "label\ttext\nfresh\ta wonderful film\nrotten\ta boring film\n"
        "fresh\tmoving and funny\nrotten\tawful\n"
    )
    result = run_cli("evaluate", str(smoke_run), "--data", f"tsv:{test_file}")
    assert result.returncode == 0, result.stderr[-3000:]
    evaluations = list((smoke_run / "evaluations").iterdir())
    metrics = json.loads((evaluations[0] / "metrics.json").read_text())
    assert metrics["dataset"]["splits"]["test"] == 4
    assert set(metrics["baselines"]) == {"majority", "bag_of_words", "bag_of_ngrams"}
    result = run_cli("predict", str(smoke_run), "a wonderful film", "awful")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()[-2:]
    assert [line.split("\t")[2] for line in lines] == ["a wonderful film", "awful"]


def test_user_csv_with_integer_labels_and_three_classes(tmp_path):
    from pipelines import run

    rows = ["review,stars"]
    words = {0: "awful boring dull", 1: "fine okay average", 2: "great wonderful moving"}
    rng = np.random.default_rng(0)
    for i in range(90):
        label = i % 3
        rows.append(f'"{" ".join(rng.permutation(words[label].split()))} number {i}",{label}')
    path = tmp_path / "reviews.csv"
    path.write_text("\n".join(rows) + "\n")
    final = run(
        {
            "pipeline": "sentiment",
            "preset": "smoke",
            "data": f"csv:{path}",
            "settings": {"text_column": "review", "label_column": "stars", "epochs": 2},
            "out": str(tmp_path / "run"),
        }
    ).run_dir
    info = json.loads((final / "data_info.json").read_text())
    assert info["schema"] == "SentimentInfo" and info["version"] == 1
    assert info["fields"]["class_names"] == ["0", "1", "2"]
    metrics = json.loads((final / "metrics.json").read_text())
    assert metrics["dataset"]["splits"] == {"train": 72, "validation": 9, "test": 9}


def test_tfds_imdb_reviews_offline_with_mock_data(tmp_path):
    import tensorflow_datasets as tfds

    from pipelines.sentiment.config import SentimentConfig
    from pipelines.sentiment.data import load_tfds

    with tfds.testing.mock_data(num_examples=40):
        splits = load_tfds(SentimentConfig.from_preset("smoke"), "imdb_reviews", seed=0)
    assert splits.info.class_names == ["neg", "pos"]
    assert sum(splits.sizes().values()) == 80
    assert isinstance(splits.train[0][0], str)


BAD_FILES = {
    "empty": (b"", "the file is empty"),
    "missing_column": (b"label\tsentence\n1\tgood\n0\tbad\n", "no column 'text'"),
    "one_class": (b"label\ttext\n1\tgood\n1\tnice\n1\tfine\n", "single class"),
    "not_utf8": (
        b"label\ttext\n1\tcaf\xe9 cr\xe8me\n0\tbad\n",
        "not UTF-8 text (bad byte at line 2)",
    ),
    "empty_label": (b"label\ttext\n1\tgood\n\tbad\n", "empty text or label at line(s) 3"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_end_in_one_error_line_and_no_run_directory(tmp_path, case):
    content, expected = BAD_FILES[case]
    path = tmp_path / f"{case}.tsv"
    path.write_bytes(content)
    result = run_cli("run", "sentiment", "--preset", "smoke", "--data", f"tsv:{path}", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert str(path) in lines[0] and expected in lines[0]
    assert not (tmp_path / "runs").exists()


def test_missing_file_is_an_error(tmp_path):
    result = run_cli("run", "sentiment", "--data", "csv:nowhere.csv", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --data 'csv:nowhere.csv': nowhere.csv does not exist"


def test_sst2_tsv_loads_with_its_columns():
    from pipelines.sentiment.config import SentimentConfig
    from pipelines.sentiment.data import load_tsv

    path = shared_data("sst2/train.tsv")
    config = SentimentConfig.from_preset("smoke").with_overrides(["text_column=sentence"])
    splits = load_tsv(config, str(path), seed=0)
    assert splits.info.class_names == ["0", "1"]
    assert sum(splits.sizes().values()) == config.max_examples


def test_tuned_run_trains_with_the_best_values(tmp_path):
    result = run_cli(
        "run",
        "sentiment",
        "--preset",
        "smoke",
        "--tune",
        "--tuner",
        "random",
        "--max-trials",
        "2",
        "--out",
        "run",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    tuning = tmp_path / "run" / "tuning"
    trials = (tuning / "trials.csv").read_text().splitlines()
    assert len(trials) == 1 + 2
    best = json.loads((tuning / "best_hyperparameters.json").read_text())
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert {key: saved["settings"][key] for key in best} == best
    assert "tuning" not in saved  # rerunning the file trains the tuned model, no search
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## Hyperparameter search" in report and "val_loss" in report
