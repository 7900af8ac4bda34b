"""Property-based tests (hypothesis) of the command line over CSV contents and ``--set`` values.

The property: ``python -m pipelines run ...`` either gets past reading its settings and data,
or ends with exactly one ``error: ...`` line and exit status 2 — never with a traceback.
Each example calls ``pipelines.cli.main`` in this process (a child process per example would
cost seconds of TensorFlow import each). Training is replaced by a stub that stops the run
once the data is loaded: what varies here is only what the settings parsing and the loaders
see, and a run that gets that far is a success.
"""

from __future__ import annotations

import contextlib
import io
import math
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

# What a command line can carry: no NUL, no lone surrogates.
ARGV_TEXT = st.text(
    alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
    max_size=10,
)

EXAMPLES = 30
PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples every run: CI stays reproducible and bounded
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


class StopAfterLoadingError(Exception):
    """Raised by the training stub: settings and data were accepted."""


@pytest.fixture
def stop_before_training(monkeypatch):
    from pipelines import runner

    def train(*args, **kwargs):
        raise StopAfterLoadingError

    monkeypatch.setattr(runner, "train", train)


def _run(args: list[str]) -> tuple[str, str]:
    """``("accepted" | "error", stderr)``; any other ending fails the test with its traceback."""
    from pipelines.cli import main

    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = main(args)
        except StopAfterLoadingError:
            return "accepted", stderr.getvalue()
        except SystemExit as exit_:  # argparse's usage errors exit from inside main
            status = exit_.code
    text = stderr.getvalue()
    lines = text.strip().splitlines()
    assert status == 2, (status, text[-3000:])
    assert len(lines) == 1 and lines[0].startswith("error: "), text[-3000:]
    assert "Traceback" not in text
    return "error", text


# === CSV contents ===

CELLS = st.one_of(
    st.sampled_from(
        ["", " ", "nan", "NaN", "inf", "-Infinity", "1e39", "1e400", "-0", "0x1F", "1,5", '"']
    ),
    st.sampled_from(['"a,b"', '"unclosed', "2020-02-30", "2020-01-01", "yesterday", "\t"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.text(max_size=12),
)


def _daily_csv(rows: int = 120) -> list[list[str]]:
    import pandas as pd

    days = pd.date_range("2020-01-01", periods=rows, freq="D").strftime("%Y-%m-%d")
    return [["date", "temp", "wind"]] + [
        [d, f"{10 + 5 * math.sin(i / 5):.2f}", str(i % 7)] for i, d in enumerate(days)
    ]


def _sentiment_csv(rows: int = 40) -> list[list[str]]:
    return [["text", "label"]] + [
        [f"{'good' if i % 2 else 'bad'} film {i}", str(i % 2)] for i in range(rows)
    ]


@st.composite
def mutated_csv(draw, base: list[list[str]]) -> bytes:
    """A valid CSV with a few mutations: cells replaced, rows cut, dropped, duplicated, extra
    fields, the file cut at a byte, or bytes that are not UTF-8."""
    rows = [list(row) for row in base]
    for _ in range(draw(st.integers(0, 4))):
        what = draw(st.sampled_from(["cell", "cell", "cut_row", "drop", "dup", "extra", "header"]))
        r = draw(st.integers(0, len(rows) - 1))
        if what == "cell" and rows[r]:
            rows[r][draw(st.integers(0, len(rows[r]) - 1))] = draw(CELLS)
        elif what == "cut_row" and rows[r]:
            rows[r] = rows[r][: draw(st.integers(0, len(rows[r]) - 1))]
        elif what == "drop" and len(rows) > 1:
            del rows[r]
        elif what == "dup":
            rows.insert(r, list(rows[r]))
        elif what == "extra":
            rows[r].append(draw(CELLS))
        elif what == "header":
            rows[0] = [
                draw(st.sampled_from(["date", "text", "label", "", "temp"])) for _ in rows[0]
            ]
    data = ("\n".join(",".join(row) for row in rows) + "\n").encode("utf-8", "surrogatepass")
    ending = draw(st.sampled_from(["whole", "whole", "cut", "bytes"]))
    if ending == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    elif ending == "bytes":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=6)) + data[at:]
    return data


def _csv_property(pipeline: str, base, extra_settings: list[str], outcomes: Counter):
    @PROPERTY_SETTINGS
    @given(content=mutated_csv(base))
    def check(content: bytes) -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "data.csv"
            path.write_bytes(content)
            args = ["run", pipeline, "--preset", "smoke", "--data", f"csv:{path}"]
            args += ["--out", str(Path(folder) / "out")]
            args += ["--set", *extra_settings] if extra_settings else []
            outcome, stderr = _run(args)
            outcomes[outcome] += 1
            if outcome == "error":
                assert str(path) in stderr or "setting" in stderr, stderr
                assert not (Path(folder) / "out").exists()

    return check


def test_forecasting_csv_contents_end_in_success_or_one_error_line(stop_before_training):
    outcomes = Counter()
    _csv_property("forecasting", _daily_csv(), ["target_columns=temp", "window=8"], outcomes)()
    assert outcomes["accepted"] and outcomes["error"], outcomes  # both endings were explored


def test_sentiment_csv_contents_end_in_success_or_one_error_line(stop_before_training):
    outcomes = Counter()
    _csv_property("sentiment", _sentiment_csv(), [], outcomes)()
    assert outcomes["accepted"] and outcomes["error"], outcomes


def test_the_unmutated_csvs_are_accepted(stop_before_training, tmp_path):
    """The property tests start from files that load: a mutation is what makes an error."""
    for pipeline, base, extra in (
        ("forecasting", _daily_csv(), ["target_columns=temp", "window=8"]),
        ("sentiment", _sentiment_csv(), []),
    ):
        path = tmp_path / f"{pipeline}.csv"
        path.write_text("\n".join(",".join(row) for row in base) + "\n")
        args = ["run", pipeline, "--preset", "smoke", "--data", f"csv:{path}"]
        args += ["--set", *extra] if extra else []
        assert _run(args)[0] == "accepted"


# === --set values ===

VALUES = st.one_of(
    st.sampled_from(
        ["", "0", "-1", "1", "2", "true", "none", "nan", "inf", "-inf", "1e3", "0.5", "1,2", "="]
    ),
    st.integers(min_value=-(2**40), max_value=2**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    ARGV_TEXT,
)


@pytest.fixture(scope="module")
def data_specs(tmp_path_factory) -> dict[str, str]:
    """A small valid data spec for each pipeline."""
    import pretty_midi

    root = tmp_path_factory.mktemp("property_data")
    forecasting = root / "series.csv"
    forecasting.write_text("\n".join(",".join(row) for row in _daily_csv()) + "\n")
    sentiment = root / "texts.csv"
    sentiment.write_text("\n".join(",".join(row) for row in _sentiment_csv()) + "\n")
    translation = root / "pairs.tsv"
    translation.write_text("".join(f"word {i}\tmot {i}\n" for i in range(40)))
    music = root / "midi"
    music.mkdir()
    for piece in range(3):
        midi = pretty_midi.PrettyMIDI(initial_tempo=120)
        piano = pretty_midi.Instrument(program=0)
        for beat in range(48):
            for base in (72, 64, 55):
                pitch = base + (beat * (piece + 1)) % 5
                piano.notes.append(pretty_midi.Note(80, pitch, beat * 0.5, beat * 0.5 + 0.5))
        midi.instruments.append(piano)
        midi.write(str(music / f"piece_{piece}.mid"))
    return {
        "forecasting": f"csv:{forecasting}",
        "sentiment": f"csv:{sentiment}",
        "translation": f"tsv:{translation}",
        "music": f"midi:{music}",
    }


BASE_SETTINGS = {"forecasting": ["target_columns=temp", "window=8"]}


def _typed_values(kind) -> st.SearchStrategy[str]:
    """Values of the setting's own type (often in range, sometimes huge), or anything."""
    if kind is int:
        typed = st.one_of(
            st.integers(min_value=0, max_value=64),
            st.integers(min_value=-(2**40), max_value=2**40),
        ).map(str)
    elif kind is float:
        typed = st.one_of(
            st.floats(min_value=0.0, max_value=1.0), st.floats(allow_nan=True, allow_infinity=True)
        ).map(repr)
    elif kind is bool:
        typed = st.sampled_from(["true", "false", "yes", "0", "maybe"])
    else:
        typed = st.sampled_from(["lstm", "gru", "max", "auto", "interpolate", "fill", "D", "%Y"])
    return st.one_of(typed, typed, VALUES)


@st.composite
def set_pairs(draw) -> tuple[str, list[str]]:
    from pipelines import registry

    pipeline = draw(st.sampled_from(["sentiment", "forecasting", "music", "translation"]))
    fields = registry.config_module(pipeline).CONFIG_CLASS.model_fields
    types = {key: info.annotation for key, info in fields.items()}
    pairs = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.integers(0, 9)) == 0:
            pairs.append(f"{draw(ARGV_TEXT)}={draw(VALUES)}")  # a key of any text
        else:
            key = draw(st.sampled_from(sorted(types)))
            pairs.append(f"{key}={draw(_typed_values(types[key]))}")
    return pipeline, pairs


def test_set_values_end_in_success_or_one_error_line(stop_before_training, data_specs):
    @PROPERTY_SETTINGS
    @given(case=set_pairs())
    # Inputs that once ended in a traceback, a hang or a huge allocation:
    @example(case=("music", ["steps_per_quarter=2000000000"]))
    @example(case=("music", ["transpose=2147483647"]))
    @example(case=("translation", ["max_target_length=2000000000"]))
    @example(case=("forecasting", ["time_format=%Q"]))
    @example(case=("forecasting", ["frequency=ns"]))
    @example(case=("sentiment", ["learning_rate=nan", "units=99999999999"]))
    def check(case: tuple[str, list[str]]) -> None:
        pipeline, pairs = case
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "out"
            args = ["run", pipeline, "--preset", "smoke", "--data", data_specs[pipeline]]
            args += ["--out", str(out), "--set", *BASE_SETTINGS.get(pipeline, []), *pairs]
            outcome, _ = _run(args)
            outcomes[outcome] += 1
            if outcome == "error":
                assert not out.exists() and not Path(f"{out}.partial").exists()

    outcomes = Counter()
    check()
    print(f"--set property: {dict(outcomes)}")
    assert outcomes["accepted"] and outcomes["error"], outcomes
