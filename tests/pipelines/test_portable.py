"""Portable exports (``python -m pipelines export RUN_DIR --format tflite|onnx``).

Each format, run with its own runtime (the ai-edge-litert interpreter, onnxruntime), answers
as the run's SavedModel does on the same inputs; sentiment's token ids are made from the
texts by the tokenisation step docs/portable-exports.md shows, with the exported vocabulary.
"""

from __future__ import annotations

import json
import re
import shutil
import string

import numpy as np
import onnxruntime
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from pipelines import portable
from pipelines.cli import main
from pipelines.errors import UserError
from tests.helpers import smoke_run_dir

TOLERANCE = 1e-5  # largest difference allowed from the SavedModel's outputs

TEXTS = [
    "A gorgeous, witty film!",
    "a dull and tedious mess",
    "What?! The FILM's great... isn't it -- really (truly) great?",
    "Ünïcode CAPITALS stay: ÉCLATANT\u00a0film",
    "tabs\tand\nnew lines   and  runs of spaces",
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty: longer than the sequence",
    "zzzunknownword qqqnotinvocab",
    "",
]

# The tokenisation step of docs/portable-exports.md, as a user would write it.
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_NO_PUNCTUATION = str.maketrans("", "", string.punctuation)


def tokenize(text: str, ids: dict[str, int], length: int) -> list[int]:
    """Token ids of ``text``, exactly as the run's TextVectorization layer makes them."""
    words = re.split(r"[ \t\n\r\f\v]+", text.translate(_ASCII_LOWER).translate(_NO_PUNCTUATION))
    tokens = [ids.get(word, 1) for word in words if word][:length]
    return tokens + [0] * (length - len(tokens))


# The smoke run the other tests share (one LSTM layer returning its last output); two
# bidirectional GRU layers returning sequences into masked max pooling (masks, backward
# layers, padding at -inf); two bidirectional SimpleRNN layers, the second returning its
# last output.
SENTIMENT_RUNS = {
    "lstm": ("--seed", "1"),
    "bidirectional-gru": (
        *("--seed", "1", "--set", "cell=gru", "depth=2"),
        *("bidirectional=true", "pooling=max"),
    ),
    "bidirectional-simple-rnn": (
        *("--seed", "1", "--set", "cell=simple_rnn", "depth=2"),
        *("bidirectional=true", "pooling=last"),
    ),
}


@pytest.fixture(scope="module", params=list(SENTIMENT_RUNS))
def sentiment_run(request, tmp_path_factory):
    """A copy of a sentiment smoke run (the shared one is read by other tests)."""
    source = smoke_run_dir(tmp_path_factory, "sentiment", *SENTIMENT_RUNS[request.param])
    return shutil.copytree(source, tmp_path_factory.mktemp("portable") / "sentiment")


@pytest.fixture(scope="module")
def forecasting_run(tmp_path_factory):
    """A copy of the forecasting smoke run."""
    source = smoke_run_dir(tmp_path_factory, "forecasting")
    return shutil.copytree(source, tmp_path_factory.mktemp("portable") / "forecasting")


def run_tflite(path, name: str, values: np.ndarray) -> dict[str, np.ndarray]:
    """The ``.tflite`` model's ``serving_default`` on ``values`` (input ``name``)."""
    return Interpreter(model_path=str(path)).get_signature_runner()(**{name: values})


def run_onnx(path, name: str, values: np.ndarray) -> dict[str, np.ndarray]:
    """The ONNX model on ``values`` (input ``name``), outputs by name."""
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, {name: values}), strict=True))


RUNTIMES = {"tflite": run_tflite, "onnx": run_onnx}


def saved_model_outputs(run_dir, **inputs) -> dict[str, np.ndarray]:
    """The run's SavedModel (``serving_default``) on ``inputs``."""
    serve = tf.saved_model.load(str(run_dir / "saved_model")).signatures["serving_default"]
    return {key: value.numpy() for key, value in serve(**inputs).items()}


@pytest.mark.parametrize("fmt", list(portable.FORMATS))
def test_sentiment_answers_as_the_saved_model_from_token_ids(sentiment_run, fmt):
    path = portable.export_portable(sentiment_run, fmt)
    assert path == sentiment_run / "export" / portable.FORMATS[fmt]
    signature = json.loads((path.parent / "signature.json").read_text())
    length = signature["inputs"]["token_ids"]["shape"][1]
    vocabulary = (path.parent / "vocabulary.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert vocabulary[:2] == ["", "[UNK]"]
    ids = {token: index for index, token in enumerate(vocabulary)}
    token_ids = np.array([tokenize(text, ids, length) for text in TEXTS], dtype=np.int32)
    assert (token_ids[:, -1] == 0).any() and (token_ids != 0).all(axis=1).any()  # pad, cut

    expected = saved_model_outputs(sentiment_run, text=tf.constant(TEXTS))
    got = RUNTIMES[fmt](path, "token_ids", token_ids)
    assert set(got) == {"probabilities"}
    np.testing.assert_allclose(
        got["probabilities"], expected["probabilities"], atol=TOLERANCE, rtol=0
    )
    labels = [signature["class_names"][i] for i in got["probabilities"].argmax(axis=-1)]
    assert labels == [label.decode() for label in expected["label"]]


@pytest.mark.parametrize("fmt", list(portable.FORMATS))
def test_forecasting_answers_as_the_saved_model_in_original_units(forecasting_run, fmt):
    path = portable.export_portable(forecasting_run, fmt)
    signature = json.loads((path.parent / "signature.json").read_text())
    _, steps, features = signature["inputs"]["window"]["shape"]
    rng = np.random.default_rng(0)
    for batch in (1, 5):  # the batch size is free
        windows = rng.normal(12.0, 6.0, (batch, steps, features)).astype(np.float32)
        expected = saved_model_outputs(forecasting_run, window=tf.constant(windows))["forecast"]
        got = RUNTIMES[fmt](path, "window", windows)
        assert set(got) == {"forecast"}
        np.testing.assert_allclose(got["forecast"], expected, atol=TOLERANCE, rtol=0)


def test_exporting_again_is_refused_or_replaces_the_model_whole(forecasting_run):
    path = portable.export_portable(forecasting_run, "onnx", overwrite=True)
    _, steps, features = json.loads((path.parent / "signature.json").read_text())["inputs"][
        "window"
    ]["shape"]
    windows = np.full((2, steps, features), 10.0, dtype=np.float32)
    first = run_onnx(path, "window", windows)["forecast"]
    with pytest.raises(UserError, match="already exists.*--overwrite"):
        portable.export_portable(forecasting_run, "onnx")
    assert portable.export_portable(forecasting_run, "onnx", overwrite=True) == path
    np.testing.assert_array_equal(run_onnx(path, "window", windows)["forecast"], first)
    assert not [p.name for p in path.parent.iterdir() if p.name.endswith(".partial")]


@pytest.mark.parametrize("name", list(portable.NOT_PORTABLE))
def test_a_pipeline_that_does_not_convert_says_why(name, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"pipeline": name, "preset": "smoke"}))
    with pytest.raises(UserError, match=f"a {name} model does not convert to onnx: "):
        portable.export_portable(run_dir, "onnx")
    assert not (run_dir / "export").exists()


def test_cli_reports_a_pipeline_that_does_not_convert_in_one_line(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"pipeline": "translation"}))
    assert main(["export", str(run_dir), "--format", "tflite"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1, error
    assert "beam search" in error


def test_an_unfinished_run_or_unknown_format_is_refused(forecasting_run, tmp_path):
    partial = tmp_path / "run.partial"
    shutil.copytree(forecasting_run, partial, ignore=shutil.ignore_patterns("export"))
    with pytest.raises(UserError, match="has not finished; 'rnn-suite run --resume --out"):
        portable.export_portable(partial, "tflite")
    assert not (partial / "export").exists()
    with pytest.raises(UserError, match="choose one of tflite, onnx"):
        portable.export_portable(forecasting_run, "coreml")


def test_a_graph_marked_for_xla_is_not_converted():
    @tf.function(jit_compile=True, input_signature=[tf.TensorSpec([None], tf.float32)])
    def compiled(x):
        return x * 2.0

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def outer(x):
        return compiled(x) + 1.0

    with pytest.raises(RuntimeError, match="marked for XLA"):
        portable._check_plain(outer.get_concrete_function().graph.as_graph_def())
