"""Forecasting over a file: the forecast after a series' end, or one per window (``rolling``).

In: a CSV with the columns the model was trained on (its ``feature_columns``, and its time
column where present), one row per step in time order. The file is read a row at a time and
only the last ``window`` rows are held. A row with a missing, non-numeric or out-of-range
value, a time that does not parse or is not after the previous row's, is a bad row; windows
are made of consecutive good rows only. A run trained with ``missing=interpolate`` fills a
missing value as training did, linearly between the values around it (by time where the
file has a time column), for gaps of up to a window; a longer gap's rows are bad rows.

Out: one row per forecast step: ``window_end`` (the time of the window's last row, or its
line where there is no time column), ``forecast_step`` (1 to the horizon), the step's time
(counted on from the window's end at the run's frequency), and each target's forecast; for
log-return targets the log return (``NAME_log_return``) and the price it implies (``NAME``).
Where the run has quantile levels, each target's quantiles follow (``NAME_q10``,
``NAME_q90``; ``NAME_log_return_q10`` for returns).

``anomalies``: every point of the series that has a full window of good rows before it,
one row each: its one-step forecast and quantiles, the value seen (``NAME_actual``) and
``anomaly``: true where a target's value lies outside the interval from the lowest to the
highest quantile (the interval is chosen with the run's ``quantiles`` setting). The plot
``OUTPUT.anomalies.png`` shows the last ``ANOMALY_PLOT_POINTS`` points of the first target
with that interval and the flagged points.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.errors import UserError
from pipelines.forecasting import intervals
from pipelines.forecasting.config import ForecastingConfig
from pipelines.forecasting.data import MISSING_TOKENS, ForecastingInfo, time_text
from pipelines.plotting import plt
from pipelines.predict_files import BadItem, Item, printed_float, read_table_rows

OUTPUT = "table"
ANOMALY_PLOT_POINTS = 10_000  # the plot shows the series' last points, read back in chunks
# rolling: one forecast per window, not only after the end; anomalies: flag the points of
# the series outside the model's interval.
OPTIONS = ("rolling", "anomalies")
FLOAT32_MAX = float(np.finfo(np.float32).max)  # the largest value the model's input holds
TRADING_DAY = pd.offsets.BDay()  # the step of a series of trading days (holidays unknown)
MISSING = "missing value"


@dataclasses.dataclass
class Window:
    """The input of one forecast.

    Attributes:
        values: ``[window, features]`` float32 in original units, the model's columns.
        step_times: the time of each forecast step, as text (empty without a time column).
        actual: with ``anomalies``, the targets' values of the row after the window, in the
            forecast's units (log returns for returns); else None.
    """

    values: np.ndarray
    step_times: list[str]
    actual: np.ndarray | None = None


@dataclasses.dataclass
class _Step:
    """One good row: its line, values (NaN where missing, until filled) and time (None
    without a time column); ``filled`` where a value was interpolated."""

    line: int
    values: list[float]
    time: Any
    filled: bool = False


def read_items(
    path: Path,
    config: ForecastingConfig,
    info: ForecastingInfo,
    rolling: bool = False,
    anomalies: bool = False,
) -> Iterator[Item | BadItem]:
    """The window ending at the file's last row, with ``rolling`` every window, or with
    ``anomalies`` every window and the row after it, in order."""
    if not path.is_file():
        raise UserError(f"{path}: forecasting predicts over one CSV file, not a folder")
    if anomalies and len(config.quantiles) < 2:
        raise UserError(
            "--anomalies: the run gives no interval (setting 'quantiles' is empty); train "
            "it with quantiles, e.g. --set quantiles=0.05,0.5,0.95"
        )
    header, rows = read_table_rows(path, ",", config.encoding)
    _check_columns(header, info, path)
    steps = _steps(rows, info, info.time_column in header, config.missing == "interpolate")
    if anomalies:
        yield from _with_next_rows(steps, info)
        return
    recent: deque[_Step] = deque(maxlen=info.window)
    last_bad = None
    for step in steps:
        if isinstance(step, BadItem):
            recent.clear()  # a window is made of consecutive good rows
            last_bad = step.key
            yield step
            continue
        recent.append(step)
        if rolling and len(recent) == info.window:
            yield _item(recent, info)
    if rolling:
        return
    if len(recent) < info.window:
        after = f" after the bad row at {last_bad}" if last_bad else ""
        raise UserError(
            f"{path}: {len(recent)} good row(s) at the end{after}; the forecast needs the "
            f"last {info.window} (the model's window)"
        )
    yield _item(recent, info)


def predict_items(
    model, items: list[Item], config: ForecastingConfig, info: ForecastingInfo
) -> list[list[dict[str, Any]]]:
    """Each window's forecast: one row per step (see the module's docstring)."""
    windows = np.stack([item.value.values for item in items])
    forecasts = np.asarray(model.predict_on_batch(windows))  # [items, horizon, targets]
    levels, offsets = intervals.model_offsets(model)
    quantiles = intervals.apply(forecasts.astype(np.float64), windows, info, offsets)
    return [
        _rows(forecast, bands, item.value, info, levels)
        for item, forecast, bands in zip(items, forecasts, quantiles, strict=True)
    ]


def _rows(
    forecast: np.ndarray, quantiles: np.ndarray, window: Window, info: ForecastingInfo, levels
) -> list[dict[str, Any]]:
    """The rows of one window's forecast; with ``window.actual``, the first step's only,
    with the value seen and whether it lies outside the interval."""
    rows = []
    last = window.values[-1]
    steps = 1 if window.actual is not None else info.horizon
    for k in range(steps):
        row: dict[str, Any] = {"forecast_step": k + 1}
        if window.step_times:
            row[info.time_column] = window.step_times[k]
        for t, name in enumerate(info.target_columns):
            value = forecast[k, t]
            unit = f"{name}_log_return" if info.transform == "log_return" else name
            row[unit] = printed_float(value)
            if info.transform == "log_return":
                price = last[info.target_indices[t]] * np.exp(np.sum(forecast[: k + 1, t]))
                row[name] = printed_float(price)
            for level, bound in zip(levels, quantiles[k, t], strict=True):
                row[f"{unit}_q{100 * level:g}"] = printed_float(bound)
        if window.actual is not None:
            row |= _anomaly_columns(window.actual, quantiles[0], info)
        rows.append(row)
    return rows


def _anomaly_columns(actual: np.ndarray, quantiles: np.ndarray, info: ForecastingInfo):
    """Each target's value seen, and whether any lies outside its interval."""
    columns: dict[str, Any] = {}
    outside = False
    for t, name in enumerate(info.target_columns):
        unit = f"{name}_log_return" if info.transform == "log_return" else name
        columns[f"{unit}_actual"] = printed_float(actual[t])
        outside |= bool(actual[t] < quantiles[t, 0] or actual[t] > quantiles[t, -1])
    return columns | {"anomaly": outside}


def _with_next_rows(steps, info: ForecastingInfo) -> Iterator[Item | BadItem]:
    """Every window of consecutive good rows with the good row after it, as an item whose
    window holds the actual values of that row (an interpolated row is no point to flag)."""
    recent: deque[_Step] = deque(maxlen=info.window + 1)
    for step in steps:
        if isinstance(step, BadItem):
            recent.clear()
            yield step
            continue
        recent.append(step)
        if len(recent) == info.window + 1 and not step.filled:
            yield _point_item(recent, info)


def _steps(rows, info: ForecastingInfo, timed: bool, interpolate: bool):
    """Each row as a ``_Step`` or a ``BadItem``, in file order; with ``interpolate``, rows
    with missing values are held until the values after them arrive and then filled."""
    gaps = _GapFiller(len(info.feature_columns), info.window) if interpolate else None
    previous_time = None
    for row in rows:
        if not isinstance(row, BadItem):
            row = _step(*row, info, timed, previous_time, allow_missing=interpolate)
        if isinstance(row, _Step):
            previous_time = row.time
        yield from gaps.push(row) if gaps else [row]
    if gaps:
        yield from gaps.finish()


class _GapFiller:
    """Missing values filled as training's ``missing=interpolate`` fills them: linearly
    between the nearest values before and after (by time, else by row), the first and last
    values carried to a column's ends; a gap longer than ``max_gap`` rows is not filled, its
    rows become bad rows. Holds at most ``max_gap`` rows."""

    def __init__(self, columns: int, max_gap: int):
        self.max_gap = max_gap
        self.held: deque[_Step] = deque()
        self.known: list[tuple[float, float] | None] = [None] * columns  # (position, value)

    def push(self, step: _Step | BadItem) -> Iterator[_Step | BadItem]:
        """``step`` in; the steps (and bad rows) that are complete now, in order."""
        if isinstance(step, BadItem):
            yield from self.finish()
            yield step
            return
        position = self._position(step)
        for column, value in enumerate(step.values):
            if math.isnan(value):
                step.filled = True
                continue
            self._fill(column, position, value)
            self.known[column] = (position, value)
        self.held.append(step)
        while self.held and not _has_missing(self.held[0]):
            yield self.held.popleft()
        if len(self.held) > self.max_gap:
            yield from self._too_long()

    def finish(self) -> Iterator[_Step | BadItem]:
        """The held rows at a bad row or the end: each column's last value carried on."""
        for step in self.held:
            for column, value in enumerate(step.values):
                if math.isnan(value) and self.known[column] is not None:
                    step.values[column] = self.known[column][1]
        while self.held:
            step = self.held.popleft()
            yield _gap_row(step, "no value of it before or after") if _has_missing(step) else step

    def _fill(self, column: int, position: float, value: float) -> None:
        """The held rows' missing values of ``column`` filled up to ``value``."""
        before = self.known[column]
        for step in self.held:
            if not math.isnan(step.values[column]):
                continue
            if before is None:  # the column's first value: carried back
                step.values[column] = value
                continue
            start, first = before
            share = (self._position(step) - start) / (position - start)
            step.values[column] = first + (value - first) * share

    def _too_long(self) -> Iterator[BadItem]:
        """The held rows as bad rows: their gap is longer than ``max_gap`` rows."""
        reason = f"longer than the model's window ({self.max_gap} rows), not interpolated"
        for step in self.held:
            yield _gap_row(step, reason)
        for column, value in enumerate(self.held[-1].values):
            if math.isnan(value):
                self.known[column] = None  # the gap is not filled across
        self.held.clear()

    def _position(self, step: _Step) -> float:
        if step.time is None:
            return float(step.line)
        if isinstance(step.time, float):
            return step.time
        return float(step.time.value)  # nanoseconds


def _has_missing(step: _Step) -> bool:
    return any(math.isnan(value) for value in step.values)


def _gap_row(step: _Step, reason: str) -> BadItem:
    return BadItem(f"line {step.line}", f"missing value in a gap {reason}")


def _point_item(recent: deque[_Step], info: ForecastingInfo) -> Item:
    """The item of the window before ``recent``'s last row, that row's values its actual."""
    steps = list(recent)
    item = _item(deque(steps[:-1]), info)
    point = steps[-1]
    targets = np.asarray([point.values[i] for i in info.target_indices], dtype=np.float64)
    if info.transform == "log_return":
        targets = np.log(targets / item.value.values[-1, info.target_indices])
    times = [_time_text(point.time)] if point.time is not None else []
    item.value = Window(item.value.values, times, targets)
    return item


def _check_columns(header: list[str], info: ForecastingInfo, path: Path) -> None:
    missing = [column for column in info.feature_columns if column not in header]
    if missing:
        raise UserError(
            f"{path}: no column {missing[0]!r}; the model reads "
            f"{', '.join(info.feature_columns)} (columns: {', '.join(header)})"
        )


def _step(
    line: int,
    row: dict[str, str],
    info: ForecastingInfo,
    timed: bool,
    previous_time,
    allow_missing: bool = False,
) -> _Step | BadItem:
    """One row's values and time, or a BadItem saying what is wrong with it; with
    ``allow_missing``, a missing value is NaN instead."""
    key = f"line {line}"
    values = []
    for column in info.feature_columns:
        value = _number(row[column])
        if value == MISSING and allow_missing:
            value = math.nan
        if isinstance(value, str):
            return BadItem(key, f"column {column!r}: {value}")
        values.append(value)
    if info.transform == "log_return":
        for index, column in zip(info.target_indices, info.target_columns, strict=True):
            if values[index] <= 0:
                return BadItem(
                    key,
                    f"column {column!r}: {values[index]:g} is not positive (the model "
                    "forecasts log returns of positive prices)",
                )
    time = None
    if timed:
        time = _time(row[info.time_column], info)
        if isinstance(time, str):
            return BadItem(key, f"time column {info.time_column!r}: {time}")
        if previous_time is not None and not time > previous_time:
            return BadItem(
                key,
                f"time {_time_text(time)} is not after the previous row's "
                f"({_time_text(previous_time)}); rows must be in time order",
            )
    return _Step(line, values, time)


def _number(text: str) -> float | str:
    """A cell as a float32-sized number, or why it is not one."""
    text = text.strip()
    if text.lower() in MISSING_TOKENS:
        return MISSING
    try:
        value = float(text)
    except ValueError:
        return f"{text[:40]!r} is not a number"
    if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
        return f"{text[:40]!r} is infinite or out of range"
    return value


def _time(text: str, info: ForecastingInfo):
    """A time cell as a timestamp (or a step number, for a series of numbered steps), or why
    it is not one."""
    text = text.strip()
    if info.frequency.startswith("step"):
        try:
            return float(text)
        except ValueError:
            return f"{text[:40]!r} is not a step number"
    try:
        time = pd.to_datetime(text, format=info.time_format or None)
    except (ValueError, TypeError, OverflowError):
        time = pd.NaT
    if pd.isna(time):
        return f"{text[:40]!r} is not a timestamp" + (
            f" of the format {info.time_format!r}" if info.time_format else ""
        )
    return time


def _item(recent: deque[_Step], info: ForecastingInfo) -> Item:
    """The item of the window ``recent`` holds: keyed by its last row, kept its end time."""
    last = recent[-1]
    values = np.asarray([step.values for step in recent], dtype=np.float32)
    times = [step.time for step in recent] if last.time is not None else []
    end = _time_text(last.time) if times else f"line {last.line}"
    window = Window(values, _step_times(times, info))
    return Item(f"line {last.line}", window, {"window_end": end})


def _step_times(times: list, info: ForecastingInfo) -> list[str]:
    """The time of each forecast step after ``times[-1]``: the run's frequency onward, or
    where it is not a fixed step (``unknown``, irregular), the window's last step onward."""
    if not times:
        return []
    step = _frequency_step(info.frequency)
    if step is None:
        step = times[-1] - times[-2]
    return [_time_text(times[-1] + step * k) for k in range(1, info.horizon + 1)]


def _frequency_step(frequency: str):
    """The step of a run's frequency (``D``, ``h``, ``trading day``, ``step 1``) as a pandas
    offset or a number; None for one that is no fixed step."""
    name = frequency.split(",")[0].strip()
    if name.startswith("step "):
        try:
            return float(name.removeprefix("step "))
        except ValueError:
            return None
    if name == "trading day":
        return TRADING_DAY
    if ", irregular" in frequency:
        return None
    try:
        return pd.tseries.frequencies.to_offset(name)
    except ValueError:
        return None


def _time_text(time) -> str:
    """A timestamp as the training data writes it; a step number without a needless ``.0``."""
    if isinstance(time, float):
        return str(int(time)) if time.is_integer() else repr(time)
    return time_text(time)


def extra_outputs(target: Path, *, anomalies: bool = False, **_) -> list[Path]:
    """The files ``predict_files`` writes beside ``target``: the anomaly plot."""
    return [anomaly_plot_path(target)] if anomalies else []


def anomaly_plot_path(target: Path) -> Path:
    """``OUTPUT.anomalies.png`` beside the output."""
    return target.with_name(target.name + ".anomalies.png")


def write_extra_outputs(
    target: Path, output_format: str, info: ForecastingInfo, *, anomalies: bool = False, **_
) -> None:
    """Draw the anomaly plot from the written output (its last points only)."""
    if not anomalies:
        return
    rows = _last_rows(target, output_format, ANOMALY_PLOT_POINTS)
    if rows.empty:
        return
    name = info.target_columns[0]
    numeric = [c for c in rows.columns if c not in ("anomaly", info.time_column)]
    rows[numeric] = rows[numeric].apply(pd.to_numeric, errors="coerce")
    unit = f"{name}_log_return" if info.transform == "log_return" else name
    bounds = sorted(
        (c for c in rows.columns if c.startswith(f"{unit}_q")),
        key=lambda c: float(c[len(unit) + 2 :]),
    )
    x = pd.to_datetime(rows[info.time_column]) if info.time_column in rows else rows.index
    figure, axis = plt.subplots(figsize=(11, 4))
    axis.fill_between(x, rows[bounds[0]], rows[bounds[-1]], alpha=0.25, label="interval")
    axis.plot(x, rows[f"{unit}_actual"], linewidth=0.8, color="black", label="seen")
    flagged = rows["anomaly"].astype(str).str.lower() == "true"
    axis.scatter(x[flagged], rows[f"{unit}_actual"][flagged], color="red", s=12, zorder=3,
                 label=f"anomaly ({int(flagged.sum()):,})")  # fmt: skip
    axis.set_title(f"{unit}: values outside the {bounds[0][len(unit) + 1:]}–"
                   f"{bounds[-1][len(unit) + 1:]} interval")  # fmt: skip
    axis.legend(loc="upper left")
    figure.tight_layout()
    path = anomaly_plot_path(target)
    temporary = path.with_name(f".{path.name}.partial.png")
    figure.savefig(temporary, dpi=110)
    plt.close(figure)
    temporary.replace(path)


def _last_rows(target: Path, output_format: str, count: int) -> pd.DataFrame:
    """The last ``count`` rows of the written output, read in chunks."""
    if output_format == "jsonl":
        chunks = pd.read_json(target, lines=True, chunksize=50_000, dtype=False)
    else:
        chunks = pd.read_csv(target, chunksize=50_000, dtype=str, keep_default_na=False)
    tail = pd.DataFrame()
    for chunk in chunks:
        tail = pd.concat([tail, chunk]).iloc[-count:]
    return tail.reset_index(drop=True)
