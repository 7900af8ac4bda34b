"""Each pipeline's training speed on the fast path and on the plain cell.

`python -m bench.pipelines` (`make bench-pipelines`) runs every pipeline's
default preset on its built-in data (all its epochs, or `--epochs N`; early
stopping can end a run sooner), once with the fast path and once with
`RNN_SUITE_FAST_PATH=0`, one after the other in fresh processes, after a
`--preset smoke` run that fills the data caches (music21's parsed corpus, the
synthesised speech) so that neither timed run pays for them, and reads
`train_samples_per_second` from each run's metrics.json (training examples
times epochs over the training wall time, compiling and validation included)
and the test metrics. It prints a table and writes
bench/pipelines.json. The run directories go to a temporary folder. It is a
benchmark, not a test; a quiet machine gives the only figures worth keeping.

Examples:
  python -m bench.pipelines                  # all pipelines, default presets
  python -m bench.pipelines --only sentiment,forecasting --epochs 5
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_OUT = Path(__file__).with_name("pipelines.json")
PIPELINES = (
    "sentiment",
    "forecasting",
    "music",
    "translation",
    "video-activity",
    "speech-to-text",
)
PATHS = {"fast path": "1", "plain cell": "0"}
RUN_TIMEOUT_S = 3600


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipelines",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--only", help=f"comma-separated pipelines (default all): {PIPELINES}")
    parser.add_argument("--epochs", type=int, help="epochs per run (default: the default preset's)")
    parser.add_argument("--seed", type=int, default=0, help="--seed of every run (default 0)")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"results JSON (default {DEFAULT_OUT})"
    )
    args = parser.parse_args(argv)
    args.pipelines = args.only.split(",") if args.only else list(PIPELINES)
    unknown = [p for p in args.pipelines if p not in PIPELINES]
    if unknown:
        parser.error(f"unknown pipeline {', '.join(unknown)}; choose from {','.join(PIPELINES)}")
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs must be at least 1")
    return args


def run_once(pipeline: str, fast_path: str, args, folder: Path, extra=()) -> dict:
    """Train `pipeline` once; its speed and test metrics, or why it failed."""
    out = folder / f"{pipeline}-{fast_path}-{len(extra)}"
    epochs = ["--set", f"epochs={args.epochs}"] if args.epochs and not extra else []
    command = [
        *[sys.executable, "-m", "pipelines", "run", pipeline],
        *["--seed", str(args.seed), "--out", str(out), *epochs, *extra],
    ]
    env = {**os.environ, "RNN_SUITE_FAST_PATH": fast_path, "TF_CPP_MIN_LOG_LEVEL": "2"}
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"error": f"exit {done.returncode}: {tail}", "wall_seconds": round(wall, 1)}
    metrics = json.loads((out / "metrics.json").read_text())
    return {
        "train_samples_per_second": metrics.get("train_samples_per_second"),
        "epochs_run": metrics.get("epochs_run"),
        "test": metrics.get("test", {}),
        "wall_seconds": round(wall, 1),
    }


def table(results: dict) -> str:
    """The results as an aligned text table."""
    header = (
        f"{'pipeline':16} {'fast path/s':>12} {'plain cell/s':>13} {'ratio':>6} "
        f"{'wall s fast':>11} {'plain':>6}  {'test metric (fast | plain)':30}"
    )
    lines = [header, "-" * len(header)]
    for pipeline, runs in results.items():
        fast, plain = runs.get("fast path", {}), runs.get("plain cell", {})
        if "error" in fast or "error" in plain:
            lines.append(f"{pipeline:16} failed: {fast.get('error') or plain.get('error')}")
            continue
        rate_fast, rate_plain = fast["train_samples_per_second"], plain["train_samples_per_second"]
        ratio = rate_fast / rate_plain if rate_fast and rate_plain else float("nan")
        name = next(iter(fast["test"]), None)
        metric = f"{name} {_short(fast['test'].get(name))} | {_short(plain['test'].get(name))}"
        lines.append(
            f"{pipeline:16} {rate_fast:12.1f} {rate_plain:13.1f} {ratio:5.2f}x "
            f"{fast['wall_seconds']:11.0f} {plain['wall_seconds']:6.0f}  {metric:30}"
        )
    return "\n".join(lines)


def _progress(start: float, message: str) -> None:
    print(f"[pipelines {time.perf_counter() - start:5.0f}s] {message}", file=sys.stderr, flush=True)


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> int:
    """Run each pipeline on both paths; print and write the results."""
    from bench.__main__ import machine_info, save

    args = parse_args(argv)
    start = time.perf_counter()
    results = {}
    with tempfile.TemporaryDirectory(prefix="rnn-suite-bench-") as folder:
        for pipeline in args.pipelines:
            _progress(start, f"{pipeline}: smoke run (fills data caches; not timed)")
            run_once(pipeline, "0", args, Path(folder), extra=("--preset", "smoke"))
            results[pipeline] = {}
            for label, value in PATHS.items():
                _progress(start, f"{pipeline}: {label}")
                results[pipeline][label] = run_once(pipeline, value, args, Path(folder))
            document = {
                "machine": machine_info(),
                "settings": {
                    "epochs": args.epochs or "the default preset's",
                    "seed": args.seed,
                    "preset": "default",
                    "train_samples_per_second": "training examples x epochs / training wall "
                    "time (compiling and validation included), from metrics.json",
                },
                "seconds": round(time.perf_counter() - start, 1),
                "pipelines": results,
            }
            save(document, args.out)
    print(table(results))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
