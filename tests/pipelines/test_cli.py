"""The command line: fast help without TensorFlow, and one-line errors with exit status 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import REPO, run_cli


def test_help_and_list_do_not_import_tensorflow():
    code = (
        "import sys, contextlib, io\n"
        "from pipelines.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    assert main(['list']) == 0\n"
        "    for argv in (['--help'], ['run', 'sentiment', '--help']):\n"
        "        try:\n"
        "            main(argv)\n"
        "        except SystemExit as exit:\n"
        "            assert exit.code == 0\n"
        "assert 'tensorflow' not in sys.modules, 'help imported tensorflow'\n"
        "print(out.getvalue())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "sentiment" in result.stdout
    assert "text_column" in result.stdout  # run sentiment --help lists the settings
    assert "tsv:PATH" in result.stdout  # and the data kinds


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "no-such-pipeline"], "unknown pipeline 'no-such-pipeline'"),
        (["run", "sentiment", "--set", "no_such_key=1"], "unknown setting 'no_such_key'"),
        (["run", "sentiment", "--set", "units=many"], "setting 'units' = many: input should be"),
        (["run", "sentiment", "--set", "dropout=1.5"], "setting 'dropout' = 1.5: input should"),
        (["run", "sentiment", "--set", "cell=transformer"], "setting 'cell' = transformer"),
        (["run", "sentiment", "--data", "parquet:x.parquet"], "unknown kind 'parquet'"),
        (["run", "sentiment", "--preset", "huge"], "invalid choice"),
        (["evaluate", "/no/such/run"], "run folder /no/such/run not found"),
    ],
)
def test_user_mistakes_end_in_one_error_line(tmp_path, args, expected):
    out = tmp_path / "run"
    result = run_cli(*args, *(["--out", str(out)] if args[0] == "run" else []), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in lines[0]
    assert not list(tmp_path.iterdir()), "a failed run left files behind"
