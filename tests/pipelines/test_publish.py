"""``publish`` into a TensorFlow Serving models folder, and what every export carries for a
model server: ``assets.extra/limits.json`` and the warm-up requests.

The publish tests share one sentiment smoke run (read, never written). The export tests write
each pipeline's export from an untrained model (the export code a run calls), which is quick.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pipelines import publish as publishing
from pipelines.cli import main
from pipelines.errors import UserError
from pipelines.publish import publish
from tests.helpers import smoke_run_dir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return smoke_run_dir(tmp_path_factory, "sentiment", "--seed", "1")


def _config(models: Path):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    text_format.Parse((models / "models.config").read_text(), config)
    return {c.name: (c.base_path, c.model_platform) for c in config.model_config_list.config}


def _everything(folder: Path) -> list[str]:
    """Every path under ``folder`` but the publish lock (which the lock library may remove)."""
    if not folder.exists():
        return []
    paths = (str(p.relative_to(folder)) for p in folder.rglob("*"))
    return sorted(p for p in paths if p != publishing.LOCK_FILE)


# === publish ===


def test_publishing_twice_gives_versions_1_and_2_listed_in_models_config(run_dir, tmp_path):
    models = tmp_path / "models"
    first = publish(run_dir, models)
    second = publish(run_dir, models)
    assert (first, second) == (models / "sentiment" / "1", models / "sentiment" / "2")
    for version in (first, second):
        assert (version / "saved_model.pb").is_file() and (version / "variables").is_dir()
        assert (version / "assets.extra" / "limits.json").is_file()
        assert (version / "assets.extra" / "tf_serving_warmup_requests").is_file()
        source = sorted(p.name for p in (run_dir / "saved_model").iterdir())
        assert sorted(p.name for p in version.iterdir()) == source
    assert sorted(p.name for p in (models / "sentiment").iterdir()) == ["1", "2"]  # no leftovers
    absolute = str(models.resolve() / "sentiment")
    assert _config(models) == {"sentiment": (absolute, "tensorflow")}


def test_base_paths_follow_the_prefix_and_other_models_are_kept(run_dir, tmp_path):
    models = tmp_path / "models"
    publish(run_dir, models)
    version = publish(run_dir, models, name="reviews", version=7, base_path_prefix="/models/")
    assert version == models / "reviews" / "7"
    assert _config(models) == {
        "sentiment": (str(models.resolve() / "sentiment"), "tensorflow"),
        "reviews": ("/models/reviews", "tensorflow"),
    }
    publish(run_dir, models, base_path_prefix="/srv/models")  # sentiment now under the prefix
    assert _config(models)["sentiment"] == ("/srv/models/sentiment", "tensorflow")
    assert publish(run_dir, models, name="reviews") == models / "reviews" / "8"


def test_a_published_version_loads_and_answers(run_dir, tmp_path):
    import tensorflow as tf

    version = publish(run_dir, tmp_path / "models")
    serve = tf.saved_model.load(str(version)).signatures["serving_default"]
    outputs = serve(text=tf.constant(["a gorgeous, witty film", "a dull and tedious mess"]))
    assert outputs["probabilities"].shape[0] == 2 and outputs["label"].shape == (2,)


def _partial_copy(run_dir: Path, tmp_path: Path) -> tuple[Path, str]:
    partial = tmp_path / "run.partial"
    shutil.copytree(run_dir, partial)
    return partial, f"{partial} has not finished; 'rnn-suite run --resume --out {tmp_path / 'run'}'"


def _still_partial(run_dir: Path, tmp_path: Path) -> tuple[Path, str]:
    shutil.copytree(run_dir, tmp_path / "run.partial")
    run = tmp_path / "run"
    return run, f"{run} has not finished (it is still {run}.partial); 'rnn-suite run --resume"


def _without(relative: str):
    def make(run_dir: Path, tmp_path: Path) -> tuple[Path, str]:
        copy = tmp_path / "run"
        shutil.copytree(run_dir, copy)
        (copy / relative).unlink()
        return copy, f"is not a finished run: {copy / relative} is missing; if it was interrupted"

    return make


@pytest.mark.parametrize(
    "make",
    [
        _partial_copy,
        _still_partial,
        _without("metrics.json"),
        _without("saved_model/saved_model.pb"),
    ],
    ids=["partial folder", "not yet renamed", "no metrics", "no saved_model.pb"],
)
def test_an_unfinished_run_is_refused_and_resume_is_named(make, run_dir, tmp_path):
    run, expected = make(run_dir, tmp_path)
    with pytest.raises(UserError, match="--resume") as caught:
        publish(run, tmp_path / "models")
    assert expected in str(caught.value)
    assert not (tmp_path / "models").exists()


def test_a_missing_run_folder_is_refused(tmp_path):
    with pytest.raises(UserError, match="run folder .* not found"):
        publish(tmp_path / "nothing", tmp_path / "models")


def test_an_existing_version_is_refused_and_left_as_it_was(run_dir, tmp_path):
    models = tmp_path / "models"
    publish(run_dir, models, version=3)
    before = _everything(models), (models / "models.config").read_text()
    with pytest.raises(
        UserError, match=r"sentiment/3 already exists.*leave it out for the next \(4\)"
    ):
        publish(run_dir, models, version=3)
    (models / "sentiment" / "05").mkdir()  # the model server reads "05" as version 5
    with pytest.raises(UserError, match="sentiment/05 already exists"):
        publish(run_dir, models, version="5")
    (models / "sentiment" / "05").rmdir()
    assert (_everything(models), (models / "models.config").read_text()) == before


@pytest.mark.parametrize(
    "name", ["1model", "my-model", "a/b", "../up", "", "two words", "x\n", "é"]
)
def test_a_name_that_is_not_a_plain_identifier_is_refused(name, run_dir, tmp_path):
    with pytest.raises(UserError, match="a model name is a letter, then letters, digits or _"):
        publish(run_dir, tmp_path / "models", name=name)
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize("version", [0, -1, "x", "1.5", "", True, 2**63])
def test_a_version_that_is_not_a_positive_integer_is_refused(version, run_dir, tmp_path):
    with pytest.raises(UserError, match="must be a positive integer"):
        publish(run_dir, tmp_path / "models", version=version)
    assert not (tmp_path / "models").exists()


def test_an_empty_prefix_and_a_models_file_are_refused(run_dir, tmp_path):
    with pytest.raises(UserError, match="--base-path-prefix is empty"):
        publish(run_dir, tmp_path / "models", base_path_prefix=" ")
    (tmp_path / "file").write_text("mine")
    with pytest.raises(UserError, match="is a file, not a folder"):
        publish(run_dir, tmp_path / "file")
    assert (tmp_path / "file").read_text() == "mine"


def test_a_models_config_it_cannot_read_is_refused_and_kept(run_dir, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "models.config").write_text("model_config_list { config { nme: 'x' } }")
    with pytest.raises(UserError, match="models.config: not a TensorFlow Serving model config"):
        publish(run_dir, models)
    assert (models / "models.config").read_text() == "model_config_list { config { nme: 'x' } }"
    assert not (models / "sentiment").exists()


def test_a_publish_waits_for_the_lock_and_gives_up_with_an_error(run_dir, tmp_path, monkeypatch):
    import filelock

    models = tmp_path / "models"
    models.mkdir()
    monkeypatch.setattr(publishing, "LOCK_TIMEOUT_SECONDS", 0)
    held = filelock.FileLock(str(models / publishing.LOCK_FILE))
    with held, pytest.raises(UserError, match=f"{models} is in use by another process"):
        publish(run_dir, models)
    assert _everything(models) == []


def test_a_copy_that_fails_leaves_no_version_and_no_config(run_dir, tmp_path, monkeypatch):
    models = tmp_path / "models"

    def fail_halfway(source, destination):
        Path(destination).mkdir()
        (Path(destination) / "saved_model.pb").write_bytes(b"half")
        raise OSError("No space left on device")

    monkeypatch.setattr(publishing.shutil, "copytree", fail_halfway)
    with pytest.raises(OSError, match="No space left"):
        publish(run_dir, models)
    assert _everything(models) == ["sentiment"]  # an empty model folder: no version


def test_the_command_line_ends_a_mistake_in_one_error_line(run_dir, tmp_path, capsys):
    assert main(["publish", str(run_dir), str(tmp_path / "models"), "--name", "bad-name"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: --name 'bad-name': a model name") and error.count("\n") == 1
    assert main(["publish", str(run_dir), str(tmp_path / "models"), "--version", "2"]) == 0
    assert (tmp_path / "models" / "sentiment" / "2" / "saved_model.pb").is_file()


# === limits.json and the warm-up requests of every export ===


PIPELINES = ["sentiment", "forecasting", "music", "translation", "speech-to-text", "video-activity"]


def _warmup_requests(path: Path) -> list:
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    records = []
    for serialized in tf.data.TFRecordDataset(str(path)):
        log = prediction_log_pb2.PredictionLog.FromString(serialized.numpy())
        assert log.WhichOneof("log_type") == "predict_log"
        records.append(log.predict_log.request)
    return records


@pytest.mark.parametrize("name", PIPELINES)
def test_each_export_declares_its_limits_and_replays_its_warmup(name, untrained_exports):
    import tensorflow as tf

    from pipelines.export import check_limits

    pipeline, info, path = untrained_exports(name)
    limits = json.loads((path / "assets.extra" / "limits.json").read_text())
    assert limits == pipeline.serving_limits(info)
    check_limits(limits)
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    specs = serve.structured_input_signature[1]
    assert set(limits["inputs"]) == set(specs)
    for key, entry in limits["inputs"].items():
        assert entry["dtype"] == specs[key].dtype.name
        item, request = ("bytes", "bytes") if entry["dtype"] == "string" else ("elements",) * 2
        assert entry[f"max_request_{request}"] >= entry[f"max_item_{item}"] >= 1
    requests = _warmup_requests(path / "assets.extra" / "tf_serving_warmup_requests")
    assert len(requests) == 1
    example = pipeline.serving_example(info)
    for request in requests:
        assert request.model_spec.signature_name == "serving_default"
        inputs = {key: tf.make_ndarray(tensor) for key, tensor in request.inputs.items()}
        assert set(inputs) == set(example)
        for key, value in inputs.items():
            np.testing.assert_array_equal(value.astype(specs[key].dtype.as_numpy_dtype), value)
            expected = np.asarray(example[key], dtype=object if value.dtype == object else None)
            assert value.shape == expected.shape
        outputs = serve(**{key: tf.constant(value) for key, value in inputs.items()})
        assert all(
            output.shape[0] == len(example[next(iter(example))]) for output in outputs.values()
        )


@pytest.mark.parametrize("name", PIPELINES)
def test_each_export_refuses_more_items_than_max_items(name, untrained_exports):
    import tensorflow as tf

    pipeline, info, path = untrained_exports(name)
    limits = pipeline.serving_limits(info)
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    key, items = next(iter(pipeline.serving_example(info).items()))
    dtype = serve.structured_input_signature[1][key].dtype
    first = np.asarray(items[:1], dtype=object if dtype == tf.string else dtype.as_numpy_dtype)
    over = np.repeat(first, limits["max_items"] + 1, axis=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"more than \d+ items in one request"):
        serve(**{key: tf.constant(over, dtype=dtype)})


def _longest_items(name: str, limits: dict) -> tuple[str, object]:
    """Just enough items of the longest size one input takes to go over its request bound."""
    key, entry = next(iter(limits["inputs"].items()))
    if entry["dtype"] == "string":
        count = entry["max_request_bytes"] // entry["max_item_bytes"] + 1
        return key, ["w" * entry["max_item_bytes"]] * count
    count = entry["max_request_elements"] // entry["max_item_elements"] + 1
    return key, np.zeros((count, entry["max_item_elements"]), np.float32)


@pytest.mark.parametrize("name", ["sentiment", "translation", "speech-to-text"])
def test_an_export_refuses_a_request_over_its_whole_request_bound(name, untrained_exports):
    import tensorflow as tf

    pipeline, info, path = untrained_exports(name)
    limits = pipeline.serving_limits(info)
    key, items = _longest_items(name, limits)
    assert len(items) <= limits["max_items"]  # within the item count: the total is what fails
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=f"{key} holds more than .* over the whole request"
    ):
        serve(**{key: tf.constant(items)})
