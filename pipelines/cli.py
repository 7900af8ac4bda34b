"""The command line: ``python -m pipelines list|run|validate|schema|evaluate|predict``.

`--help`, `list`, `validate` and `schema` answer without importing TensorFlow; the
runner is imported only when there is work to do. Every setting, data source and
experiment key shown in the help comes from its declaration.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

from pipelines import experiment as experiments
from pipelines import progress, registry, rundir
from pipelines.config_base import PRESET_NAMES, parse_overrides, settings_table
from pipelines.errors import UserError

DESCRIPTION = """\
RNN Suite: end-to-end recurrent-network pipelines. Each run loads real data,
trains a recurrent model (optionally tuned with Keras Tuner), evaluates it on a
held-out test split beside baselines measured on the same split, and writes a
run directory (runs/NAME/RUN_ID, runs/NAME/latest) with config.json (an
experiment file that reruns it), metrics.json, report.md, plots, model.keras and
a serving SavedModel (saved_model/).
"""

EPILOG = """\
examples:
  python -m pipelines list
  python -m pipelines run sentiment --help          settings and data sources of one pipeline
  python -m pipelines run sentiment --preset smoke  a quick end-to-end run
  python -m pipelines run sentiment --data tsv:reviews.tsv --set text_column=review \
label_column=stars
  python -m pipelines run --config experiment.yaml  a run kept as a file
  python -m pipelines run --config runs/sentiment/latest/config.json --out rerun
  python -m pipelines validate experiment.yaml
  python -m pipelines schema sentiment > sentiment.schema.json
  python -m pipelines run sentiment --tune --tuner bayesian --max-trials 8
  python -m pipelines evaluate runs/sentiment/latest --data tsv:other.tsv
  python -m pipelines predict runs/sentiment/latest "a moving, funny film"
"""

RUN_FLAGS = ("preset", "data", "seed", "out", "deterministic", "checkpoint_steps")
FLAG_OF_KEY = {key: "--" + key.replace("_", "-") for key in RUN_FLAGS} | {
    "tuning.tuner": "--tuner",
    "tuning.max_trials": "--max-trials",
    "tuning.workers": "--tune-workers",
}


# Python loggers of libraries a command runs (besides TensorFlow's own) that print notices
# at WARNING or INFO on every run.
QUIET_LOGGERS = ("absl", "tensorflow", "keras", "keras_tuner", "tf2onnx", "h5py")

PIPELINE_ARGUMENT = {"metavar": "NAME", "help": f"one of: {', '.join(registry.PIPELINES)}"}
# The one flag that lets a command replace an output of its that is already there: nothing
# of the user's is written over without it.
OVERWRITE_ARGUMENT = (
    ("--overwrite",),
    {"action": "store_true", "help": "replace an output that is already there"},
)
# The commands besides `list` and `run`: one-line summary, description, arguments.
COMMANDS = {
    "validate": (
        "check an experiment file without running it",
        "Check FILE (YAML or JSON) against its pipeline's settings, data sources and search "
        "space; prints what it would run, or one error line.",
        [(("file",), {"metavar": "FILE"})],
    ),
    "schema": (
        "print the JSON Schema of NAME's experiment files (settings included)",
        "The JSON Schema of an experiment file for NAME, for editors and CI.",
        [(("name",), PIPELINE_ARGUMENT)],
    ),
    "evaluate": (
        "evaluate a finished run again, optionally on other test data",
        "Re-evaluate RUN_DIR's model.keras on its test split, or on all rows of --data, "
        "beside baselines fitted again on the run's own training split, into "
        "RUN_DIR/evaluations/LABEL/ (replaced only with --overwrite).",
        [
            (("run_dir",), {"metavar": "RUN_DIR"}),
            (("--data",), {"metavar": "SPEC", "help": "test data to evaluate on instead"}),
            (("--set",), {"help": "settings for reading --data, e.g. text_column=content"}),
            OVERWRITE_ARGUMENT,
        ],
    ),
    "predict": (
        "predict with a finished run's model: inputs on the command line, or a whole file",
        "Predict with RUN_DIR's model. Either INPUT... on the command line (sentiment: texts; "
        "forecasting: a CSV path, forecast after its last window; ...), or --input PATH "
        "--output PATH: a file or folder streamed in batches with memory bounded by the "
        "batch (see the pipeline's page for formats).",
        [
            (("run_dir",), {"metavar": "RUN_DIR"}),
            (("inputs",), {"metavar": "INPUT", "nargs": "*"}),
            (("--input",), {"metavar": "PATH", "help": "a file or folder to predict over"}),
            (("--output",), {"metavar": "PATH", "help": "where the predictions go"}),
            (
                ("--on-error",),
                {
                    "choices": ("fail", "skip"),
                    "default": "fail",
                    "help": "a bad row or file: stop (fail) or skip it and list it in "
                    "OUTPUT.skipped.csv (default fail)",
                },
            ),
            OVERWRITE_ARGUMENT,
            (("--batch-size",), {"type": int, "default": 256, "metavar": "N"}),
            (("--set",), {"help": "settings for reading --input, e.g. text_column=review"}),
            (
                ("--rolling",),
                {"action": "store_true", "help": "forecasting: one forecast per window"},
            ),
            (
                ("--anomalies",),
                {
                    "action": "store_true",
                    "help": "forecasting: each point after a full window, flagged where it "
                    "lies outside the model's interval (its lowest to highest quantile)",
                },
            ),
        ],
    ),
    "publish": (
        "copy a finished run's export into a TensorFlow Serving model folder",
        "Copy RUN_DIR/saved_model into MODELS_DIR/NAME/VERSION/ (TensorFlow Serving's "
        "--model_base_path layout) atomically, and write MODELS_DIR/models.config.",
        [
            (("run_dir",), {"metavar": "RUN_DIR"}),
            (("models_dir",), {"metavar": "MODELS_DIR"}),
            (("--name",), {"help": "model name (default: the pipeline's, with _ for -)"}),
            (("--version",), {"type": int, "help": "version number (default: the next)"}),
            (
                ("--base-path-prefix",),
                {
                    "metavar": "PREFIX",
                    "help": "base_path prefix in models.config, e.g. /models inside a "
                    "container (default: the folder's absolute path)",
                },
            ),
        ],
    ),
    "export": (
        "write a portable export (TFLite or ONNX) of a finished run",
        "Write RUN_DIR/export/model.tflite or model.onnx (sentiment and forecasting); one "
        "already there is replaced only with --overwrite.",
        [
            (("run_dir",), {"metavar": "RUN_DIR"}),
            (("--format",), {"choices": ("tflite", "onnx"), "required": True}),
            OVERWRITE_ARGUMENT,
        ],
    ),
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake as one ``error:`` line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser(pipeline_name: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``pipeline_name``, `run --help` describes that pipeline."""
    parser = _Parser(
        prog="rnn-suite",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    commands.add_parser("list", help="list the pipelines")
    _add_run_parser(commands, pipeline_name)
    _add_serve_parser(commands)
    for name, (summary, description, arguments) in COMMANDS.items():
        command = commands.add_parser(name, help=summary, description=description)
        for flags, options in arguments:
            if flags == ("--set",):
                _add_set_argument(command, options["help"])
            else:
                command.add_argument(*flags, **options)
    for command in commands.choices.values():
        _add_output_flags(command)
    return parser


def _add_output_flags(command: argparse.ArgumentParser) -> None:
    """``--quiet`` and ``--verbose``, on every command."""
    shown = command.add_mutually_exclusive_group()
    shown.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bars (they are also off when output is not a terminal)",
    )
    shown.add_argument(
        "--verbose",
        action="store_true",
        help="let TensorFlow's and absl's own logging through to the terminal",
    )


def _add_serve_parser(commands) -> None:
    """`serve MODELS_DIR`, one flag per field of the server's ``ServeOptions``."""
    from pipelines.serving.options import ServeOptions

    serve = commands.add_parser(
        "serve",
        help="serve a model folder over TensorFlow Serving's REST and gRPC APIs",
        description="Serve every model in MODELS_DIR (MODELS_DIR/NAME/VERSION/, as `publish` "
        "writes it) with TensorFlow Serving's REST API (/v1/models/NAME[:predict|/metadata]) "
        "and gRPC PredictionService; the newest version of each, picked up while running.",
    )
    serve.add_argument("models_dir", metavar="MODELS_DIR")
    for name, info in ServeOptions.model_fields.items():
        flag = "--" + name.replace("_", "-")
        shown = f"{info.description} (default {info.default})"
        if info.annotation is bool:
            serve.add_argument(flag, action=argparse.BooleanOptionalAction, help=shown)
        else:
            serve.add_argument(flag, type=info.annotation, metavar="N", help=shown)


def _integer(text: str) -> int:
    """An integer flag; its allowed range is the experiment's declaration of that key."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


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
        description="Run one pipeline end to end, from NAME and flags or from an experiment "
        "file (--config; flags override it). `run NAME --help` lists NAME's settings and "
        "data sources.",
        epilog=pipeline_help(pipeline_name) if pipeline_name else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("name", nargs="?", **PIPELINE_ARGUMENT)
    run.add_argument("--config", metavar="FILE", help="an experiment file (YAML or JSON)")
    run.add_argument(
        "--preset",
        choices=PRESET_NAMES,
        help="smoke: seconds, for tests; default: the real run; full: longer",
    )
    run.add_argument(
        "--data",
        metavar="SPEC",
        help="builtin (default), tfds:NAME, or KIND:PATH (see `run NAME --help`)",
    )
    _add_set_argument(run, "override settings (see `run NAME --help`)")
    run.add_argument(
        "--seed", type=_integer, help="fixes data splits, initialisation and shuffling"
    )
    run.add_argument(
        "--out", metavar="DIR", help="run directory (default runs/NAME/RUN_ID, runs/NAME/latest)"
    )
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue the newest interrupted run of NAME (or --out DIR) from its checkpoint",
    )
    run.add_argument(
        "--tune",
        action="store_true",
        help="search hyperparameters with Keras Tuner first (an experiment file's tuning "
        "section does the same)",
    )
    run.add_argument("--tuner", choices=("random", "bayesian", "hyperband"))
    run.add_argument("--max-trials", type=_integer, metavar="N", help="trials of the search")
    run.add_argument(
        "--deterministic",
        action="store_true",
        default=None,
        help="enable TensorFlow op determinism: the same seed gives the same weights, "
        "also across a kill and --resume (a little slower)",
    )
    run.add_argument(
        "--checkpoint-steps",
        type=_integer,
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
        type=_integer,
        metavar="N",
        help="with --tune: Keras Tuner's distributed mode, this process the chief (oracle) "
        "and N worker processes on 127.0.0.1",
    )


def pipeline_help(name: str) -> str:
    """The pipeline part of `run NAME --help`: data sources, settings and presets."""
    module = registry.config_module(name)
    config_class = module.CONFIG_CLASS
    lines = [
        f"{registry.canonical_name(name)}: {module.SUMMARY}",
        "",
        module.DATA_SOURCES.help_text(),
        "",
        "settings (--set KEY=VALUE, or settings: in an experiment file):",
    ]
    rows = settings_table(config_class)
    width = max(len(row["name"]) for row in rows)
    allowed = min(max(len(row["allowed"]) for row in rows), 24)
    lines.append(f"  {'name':<{width}} {'default':<12} {'allowed':<{allowed}} meaning")
    for row in rows:
        default = row["default"] if len(row["default"]) <= 12 else row["default"][:11] + "~"
        lines.append(
            f"  {row['name']:<{width}} {default:<12} {row['allowed']:<{allowed}} {row['meaning']}"
        )
    lines.append("  (default: the value under --preset default)")
    lines.append("")
    lines.append("presets (what each changes from the declared defaults):")
    for preset, overrides in config_class.PRESETS.items():
        changed = ", ".join(f"{k}={v}" for k, v in overrides.items()) or "the declared defaults"
        lines.append(f"  {preset}: {changed}")
    lines += ["", "search space (--tune; tuning.space in an experiment file replaces entries):"]
    for key, dimension in module.SEARCH_SPACE.items():
        lines.append(f"  {key:<{width}} {dimension.describe()}")
    return "\n".join(lines)


def _list_pipelines() -> None:
    for name in registry.PIPELINES:
        print(f"{name:<16} {registry.config_module(name).SUMMARY}")


def experiment_from_args(args: argparse.Namespace) -> experiments.Experiment:
    """The experiment a ``run`` command line asks for: the file's, with the flags over it."""
    if args.config:
        values = experiments.read_file(args.config)
        where = args.config
    elif args.name:
        values, where = {"pipeline": args.name}, "command line"
    else:
        raise UserError("run needs a pipeline NAME or --config FILE")
    if args.name:
        _check_same_pipeline(args.name, values, where)
        values["pipeline"] = args.name
    for key in RUN_FLAGS:
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    if args.settings:
        name = registry.canonical_name(str(values.get("pipeline", "")))
        config_class = registry.config_module(name).CONFIG_CLASS
        values["settings"] = {
            **(values.get("settings") or {}),
            **parse_overrides(config_class, args.settings),
        }
    values["tuning"] = _tuning_from_args(args, values.get("tuning"))
    given = {key for key in RUN_FLAGS if getattr(args, key) is not None}
    given |= {f"tuning.{key}" for key in ("tuner", "max_trials") if getattr(args, key) is not None}
    given |= {"tuning.workers"} if args.tune_workers is not None else set()
    labels = {key: flag for key, flag in FLAG_OF_KEY.items() if key in given}
    return experiments.parse(values, where, labels=labels)


def _check_same_pipeline(name: str, values: dict, where: str) -> None:
    """UserError when ``run NAME --config FILE`` names another pipeline than the file."""
    declared = values.get("pipeline") if isinstance(values, dict) else None
    if declared is None:
        return
    same = registry.canonical_name(name) == registry.canonical_name(str(declared))
    if not same:
        raise UserError(
            f"{where}: pipeline: {declared!r} is not {name!r}, the NAME on the command line; "
            "give one of them"
        )


def _tuning_from_args(args: argparse.Namespace, tuning: Any) -> Any:
    flags = {"tuner": args.tuner, "max_trials": args.max_trials, "workers": args.tune_workers}
    given = {key: value for key, value in flags.items() if value is not None}
    if tuning is None and not args.tune:
        if given:
            raise UserError(f"--{next(iter(given)).replace('_', '-')} needs --tune")
        return None
    if tuning is not None and not isinstance(tuning, dict):
        return tuning  # not a mapping: the experiment's validation names it
    return {**(tuning or {}), **given}


def _validate(path: str) -> None:
    resolved = experiments.resolve(experiments.load(path), path)
    tuning = resolved.experiment.tuning
    searched = (
        f"; tunes {', '.join(resolved.space)} with {tuning.tuner} for {tuning.objective.name} "
        f"({tuning.objective.direction})"
        if tuning
        else ""
    )
    print(
        f"ok: {path}: {resolved.name}, preset {resolved.experiment.preset}, data "
        f"{resolved.data.text!r}, {len(resolved.config.to_dict())} settings{searched}"
    )


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


def _help_pipeline(argv: list[str]) -> str | None:
    """The pipeline whose settings `run ... --help` should list, if one is named."""
    if not argv or argv[0] != "run" or not any(a in ("-h", "--help") for a in argv):
        return None
    if len(argv) > 1 and not argv[1].startswith("-"):
        return registry.canonical_name(argv[1])
    if "--config" in argv[:-1]:
        values = experiments.read_file(argv[argv.index("--config") + 1])
        return registry.canonical_name(str(values.get("pipeline", "")))
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for a user's mistake)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser(_help_pipeline(argv)).parse_args(argv)
        progress.configure(quiet=args.quiet, verbose=args.verbose)
        if not args.verbose:
            warnings.showwarning = progress.show_warning
        if args.command == "list":
            _list_pipelines()
            return 0
        if args.command == "schema":
            print(json.dumps(experiments.schema(args.name), indent=2))
            return 0
        if args.command == "validate":
            _validate(args.file)
            return 0
        resolved = None
        if args.command == "run" and not args.resume:
            resolved = experiments.resolve(experiment_from_args(args), args.config or "--set")
        if args.command == "predict":
            _check_predict(args)
        if args.command == "serve":
            _serve_options(args)
        if args.command == "run" and args.resume and not (args.name or args.out):
            raise UserError("--resume needs the pipeline NAME or --out DIR of the run")
        _import_tensorflow_quietly()
        _dispatch(args, resolved)
        return 0
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        failed = rundir.write_failure(err)
        if failed is None:
            raise
        # Disk full, a size limit, permissions: the file and the cause, not a traceback.
        where = failed.filename or "a file"
        print(f"error: {where}: {os.strerror(failed.errno)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = "; continue with --resume" if argv[:1] == ["run"] else ""
        print(f"error: interrupted{hint}", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace, resolved) -> None:
    """Run a command that needs TensorFlow."""
    from pipelines import runner

    if args.command == "run":
        runner.run_command(resolved, args)
    elif args.command == "evaluate":
        runner.evaluate_run(args.run_dir, args.data, args.settings, args.overwrite)
    elif args.command == "predict":
        _predict(args)
    elif args.command == "publish":
        from pipelines.publish import publish

        publish(args.run_dir, args.models_dir, args.name, args.version, args.base_path_prefix)
    elif args.command == "serve":
        from pipelines.serving.server import serve

        serve(args.models_dir, _serve_options(args))
    elif args.command == "export":
        from pipelines.portable import export_portable

        print(export_portable(args.run_dir, args.format, args.overwrite))


def _predict(args: argparse.Namespace) -> None:
    from pipelines import runner

    if args.input:
        from pipelines.predict_files import predict_files

        predict_files(
            args.run_dir,
            args.input,
            args.output,
            on_error=args.on_error,
            overwrite=args.overwrite,
            batch_size=args.batch_size,
            options={"rolling": args.rolling, "anomalies": args.anomalies},
            settings=args.settings,
        )
    else:
        runner.predict(args.run_dir, args.inputs)


def _serve_options(args: argparse.Namespace):
    """The server's options from the flags given, checked before TensorFlow is imported."""
    import pydantic

    from pipelines.serving.options import ServeOptions

    given = {k: getattr(args, k) for k in ServeOptions.model_fields}
    try:
        return ServeOptions(**{k: v for k, v in given.items() if v is not None})
    except pydantic.ValidationError as error:
        first = error.errors(include_url=False)[0]
        flag = "--" + str(first["loc"][0]).replace("_", "-")
        raise UserError(f"{flag}: {first['msg'][0].lower()}{first['msg'][1:]}") from None


def _check_predict(args: argparse.Namespace) -> None:
    """INPUT... or both --input and --output (whose folder is writable), before TensorFlow
    is imported."""
    if args.input or args.output:
        if not (args.input and args.output) or args.inputs:
            raise UserError("predict over a file needs both --input and --output, and no INPUT")
        output = Path(args.output)
        rundir.check_writable(output.parent, f"--output {output}")
    elif not args.inputs:
        raise UserError("predict needs INPUT... or --input PATH --output PATH")


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow with its own logging silenced, unless ``--verbose``."""
    if progress.MODE.verbose:
        import tensorflow  # noqa: F401

        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _native_stderr_held_back():
        import tensorflow as tf
    _silence_python_logging(tf)


def _silence_python_logging(tf) -> None:
    """Keep TensorFlow's, absl's and the exporters' Python warnings (deprecations,
    tracing and serialisation notices) off the terminal; errors still show."""
    import logging

    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)
    tf.get_logger().setLevel(logging.ERROR)
    tf.autograph.set_verbosity(0)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def main_exit() -> None:
    """The ``rnn-suite`` console script: ``main`` with its exit status."""
    sys.exit(main())
