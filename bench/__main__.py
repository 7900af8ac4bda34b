"""`python -m bench [--quick] [--rounds N] [--out PATH]`: run, print, save."""

import argparse
import datetime
import gc
import json
import os
import platform
import sys
from pathlib import Path

from bench import workloads
from bench.measure import interleaved_medians
from bench.workloads import CELLS, Shape

SHAPES = [Shape(64, 100, 64, 128), Shape(32, 500, 32, 256), Shape(256, 50, 128, 512)]
IMPLS = ("keras", "ours", "torch")
MODES = ("train", "infer")
DEFAULT_OUT = Path(__file__).with_name("results.json")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 rounds, first shape only")
    parser.add_argument("--rounds", type=int, help="rounds per variant (default 5, quick 3)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results JSON file")
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 3 if args.quick else 5
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def machine_info() -> dict:
    """CPU model, cores, library versions and the date."""
    import keras
    import tensorflow as tf

    model = "unknown"
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        model = names[0] if names else model
    return {
        "cpu_model": model,
        "cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "torch": workloads.torch_version(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def group_variants(shape: Shape, bidirectional: bool) -> dict:
    """Every timed function of one shape and direction, by `(impl, cell, mode)`."""
    variants = {}
    for cell in CELLS:
        for impl in ("keras", "ours"):
            layer = workloads.make_keras_layer(impl, cell, shape.units, bidirectional)
            for mode, run in workloads.keras_workloads(layer, shape).items():
                variants[(impl, cell, mode)] = run
        torch_runs = workloads.torch_workloads(cell, shape, bidirectional) or {}
        for mode, run in torch_runs.items():
            variants[("torch", cell, mode)] = run
    return variants


def measure_group(shape: Shape, bidirectional: bool, rounds: int, peak: float) -> list[dict]:
    """The result rows (one per cell and mode) of one shape and direction."""
    seconds, other_load = interleaved_medians(group_variants(shape, bidirectional), rounds)
    rows = []
    for cell in CELLS:
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
                    "gflops": {i: r * work / 1e9 for i, r in rate.items()},
                    "share_of_peak": {i: r * work / 1e9 / peak for i, r in rate.items()},
                    "other_processes_cores": other_load,
                }
            )
    return rows


def table(rows: list[dict]) -> str:
    """The rows as an aligned text table."""
    header = (
        f"{'shape (BxTxF->U)':20} {'dir':4} {'cell':10} {'mode':5} {'keras/s':>9} {'ours/s':>9} "
        f"{'ours/keras':>10} {'torch/s':>9}   {'% of matmul peak: keras ours torch':>34}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        rate, share = row["seq_per_s"], row["share_of_peak"]
        torch_rate = f"{rate['torch']:9.0f}" if "torch" in rate else f"{'-':>9}"
        shares = " ".join(f"{100 * share[i]:5.1f}" if i in share else f"{'-':>5}" for i in IMPLS)
        shape = Shape(**row["shape"])
        lines.append(
            f"{shape!s:20} {'bi' if row['bidirectional'] else 'uni':4} {row['cell']:10} "
            f"{row['mode']:5} {rate['keras']:9.0f} {rate['ours']:9.0f} "
            f"{row['ratio_ours_keras']:9.2f}x {torch_rate}   {shares:>34}"
        )
    return "\n".join(lines)


def save(results: dict, path: Path) -> None:
    """Write `results` as JSON, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the table; write the JSON file."""
    args = parse_args(argv)
    peak = workloads.matmul_peak()
    print(f"float32 matmul peak: {peak:.0f} GFLOP/s", flush=True)
    rows = []
    for shape in SHAPES[:1] if args.quick else SHAPES:
        for bidirectional in (False, True):
            rows += measure_group(shape, bidirectional, args.rounds, peak)
            load = rows[-1]["other_processes_cores"]
            print(
                f"measured {shape} {'bi' if bidirectional else 'uni'}; "
                f"other processes used {load:.2f} cores",
                flush=True,
            )
            gc.collect()
    print(table(rows))
    results = {
        "machine": machine_info(),
        "settings": {"rounds": args.rounds, "quick": args.quick, "statistic": "median"},
        "matmul_peak_gflops": peak,
        "rows": rows,
    }
    save(results, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
