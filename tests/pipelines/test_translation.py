"""The translation pipeline: smoke run, serving export equal to the Python decoder, loaders."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from pipelines.errors import UserError
from tests.helpers import run_cli, run_python_without_project, shared_data, smoke_run_dir

TEXTS = ["twenty-one", "one thousand, nine hundred and eighty-seven", "Seven"]
METRIC_KEYS = {"exact_match", "bleu", "chrf", "bleu_lowercase"}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> Path:
    """One smoke run of the built-in data through the command line."""
    return smoke_run_dir(tmp_path_factory, "translation", "--seed", "1")


def test_run_directory_and_metrics_beside_baselines(smoke_run):
    for name in (
        "config.json",
        "metrics.json",
        "history.csv",
        "report.md",
        "model.keras",
        "attention.png",
        "saved_model",
        "data_info.json",
    ):
        assert (smoke_run / name).exists(), name
    metrics = json.loads((smoke_run / "metrics.json").read_text())
    assert metrics["pipeline"] == "translation"
    assert set(metrics["baselines"]) == {"greedy_decoding", "copy_source", "most_frequent_target"}
    assert set(metrics["test"]) == METRIC_KEYS
    for baseline in metrics["baselines"].values():
        assert set(baseline) == METRIC_KEYS
    report = (smoke_run / "report.md").read_text()
    assert "| source | reference | greedy | beam |" in report
    assert "over the length limits" in report
    assert "beam outputs match no reference" in report


def test_the_report_lists_the_mistakes_of_beam_search():
    from types import SimpleNamespace

    from pipelines.translation import data, evaluate
    from pipelines.translation.config import TranslationConfig

    info = SimpleNamespace(
        name="numbers",
        over_length={"test": 0},
        source_vocabulary=["one", "two"],
        target_vocabulary=[*data.RESERVED, "un", "deux"],
    )
    sources = ["one", "two", "ninety-one"]
    references = [("un",), ("deux",), ("quatre-vingt-onze",)]
    beam = ["un", "deux", "quatre-vingt-quatre"]
    config = TranslationConfig.from_preset("smoke")
    report = evaluate._report(config, info, sources, references, beam, beam, {})
    mistakes = report[report.index("Mistakes: 1 of 3") :]
    assert "| ninety-one | quatre-vingt-onze | quatre-vingt-quatre |" in mistakes
    assert "| one |" not in mistakes


def test_saved_model_equals_the_python_beam_decoder_in_a_fresh_process(smoke_run, tmp_path):
    import keras
    import tensorflow as tf

    import layers  # noqa: F401  (registers the cells)
    from pipelines.translation import model as translation_model
    from pipelines.translation.data import TranslationInfo

    info = TranslationInfo.from_json(json.loads((smoke_run / "data_info.json").read_text()))
    keras_model = keras.models.load_model(smoke_run / "model.keras")
    translate = translation_model.make_translate(
        keras_model, info, info.beam_width, info.length_penalty
    )
    expected = [t.decode() for t in translate(tf.constant(TEXTS)).numpy()]
    long_text = " ".join(["one"] * (info.max_source_length + 1))
    # The child blocks the project's packages: the export must need none of our code.
    child = textwrap.dedent(f"""
        import sys, json
        for name in ("layers", "pipelines", "tuning"):
            sys.modules[name] = None
        import tensorflow as tf
        serve = tf.saved_model.load({str(smoke_run / "saved_model")!r}).signatures[
            "serving_default"]
        out = serve(text=tf.constant({TEXTS!r}))["translation"].numpy()
        errors = []
        for bad in (["one", "  "], [{long_text!r}]):
            try:
                serve(text=tf.constant(bad))
                errors.append("no error")
            except tf.errors.InvalidArgumentError as err:
                errors.append(err.message)
        json.dump({{"out": [t.decode() for t in out], "errors": errors}}, open("out.json", "w"))
    """)
    result = run_python_without_project(child, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads((tmp_path / "out.json").read_text())
    assert served["out"] == expected
    assert "empty" in served["errors"][0]
    assert "longer than" in served["errors"][1]


def test_predict_and_its_errors(smoke_run):
    result = run_cli("predict", str(smoke_run), "twenty-one", "seven")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.rstrip("\n").splitlines()[-2:]
    assert [line.split("\t")[1] for line in lines] == ["twenty-one", "seven"]
    result = run_cli("predict", str(smoke_run), "   ")
    assert result.returncode == 2 and "error: input 1 is empty" in result.stderr


def test_builtin_test_numbers_are_disjoint_from_training():
    from pipelines.translation import data
    from pipelines.translation.config import TranslationConfig

    config = TranslationConfig()
    numbers = data.builtin_numbers(config, seed=3)
    train, validation, test = (set(numbers[p].tolist()) for p in ("train", "validation", "test"))
    assert not train & test and not train & validation and not validation & test
    assert len(train | validation | test) == config.builtin_max_number + 1
    assert data.builtin_numbers(config, seed=3)["test"].tolist() == numbers["test"].tolist()
    assert data.builtin_pairs([1987]) == [
        ("one thousand, nine hundred and eighty-seven", "mille neuf cent quatre-vingt-sept")
    ]


def test_tsv_loader_errors_name_the_line(tmp_path):
    from pipelines.translation import data

    empty_line = tmp_path / "empty_line.tsv"
    empty_line.write_text("hello\tbonjour\n\nthanks\tmerci\n")
    with pytest.raises(UserError, match=r"line 2: empty line"):
        data.read_pairs(empty_line)
    one_column = tmp_path / "one_column.tsv"
    one_column.write_text("hello\tbonjour\nthanks merci\n")
    with pytest.raises(UserError, match=r"line 2: expected two tab-separated columns"):
        data.read_pairs(one_column)
    with pytest.raises(UserError, match="not found"):
        data.read_pairs(tmp_path / "missing.tsv")
    # The Tatoeba reader skips only a truncated last line.
    truncated = tmp_path / "fra.txt"
    truncated.write_text("Go.\tVa !\nRun!\tCours !\nThey did it again.\n")
    assert data.read_pairs(truncated, allow_truncated_last=True) == [
        ("Go.", "Va !"),
        ("Run!", "Cours !"),
    ]
    result = run_cli("run", "translation", "--preset", "smoke", "--data", f"tsv:{one_column}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "line 2" in result.stderr


def test_over_long_pairs_are_counted_not_silently_dropped(tmp_path):
    from pipelines.translation import data
    from pipelines.translation.config import TranslationConfig

    path = tmp_path / "pairs.tsv"
    rows = [f"word {i}\tmot {i}" for i in range(40)] + [f"a b c d e f g h {i}\tx" for i in range(3)]
    path.write_text("\n".join(rows) + "\n")
    config = TranslationConfig().with_settings({"max_source_length": 5})
    splits = data.load_tsv(config, str(path), seed=0)
    assert sum(splits.info.over_length.values()) == 3
    assert sum(splits.sizes().values()) == 40


def test_scan_loader_reads_the_official_simple_split():
    from pipelines.translation import data

    train, test = data.read_scan(shared_data("scan"))
    assert len(train) == 16728 and len(test) == 4182
    assert train[0][0] and train[0][1].startswith("I_")


@pytest.mark.parametrize(
    ("attention", "cell", "depth", "bidirectional"),
    [("bahdanau", "lstm", 2, False), ("luong", "simple_rnn", 1, True)],
)
def test_untrained_variants_decode_in_graph(attention, cell, depth, bidirectional):
    import tensorflow as tf

    from pipelines.translation import data, model
    from pipelines.translation.config import TranslationConfig

    config = TranslationConfig.from_preset("smoke").with_settings(
        {"attention": attention, "cell": cell, "depth": depth, "bidirectional": bidirectional}
    )
    splits = data.load_builtin(config, "", seed=0)
    keras_model = model.build_model(config, splits.info)
    decoder = model.Decoder(keras_model, splits.info)
    source = tf.constant(TEXTS)
    for width in (1, 3):
        ids = decoder.decode(source, tf.constant(width), tf.constant(0.6)).numpy()
        assert ids.shape == (len(TEXTS), config.max_target_length + 1)
    texts = model.make_translate(keras_model, splits.info, 3, 0.6)(source).numpy()
    assert len(texts) == len(TEXTS)


def test_tfds_loader_offline_with_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    from pipelines.translation import data
    from pipelines.translation.config import TranslationConfig

    with tfds.testing.mock_data(num_examples=30):
        splits = data.load_tfds(TranslationConfig(), "ted_hrlr_translate/pt_to_en", 0)
    over = splits.info.over_length
    assert splits.sizes() == {part: 30 - over[part] for part in ("train", "validation", "test")}
    assert splits.info.source.startswith("tfds:ted_hrlr_translate/pt_to_en")
    assert splits.train[1][:, 0].tolist() == [data.RESERVED.index(data.START)] * len(
        splits.train[1]
    )


def test_evaluate_on_other_data_uses_the_runs_vocabulary(smoke_run, tmp_path):
    path = tmp_path / "numbers.tsv"
    path.write_text("twenty-one\tvingt et un\nseven\tsept\n" + "one " * 30 + "\tun\n")
    result = run_cli("evaluate", str(smoke_run), "--data", f"tsv:{path}")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((smoke_run / "evaluations" / "numbers.tsv" / "metrics.json").read_text())
    assert metrics["dataset"]["splits"]["test"] == 2  # the over-long third pair left out
    assert set(metrics["test"]) == METRIC_KEYS
    result = run_cli("evaluate", str(smoke_run), "--data", "tfds:ted_hrlr_translate/pt_to_en")
    assert result.returncode == 2
    assert "cannot evaluate on tfds data" in result.stderr.strip().splitlines()[-1]


def test_settings_are_bounded_and_checked_together():
    from pipelines.translation.config import TranslationConfig

    for preset in ("smoke", "default", "full"):
        config = TranslationConfig.from_preset(preset)
        assert config.sequence_steps() == config.max_source_length + config.max_target_length + 1
    base = TranslationConfig.from_preset("default")
    for key, value in (
        ("max_target_length", 2_000_000_000),
        ("max_source_length", 0),
        ("attention", "dot"),
        ("builtin_max_number", 10),
        ("beam_width", 0),
        ("length_penalty", -1.0),
        ("max_vocabulary", 4),
        ("scan_split", "random"),
    ):
        with pytest.raises(UserError, match=f"setting '{key}' = "):
            base.with_settings({key: value})
    with pytest.raises(UserError, match="'units' = 4096 and 'bidirectional' = true"):
        base.with_settings({"units": 4096})
    assert base.with_settings({"units": 4096, "bidirectional": False}).units == 4096
    with pytest.raises(UserError, match="unknown setting 'max_trials'"):
        base.with_settings({"max_trials": 3})


def test_declared_sources_name_real_loaders_and_check_their_argument(tmp_path):
    from pipelines.translation import data
    from pipelines.translation.config import DATA_SOURCES, SEARCH_SPACE, TranslationConfig

    assert [source.form for source in DATA_SOURCES] == [
        "builtin",
        "tatoeba:PATH",
        "scan:DIR",
        "tsv:PATH",
        "tfds:NAME",
    ]
    for source in DATA_SOURCES:
        assert callable(getattr(data, source.loader)), source.loader
        assert source.test_loader is None or callable(getattr(data, source.test_loader))
        assert set(source.settings) <= set(TranslationConfig.model_fields), source.kind
    assert set(SEARCH_SPACE) <= set(TranslationConfig.model_fields)
    path = tmp_path / "pairs.tsv"
    path.write_text("hello\tbonjour\n")
    assert DATA_SOURCES.parse(f"tsv:{path}").argument == str(path)
    with pytest.raises(UserError, match="unknown kind 'csv'"):
        DATA_SOURCES.parse(f"csv:{path}")
    with pytest.raises(UserError, match="is not a folder"):
        DATA_SOURCES.parse(f"scan:{path}")
    with pytest.raises(UserError, match="does not exist"):
        DATA_SOURCES.parse(f"tatoeba:{tmp_path / 'missing.txt'}")
    with pytest.raises(UserError, match="write it as builtin"):
        DATA_SOURCES.parse("builtin:fr")


def test_run_help_shows_sources_settings_and_search_space():
    result = run_cli("run", "translation", "--help")
    assert result.returncode == 0, result.stderr[-3000:]
    for text in (
        "tatoeba:PATH",
        "scan:DIR",
        "tfds:NAME",
        "left out of training and test",
        "beam_width",
        "luong|bahdanau",
        "simple_split|length_split",
        "search space",
    ):
        assert text in result.stdout, text
    assert re.search(r"\n  attention +luong\|bahdanau\n", result.stdout)  # a tuned setting


def test_the_data_record_round_trips_through_json(tmp_path):
    from pipelines.translation import data
    from pipelines.translation.config import TranslationConfig

    path = tmp_path / "pairs.tsv"
    path.write_text("".join(f"word {i}\tmot {i}\n" for i in range(40)))
    splits = data.load_tsv(TranslationConfig.from_preset("smoke"), str(path), seed=0)
    info = splits.info
    assert isinstance(info, data.TranslationInfo)
    assert info.target_vocabulary[: len(data.RESERVED)] == data.RESERVED
    assert data.TranslationInfo.from_json(json.loads(json.dumps(info.to_json()))) == info
