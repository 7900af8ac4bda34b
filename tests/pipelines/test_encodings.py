"""Text inputs: their encoding, and reading them in bounded pieces.

Text files are UTF-8 (a byte-order mark is accepted) unless the pipeline's ``encoding``
setting names another; a byte that is not in the encoding is one ``error:`` line naming the
file, line and byte offset. Tables are read a bounded line at a time and refused at their
declared limits (``pipelines.tables``); experiment files are refused past their nesting depth.
Peak memory is measured in child processes (their own ``VmHWM``), against reading the file whole.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipelines import experiment, tables, text_files
from pipelines.errors import UserError
from pipelines.forecasting.config import ForecastingConfig
from pipelines.sentiment.config import SentimentConfig
from pipelines.translation import data as translation_data
from pipelines.translation.config import TranslationConfig
from tests.helpers import REPO

LATIN1_ROWS = "text,label\ngood film,1\ncafé crème bad,0\n"


def _run(args: list[str]) -> tuple[int, str]:
    from pipelines.cli import main

    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        status = main(args)
    return status, stderr.getvalue()


# === Encodings ===


def test_a_latin1_table_is_refused_with_the_line_offset_and_the_setting(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(LATIN1_ROWS.encode("latin-1"))
    with pytest.raises(UserError) as caught:
        tables.read_table(path, ",")
    offset = LATIN1_ROWS.encode("latin-1").index(b"\xe9")
    assert str(caught.value) == (
        f"{path}: not UTF-8 text (bad byte at line 3): byte offset {offset} (0xe9); "
        "pass --set encoding=latin-1 if that is its encoding"
    )


def test_the_encoding_setting_decodes_a_latin1_table(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(LATIN1_ROWS.encode("latin-1"))
    config = SentimentConfig.from_preset("smoke").with_overrides(["encoding=latin-1"])
    frame = tables.read_table(path, ",", config.encoding)
    assert frame["text"].tolist() == ["good film", "café crème bad"]


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "text,label\nnaïve,1\n".encode())
    frame = tables.read_table(path, ",")
    assert list(frame.columns) == ["text", "label"] and frame["text"][0] == "naïve"


def test_the_byte_offset_counts_the_byte_order_mark(tmp_path):
    path = tmp_path / "bom_latin1.csv"
    raw = b"\xef\xbb\xbf" + LATIN1_ROWS.encode("latin-1")
    path.write_bytes(raw)
    offset = raw.index(b"\xe9")
    with pytest.raises(UserError, match=f"byte offset {offset} \\(0xe9\\)"):
        tables.read_table(path, ",")


def test_utf16_is_named_as_such_and_read_when_declared(tmp_path):
    path = tmp_path / "utf16.csv"
    path.write_text("text,label\ngood,1\n", encoding="utf-16")
    with pytest.raises(UserError, match="pass --set encoding=utf-16"):
        tables.read_table(path, ",")
    assert tables.read_table(path, ",", "utf-16")["text"].tolist() == ["good"]


def test_a_multibyte_character_cut_at_the_end_names_its_offset(tmp_path):
    path = tmp_path / "cut.csv"
    raw = "text,label\ncafé,1\n".encode()[:-4]  # ends inside 'é'
    path.write_bytes(raw)
    with pytest.raises(UserError, match=f"line 2\\): byte offset {len(raw) - 1} \\(0xc3\\)"):
        tables.read_table(path, ",")


def test_translation_pairs_and_forecasting_csvs_take_the_encoding_setting(tmp_path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_bytes("coffee\tcafé\ntea\tthé\n".encode("cp1252"))
    with pytest.raises(UserError, match="not UTF-8 text \\(bad byte at line 1\\)"):
        translation_data.read_pairs(pairs)
    config = TranslationConfig.from_preset("smoke").with_overrides(["encoding=cp1252"])
    assert translation_data.read_pairs(pairs, encoding=config.encoding) == [
        ("coffee", "café"),
        ("tea", "thé"),
    ]
    from pipelines.forecasting.data import read_csv

    series = tmp_path / "series.csv"
    series.write_bytes("date,température\n2020-01-01,1.5\n".encode("latin-1"))
    config = ForecastingConfig.from_preset("smoke").with_overrides(["encoding=latin-1"])
    assert list(read_csv(series, config).frame.columns) == ["température"]


def test_an_unknown_encoding_is_refused_with_the_allowed_ones(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text(LATIN1_ROWS)
    status, stderr = _run(
        ["run", "sentiment", "--preset", "smoke", "--data", f"csv:{path}"]
        + ["--out", str(tmp_path / "run"), "--set", "encoding=klingon"]
    )
    lines = stderr.strip().splitlines()
    assert status == 2 and len(lines) == 1 and lines[0].startswith("error: ")
    assert "encoding" in lines[0] and "latin-1" in lines[0]
    assert set(text_files.ENCODINGS) >= {"utf-8", "latin-1"}


def test_a_latin1_run_ends_in_one_error_line_naming_the_setting(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(LATIN1_ROWS.encode("latin-1"))
    out = tmp_path / "run"
    status, stderr = _run(
        ["run", "sentiment", "--preset", "smoke", "--data", f"csv:{path}", "--out", str(out)]
    )
    lines = stderr.strip().splitlines()
    assert status == 2 and len(lines) == 1, stderr[-2000:]
    assert lines[0].startswith(f"error: {path}: not UTF-8 text (bad byte at line 3)")
    assert lines[0].endswith("pass --set encoding=latin-1 if that is its encoding")
    assert not out.exists() and not Path(f"{out}.partial").exists()


# === Bounded reading: peak memory in a child process ===

# The child reads its own peak from VmHWM: ru_maxrss of a process started by a large one
# (pytest with TensorFlow loaded) starts at the parent's peak, since exec carries it over.
CHILD = """
import sys
from pathlib import Path
from pipelines import tables
from pipelines.errors import UserError

def peak_kib():
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0])

path, mode = Path(sys.argv[1]), sys.argv[2]
if mode.startswith("cells="):
    tables.MAX_CELLS = int(mode.removeprefix("cells="))
before = peak_kib()
try:
    if mode == "whole":
        path.read_bytes().decode("utf-8")  # what a reader that holds the whole file takes
    else:
        tables.read_table(path, ",")
    outcome = "read"
except UserError as error:
    outcome = f"error: {error}"
after = peak_kib()
print(outcome)
print((after - before) // 1024)  # MiB this reading added to the peak
"""


def _peak_in_child(path: Path, mode: str) -> tuple[str, int]:
    """``(outcome, MiB added to the peak resident memory)`` of reading ``path`` in a child."""
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), mode],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome, mebibytes = result.stdout.strip().splitlines()[-2:]
    return outcome, int(mebibytes)


def test_a_huge_line_is_refused_before_it_is_read_whole(tmp_path):
    path = tmp_path / "one_line.csv"
    megabytes = 200
    with path.open("wb") as stream:
        stream.write(b"text,label\n")
        for _ in range(megabytes):
            stream.write(b"w" * (1 << 20))  # no line break anywhere
    outcome, bounded = _peak_in_child(path, "bounded")
    assert outcome == (
        f"error: {path}, line 2: longer than {text_files.MAX_LINE_CHARS:,} characters; "
        "not read further (is it a CSV text file?)"
    )
    _, whole = _peak_in_child(path, "whole")
    print(f"peak memory added: bounded {bounded} MiB, whole file {whole} MiB")
    assert whole >= megabytes
    assert bounded <= 4 * text_files.MAX_LINE_CHARS / 2**20 + 16 < whole / 4


def test_a_table_over_the_cell_limit_is_refused_at_the_limit(tmp_path):
    path = tmp_path / "rows.csv"
    rows = 1_000_000
    with path.open("w") as stream:
        stream.write("text,label\n")
        stream.writelines(f"text number {i},{i % 2}\n" for i in range(rows))
    limit = 100_000
    outcome, bounded = _peak_in_child(path, f"cells={limit}")
    assert outcome.startswith(f"error: {path}, line {limit // 2 + 2}: more than 50,000 data rows")
    assert f"may hold {limit:,} cells" in outcome
    outcome, whole = _peak_in_child(path, f"cells={10 * rows}")
    assert outcome == "read"
    print(f"peak memory added: refused at {limit:,} cells {bounded} MiB, read whole {whole} MiB")
    assert bounded < whole / 4


def test_the_declared_table_limits_are_checked(tmp_path):
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(f"c{i}" for i in range(tables.MAX_COLUMNS + 1)) + "\n")
    with pytest.raises(UserError, match=f"{tables.MAX_COLUMNS + 1:,} columns; a table may"):
        tables.read_table(wide, ",")


# === Experiment files: nesting depth ===


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deep.yaml", "pipeline: sentiment\nsettings: " + "[" * 5000 + "]" * 5000 + "\n"),
        ("deep.json", '{"pipeline": "sentiment", "settings": ' + '{"a": ' * 40 + "1" + "}" * 41),
        ("block.yaml", "pipeline: sentiment\n" + "".join(f"{' ' * i}k{i}:\n" for i in range(30))),
    ],
)
def test_an_experiment_file_nested_too_deep_is_refused_naming_it(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(UserError) as caught:
        experiment.read_file(path)
    assert str(caught.value).startswith(
        f"{path}: nested deeper than {experiment.MAX_NESTING} levels"
    )
    status, stderr = _run(["run", "--config", str(path)])
    assert status == 2 and stderr.strip().startswith(f"error: {path}: nested deeper")


def test_an_experiment_file_at_the_real_depth_is_read(tmp_path):
    path = tmp_path / "tuned.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            pipeline: sentiment
            settings: {units: 8}
            tuning:
              objective: {name: val_accuracy, direction: max}
              space:
                units: {choices: [8, 16]}
            """
        )
    )
    assert experiment.read_file(path)["tuning"]["space"]["units"]["choices"] == [8, 16]
