"""Every experiment file under examples/ is one that `rnn-suite validate` accepts.

An example names a user's data path relative to where it is run; the test runs each in an
empty folder holding an empty file (or folder) at that path, so only the example's settings,
data kind and search space are checked, not the data itself."""

from pathlib import Path

import pytest
import yaml

from pipelines import cli, registry
from tests.helpers import REPO

EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


def test_there_are_examples():
    assert EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: Path(path).name)
def test_the_example_validates(path, tmp_path, monkeypatch, capsys):
    example = yaml.safe_load(path.read_text())
    data = example["data"]
    kind, _, argument = data.partition(":")
    assert argument and not Path(argument).is_absolute() and ".." not in Path(argument).parts, (
        f"{path.name}: data {data!r} should be a path a user has, relative to where they run"
    )
    pipeline = registry.canonical_name(example["pipeline"])
    source = registry.config_module(pipeline).DATA_SOURCES.sources[kind]
    if source.argument == "folder":
        (tmp_path / argument).mkdir(parents=True)
    else:
        (tmp_path / argument).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / argument).touch()
    monkeypatch.chdir(tmp_path)
    assert cli.main(["validate", str(path)]) == 0
    assert capsys.readouterr().out.startswith("ok: ")
