"""The models folder as ``serve`` reads it: folders that are not complete versions (no
``saved_model.pb``, a publish's temporary folder, a partial copy) are ignored with one
warning each, and the complete versions keep being served."""

from __future__ import annotations

import logging
import shutil

import pytest

from tests.serving import exports


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """One small sentiment export."""
    path = tmp_path_factory.mktemp("export") / "sentiment"
    exports.export("sentiment", path)
    return path


def _shard(version_dir):
    (shard,) = (version_dir / "variables").glob("variables.data-*")
    return shard


def _ignored(caplog) -> dict[str, str]:
    """The folders warned about in ``caplog``, by name, with the warning."""
    return {
        record.args[0].name: record.getMessage()
        for record in caplog.records
        if record.levelno == logging.WARNING and record.getMessage().startswith("ignoring ")
    }


def test_incomplete_versions_are_ignored_with_a_warning(export, tmp_path, caplog):
    from pipelines.serving.repository import Repository

    model = tmp_path / "models" / "sentiment"
    shutil.copytree(export, model / "1")
    (model / "2" / "variables").mkdir(parents=True)  # no saved_model.pb
    shutil.copytree(export, model / "3")
    _shard(model / "3").unlink()  # a partial copy: a data shard is missing
    shutil.copytree(export, model / ".4.partial")  # a publish in progress
    (model / "notes.txt").write_text("not a version")

    repository = Repository(tmp_path / "models")
    with caplog.at_level(logging.WARNING, logger="pipelines.serving"):
        repository.poll()
        repository.poll()  # warned once, not on every poll
    assert repository.get("sentiment").version == 1
    ignored = _ignored(caplog)
    assert sorted(ignored) == [".4.partial", "2", "3", "notes.txt"]
    assert "no saved_model.pb" in ignored["2"]
    assert "variables/variables.data" in ignored["3"]
    assert "not a version folder" in ignored[".4.partial"]
    assert sum(r.getMessage().startswith("ignoring ") for r in caplog.records) == 4

    shutil.copy2(_shard(export), model / "3" / "variables")  # the copy finishes
    repository.poll()
    assert repository.get("sentiment").version == 3


def test_a_version_that_fails_to_load_is_retried_once_it_changes(export, tmp_path, caplog):
    from pipelines.serving.repository import Repository

    model = tmp_path / "models" / "sentiment"
    shutil.copytree(export, model / "1")
    shutil.copytree(export, model / "2")
    shard = _shard(model / "2")
    shard.write_bytes(shard.read_bytes()[:16])  # every file is there, one is cut short

    repository = Repository(tmp_path / "models")
    with caplog.at_level(logging.ERROR, logger="pipelines.serving"):
        repository.poll()
        repository.poll()  # the same broken folder is not loaded again
    assert repository.get("sentiment").version == 1
    failures = [r for r in caplog.records if r.getMessage().startswith("cannot load sentiment")]
    assert len(failures) == 1

    shutil.copy2(_shard(export), shard)  # the copy is complete now
    repository.poll()
    assert repository.get("sentiment").version == 2


def test_limits_json_may_carry_keys_the_server_does_not_know(tmp_path):
    import json

    from pipelines.serving.limits import read_limits

    extra = tmp_path / "assets.extra"
    extra.mkdir()
    limits = {
        "max_items": 8,
        "max_request_total_samples": 1000,  # a bound the export enforces in its graph
        "inputs": {"audio": {"dtype": "float32", "max_item_elements": 100, "unit": "samples"}},
    }
    (extra / "limits.json").write_text(json.dumps(limits))
    read = read_limits(tmp_path)
    assert read.max_items == 8
    assert read.for_input("audio", is_string=False).max_item_elements == 100
