"""Experiment files: validation with the file and key path, `validate`, `schema`, flags over a
file, a run's config.json rerunning the same model, and the Python API."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipelines import experiment as experiments
from pipelines.cli import main
from pipelines.errors import UserError
from tests.helpers import run_cli

EXPERIMENT = """\
pipeline: sentiment
preset: smoke
data: builtin
seed: 2
settings: {units: 6, dropout: 0.1}
tuning:
  tuner: bayesian
  max_trials: 3
  objective: {name: val_accuracy, direction: max}
  space:
    units: {choices: [4, 6, 8]}
    learning_rate: {min: 0.0001, max: 0.01, sampling: log}
    cell: null
"""


def _write(folder: Path, text: str, name: str = "experiment.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_a_valid_file_resolves_to_its_settings_space_and_objective(tmp_path):
    resolved = experiments.resolve(experiments.load(_write(tmp_path, EXPERIMENT)))
    assert resolved.config.units == 6 and resolved.config.dropout == 0.1
    assert resolved.config.epochs == 1  # from the smoke preset
    assert resolved.space["units"].choices == [4, 6, 8]
    assert "cell" not in resolved.space and "pooling" in resolved.space
    assert resolved.experiment.tuning.objective.direction == "max"
    assert resolved.max_trials == 3


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        ("seed: 2", "seed: 2\nsead: 3", r"experiment.yaml: sead: unknown key"),
        ("max_trials: 3", "max_trials: lots", r"experiment.yaml: tuning.max_trials: input should"),
        ("units: 6,", "units: 0,", r"experiment.yaml: setting 'units' = 0"),
        ("units: 6,", "unitz: 6,", r"experiment.yaml: unknown setting 'unitz'"),
        ("{choices: [4, 6, 8]}", "{choices: [4, 0]}", r"tuning.space.units: setting 'units' = 0"),
        ("    cell: null", "    colour: {choices: [1]}", r"tuning.space.colour: not a setting"),
        ("{name: val_accuracy,", "{name: accuracy,", r"tuning.objective.name: string should"),
        ("preset: smoke", "preset: tiny", r"experiment.yaml: preset: input should be"),
        ("pipeline: sentiment", "pipeline: poetry", r"unknown pipeline 'poetry'"),
        ("data: builtin", "data: csv:/no/such.csv", r"--data 'csv:/no/such.csv'"),
        ("tuner: bayesian", "tuner: hyperband", r"hyperband decides its own trials"),
    ],
)
def test_mistakes_in_a_file_name_the_file_and_the_key(tmp_path, capsys, replace, by, message):
    path = _write(tmp_path, EXPERIMENT.replace(replace, by))
    assert main(["validate", str(path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1, error
    assert re.search(message, error), error


def test_aliases_and_non_mappings_are_refused(tmp_path):
    bomb = "a: &a [1, 2]\nb: [*a, *a]\n"
    with pytest.raises(UserError, match="aliases are not accepted"):
        experiments.load(_write(tmp_path, bomb))
    with pytest.raises(UserError, match="is a mapping"):
        experiments.load(_write(tmp_path, "- just\n- a list\n"))


def test_validate_prints_what_it_would_run(tmp_path, capsys):
    assert main(["validate", str(_write(tmp_path, EXPERIMENT))]) == 0
    shown = capsys.readouterr().out
    assert "ok:" in shown and "bayesian" in shown and "val_accuracy (max)" in shown


def test_schema_describes_the_whole_file_settings_included(capsys):
    assert main(["schema", "sentiment"]) == 0
    schema = json.loads(capsys.readouterr().out)
    settings = schema["properties"]["settings"]["properties"]
    assert {"units", "pooling", "text_column"} <= set(settings)
    assert settings["units"]["maximum"] == 4096 and settings["units"]["x-presets"]["smoke"] == 8
    assert schema["properties"]["pipeline"]["const"] == "sentiment"
    assert "tuning" in schema["properties"]


def test_flags_override_the_file_and_tuning_flags_need_tune(tmp_path):
    from pipelines.cli import build_parser, experiment_from_args

    path = _write(tmp_path, EXPERIMENT)
    args = build_parser().parse_args(
        ["run", "--config", str(path), "--set", "units=8", "--seed", "5", "--max-trials", "2"]
    )
    experiment = experiment_from_args(args)
    assert experiment.settings["units"] == "8" and experiment.seed == 5
    assert experiment.tuning.max_trials == 2 and experiment.tuning.tuner == "bayesian"
    args = build_parser().parse_args(["run", "sentiment", "--tuner", "random"])
    with pytest.raises(UserError, match="--tuner needs --tune"):
        experiment_from_args(args)


def test_a_runs_config_json_reruns_the_same_model(tmp_path):
    first = run_cli(
        "run", "sentiment", "--preset", "smoke", "--deterministic", "--out", "first", cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr[-3000:]
    saved = json.loads((tmp_path / "first" / "config.json").read_text())
    assert "out" not in saved and saved["settings"]["units"] == 8
    experiments.resolve(experiments.parse(saved))  # a valid experiment file
    again = run_cli("run", "--config", "first/config.json", "--out", "second", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    metrics = [json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("first", "second")]
    assert metrics[0]["test"] == metrics[1]["test"]
    assert metrics[0]["baselines"] == metrics[1]["baselines"]


def test_a_resumed_search_with_another_space_is_refused(tmp_path):
    from pipelines.runner import _check_search_unchanged

    record = {"tuner": "random", "objective": {"name": "val_loss", "direction": "min"}}
    _check_search_unchanged(tmp_path, record | {"space": {"units": {"choices": [4]}}})
    _check_search_unchanged(tmp_path, record | {"space": {"units": {"choices": [4]}}})
    with pytest.raises(UserError, match="another space, objective or tuner"):
        _check_search_unchanged(tmp_path, record | {"space": {"units": {"choices": [8]}}})


def test_the_python_api_runs_an_experiment_from_a_dict(tmp_path):
    from pipelines import run

    result = run(
        {"pipeline": "sentiment", "preset": "smoke", "settings": {"units": 4}},
        out=str(tmp_path / "api-run"),
    )
    assert result.run_dir == tmp_path / "api-run"
    assert set(result.metrics["test"]) == {"accuracy", "macro_f1"}
    assert result.saved_model.is_dir() and result.config_file.is_file()
    assert json.loads(result.config_file.read_text())["settings"]["units"] == 4
