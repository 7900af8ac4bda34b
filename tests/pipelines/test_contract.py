"""The contract every registered pipeline keeps, run for each one from the registry:

- `run NAME --help` lists every declared setting and data source (no TensorFlow import);
- a bad data spec and an out-of-range setting each end in one ``error:`` line, exit 2,
  before any folder is created;
- a smoke run goes end to end, and its export loads and answers in a fresh process that
  cannot import the project.
"""

from __future__ import annotations

import json

import pytest

from pipelines import registry
from pipelines.cli import main
from tests.helpers import run_python_without_project, smoke_run_dir

# Each pipeline's own tests run the smoke preset with seed 1, forecasting with the defaults.
SMOKE_ARGS = {"forecasting": ()}


def _smoke(tmp_path_factory, name: str):
    return smoke_run_dir(tmp_path_factory, name, *SMOKE_ARGS.get(name, ("--seed", "1")))


@pytest.mark.parametrize("name", list(registry.PIPELINES))
def test_help_lists_every_setting_and_data_source(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", name, "--help"])
    assert exit_info.value.code == 0
    shown = capsys.readouterr().out
    module = registry.config_module(name)
    for key in module.CONFIG_CLASS.model_fields:
        assert f"\n  {key} " in shown, key
    for source in module.DATA_SOURCES:
        assert source.form in shown, source.form


@pytest.mark.parametrize("name", list(registry.PIPELINES))
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--data", "no-such-kind:x"], "error: --data 'no-such-kind:x': unknown kind"),
        (["--set", "units=0"], "error: setting 'units' = 0: input should be greater than"),
        (["--set", "epochs=-3"], "error: setting 'epochs' = -3"),
    ],
)
def test_mistakes_end_in_one_error_line_before_any_folder(
    name, arguments, message, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    assert main(["run", name, *arguments]) == 2
    error = capsys.readouterr().err
    assert error.startswith(message) and error.count("\n") == 1, error
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", list(registry.PIPELINES))
def test_smoke_run_exports_a_model_that_serves_without_the_project(
    name, tmp_path_factory, tmp_path
):
    run_dir = _smoke(tmp_path_factory, name)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["pipeline"] == name and metrics["test"] and metrics["baselines"]
    pipeline = registry.load_pipeline(name)
    info = pipeline.info_class.from_json(json.loads((run_dir / "data_info.json").read_text()))
    example = pipeline.serving_example(info)
    (tmp_path / "example.json").write_text(json.dumps(example))
    child = f"""
import json
import tensorflow as tf
serve = tf.saved_model.load({str(run_dir / "saved_model")!r}).signatures["serving_default"]
specs = serve.structured_input_signature[1]
example = json.loads(open("example.json").read())
inputs = {{key: tf.constant(value, dtype=specs[key].dtype) for key, value in example.items()}}
outputs = serve(**inputs)
print(json.dumps({{key: list(value.shape) for key, value in outputs.items()}}))
"""
    result = run_python_without_project(child, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    shapes = json.loads(result.stdout.strip().splitlines()[-1])
    batch = len(next(iter(example.values())))
    assert shapes and all(shape[0] == batch for shape in shapes.values()), shapes
