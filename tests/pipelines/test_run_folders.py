"""Run folders through the command line: output paths checked before any work, only
finished runs read, nothing of the user's written over without ``--overwrite``, one
writer at a time.

Cases run in-process through ``pipelines.cli.main``; they share one sentiment smoke run,
copied where a case writes into it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pipelines import locks
from pipelines.cli import main
from tests.helpers import smoke_run_dir

SMOKE_RUN = ("run", "sentiment", "--preset", "smoke", "--set", "max_examples=200")


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    return smoke_run_dir(tmp_path_factory, "sentiment", "--seed", "1")


@pytest.fixture
def run_copy(finished, tmp_path) -> Path:
    """A private copy of the finished run, for cases that write into it."""
    copy = tmp_path / "run"
    shutil.copytree(finished, copy, symlinks=True)
    return copy


def _refused(capsys, argv: list[str]) -> str:
    """The one ``error:`` line of a command that must exit with status 2."""
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), lines
    assert not any("Traceback" in line for line in lines)
    return lines[-1]


def _bad_out(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """An ``--out`` that cannot become a run folder, and what the error must say."""
    if kind == "parent is a file":
        (tmp_path / "file").write_text("mine\n")
        return tmp_path / "file" / "run", f"{tmp_path / 'file'} is a file, not a folder"
    if kind == "dangling symlink":
        (tmp_path / "run").symlink_to(tmp_path / "gone")
        return tmp_path / "run", f"is a symbolic link to {tmp_path / 'gone'}, which does not exist"
    if kind == "out is a file":
        (tmp_path / "run").write_text("mine\n")
        return tmp_path / "run", "already exists (a file)"
    if kind == "parent is a dangling symlink":
        (tmp_path / "parent").symlink_to(tmp_path / "gone")
        return tmp_path / "parent" / "run", "which does not exist"
    raise ValueError(kind)


BAD_OUTS = ["parent is a file", "dangling symlink", "out is a file", "parent is a dangling symlink"]


@pytest.mark.parametrize("kind", BAD_OUTS)
def test_an_out_that_cannot_be_written_is_refused_before_loading_data(kind, tmp_path, capsys):
    out, cause = _bad_out(tmp_path, kind)
    before = sorted(p.name for p in tmp_path.iterdir())
    line = _refused(capsys, [*SMOKE_RUN, "--out", str(out)])
    assert str(out) in line and cause in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no partial, no lock
    if kind == "out is a file":
        assert out.read_text() == "mine\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_parent_is_refused_before_loading_data(tmp_path, capsys):
    parent = tmp_path / "read-only"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        line = _refused(capsys, [*SMOKE_RUN, "--out", str(parent / "run")])
    finally:
        parent.chmod(0o755)
    assert f"cannot write in {parent} (Permission denied)" in line
    assert list(parent.iterdir()) == []


def test_the_probe_finds_a_folder_it_cannot_write_in(tmp_path, monkeypatch):
    """The check read-only folders meet (also when tests run as root): a failed probe."""
    from pipelines import rundir
    from pipelines.errors import UserError

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "touch", refuse)
    with pytest.raises(UserError, match=f"cannot write in {tmp_path} \\(Permission denied\\)"):
        rundir.check_writable(tmp_path / "new" / "run", f"run folder {tmp_path}")


@pytest.mark.parametrize("command", ["predict", "evaluate", "export", "publish"])
@pytest.mark.parametrize("given", ["partial folder", "final path"])
def test_an_unfinished_run_is_refused_naming_resume(command, given, finished, tmp_path, capsys):
    final = tmp_path / "run"
    partial = tmp_path / "run.partial"
    shutil.copytree(finished, partial, symlinks=True)
    (partial / "metrics.json").unlink()  # as an interrupted run leaves it
    run = partial if given == "partial folder" else final
    argv = {
        "predict": ["predict", str(run), "a fine film"],
        "evaluate": ["evaluate", str(run)],
        "export": ["export", str(run), "--format", "tflite"],
        "publish": ["publish", str(run), str(tmp_path / "models")],
    }[command]
    line = _refused(capsys, argv)
    still = "" if run == partial else f" (it is still {partial})"
    assert line == (
        f"error: {run} has not finished{still}; 'rnn-suite run --resume --out {final}' continues it"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.partial"]


def test_an_evaluation_is_not_replaced_without_overwrite(run_copy, capsys):
    assert main(["evaluate", str(run_copy)]) == 0
    written = run_copy / "evaluations" / "test" / "metrics.json"
    written.write_text('{"mine": true}\n')
    line = _refused(capsys, ["evaluate", str(run_copy)])
    assert line == f"error: {written.parent} already exists; add --overwrite to replace it"
    assert written.read_text() == '{"mine": true}\n'
    assert main(["evaluate", str(run_copy), "--overwrite"]) == 0
    assert "mine" not in written.read_text()


def test_an_export_is_not_replaced_without_overwrite(run_copy, capsys):
    model = run_copy / "export" / "model.tflite"
    model.parent.mkdir()
    model.write_bytes(b"mine")
    line = _refused(capsys, ["export", str(run_copy), "--format", "tflite"])
    assert line == f"error: {model} already exists; add --overwrite to replace it"
    assert model.read_bytes() == b"mine"
    assert main(["export", str(run_copy), "--format", "tflite", "--overwrite"]) == 0
    assert model.read_bytes() != b"mine"


def test_a_run_in_use_is_not_evaluated_or_exported(run_copy, capsys):
    latest = run_copy.with_name("latest")
    latest.symlink_to(run_copy.name)  # the same run through a link: the same lock
    before = sorted(run_copy.rglob("*"))
    with locks.hold(run_copy):
        for run in (run_copy, latest):
            for argv in (["evaluate", str(run)], ["export", str(run), "--format", "onnx"]):
                line = _refused(capsys, argv)
                assert line == f"error: {run} is in use by process {os.getpid()}"
    assert sorted(run_copy.rglob("*")) == before


def test_predict_output_and_models_folder_are_checked_first(finished, tmp_path, capsys):
    (tmp_path / "file").write_text("mine\n")
    (tmp_path / "in.txt").write_text("a fine film\n")
    output = tmp_path / "file" / "out.csv"
    inputs = ["--input", str(tmp_path / "in.txt"), "--output", str(output)]
    line = _refused(capsys, ["predict", str(finished), *inputs])
    assert line == f"error: --output {output}: {tmp_path / 'file'} is a file, not a folder"
    models = tmp_path / "file" / "models"
    line = _refused(capsys, ["publish", str(finished), str(models)])
    assert line == f"error: models folder {models}: {tmp_path / 'file'} is a file, not a folder"
    assert (tmp_path / "file").read_text() == "mine\n"


def test_a_run_refused_by_its_data_leaves_no_folder_and_no_lock(tmp_path, capsys):
    data = tmp_path / "empty.tsv"
    data.write_bytes(b"")
    out = tmp_path / "new" / "folders" / "run"
    line = _refused(capsys, ["run", "sentiment", "--data", f"tsv:{data}", "--out", str(out)])
    assert "the file is empty" in line
    assert [p.name for p in tmp_path.iterdir()] == ["empty.tsv"]
