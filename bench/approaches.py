"""Measure each way of speeding up a recurrent layer on a CPU, one process each.

The ways to look for speed: fewer operations per step, a hand-written
backward pass, unrolling, bfloat16 matmuls on AMX, thread and oneDNN
settings, XLA, and computing the input projection before the loop.
This runs each one in a fresh child process (thread counts, oneDNN and XLA
flags are fixed once TensorFlow starts) and times an LSTM training step
(forward, backward, Adam) and inference of the approach, beside our shipped
`layers.LSTM`, against `keras.layers.LSTM` with default settings in that same
process: interleaved round by round, median over rounds, as `python -m bench`
does. A child that fails is reported, not hidden. It prints a table and
writes the numbers to bench/approaches.json. It is a benchmark, not a test.

Examples:
  python -m bench.approaches                      # all approaches, first shape
  python -m bench.approaches --only fast-path,bfloat16 --shapes 3
  python -m bench.approaches --list
"""

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.workloads import SHAPES, Shape, parse_shape

DEFAULT_OUT = Path(__file__).with_name("approaches.json")
MODES = ("train", "infer")
CHILD_TIMEOUT_S = 1800
RESULT_PREFIX = "APPROACH-RESULT "


@dataclass(frozen=True)
class Approach:
    """One way to look, and how its child process is set up.

    `variants` names what the child times beside `keras` and `ours` (the
    shipped layer) (see `_layer`);
    `env` is added to the child's environment; `threads` is
    `(inter_op, intra_op)`, set before TensorFlow runs anything.
    """

    name: str
    what: str
    variants: tuple[str, ...]
    env: dict = field(default_factory=dict)
    threads: tuple[int, int] | None = None


APPROACHES = (
    Approach(
        "fast-path",
        "layers.LSTM as shipped: native C++ loops whose threads share each step by units "
        "(where built), hand-written backward pass, weight gradients as large matmuls",
        ("ours",),
    ),
    Approach(
        "xla-kernels",
        "the fast path on its XLA kernels (RNN_SUITE_NATIVE=0): one joint matmul a step, "
        "XLA-compiled loops, the batch cut into chains per core",
        ("ours",),
        env={"RNN_SUITE_NATIVE": "0"},
    ),
    Approach(
        "plain-cell",
        "our cell in Keras's generic loop (RNN_SUITE_FAST_PATH=0)",
        ("ours",),
        env={"RNN_SUITE_FAST_PATH": "0"},
    ),
    Approach(
        "autodiff",
        "the fast path's compiled loop differentiated by TensorFlow instead of by hand "
        "(forward recomputed in the gradient)",
        ("autodiff",),
    ),
    Approach(
        "input-projection-first",
        "inference: x @ W for all steps in one tf.matmul before the loop",
        ("precomputed",),
    ),
    Approach(
        "tf-block-lstm",
        "TensorFlow's fused whole-sequence LSTM op (tf.raw_ops.BlockLSTMV2, C++ loop over "
        "Eigen matmuls) with its registered gradient (wrong in TF 2.21: timed, not usable)",
        ("block",),
    ),
    Approach(
        "unroll",
        "Keras's unroll=True; and the fast path's loop running 4 steps per iteration (inference)",
        ("keras-unroll", "unrolled"),
    ),
    Approach(
        "xla-whole-step",
        "the whole training/inference step compiled with XLA (jit_compile=True)",
        ("keras-xla", "ours-xla"),
    ),
    Approach(
        "bfloat16",
        "mixed_bfloat16 policy: bfloat16 matmuls (oneDNN uses AMX), float32 variables",
        ("keras-bf16", "ours-bf16"),
    ),
    Approach(
        "xla-512-bit-vectors",
        "XLA_FLAGS=--xla_cpu_prefer_vector_width=512 (XLA's CPU default is 256)",
        ("ours",),
        env={"XLA_FLAGS": "--xla_cpu_prefer_vector_width=512"},
    ),
    Approach(
        "xla-single-threaded-dots",
        "XLA_FLAGS=--xla_cpu_multi_thread_eigen=false: each chain's matmuls on one thread",
        ("ours",),
        env={"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false"},
    ),
    Approach(
        "xla-both-flags",
        "both XLA flags above",
        ("ours",),
        env={"XLA_FLAGS": "--xla_cpu_prefer_vector_width=512 --xla_cpu_multi_thread_eigen=false"},
    ),
    Approach(
        "onednn-off",
        "TF_ENABLE_ONEDNN_OPTS=0 (TensorFlow's Eigen kernels instead of oneDNN)",
        ("ours",),
        env={"TF_ENABLE_ONEDNN_OPTS": "0"},
    ),
    Approach("threads-1x1", "inter-op 1, intra-op 1 thread", ("ours",), threads=(1, 1)),
    Approach("threads-1x2", "inter-op 1, intra-op 2 threads", ("ours",), threads=(1, 2)),
    Approach("threads-2x1", "inter-op 2, intra-op 1 thread", ("ours",), threads=(2, 1)),
    Approach("matmul-amx", "2048x2048 matmul GFLOP/s: float32 and bfloat16, TF and XLA", ()),
)
BY_NAME = {a.name: a for a in APPROACHES}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.approaches",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--only", help=f"comma-separated approaches (default all): {','.join(BY_NAME)}"
    )
    parser.add_argument(
        "--shapes",
        type=lambda s: [parse_shape(p) for p in s.split(",")],
        default=SHAPES[:1],
        help=f"BATCHxSTEPSxFEATURESxUNITS or 1-3, comma-separated (default 1 = {SHAPES[0]})",
    )
    parser.add_argument("--directions", default="uni,bi", help="uni, bi or uni,bi (default uni,bi)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (default 3)")
    parser.add_argument(
        "--min-seconds", type=float, default=0.3, help="per variant and round (default 0.3)"
    )
    parser.add_argument("--list", action="store_true", help="list the approaches and exit")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"results JSON (default {DEFAULT_OUT})"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(BY_NAME)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown approach {', '.join(unknown)}; choose from {','.join(BY_NAME)}")
    args.approaches = [BY_NAME[n] for n in names]
    args.directions = [d for d in args.directions.split(",") if d]
    if not args.directions or set(args.directions) - {"uni", "bi"}:
        parser.error("--directions takes uni, bi or uni,bi")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


# ------------------------------------------------------------------- child


def _layer(variant: str, units: int):
    """`(layer, jit_compile)` for a variant name."""
    import keras

    import layers
    from bench import variants

    if variant in variants.VARIANT_LAYERS:
        return variants.VARIANT_LAYERS[variant](units), False
    impl, _, option = variant.partition("-")
    layer_class = keras.layers.LSTM if impl == "keras" else layers.LSTM
    kwargs = {
        "": {},
        "unroll": {"unroll": True},
        "xla": {},
        "bf16": {"dtype": "mixed_bfloat16"},
    }[option]
    return layer_class(units, **kwargs), option == "xla"


def _bf16_error(shape: Shape, bidirectional: bool) -> float:
    """Largest absolute difference between Keras's LSTM in mixed_bfloat16 and
    in float32, same weights, on the benchmark's inputs (outputs in (-1, 1))."""
    import keras
    import numpy as np

    from bench import workloads

    x = workloads._inputs(shape)
    outputs, weights = [], None
    for dtype in ("float32", "mixed_bfloat16"):
        layer = keras.layers.LSTM(shape.units, dtype=dtype, seed=0)
        if bidirectional:
            layer = keras.layers.Bidirectional(layer)
        layer.build((None, shape.steps, shape.features))
        if weights is None:
            weights = layer.get_weights()
        layer.set_weights(weights)
        outputs.append(np.asarray(keras.ops.cast(layer(x), "float32")))
    return float(np.max(np.abs(outputs[0] - outputs[1])))


def _matmul_gflops() -> dict:
    """`workloads.matmul_peak` in float32 and bfloat16, through TensorFlow and XLA."""
    from bench import workloads

    return {
        f"{engine}_{dtype}": workloads.matmul_peak(dtype=dtype, jit_compile=engine == "xla")
        for dtype in ("float32", "bfloat16")
        for engine in ("tf", "xla")
    }


def run_child(approach: Approach, args) -> dict:
    """Time `approach` in this process; returns its rows and notes."""
    import tensorflow as tf

    if approach.threads:
        tf.config.threading.set_inter_op_parallelism_threads(approach.threads[0])
        tf.config.threading.set_intra_op_parallelism_threads(approach.threads[1])
    from bench import workloads
    from bench.measure import interleaved_medians

    tf.get_logger().setLevel("ERROR")
    if approach.name == "matmul-amx":
        return {"rows": [], "notes": {"matmul_gflops": _matmul_gflops()}}
    rows, notes = [], {}
    for shape in args.shapes:
        for direction in args.directions:
            bidirectional = direction == "bi"
            timed = {}
            for variant in dict.fromkeys(("keras", "ours", *approach.variants)):
                layer, jit = _layer(variant, shape.units)
                if bidirectional:
                    layer = workloads.bidirectional_of(layer)
                for mode, run in workloads.keras_workloads(layer, shape, jit).items():
                    timed[(variant, mode)] = run
            seconds, other = interleaved_medians(timed, args.rounds, args.min_seconds)
            for mode in MODES:
                rate = {v: shape.batch / seconds[(v, m)] for v, m in seconds if m == mode}
                rows.append(
                    {
                        "shape": str(shape),
                        "direction": direction,
                        "mode": mode,
                        "seq_per_s": rate,
                        "ratio_vs_keras": {v: r / rate["keras"] for v, r in rate.items()},
                        "other_processes_cores": other,
                    }
                )
            if approach.name == "bfloat16":
                notes[f"max_abs_error_{shape}_{direction}"] = _bf16_error(shape, bidirectional)
    return {"rows": rows, "notes": notes}


# ------------------------------------------------------------------ parent


def _child_command(approach: Approach, args) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bench.approaches",
        "--child",
        approach.name,
        "--shapes",
        ",".join(str(s).replace("->", "x") for s in args.shapes),
        "--directions",
        ",".join(args.directions),
        "--rounds",
        str(args.rounds),
        "--min-seconds",
        str(args.min_seconds),
    ]


def measure(approach: Approach, args) -> dict:
    """Run one approach in a child process; its result, or the reason it failed."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **approach.env}
    start = time.perf_counter()
    try:
        done = subprocess.run(
            _child_command(approach, args),
            env=env,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {CHILD_TIMEOUT_S} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"error": f"exit {done.returncode}: {tail}"}
    result = json.loads(lines[-1][len(RESULT_PREFIX) :])
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def table(results: list[dict]) -> str:
    """The results as an aligned text table."""
    header = (
        f"{'approach':24} {'shape':16} {'dir':3} {'mode':5} {'variant':12} "
        f"{'seq/s':>8} {'vs keras':>8}"
    )
    lines = [header, "-" * len(header)]
    for result in results:
        name = result["approach"]
        if "error" in result:
            lines.append(f"{name:24} failed: {result['error']}")
            continue
        for row in result["rows"]:
            for variant, rate in row["seq_per_s"].items():
                lines.append(
                    f"{name:24} {row['shape']:16} {row['direction']:3} {row['mode']:5} "
                    f"{variant:12} {rate:8.0f} {row['ratio_vs_keras'][variant]:7.2f}x"
                )
        for key, value in result.get("notes", {}).items():
            lines.append(f"{name:24} {key}: {json.dumps(value)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run every chosen approach in its own process; print and write the results."""
    args = parse_args(argv)
    if args.list:
        for a in APPROACHES:
            print(f"{a.name:24} {a.what}")
        return 0
    if args.child:
        result = run_child(BY_NAME[args.child], args)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0
    from bench.__main__ import machine_info, save

    start = time.perf_counter()
    results = []
    for number, approach in enumerate(args.approaches, 1):
        print(
            f"[approaches {time.perf_counter() - start:5.0f}s] {number}/{len(args.approaches)} "
            f"{approach.name}: {approach.what}",
            file=sys.stderr,
            flush=True,
        )
        result = measure(approach, args)
        results.append({"approach": approach.name, "what": approach.what, **result})
        document = {
            "complete": number == len(args.approaches),
            "machine": machine_info(),
            "settings": {
                "shapes": [str(s) for s in args.shapes],
                "directions": args.directions,
                "rounds": args.rounds,
                "min_seconds": args.min_seconds,
                "cell": "lstm",
                "baseline": "keras.layers.LSTM, default settings, timed in the same process",
            },
            "seconds": round(time.perf_counter() - start, 1),
            "approaches": results,
        }
        save(document, args.out)
    print(table(results))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
