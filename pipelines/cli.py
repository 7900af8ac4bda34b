"""The command line: ``python -m pipelines list|run|evaluate|predict``.

`--help` and `list` answer without importing TensorFlow; the runner is imported
only when there is work to do.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import NoReturn

from pipelines import registry
from pipelines.config_base import PRESET_NAMES, setting_types
from pipelines.errors import UserError

DESCRIPTION = """\
RNN Suite: end-to-end recurrent-network pipelines. Each run loads real data,
trains a recurrent model (optionally tuned with Keras Tuner), evaluates it on a
held-out test split beside baselines measured on the same split, and writes a
run directory (runs/NAME/RUN_ID, runs/NAME/latest) with metrics.json,
report.md, plots, model.keras and a serving SavedModel (saved_model/).
"""

EPILOG = """\
examples:
  python -m pipelines list
  python -m pipelines run sentiment --help          settings and data kinds of one pipeline
  python -m pipelines run sentiment --preset smoke  a quick end-to-end run
  python -m pipelines run sentiment --data tsv:reviews.tsv --set text_column=review \
      label_column=stars
  python -m pipelines run sentiment --tune --tuner bayesian --max-trials 8
  python -m pipelines evaluate runs/sentiment/latest --data tsv:other.tsv
  python -m pipelines predict runs/sentiment/latest "a moving, funny film"
"""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake as one ``error:`` line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser(pipeline_name: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``pipeline_name``, `run --help` describes that pipeline."""
    parser = _Parser(
        prog="python -m pipelines",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    commands.add_parser("list", help="list the pipelines")
    _add_run_parser(commands, pipeline_name)
    evaluate = commands.add_parser(
        "evaluate",
        help="evaluate a finished run again, optionally on other test data",
        description="Re-evaluate RUN_DIR's model.keras on its test split, or on all rows of "
        "--data, beside baselines fitted again on the run's own training split.",
    )
    evaluate.add_argument("run_dir", metavar="RUN_DIR")
    evaluate.add_argument("--data", metavar="SPEC", help="test data to evaluate on instead")
    _add_set_argument(evaluate, "settings for reading --data, e.g. text_column=content")
    predict = commands.add_parser(
        "predict",
        help="predict with a finished run's model",
        description="Predict with RUN_DIR's model; what INPUT is depends on the pipeline "
        "(sentiment: a text; forecasting: a CSV path, forecast after its last window).",
    )
    predict.add_argument("run_dir", metavar="RUN_DIR")
    predict.add_argument("inputs", metavar="INPUT", nargs="+")
    return parser


def _seed_value(text: str) -> int:
    """``--seed``: an integer in [0, 2**32), the range Keras and NumPy accept."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**32), got {value}")
    return value


def _add_set_argument(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument(
        "--set",
        metavar="KEY=VALUE",
        nargs="+",
        action="extend",
        default=[],
        dest="settings",
        help=help_text,
    )


def _add_run_parser(commands, pipeline_name: str | None) -> None:
    run = commands.add_parser(
        "run",
        help="load data, (tune,) train, evaluate, export and report",
        description="Run one pipeline end to end. `run NAME --help` lists NAME's settings "
        "and data kinds.",
        epilog=_pipeline_help(pipeline_name) if pipeline_name else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("name", metavar="NAME", help=f"one of: {', '.join(registry.PIPELINES)}")
    run.add_argument(
        "--preset",
        choices=PRESET_NAMES,
        default="default",
        help="smoke: seconds, for tests; default: the real run; full: longer",
    )
    run.add_argument(
        "--data",
        metavar="SPEC",
        default="builtin",
        help="builtin (default), tfds:NAME[/CONFIG], or KIND:PATH (see below)",
    )
    _add_set_argument(run, "override settings (listed below)")
    run.add_argument(
        "--seed",
        type=_seed_value,
        default=0,
        help="fixes data splits, initialisation and shuffling (default 0)",
    )
    run.add_argument(
        "--out",
        metavar="DIR",
        help="run directory (default runs/NAME/RUN_ID, with runs/NAME/latest)",
    )
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue the newest interrupted run (or --out DIR) from its checkpoint",
    )
    run.add_argument(
        "--tune",
        action="store_true",
        help="search hyperparameters with Keras Tuner before the final training",
    )
    run.add_argument("--tuner", choices=("random", "bayesian", "hyperband"), default="random")
    run.add_argument("--max-trials", type=int, metavar="N", help="trials of the search")
    _add_fault_arguments(run)


def _add_fault_arguments(run: argparse.ArgumentParser) -> None:
    """Flags for determinism, checkpoints and training or tuning across processes."""
    run.add_argument(
        "--deterministic",
        action="store_true",
        help="enable TensorFlow op determinism: the same seed gives the same weights, "
        "also across a kill and --resume (a little slower)",
    )
    run.add_argument(
        "--checkpoint-steps",
        type=int,
        default=20,
        metavar="N",
        help="back up the training state every N steps and each epoch (default 20)",
    )
    run.add_argument(
        "--distribute",
        choices=("none", "multiworker"),
        default="none",
        help="multiworker: train under MultiWorkerMirroredStrategy with the cluster in "
        "TF_CONFIG (run the same command on every worker; task 0 writes the run directory)",
    )
    run.add_argument(
        "--tune-workers",
        type=int,
        default=0,
        metavar="N",
        help="with --tune: Keras Tuner's distributed mode, this process the chief (oracle) "
        "and N worker processes on 127.0.0.1",
    )


def _pipeline_help(name: str) -> str:
    module = registry.config_module(name)
    config_class = module.CONFIG_CLASS
    defaults = config_class.from_preset("default")
    lines = [
        f"{registry.canonical_name(name)}: {module.SUMMARY}",
        "",
        module.DATA_HELP.rstrip(),
        "",
        "settings (--set KEY=VALUE; value under --preset default):",
    ]
    for key, kind in setting_types(config_class).items():
        name_of = getattr(kind, "__name__", str(kind))
        lines.append(f"  {key:<22} {name_of:<14} {getattr(defaults, key)!r}")
    presets = ", ".join(
        f"{p}: {', '.join(f'{k}={v}' for k, v in overrides.items()) or 'class defaults'}"
        for p, overrides in config_class.PRESETS.items()
    )
    lines += ["", f"presets: {presets}"]
    return "\n".join(lines)


def _list_pipelines() -> None:
    for name in registry.PIPELINES:
        print(f"{name:<16} {registry.config_module(name).SUMMARY}")


def _check_settings(args: argparse.Namespace) -> None:
    """Find a bad preset, key or value before the slow TensorFlow import."""
    config_class = registry.config_module(args.name).CONFIG_CLASS
    config_class.from_preset(args.preset).with_overrides(args.settings)


@contextlib.contextmanager
def _native_stderr_held_back() -> Iterator[None]:
    """Hide what TensorFlow's C++ runtime prints on import, unless the import fails.

    Those lines (oneDNN, absl) ignore TF_CPP_MIN_LOG_LEVEL and would bury the
    one-line ``error:`` of a user's mistake.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            capture.seek(0)
            sys.stderr.write(capture.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for a user's mistake)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        name = argv[1] if len(argv) > 1 and argv[0] == "run" else None
        if name and any(a in ("-h", "--help") for a in argv):
            registry.canonical_name(name)
        args = build_parser(name).parse_args(argv)
        if args.command == "list":
            _list_pipelines()
            return 0
        if args.command == "run" and min(args.checkpoint_steps, args.tune_workers) < 0:
            raise UserError("--checkpoint-steps and --tune-workers must be 0 or more")
        if args.command == "run" and not args.resume:
            _check_settings(args)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        with _native_stderr_held_back():
            import tensorflow  # noqa: F401
        from pipelines import runner

        if args.command == "run":
            runner.run(
                runner.RunRequest(
                    **{f.name: getattr(args, f.name) for f in dataclasses.fields(runner.RunRequest)}
                )
            )
        elif args.command == "evaluate":
            runner.evaluate_run(args.run_dir, args.data, args.settings)
        else:
            runner.predict(args.run_dir, args.inputs)
        return 0
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; continue with --resume", file=sys.stderr)
        return 130
