"""A command prints only the project's own lines unless --verbose; --quiet hides the bars."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pytest

from pipelines import cli, progress
from tests.helpers import REPO

# A line of the project's own: a progress line, or a row of a results table.
OWN_LINE = re.compile(rf"^({re.escape(progress.PREFIX)} |\|)")


def _cli_as_a_user(*args: str, cwd) -> subprocess.CompletedProcess:
    """The CLI in a child process with the environment a user has: no TF_CPP_MIN_LOG_LEVEL."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "pipelines", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(autouse=True)
def _default_mode():
    yield
    progress.configure()


def test_smoke_run_prints_only_its_own_lines_and_verbose_lets_tensorflow_through(tmp_path):
    run = _cli_as_a_user("run", "sentiment", "--preset", "smoke", "--out", "run", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stderr == ""
    foreign = [line for line in run.stdout.splitlines() if not OWN_LINE.match(line)]
    assert foreign == [], "lines that are not the project's own:\n" + "\n".join(foreign)
    assert any(re.search(r"epoch 1/\d+ \(", line) for line in run.stdout.splitlines())

    verbose = _cli_as_a_user("predict", "run", "a fine film", "--verbose", cwd=tmp_path)
    assert verbose.returncode == 0, verbose.stderr[-3000:]
    if verbose.stderr == "":
        bare = subprocess.run(
            [sys.executable, "-c", "import tensorflow"], capture_output=True, text=True
        )
        assert bare.stderr == "", "--verbose held back what TensorFlow prints on import"


def test_quiet_and_verbose_are_on_every_command_and_exclusive(capsys):
    parser = cli.build_parser()
    for command in ("list", "run", "predict", "serve", "export", "publish", "evaluate"):
        subparser = parser._subparsers._group_actions[0].choices[command]
        flags = {flag for action in subparser._actions for flag in action.option_strings}
        assert {"--quiet", "--verbose"} <= flags, command
    with pytest.raises(SystemExit) as stopped:
        cli.main(["list", "--quiet", "--verbose"])
    assert stopped.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_bars_are_off_when_quiet_or_not_a_terminal(monkeypatch):
    terminal = io.StringIO()
    terminal.isatty = lambda: True
    monkeypatch.setattr(sys, "stdout", terminal)
    progress.configure()
    assert progress.bars_shown() and progress.keras_verbose() == 1
    assert not progress.bar(range(3), description="x").disable
    progress.configure(quiet=True)
    assert not progress.bars_shown() and progress.keras_verbose() == 0
    assert progress.bar(range(3), description="x").disable
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    progress.configure()
    assert not progress.bars_shown()


def test_a_library_warning_becomes_one_of_the_projects_lines(capsys):
    progress.show_warning(UserWarning("could not infer format\nmore"), UserWarning, "x.py", 1)
    shown = capsys.readouterr().out
    assert shown == f"{progress.PREFIX} warning: UserWarning: could not infer format\n"


def test_epoch_line_puts_the_losses_first():
    line = progress.epoch_line(2, 10, 3.14159, {"val_mae": 1.5, "mae": 2, "val_loss": 0.25})
    assert line == "epoch 2/10 (3.1 s): val_loss 0.25, mae 2, val_mae 1.5"


def _cli_on_a_terminal(*args: str, cwd) -> str:
    """The CLI's output (stdout and stderr) with a pseudo-terminal as its stdout."""
    import fcntl
    import pty
    import struct
    import termios

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    primary, secondary = pty.openpty()
    # A terminal 120 columns wide: a new pseudo-terminal has no size, and bars fit its width.
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    child = subprocess.Popen(
        [sys.executable, "-m", "pipelines", *args],
        cwd=cwd,
        env=env,
        stdout=secondary,
        stderr=secondary,
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    assert child.wait(timeout=600) == 0, b"".join(chunks)[-3000:].decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")


def test_a_run_on_a_terminal_draws_bars_for_reading_training_and_exporting(tmp_path):
    import datetime

    first = datetime.date(2020, 1, 1)
    rows = ["date,value"] + [
        f"{first + datetime.timedelta(days=t)},{t * 0.05 + (t % 7):.3f}" for t in range(300)
    ]
    (tmp_path / "series.csv").write_text("\n".join(rows) + "\n")
    shown = _cli_on_a_terminal(
        "run",
        "forecasting",
        "--preset",
        "smoke",
        "--data",
        "csv:series.csv",
        "--set",
        "target_columns=value",
        "--out",
        "run",
        cwd=tmp_path,
    )
    for step in ("reading series.csv", "exporting"):
        assert re.search(rf"{re.escape(progress.PREFIX)} {step}.*/s", shown), step
    quiet = _cli_on_a_terminal(
        "predict",
        "run",
        "--input",
        "series.csv",
        "--output",
        "forecast.csv",
        "--quiet",
        cwd=tmp_path,
    )
    assert "/s]" not in quiet and "reading series.csv" not in quiet


def test_a_log_record_becomes_one_of_the_projects_lines():
    import logging

    formatter = progress.ProjectLineFormatter()
    record = logging.LogRecord(
        "pipelines.serving", logging.INFO, "x.py", 1, "serving %s", ("a",), None
    )
    assert formatter.format(record) == f"{progress.PREFIX} serving a"
    try:
        raise ValueError("bad shard")
    except ValueError:
        failure = logging.LogRecord(
            "pipelines.serving", logging.ERROR, "x.py", 1, "cannot load", (), sys.exc_info()
        )
    line = formatter.format(failure)
    assert line == f"{progress.PREFIX} error: cannot load: ValueError: bad shard"
    progress.configure(verbose=True)
    assert "Traceback" in formatter.format(failure)


def test_training_on_a_dataset_of_unknown_length_raises_no_ran_out_of_data_warning(recwarn):
    import keras
    import numpy as np
    import tensorflow as tf

    from pipelines.trainer import Trainer

    features = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    targets = features.sum(axis=1, keepdims=True)
    # filter() leaves the dataset's length unknown, as bucketing does.
    data = tf.data.Dataset.from_tensor_slices((features, targets)).filter(lambda x, y: True)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    Trainer(None, epochs=2, patience=2, backup_steps=None, verbose=0).fit(
        model, data.batch(4), data.batch(8)
    )
    assert not [w for w in recwarn if "ran out of data" in str(w.message)]
