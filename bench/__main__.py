"""Benchmark our recurrent layers against Keras's built-ins (and PyTorch).

Times a training step (forward, backward, Adam) and inference (`training=False`)
of `layers.LSTM`, `GRU` and `SimpleRNN` ("ours") against `keras.layers.LSTM`,
`GRU` and `SimpleRNN` ("keras") and, when PyTorch is importable, `torch.nn.LSTM`,
`GRU` and `RNN` ("torch"), unidirectional and bidirectional. All variants of a
shape and direction are warmed up, then interleaved round by round in this one
process; each number is the median over rounds. The float32 matmul peak is
measured in the same run (a large `tf.matmul`, interleaved with every group;
the best is kept) and every variant's achieved GFLOP/s is given as a share of
it. Each LSTM and GRU row is held against the project's speed target
(`target`: training 1.5x Keras at the first shape and no slower elsewhere,
inference 2x): "met", "missed", "beyond peak" where the target exceeds the
float32 ceiling (the matmul peak divided by Keras's GFLOP/s: what an
implementation running at the peak would gain), or "beyond loop bound" where
it exceeds the loop bound. The loop bound is timed where "ours" ran the XLA
kernels (column `kernels`): Keras's time over that of the kernels' matmuls
alone, in their layout (XLA loops per chain, in plain TensorFlow), timed in
the same rounds: what that design would gain if all its other work were
free. The native kernels have no such bound (`-`). Serving rows
(`bench.serving`) time a model on our LSTM and GRU against the same model on
Keras's, both exported as the pipelines export (our layers then run their
plain-TensorFlow serving loops) and loaded with `tf.saved_model.load`: ours
must serve within 5 % of Keras's throughput or faster. Prints the tables;
writes the same numbers, with the machine's description, to a JSON file
(default bench/results.json). Other ways to look for speed are measured, one process
each, by `python -m bench.approaches`.

Examples:
  python -m bench                           # the full run (what `make bench` does)
  python -m bench --quick                   # first shape, 3 rounds, one serving shape
  python -m bench --serving-only            # the serving rows alone
  python -m bench --shapes 64x100x64x128 --cells lstm,gru --directions bi
  RNN_SUITE_FAST_PATH=0 python -m bench     # "ours" then runs the plain cell
  RNN_SUITE_NATIVE=0 python -m bench        # "ours" then runs the XLA kernels only
"""

import argparse
import datetime
import gc
import json
import os
import platform
import sys
import time
from pathlib import Path

from bench import workloads
from bench.measure import interleaved_medians
from bench.serving import (
    SERVING_CELLS,
    SERVING_ROUNDS,
    SERVING_SHAPES,
    measure_serving,
    serving_table,
)
from bench.workloads import CELLS, SHAPES, Shape, parse_shape

DIRECTIONS = ("uni", "bi")
IMPLS = ("keras", "ours", "torch")
MODES = ("train", "infer")
DEFAULT_OUT = Path(__file__).with_name("results.json")
PEAK = ("peak", "matmul", "-")  # the key of the matmul variant in every group
BOUND = "bound"  # the XLA kernels' matmuls alone (`workloads.matmul_loop_workloads`)
TARGET_CELLS = ("lstm", "gru")


def _choices(allowed):
    def parse(text):
        values = tuple(v.strip() for v in text.split(",") if v.strip())
        bad = [v for v in values if v not in allowed]
        if bad or not values:
            raise argparse.ArgumentTypeError(f"choose from {','.join(allowed)}; got {text!r}")
        return values

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="first shape only and 3 rounds")
    parser.add_argument(
        "--shapes",
        type=lambda s: [parse_shape(p) for p in s.split(",")],
        help="comma-separated BATCHxSTEPSxFEATURESxUNITS, or 1,2,3 for the default shapes "
        f"({', '.join(str(s) for s in SHAPES)}); default all three",
    )
    parser.add_argument(
        "--cells", type=_choices(CELLS), default=CELLS, help=f"default {','.join(CELLS)}"
    )
    parser.add_argument(
        "--directions",
        type=_choices(DIRECTIONS),
        default=DIRECTIONS,
        help="uni, bi or uni,bi (default)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        help=f"timed rounds per variant (default 5; quick 3; serving rows {SERVING_ROUNDS})",
    )
    parser.add_argument(
        "--min-seconds",
        type=float,
        default=0.3,
        help="each variant runs at least this long per round (default 0.3)",
    )
    parser.add_argument("--no-torch", action="store_true", help="leave out the PyTorch column")
    serving = parser.add_mutually_exclusive_group()
    serving.add_argument(
        "--no-serving", action="store_true", help="leave out the serving rows (bench.serving)"
    )
    serving.add_argument(
        "--serving-only", action="store_true", help="only the serving rows (bench.serving)"
    )
    parser.add_argument(
        "--serving-shapes",
        type=lambda s: [parse_shape(p) for p in s.split(",")],
        help="comma-separated BATCHxSTEPSxFEATURESxUNITS of the serving rows; default "
        f"{', '.join(str(s) for s in SERVING_SHAPES)} (quick: the first)",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"results JSON (default {DEFAULT_OUT})"
    )
    args = parser.parse_args(argv)
    # The serving rows take the median of SERVING_ROUNDS, quick or not, unless told.
    args.serving_rounds = args.rounds or SERVING_ROUNDS
    if args.rounds is None:
        args.rounds = 3 if args.quick else 5
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.shapes is None:
        args.shapes = SHAPES[:1] if args.quick else SHAPES
    if args.serving_shapes is None:
        args.serving_shapes = list(SERVING_SHAPES[:1] if args.quick else SERVING_SHAPES)
    if args.serving_only:
        args.shapes = []
    if args.no_serving:
        args.serving_shapes = []
    return args


def machine_info() -> dict:
    """CPU model, cores, library versions and the date."""
    import keras
    import numpy
    import tensorflow as tf

    from layers import native, recurrent

    model = "unknown"
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        model = names[0] if names else model
    return {
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "torch": workloads.torch_version(),
        "fast_path_enabled": recurrent.fast_path_enabled(),
        "native_kernels_enabled": native.enabled(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def group_variants(shape: Shape, bidirectional: bool, cells, with_torch: bool) -> dict:
    """Every timed function of one shape and direction, by `(impl, cell, mode)`,
    plus the matmul-peak probe under `PEAK` and, for the cells with a target
    whose "ours" runs the XLA kernels, the loop bound's matmuls under
    `(BOUND, cell, mode)`."""
    variants = {PEAK: workloads.matmul_probe()}
    for cell in cells:
        for impl in ("keras", "ours"):
            layer = workloads.make_keras_layer(impl, cell, shape.units, bidirectional)
            for mode, run in workloads.keras_workloads(layer, shape).items():
                variants[(impl, cell, mode)] = run
        if cell in TARGET_CELLS and ours_kernels(cell) == "xla":
            for mode, run in workloads.matmul_loop_workloads(cell, shape, bidirectional).items():
                variants[(BOUND, cell, mode)] = run
        if with_torch:
            torch_runs = workloads.torch_workloads(cell, shape, bidirectional) or {}
            for mode, run in torch_runs.items():
                variants[("torch", cell, mode)] = run
    return variants


def measure_group(
    shape: Shape, bidirectional: bool, cells, args, progress
) -> tuple[list[dict], float]:
    """The result rows (one per cell and mode, without shares of the peak yet)
    of one shape and direction, and the matmul GFLOP/s measured alongside."""
    variants = group_variants(shape, bidirectional, cells, not args.no_torch)
    seconds, other_load = interleaved_medians(
        variants, args.rounds, args.min_seconds, progress=progress
    )
    rows = []
    for cell in cells:
        for mode in MODES:
            rate = {
                i: shape.batch / seconds[(i, cell, mode)]
                for i in IMPLS
                if (i, cell, mode) in seconds
            }
            work = workloads.flops(cell, shape, bidirectional, mode == "train") / shape.batch
            rows.append(
                {
                    "shape": vars(shape),
                    "bidirectional": bidirectional,
                    "cell": cell,
                    "mode": mode,
                    "seq_per_s": rate,
                    "ratio_ours_keras": rate["ours"] / rate["keras"],
                    "loop_bound_ratio": _bound_ratio(seconds, cell, mode),
                    "ours_kernels": ours_kernels(cell),
                    "gflops": {i: r * work / 1e9 for i, r in rate.items()},
                    "other_processes_cores": other_load,
                }
            )
    return rows, workloads.MATMUL_FLOPS / seconds[PEAK] / 1e9


def _bound_ratio(seconds: dict, cell: str, mode: str) -> float | None:
    """Keras's seconds over the loop bound's, or `None` where it was not timed."""
    bound = seconds.get((BOUND, cell, mode))
    return None if bound is None else seconds[("keras", cell, mode)] / bound


def ours_kernels(cell: str) -> str:
    """Which kernels "ours" runs for `cell`: `native`, `xla` or `plain` (Keras's loop)."""
    from layers import _kernels, native, recurrent

    if not recurrent.fast_path_enabled():
        return "plain"
    return "native" if cell in _kernels.NATIVE_KERNELS and native.enabled() else "xla"


def target(row: dict) -> float | None:
    """The project's target ratio ours/Keras for a row, or `None` (SimpleRNN).

    Training at least 1.5x at the first shape and no slower elsewhere;
    inference at least 2x.
    """
    if row["cell"] not in TARGET_CELLS:
        return None
    if row["mode"] == "infer":
        return 2.0
    return 1.5 if Shape(**row["shape"]) == SHAPES[0] else 1.0


def verdict(row: dict) -> str:
    """`met`; `beyond peak` where even an implementation running at the
    float32 matmul peak could not reach the target ratio; `beyond loop bound`
    where the kernels that ran could not, were all but their matmuls free
    (timed for the XLA kernels only); else `missed`."""
    goal = target(row)
    if goal is None:
        return "-"
    if row["ratio_ours_keras"] >= goal:
        return "met"
    if goal > row["float32_ceiling_ratio"]:
        return "beyond peak"
    bound = row.get("loop_bound_ratio")
    return "beyond loop bound" if bound is not None and goal > bound else "missed"


def table(rows: list[dict]) -> str:
    """The rows as an aligned text table."""
    header = (
        f"{'shape BxTxF->U':16} {'dir':3} {'cell':10} {'mode':5} {'kernels':7} "
        f"{'ours/s':>8} {'keras/s':>8} "
        f"{'ratio':>6} {'torch/s':>8} | {'GFLOP/s ours keras torch':>24} | "
        f"{'% of peak ours keras torch':>26} | {'ceiling':>7} {'bound':>6} {'target':>6} "
        f"{'verdict':17}"
    )
    lines = [header, "-" * len(header)]
    order = ("ours", "keras", "torch")
    for row in rows:
        rate, gflops, share = row["seq_per_s"], row["gflops"], row["share_of_peak"]
        torch_rate = f"{rate['torch']:8.0f}" if "torch" in rate else f"{'-':>8}"
        flops = " ".join(f"{gflops[i]:6.1f}" if i in gflops else f"{'-':>6}" for i in order)
        shares = " ".join(f"{100 * share[i]:5.1f}%" if i in share else f"{'-':>6}" for i in order)
        lines.append(
            f"{Shape(**row['shape'])!s:16} {'bi' if row['bidirectional'] else 'uni':3} "
            f"{row['cell']:10} {row['mode']:5} {row.get('ours_kernels', '-'):7} "
            f"{rate['ours']:8.0f} {rate['keras']:8.0f} "
            f"{row['ratio_ours_keras']:5.2f}x {torch_rate} | {flops:>24} | {shares:>26} | "
            f"{row['float32_ceiling_ratio']:6.1f}x {_ratio(row.get('loop_bound_ratio'), 2):>6} "
            f"{_ratio(target(row)):>6} {verdict(row):17}"
        )
    return "\n".join(lines)


def _ratio(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}x"


def save(results: dict, path: Path) -> None:
    """Write `results` as JSON, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the table; write the JSON file."""
    args = parse_args(argv)
    if args.no_torch:
        torch_note = "left out (--no-torch)"
    else:
        torch_note = workloads.torch_version() or "not importable: no torch column"
    start = time.perf_counter()

    def progress(message: str) -> None:
        print(f"[bench {time.perf_counter() - start:6.0f}s] {message}", file=sys.stderr, flush=True)

    groups = [(s, d == "bi") for s in args.shapes for d in args.directions]
    progress(
        f"{len(groups)} groups x {len(args.cells)} cells x {len(MODES)} modes, "
        f"{args.rounds} rounds; torch: {torch_note}"
    )
    peaks = [workloads.matmul_peak()]
    progress(f"float32 matmul peak (first probe): {peaks[0]:.0f} GFLOP/s")
    rows, serving_rows = [], []
    for number, (shape, bidirectional) in enumerate(groups, 1):
        label = f"group {number}/{len(groups)} {shape} {'bi' if bidirectional else 'uni'}"
        progress(f"{label}: building and warming up")
        group_rows, peak = measure_group(
            shape, bidirectional, args.cells, args, lambda m, label=label: progress(f"{label}: {m}")
        )
        rows += group_rows
        peaks.append(peak)
        progress(
            f"{label}: done; matmul {peak:.0f} GFLOP/s; other processes used "
            f"{group_rows[-1]['other_processes_cores']:.2f} cores"
        )
        save(_results(args, rows, peaks, start, complete=False), args.out)
        gc.collect()
    if args.serving_shapes:
        progress(f"serving: {len(args.serving_shapes)} shapes x {len(SERVING_CELLS)} cells")
        serving_rows = measure_serving(
            args.serving_shapes,
            SERVING_CELLS,
            args.serving_rounds,
            args.min_seconds,
            lambda m: progress(f"serving: {m}"),
        )
    results = _results(args, rows, peaks, start, complete=True, serving_rows=serving_rows)
    peak = results["matmul_peak_gflops"]
    print(f"float32 matmul peak: {peak:.0f} GFLOP/s (best of {len(peaks)} probes)")
    if rows:
        print(table(rows))
    if serving_rows:
        print(serving_table(serving_rows))
    save(results, args.out)
    print(f"wrote {args.out}")
    return 0


def _results(args, rows, peaks, start, complete, serving_rows=()) -> dict:
    """The JSON document: settings, machine, peak, rows (with shares of the
    best peak so far) and serving rows; written after every group, `complete`
    after the last."""
    peak = max(peaks)
    for row in rows:
        row["share_of_peak"] = {i: g / peak for i, g in row["gflops"].items()}
        # The most any float32 implementation could gain over Keras here: the peak
        # divided by what Keras achieves.
        row["float32_ceiling_ratio"] = peak / row["gflops"]["keras"]
        row["target_ratio"] = target(row)
        row["verdict"] = verdict(row)
    return {
        "complete": complete,
        "machine": machine_info(),
        "settings": {
            "rounds": args.rounds,
            "min_seconds": args.min_seconds,
            "quick": args.quick,
            "shapes": [str(s) for s in args.shapes],
            "cells": list(args.cells),
            "directions": list(args.directions),
            "serving_shapes": [str(s) for s in args.serving_shapes],
            "serving_rounds": args.serving_rounds,
            "torch": not args.no_torch and workloads.torch_version() is not None,
            "statistic": "median over rounds, variants interleaved",
            "flops": "matmuls only: 2*gates*units*(features+units) per step and sequence, "
            "x3 for a training step, x2 when bidirectional",
            "loop_bound": "Keras's seconds over those of the matmuls alone of the XLA kernels "
            "(bench.workloads.matmul_loop_workloads), where ours ran them; none for native rows",
        },
        "matmul_peak_gflops": peak,
        "matmul_probes_gflops": peaks,
        "seconds": round(time.perf_counter() - start, 1),
        "rows": rows,
        "serving_rows": list(serving_rows),
    }


if __name__ == "__main__":
    sys.exit(main())
