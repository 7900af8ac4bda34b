"""Interleaved timing: every variant once per round, medians over rounds."""

import os
import statistics
import time
from collections.abc import Callable


def _finish(result) -> None:
    """Wait for a result: TensorFlow may still be computing it (PyTorch on the
    CPU has finished already)."""
    if not hasattr(result, "detach"):
        result.numpy()


def _time_calls(run: Callable, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        result = run()
    _finish(result)
    return (time.perf_counter() - start) / calls


class CpuMeter:
    """CPU time used by *other* processes while a block runs, in cores.

    The benchmark shares the machine; this says how much of it others took.
    """

    def __enter__(self):
        self._start = _cpu_times()
        return self

    def __exit__(self, *_):
        busy, mine, wall = (b - a for a, b in zip(self._start, _cpu_times(), strict=True))
        self.other_cores = max(0.0, (busy - mine) / os.sysconf("SC_CLK_TCK") / wall)


def _cpu_times():
    """(busy jiffies of the machine, jiffies of this process, wall seconds)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    busy = sum(fields) - fields[3] - fields[4]  # minus idle and iowait
    with open("/proc/self/stat") as f:
        stats = f.read().rsplit(")", 1)[1].split()
    return busy, int(stats[11]) + int(stats[12]), time.time()


def interleaved_medians(
    variants: dict[str, Callable],
    rounds: int,
    min_seconds: float = 0.3,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, float], float]:
    """Median seconds per call of each variant, and other processes' CPU load.

    Each variant is warmed up (compiled) first and given enough calls per
    round to run at least `min_seconds`; every round then runs all variants
    in turn, so that a change in the machine's load hits all of them alike.
    `progress`, if given, is told of each round.
    """
    calls = {}
    for name, run in variants.items():
        _time_calls(run, 2)
        calls[name] = max(1, round(min_seconds / _time_calls(run, 1)))
    samples = {name: [] for name in variants}
    with CpuMeter() as meter:
        for i in range(rounds):
            if progress:
                progress(f"round {i + 1}/{rounds} of {len(variants)} variants")
            for name, run in variants.items():
                samples[name].append(_time_calls(run, calls[name]))
    return {name: statistics.median(s) for name, s in samples.items()}, meter.other_cores
