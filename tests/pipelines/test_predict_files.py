"""Prediction over files: the framework (``pipelines.predict_files``, with a stand-in pipeline)
and the sentiment, forecasting and translation pipelines on the shared smoke runs."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from pipelines import registry, rundir, runner
from pipelines.errors import UserError
from pipelines.predict_files import (
    BadItem,
    Item,
    predict_files,
    read_lines,
    read_table_rows,
    skipped_path,
)
from tests.helpers import run_cli, run_cli_with_peak, smoke_run_dir

# Rows of the large sentiment input, and of the small one it is compared with.
LARGE_ROWS, SMALL_ROWS = 200_000, 20_000
REVIEW_PHRASES = ("a gorgeous witty film", "a dull tedious mess", "moving and funny", "the cast")
PHRASES_PER_TEXT = 16  # about 280 bytes a row: the large file is some 56 MB
# How much more the large run's peak resident memory may be than the small run's: far less
# than the large file, so a prediction that held the file (or its rows) would fail.
MEMORY_SLACK_BYTES = 24 * 2**20


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def leftovers(folder: Path) -> list[str]:
    """Hidden temporary files or folders a prediction left beside its output."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# === The framework, with a stand-in pipeline ===


def _stand_in_items(path: Path, config, info, **options):
    """Each line ``WORD`` is an item; ``bad WORD`` a bad one."""
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        if text.startswith("bad"):
            yield BadItem(f"line {number}", "a bad row")
        else:
            yield Item(f"line {number}", text, {"word": text, "label": "kept"})


def _stand_in_predict(model, items, config, info):
    """``boom`` cannot be predicted; the rest are upper-cased."""
    if any(item.value == "boom" for item in items):
        raise UserError("the model cannot take boom")
    return [{"label": item.value.upper(), "length": len(item.value)} for item in items]


def _folder_predict(model, items, config, info):
    return [{"file_name": f"{item.value}.txt", "content": item.value.encode()} for item in items]


@pytest.fixture
def stand_in(monkeypatch, tmp_path):
    """A finished run of a stand-in pipeline whose ``files`` module the test sets."""
    run = tmp_path / "run"
    for name in rundir.FINISHED_FILES:  # what a finished run has; the loading is stood in
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text("{}")
    files = SimpleNamespace(
        OUTPUT="table", read_items=_stand_in_items, predict_items=_stand_in_predict
    )
    pipeline = SimpleNamespace(name="stand-in", files=files)
    resolved = SimpleNamespace(name="stand-in", config=SimpleNamespace())
    monkeypatch.setattr(runner, "resolved_from_run", lambda path: resolved)
    monkeypatch.setattr(registry, "load_pipeline", lambda name: pipeline)
    monkeypatch.setattr(runner, "load_run", lambda path: (pipeline, resolved, None, None))
    return SimpleNamespace(run=run, files=files, tmp=tmp_path)


def _words(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "words.txt"
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_table_keeps_input_columns_and_renames_a_clash(stand_in):
    source = _words(stand_in.tmp, "ab", "cde")
    out = stand_in.tmp / "out.csv"
    summary = predict_files(stand_in.run, source, out, batch_size=1)
    assert summary == {"predicted": 2, "skipped": 0, "output": str(out), "skipped_file": None}
    assert read_csv(out) == [
        {"word": "ab", "input_label": "kept", "label": "AB", "length": "2"},
        {"word": "cde", "input_label": "kept", "label": "CDE", "length": "3"},
    ]
    jsonl = stand_in.tmp / "out.jsonl"
    predict_files(stand_in.run, source, jsonl)
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert rows[1] == {"word": "cde", "input_label": "kept", "label": "CDE", "length": 3}
    assert leftovers(stand_in.tmp) == []


def test_bad_item_fails_naming_its_row_or_is_skipped_and_listed(stand_in):
    source = _words(stand_in.tmp, "ab", "bad x", "boom", "cd")
    out = stand_in.tmp / "out.csv"
    with pytest.raises(UserError, match=r"words.txt, line 2: a bad row"):
        predict_files(stand_in.run, source, out)
    assert not out.exists() and leftovers(stand_in.tmp) == []
    summary = predict_files(stand_in.run, source, out, on_error="skip", batch_size=8)
    assert (summary["predicted"], summary["skipped"]) == (2, 2)
    assert [row["word"] for row in read_csv(out)] == ["ab", "cd"]
    assert read_csv(skipped_path(out)) == [
        {"key": "line 2", "reason": "a bad row"},
        {"key": "line 3", "reason": "the model cannot take boom"},
    ]
    # A failing item in a batch is found among the others, and named.
    (stand_in.tmp / "words.txt").write_text("ab\nboom\ncd\n")
    with pytest.raises(UserError, match=r"line 2: the model cannot take boom"):
        predict_files(stand_in.run, source, stand_in.tmp / "other.csv")


def test_existing_output_refused_unless_overwrite(stand_in):
    source = _words(stand_in.tmp, "ab")
    out = stand_in.tmp / "out.csv"
    out.write_text("the user's file\n")
    with pytest.raises(UserError, match=r"out.csv already exists; add --overwrite"):
        predict_files(stand_in.run, source, out)
    assert out.read_text() == "the user's file\n"
    skipped_path(out).write_text("key,reason\nline 9,old\n")
    predict_files(stand_in.run, source, out, overwrite=True)
    assert [row["label"] for row in read_csv(out)] == ["AB"]
    assert not skipped_path(out).exists()  # the replaced output's list went with it


def test_folder_output_one_file_per_item(stand_in):
    stand_in.files.OUTPUT = "folder"
    stand_in.files.predict_items = _folder_predict
    source = _words(stand_in.tmp, "ab", "cd", "ab")
    out = stand_in.tmp / "continued"
    summary = predict_files(stand_in.run, source, out, on_error="skip")
    assert sorted(p.name for p in out.iterdir()) == ["ab.txt", "cd.txt"]
    assert (out / "cd.txt").read_text() == "cd"
    assert summary["skipped"] == 1
    assert "already gave the output file 'ab.txt'" in read_csv(skipped_path(out))[0]["reason"]
    with pytest.raises(UserError, match="already exists"):
        predict_files(stand_in.run, source, out)
    _words(stand_in.tmp, "ef")
    predict_files(stand_in.run, source, out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["ef.txt"]
    assert leftovers(stand_in.tmp) == []


def test_interrupted_prediction_leaves_no_output(stand_in):
    source = _words(stand_in.tmp, *[f"w{i}" for i in range(10)])
    out = stand_in.tmp / "out.csv"
    calls = []

    def interrupted(model, items, config, info):
        assert not out.exists()  # written under another name until complete
        calls.append(len(items))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return _stand_in_predict(model, items, config, info)

    stand_in.files.predict_items = interrupted
    with pytest.raises(KeyboardInterrupt):
        predict_files(stand_in.run, source, out, batch_size=2, on_error="skip")
    assert calls == [2, 2, 2]
    assert not out.exists() and not skipped_path(out).exists()
    assert leftovers(stand_in.tmp) == []


def test_arguments_checked(stand_in):
    source = _words(stand_in.tmp, "ab")
    out = stand_in.tmp / "out.csv"
    with pytest.raises(UserError, match="--rolling is not an option of stand-in"):
        predict_files(stand_in.run, source, out, options={"rolling": True})
    predict_files(stand_in.run, source, out, options={"rolling": False})  # unset: ignored
    for wrong, message in (
        ({"batch_size": 0}, "--batch-size must be from 1"),
        ({"on_error": "ignore"}, "--on-error must be one of fail, skip"),
    ):
        with pytest.raises(UserError, match=message):
            predict_files(stand_in.run, source, out, overwrite=True, **wrong)
    with pytest.raises(UserError, match=r"name it \*.csv or \*.jsonl"):
        predict_files(stand_in.run, source, stand_in.tmp / "out.json")
    with pytest.raises(UserError, match="input not found"):
        predict_files(stand_in.run, stand_in.tmp / "nothing.txt", stand_in.tmp / "o.csv")
    with pytest.raises(UserError, match="is the input"):
        predict_files(stand_in.run, out, out, overwrite=True)


def test_partial_run_refused(tmp_path):
    partial = tmp_path / "run.partial"
    partial.mkdir()
    (tmp_path / "in.txt").write_text("a text\n")
    for run_dir in (partial, tmp_path / "run"):
        with pytest.raises(UserError, match=r"run.* has not finished.*--resume --out"):
            predict_files(run_dir, tmp_path / "in.txt", tmp_path / "out.csv")
    with pytest.raises(UserError, match="run folder .* not found"):
        predict_files(tmp_path / "elsewhere", tmp_path / "in.txt", tmp_path / "out.csv")


def test_readers_report_bad_lines(tmp_path):
    text = tmp_path / "lines.txt"
    text.write_bytes(b"\xef\xbb\xbffirst\r\n" + b"x" * 50 + b"\nbad \xff byte\nnul\x00\nlast")
    entries = list(read_lines(text, max_bytes=20))
    assert entries == [
        (1, "first"),
        BadItem("line 2", "longer than 20 bytes"),
        BadItem(
            "line 3",
            "not utf-8 text (byte 4 of the line); set --set encoding=... to its encoding",
        ),
        BadItem("line 4", "holds a NUL byte (not text)"),
        (5, "last"),
    ]
    table = tmp_path / "rows.csv"
    table.write_bytes(b'a,b\n1,"two\nlines"\n\n2\n3,\xff\n4,"x"y\n5,ok\n6,"cut')
    header, rows = read_table_rows(table, ",")
    assert header == ["a", "b"]
    rows = list(rows)
    assert rows[0] == (2, {"a": "1", "b": "two\nlines"})
    assert rows[1].key == "line 5" and "1 field(s) where the header has 2" in rows[1].reason
    assert rows[2] == BadItem("line 6", "not utf-8 text")
    assert rows[3].key == "line 7" and "cannot parse as CSV" in rows[3].reason
    assert rows[4] == (8, {"a": "5", "b": "ok"})
    assert rows[5] == BadItem(
        "line 9", "cannot parse as CSV: the file ends inside a quoted cell (truncated?)"
    )


def test_readers_decode_a_declared_encoding_and_name_the_byte_otherwise(tmp_path):
    text = tmp_path / "latin.txt"
    text.write_bytes("caf\u00e9 cr\u00e8me\n".encode("latin-1"))
    [bad] = list(read_lines(text))
    assert bad.key == "line 1" and "not utf-8 text (byte 3 of the line)" in bad.reason
    assert list(read_lines(text, encoding="latin-1")) == [(1, "caf\u00e9 cr\u00e8me")]
    table = tmp_path / "latin.csv"
    table.write_bytes("text,note\ncaf\u00e9,\u00e0 voir\n".encode("latin-1"))
    header, rows = read_table_rows(table, ",", "latin-1")
    assert list(rows) == [(2, {"text": "caf\u00e9", "note": "\u00e0 voir"})]
    with pytest.raises(UserError, match="encoding 'utf-16' is not read line by line"):
        list(read_lines(text, encoding="utf-16"))


# === Sentiment ===


@pytest.fixture(scope="module")
def sentiment_run(tmp_path_factory) -> Path:
    return smoke_run_dir(tmp_path_factory, "sentiment", "--seed", "1")


def _sentiment_model(run: Path):
    pipeline, _, info, model = runner.load_run(str(run))
    return model, info.class_names


def test_sentiment_csv_keeps_columns_and_reports_bad_rows(sentiment_run, tmp_path):
    source = tmp_path / "reviews.csv"
    source.write_text(
        'id,text,label\n1,a gorgeous witty film,fresh\n2,"a dull, tedious mess",rotten\n'
        "3,  ,rotten\n4,moving and funny,fresh\n"
    )
    out = tmp_path / "scored.csv"
    with pytest.raises(UserError, match=r"reviews.csv, line 4: the text is empty"):
        predict_files(sentiment_run, source, out)
    assert not out.exists()
    summary = predict_files(sentiment_run, source, out, on_error="skip")
    assert (summary["predicted"], summary["skipped"]) == (3, 1)
    rows = read_csv(out)
    model, names = _sentiment_model(sentiment_run)
    probability_columns = [f"probability_{name}" for name in names]
    assert list(rows[0]) == ["id", "text", "label", "predicted_label", *probability_columns]
    assert [row["id"] for row in rows] == ["1", "2", "4"]
    assert [row["label"] for row in rows] == ["fresh", "rotten", "fresh"]
    texts = ["a gorgeous witty film", "a dull, tedious mess", "moving and funny"]
    expected = model.predict(np.asarray(texts, dtype=object), verbose=0)
    got = np.array([[float(row[c]) for c in probability_columns] for row in rows])
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert [row["predicted_label"] for row in rows] == [names[i] for i in expected.argmax(1)]
    assert read_csv(skipped_path(out)) == [{"key": "line 4", "reason": "the text is empty"}]


def test_sentiment_tsv_jsonl_and_lines_in(sentiment_run, tmp_path):
    (tmp_path / "a.tsv").write_text("text\tsource\na fine film\tsite\n")
    (tmp_path / "a.jsonl").write_text(
        '{"text": "a fine film", "stars": 4, "tags": ["x"]}\n\n{"text": 3}\n[1]\n{"text": NaN}\n'
    )
    (tmp_path / "a.txt").write_text("a fine film\n\n" + "word " * 30_000 + "\n")
    cases = {
        "a.tsv": ([{"text": "a fine film", "source": "site"}], []),
        "a.jsonl": ([{"text": "a fine film", "stars": 4, "tags": ["x"]}], ["3", "4", "5"]),
        "a.txt": ([{"text": "a fine film"}], ["3"]),
    }
    for name, (kept, bad_lines) in cases.items():
        out = tmp_path / f"{name}.jsonl"
        summary = predict_files(sentiment_run, tmp_path / name, out, on_error="skip")
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert [{k: row[k] for k in kept[0]} for row in rows] == kept, name
        assert {"predicted_label"} <= set(rows[0]), name
        skipped = read_csv(skipped_path(out)) if summary["skipped"] else []
        assert [row["key"] for row in skipped] == [f"line {n}" for n in bad_lines], name
    reasons = [row["reason"] for row in read_csv(tmp_path / "a.jsonl.jsonl.skipped.csv")]
    assert reasons[0] == "'text' holds a int, not a text (the run's text_column)"
    assert reasons[1] == "a JSON list, not an object"
    assert "NaN is not a JSON value" in reasons[2]
    with pytest.raises(UserError, match=r"no column 'text'.*columns: review"):
        (tmp_path / "b.csv").write_text("review\nfine\n")
        predict_files(sentiment_run, tmp_path / "b.csv", tmp_path / "b.out.csv")
    out = tmp_path / "b.out.csv"
    predict_files(sentiment_run, tmp_path / "b.csv", out, settings=["text_column=review"])
    assert read_csv(out)[0]["review"] == "fine"


def test_sentiment_cli_error_line(sentiment_run, tmp_path):
    (tmp_path / "in.txt").write_text("a fine film\n")
    (tmp_path / "out.csv").write_text("mine\n")
    result = run_cli(
        "predict", str(sentiment_run), "--input", str(tmp_path / "in.txt"),
        "--output", str(tmp_path / "out.csv"),
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'out.csv'} already exists; add --overwrite to replace it"
    ]
    assert (tmp_path / "out.csv").read_text() == "mine\n"


def _write_reviews(path: Path, rows: int) -> None:
    rng = np.random.default_rng(0)
    with path.open("w") as stream:
        stream.write("id,text,source\n")
        for i in range(rows):
            picks = rng.integers(0, len(REVIEW_PHRASES), PHRASES_PER_TEXT)
            text = " ".join(REVIEW_PHRASES[j] for j in picks)
            stream.write(f"{i},{text},review-{i}\n")


def _peak_memory_of_predict(run: Path, source: Path, out: Path) -> int:
    """Peak resident bytes of a ``predict`` child process (its own VmHWM)."""
    result, peak = run_cli_with_peak(
        "predict", str(run), "--input", str(source), "--output", str(out), cwd=out.parent
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert peak > 0
    return peak


def test_sentiment_memory_bounded_by_the_batch_not_the_file(sentiment_run, tmp_path):
    peaks, sizes = {}, {}
    for rows in (SMALL_ROWS, LARGE_ROWS):
        source, out = tmp_path / f"in-{rows}.csv", tmp_path / f"out-{rows}.csv"
        _write_reviews(source, rows)
        sizes[rows] = source.stat().st_size
        peaks[rows] = _peak_memory_of_predict(sentiment_run, source, out)
        with out.open() as stream:
            assert sum(1 for _ in stream) == rows + 1
        source.unlink()
        out.unlink()
    assert sizes[LARGE_ROWS] / 2 > MEMORY_SLACK_BYTES
    assert peaks[LARGE_ROWS] - peaks[SMALL_ROWS] < MEMORY_SLACK_BYTES, (peaks, sizes)


# === Forecasting ===


@pytest.fixture(scope="module")
def forecasting_run(tmp_path_factory) -> Path:
    return smoke_run_dir(tmp_path_factory, "forecasting")


def _weather_csv(path: Path, days: int) -> list[dict[str, str]]:
    """The last ``days`` days of the built-in Seattle weather as the training columns."""
    from vega_datasets import local_data

    frame = local_data.seattle_weather().tail(days)
    frame["date"] = frame["date"].dt.strftime("%Y-%m-%d")
    frame.to_csv(path, index=False)
    return read_csv(path)


def test_forecasting_after_the_end_and_rolling(forecasting_run, tmp_path):
    _, _, info, model = runner.load_run(str(forecasting_run))
    rows = _weather_csv(tmp_path / "weather.csv", info.window + 5)
    out = tmp_path / "forecast.csv"
    predict_files(forecasting_run, tmp_path / "weather.csv", out)
    forecast = read_csv(out)
    target = info.target_columns[0]
    quantiles = [f"{target}_q10", f"{target}_q50", f"{target}_q90"]
    assert list(forecast[0]) == ["window_end", "forecast_step", "date", target, *quantiles]
    assert len(forecast) == info.horizon
    assert forecast[0]["window_end"] == "2015-12-31" and forecast[0]["date"] == "2016-01-01"
    windows = np.array(
        [[float(row[c]) for c in info.feature_columns] for row in rows], dtype=np.float32
    )
    expected = model.predict(windows[None, -info.window :], verbose=0)[0, 0, 0]
    np.testing.assert_allclose(float(forecast[0][target]), expected, rtol=1e-5)

    rolling = tmp_path / "rolling.csv"
    predict_files(forecasting_run, tmp_path / "weather.csv", rolling, options={"rolling": True})
    every = read_csv(rolling)
    assert len(every) == 6 * info.horizon
    assert [row["window_end"] for row in every][:2] == [
        rows[info.window - 1]["date"],
        rows[info.window]["date"],
    ]
    all_windows = np.stack([windows[i : i + info.window] for i in range(6)])
    np.testing.assert_allclose(
        [float(row[target]) for row in every], model.predict(all_windows, verbose=0)[:, 0, 0],
        rtol=1e-5,
    )  # fmt: skip


def test_forecasting_bad_rows(forecasting_run, tmp_path):
    _, _, info, _ = runner.load_run(str(forecasting_run))
    path = tmp_path / "weather.csv"
    rows = _weather_csv(path, info.window + 5)
    rows[2]["wind"] = "calm"  # line 4
    rows[4]["date"] = rows[3]["date"]  # line 6: not after line 5
    with path.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(UserError, match=r"weather.csv, line 4: column 'wind': 'calm' is not a n"):
        predict_files(forecasting_run, path, tmp_path / "f.csv", options={"rolling": True})
    out = tmp_path / "rolling.csv"
    summary = predict_files(forecasting_run, path, out, on_error="skip", options={"rolling": True})
    skipped = read_csv(skipped_path(out))
    assert [row["key"] for row in skipped] == ["line 4", "line 6"]
    assert "not after the previous row's" in skipped[1]["reason"]
    # Windows of consecutive good rows only: the rows after line 6.
    assert summary["predicted"] == len(rows) - 5 - info.window + 1
    short = tmp_path / "short.csv"
    _weather_csv(short, info.window - 1)
    with pytest.raises(UserError, match=f"the forecast needs the last {info.window}"):
        predict_files(forecasting_run, short, tmp_path / "s.csv")
    (tmp_path / "cols.csv").write_text("date,temp_max\n2015-01-01,3\n")
    with pytest.raises(UserError, match="no column 'precipitation'"):
        predict_files(forecasting_run, tmp_path / "cols.csv", tmp_path / "c.csv")


def _write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_forecasting_fills_missing_values_as_training_does(forecasting_run, tmp_path):
    import pandas as pd

    _, _, info, model = runner.load_run(str(forecasting_run))
    rows = _weather_csv(tmp_path / "weather.csv", info.window + 6)
    rows[0]["temp_min"] = ""  # the first value: carried back
    rows[3]["wind"] = ""
    rows[5]["temp_max"], rows[6]["temp_max"] = "NaN", ""  # two in a row
    rows[-1]["wind"] = "NA"  # the last value: carried on
    path = tmp_path / "gappy.csv"
    _write_rows(path, rows)
    with pytest.raises(UserError, match=r"gappy.csv, line 2: column 'temp_min': missing value"):
        predict_files(forecasting_run, path, tmp_path / "f.csv", options={"rolling": True})

    out = tmp_path / "rolling.csv"
    predict_files(forecasting_run, path, out, options={"rolling": True},
                  settings=["missing=interpolate"])  # fmt: skip
    frame = pd.read_csv(path, parse_dates=["date"], index_col="date")[info.feature_columns]
    filled = frame.interpolate(method="time", limit_direction="both").to_numpy(np.float32)
    windows = np.stack([filled[i : i + info.window] for i in range(7)])
    target = info.target_columns[0]
    np.testing.assert_allclose(
        [float(row[target]) for row in read_csv(out)], model.predict(windows, verbose=0)[:, 0, 0],
        rtol=1e-5,
    )  # fmt: skip


def test_forecasting_gaps_longer_than_a_window_are_bad_rows(forecasting_run, tmp_path):
    _, _, info, _ = runner.load_run(str(forecasting_run))
    rows = _weather_csv(tmp_path / "weather.csv", 3 * info.window + 2)
    for row in rows[1 : info.window + 2]:  # lines 3 .. window + 3
        row["wind"] = ""
    path = tmp_path / "gappy.csv"
    _write_rows(path, rows)
    out = tmp_path / "rolling.csv"
    summary = predict_files(
        forecasting_run,
        path,
        out,
        on_error="skip",
        options={"rolling": True},
        settings=["missing=interpolate"],
    )
    skipped = read_csv(skipped_path(out))
    assert [row["key"] for row in skipped] == [f"line {n}" for n in range(3, info.window + 4)]
    assert "longer than the model's window" in skipped[0]["reason"]
    assert summary["predicted"] == len(rows) - (info.window + 2) - info.window + 1


# === Translation ===


@pytest.fixture(scope="module")
def translation_run(tmp_path_factory) -> Path:
    return smoke_run_dir(tmp_path_factory, "translation", "--seed", "1")


def test_translation_source_and_translation_out(translation_run, tmp_path):
    pipeline, _, info, model = runner.load_run(str(translation_run))
    too_long = " ".join(["one"] * (info.max_source_length + 1))
    sentences = ["twenty one", "", "four thousand", too_long, "three hundred and five"]
    source = tmp_path / "sentences.txt"
    source.write_text("\n".join(sentences) + "\n")
    with pytest.raises(UserError, match=r"sentences.txt, line 4: the sentence has \d+ tokens"):
        predict_files(translation_run, source, tmp_path / "t.csv")
    out = tmp_path / "t.csv"
    summary = predict_files(translation_run, source, out, on_error="skip", batch_size=2)
    assert (summary["predicted"], summary["skipped"]) == (3, 1)
    rows = read_csv(out)
    kept = ["twenty one", "four thousand", "three hundred and five"]
    assert [row["source"] for row in rows] == kept
    assert list(rows[0]) == ["source", "translation"]
    expected = [line.split("\t")[0] for line in pipeline.predict(model, kept, info)]
    assert [row["translation"] for row in rows] == expected
    assert read_csv(skipped_path(out))[0]["key"] == "line 4"
