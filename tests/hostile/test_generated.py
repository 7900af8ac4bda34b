"""hypothesis-generated hostile files and requests: prediction inputs, experiment files and
request bodies drawn at random (derandomized, so CI sees the same examples each time), each
of which must end clean like the hand-made cases."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile import cases_cli, report
from tests.hostile.cases_cli import EITHER, Call
from tests.hostile.runner import judge, run_in_process, snapshot
from tests.hostile.test_serving_corpus import _alive, _judge_rest, _post

FEW = 10  # examples of a case that runs a model
BOUNDED = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TEXT_CHARACTERS = st.characters(codec="utf-8") | st.sampled_from(",\t\n\r\"'\\\x00")
CELLS = st.one_of(
    st.text(TEXT_CHARACTERS, max_size=12),
    st.sampled_from(["nan", "NaN", "inf", "-Infinity", "1e39", "-0", "0x10", "", "1,5", "text"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)


def _table(header: list[str], delimiter: str = ","):
    """A CSV/TSV text with ``header`` (perhaps misspelt) and rows of hostile cells."""
    rows = st.lists(st.lists(CELLS, min_size=0, max_size=len(header) + 2), max_size=12)
    headers = st.sampled_from([header, header[::-1], [h.upper() for h in header], header[:1]])
    return st.tuples(headers, rows).map(
        lambda hr: "\n".join(delimiter.join(row) for row in [hr[0], *hr[1]]) + "\n"
    )


FILE_INPUTS = {  # pipeline -> (file name, strategy of contents)
    "sentiment": ("texts.csv", _table(["text", "label"])),
    "translation": ("lines.txt", st.text(TEXT_CHARACTERS, max_size=120)),
    "forecasting": ("recent.csv", _table(["date", "temp", "wind"])),
}
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16", "cp1252"])


def _encoded(text: str, encoding: str) -> bytes:
    return text.encode(encoding, errors="replace")


def _run_generated(pipeline: str, finished_runs, make_call) -> tuple[list[str], str]:
    """Build a case in a fresh folder with ``make_call(folder, run)``, run it, judge it."""
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        run = finished_runs.copy(pipeline, folder / "run") if pipeline else None
        call = make_call(folder, run)
        before = snapshot(folder)
        ending = run_in_process(call.argv, folder)
        return judge(EITHER, call, ending, folder, before), ending.first_line()


def _check_generated(suite: str, pipeline: str, kind: str, key: str, test) -> None:
    """Run the hypothesis ``test``; record it as one case of the table."""
    try:
        test()
    except Exception as error:
        report.record(
            suite, pipeline, kind, key, ["a generated example was not clean"], str(error)[:300]
        )
        raise
    report.record(suite, pipeline, kind, key, [], "")


@pytest.mark.parametrize("pipeline", sorted(FILE_INPUTS))
def test_generated_prediction_inputs_end_clean(pipeline, finished_runs):
    file_name, contents = FILE_INPUTS[pipeline]

    @settings(BOUNDED, max_examples=FEW)
    @given(text=contents, encoding=ENCODINGS, raw=st.binary(max_size=64))
    def case(text, encoding, raw):
        def make_call(folder: Path, run: Path) -> Call:
            source = folder / file_name
            source.write_bytes(_encoded(text, encoding) + raw)
            output = folder / "out.csv"
            argv = ["predict", str(run), "--input", str(source), "--output", str(output)]
            return Call(argv, (), (output, Path(f"{output}.skipped.csv")))

        problems, said = _run_generated(pipeline, finished_runs, make_call)
        assert not problems, f"{problems}: {said}"

    _check_generated(
        "cli", pipeline, "hypothesis files", f"{pipeline}/generated/predict_input", case
    )


SETTING_VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
)
SETTING_KEYS = st.sampled_from(
    ["units", "epochs", "learning_rate", "dropout", "batch_size", "window", "seed"]
) | st.text(min_size=1, max_size=10)


@pytest.mark.parametrize("pipeline", cases_cli.PIPELINES)
def test_generated_experiment_files_validate_clean(pipeline):
    @BOUNDED
    @given(
        values=st.dictionaries(SETTING_KEYS, SETTING_VALUES, max_size=4),
        extra=st.dictionaries(
            st.sampled_from(["seed", "preset", "data", "tuning", "junk"]),
            SETTING_VALUES,
            max_size=2,
        ),
        encoding=ENCODINGS,
    )
    def case(values, extra, encoding):
        def make_call(folder: Path, run) -> Call:
            body = {"pipeline": pipeline, "settings": values, **extra}
            path = folder / "experiment.yaml"
            path.write_bytes(_encoded(json.dumps(body, allow_nan=True), encoding))
            return Call(["validate", str(path)])

        problems, said = _run_generated("", None, make_call)
        assert not problems, f"{problems}: {said}"

    _check_generated(
        "cli", pipeline, "hypothesis files", f"{pipeline}/generated/experiment_file", case
    )


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=30,
)
BODIES = st.one_of(
    st.fixed_dictionaries({"instances": JSON_VALUES}),
    st.fixed_dictionaries({"inputs": JSON_VALUES}),
    st.fixed_dictionaries(
        {"signature_name": JSON_VALUES, "instances": st.lists(JSON_VALUES, max_size=3)}
    ),
    JSON_VALUES,
    st.binary(max_size=200),
)


@pytest.mark.parametrize(
    "model", ["sentiment", "forecasting", "speech", "music", "translation", "video"]
)
def test_generated_request_bodies_are_answered_cleanly(model, served):
    server, _ = served

    @BOUNDED
    @given(body=BODIES)
    def case(body):
        status, answer = _post(server.rest, f"/v1/models/{model}:predict", body)
        problems = _judge_rest(EITHER, status, answer) + _alive(server)
        assert not problems, f"{problems}: {status} {str(answer)[:200]}"

    _check_generated("rest", model, "hypothesis requests", f"rest/{model}/generated/body", case)
