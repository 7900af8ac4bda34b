"""Keras Tuner: the hypermodel's defaults and pins, declared spaces and objectives, searches
that write their files and resume."""

from __future__ import annotations

import json

import keras_tuner
import numpy as np
import pandas as pd
import pytest

from pipelines.base import Splits
from pipelines.errors import UserError
from pipelines.sentiment.config import SentimentConfig
from pipelines.sentiment.data import SentimentInfo
from pipelines.sentiment.pipeline import PIPELINE
from tuning.hypermodel import PipelineHyperModel
from tuning.search import run_search
from tuning.space import Dimension, Objective, space

SPACE = space(
    units={"choices": [4, 6, 8]},
    batch_size={"choices": [16, 24, 32]},
    depth={"choices": [1]},
    pooling={"choices": ["last", "max"]},
)


@pytest.fixture(scope="module")
def splits() -> Splits:
    rng = np.random.default_rng(0)
    good, bad = ["great", "moving", "witty", "fine"], ["dull", "awful", "boring", "flat"]
    texts, labels = [], []
    for i in range(96):
        words = good if i % 2 else bad
        texts.append(" ".join(rng.choice(words, 4)))
        labels.append(i % 2)
    texts, labels = np.array(texts, dtype=object), np.array(labels, dtype=np.int32)
    vocabulary = sorted(set(good + bad))
    return Splits(
        train=(texts[:64], labels[:64]),
        validation=(texts[64:80], labels[64:80]),
        test=(texts[80:], labels[80:]),
        info=SentimentInfo(
            name="toy", source="test", class_names=["bad", "good"], vocabulary=vocabulary
        ),
    )


@pytest.fixture(scope="module")
def config() -> SentimentConfig:
    return SentimentConfig.from_preset("smoke").with_settings({"units": 6, "batch_size": 24})


def test_defaults_come_from_the_config(splits, config):
    hypermodel = PipelineHyperModel(PIPELINE, config, splits, SPACE)
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    assert hp.values["units"] == 6 and hp.values["cell"] == config.cell
    assert hp.values["learning_rate"] == pytest.approx(config.learning_rate)
    assert model.get_layer("probabilities").output.shape[-1] == 2


def test_a_fixed_value_is_used(splits, config):
    hypermodel = PipelineHyperModel(PIPELINE, config, splits, SPACE)
    hp = keras_tuner.HyperParameters()
    hp.Fixed("cell", "gru")
    hp.Fixed("bidirectional", True)
    model = hypermodel.build(hp)
    recurrent = model.get_layer("recurrent_0")
    assert type(recurrent).__name__ == "Bidirectional"
    assert type(recurrent.forward_layer.cell).__name__ == "GRUCell"


@pytest.mark.parametrize("tuner_name", ["random", "bayesian", "hyperband"])
def test_search_writes_trials_and_best_values(tmp_path, splits, config, tuner_name):
    hypermodel = PipelineHyperModel(PIPELINE, config, splits, SPACE)
    best = run_search(
        hypermodel,
        tuner_name=tuner_name,
        max_trials=2,
        epochs=2,
        directory=tmp_path / "tuning",
        seed=0,
    )
    trials = pd.read_csv(tmp_path / "tuning" / "trials.csv")
    assert len(trials) >= 2 and (trials["status"] == "COMPLETED").all()
    assert {"units", "dropout", "learning_rate", "batch_size", "cell"} <= set(trials.columns)
    saved = json.loads((tmp_path / "tuning" / "best_hyperparameters.json").read_text())
    assert saved == best and best["batch_size"] in (16, 24, 32)


def test_resumed_search_keeps_finished_trials(tmp_path, splits, config):
    hypermodel = PipelineHyperModel(PIPELINE, config, splits, SPACE)
    run_search(
        hypermodel,
        tuner_name="random",
        max_trials=2,
        epochs=1,
        directory=tmp_path / "tuning",
        seed=0,
    )
    first = pd.read_csv(tmp_path / "tuning" / "trials.csv").set_index("trial_id")
    run_search(
        hypermodel,
        tuner_name="random",
        max_trials=3,
        epochs=1,
        directory=tmp_path / "tuning",
        seed=0,
        resume=True,
    )
    second = pd.read_csv(tmp_path / "tuning" / "trials.csv").set_index("trial_id")
    assert len(second) == 3
    pd.testing.assert_frame_equal(second.loc[first.index].sort_index(), first.sort_index())


def test_a_user_space_with_a_condition_and_a_maximised_objective(tmp_path, splits, config):
    user_space = {
        "units": Dimension(choices=[4, 8]),
        "learning_rate": Dimension(min=1e-3, max=1e-2, sampling="log"),
        "pooling": Dimension(choices=["last", "max"]),
        "token_dropout": Dimension(min=0.0, max=0.3, when={"pooling": ["max"]}),
    }
    hypermodel = PipelineHyperModel(PIPELINE, config, splits, user_space)
    best = run_search(
        hypermodel,
        tuner_name="random",
        max_trials=3,
        epochs=1,
        objective=Objective(name="val_accuracy", direction="max"),
        directory=tmp_path / "tuning",
        seed=1,
    )
    trials = pd.read_csv(tmp_path / "tuning" / "trials.csv")
    assert set(trials["units"]) <= {4, 8} and set(trials["pooling"]) <= {"last", "max"}
    assert trials["score"].is_monotonic_decreasing  # best (highest accuracy) first
    assert "batch_size" not in trials.columns  # not in the space: the config's value
    if best["pooling"] == "last":
        assert "token_dropout" not in best
    assert 1e-3 <= best["learning_rate"] <= 1e-2


def test_an_objective_the_epochs_do_not_log_ends_the_search(tmp_path, splits, config):
    hypermodel = PipelineHyperModel(PIPELINE, config, splits, SPACE)
    with pytest.raises(UserError, match="val_cer.*val_accuracy"):
        run_search(
            hypermodel,
            tuner_name="random",
            max_trials=2,
            epochs=1,
            objective=Objective(name="val_cer"),
            directory=tmp_path / "tuning",
            seed=0,
        )
