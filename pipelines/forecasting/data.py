"""Forecasting data: the built-in weather and stock series, the user's CSV, and Jena climate.

Every source becomes a ``Series`` (a time-indexed table), which one path checks (columns,
numbers, timestamps, missing values), splits chronologically and cuts into windows.
"""

from __future__ import annotations

import dataclasses
import io
import math
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import pandas as pd

from pipelines.base import Splits
from pipelines.errors import UserError
from pipelines.forecasting import linear
from pipelines.forecasting.config import ForecastingConfig
from pipelines.forecasting.linear import LinearFit
from pipelines.progress import log
from pipelines.records import DataInfo
from pipelines.splitting import SPLIT_NAMES
from pipelines.tables import read_table_with_lines

JENA_URL = (
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/jena_climate_2009_2016.csv.zip"
)
JENA_TIME_FORMAT = "%d.%m.%Y %H:%M:%S"
STOCK_TICKERS = ("AAPL", "IBM", "MSFT", "GOOG")
MISSING_TOKENS = {"", "nan", "na", "n/a", "null", "none"}


# === The record the model is built from ===


@dataclasses.dataclass(frozen=True)
class SplitPeriod:
    """The rows of one chronological split.

    Attributes:
        first: the first row's timestamp (or step number), as text.
        last: the last row's, as text.
        rows: how many rows the split holds.
        first_row: the index of its first row in the checked series.
    """

    first: str
    last: str
    rows: int
    first_row: int


@dataclasses.dataclass(frozen=True)
class ForecastingInfo(DataInfo):
    """What the forecasting model, its baselines and its export are built from.

    Attributes:
        time_column: the timestamp column of the source.
        time_format: its strftime format ("" where inferred).
        frequency: the step found or set (``D``, ``h``, ``trading day``, ``step 1``).
        seasonal_period: steps per season, for the seasonal-naive baseline.
        feature_columns: the window's columns, in input order (targets first).
        target_columns: the forecast columns, in output order.
        target_indices: the position of each target among ``feature_columns``.
        transform: ``log_return`` when targets are log returns of price inputs, else ``none``.
        window: past steps per input window.
        horizon: forecast steps.
        feature_mean: per feature, the training split's mean (after ``transform``).
        feature_variance: per feature, the training split's variance (1 where constant).
        target_mean: ``feature_mean`` of the targets.
        target_std: the square root of ``feature_variance`` of the targets.
        mase_scale: per target, the training split's mean error of one-step persistence.
        split_periods: ``train``, ``validation`` and ``test`` -> the rows each holds.
        notes: what the data checks found and did (rows sorted, values interpolated).
        linear: the ridge forecast fit on the training split (None until fit): the linear
            baseline, and the part of the default model the network corrects.
    """

    VERSION: ClassVar[int] = 2

    time_column: str
    time_format: str
    frequency: str
    seasonal_period: int
    feature_columns: list[str]
    target_columns: list[str]
    target_indices: list[int]
    transform: Literal["none", "log_return"]
    window: int
    horizon: int
    feature_mean: list[float]
    feature_variance: list[float]
    target_mean: list[float]
    target_std: list[float]
    mase_scale: list[float]
    split_periods: dict[str, SplitPeriod]
    notes: list[str]
    linear: LinearFit | None = None


@dataclasses.dataclass
class Series:
    """One source as a time-indexed table, before any checks.

    ``labels`` name each row in messages: ``line 7`` for a CSV, else its timestamp.
    ``frequency`` and ``seasonal_period`` are set where the source knows them.
    """

    frame: pd.DataFrame
    labels: np.ndarray
    where: str  # how messages name the source: the file or the data spec
    name: str
    source: str
    time_column: str
    default_targets: tuple[str, ...] = ()
    transform: str = "none"
    frequency: str = ""
    seasonal_period: int = 0
    check_gaps: bool = True
    time_format: str = ""


@dataclasses.dataclass
class Prepared:
    """A checked series: float32 values of the model's columns, and what was found."""

    values: np.ndarray  # [rows, features], NaN only where missing=drop left them
    times: pd.Index
    labels: np.ndarray
    features: list[str]
    targets: list[str]
    transform: str
    frequency: str
    seasonal_period: int
    notes: list[str]


# === Loaders (named by config.DATA_SOURCES) ===
# A chronological split has nothing random in it: the loaders take ``seed`` and ignore it.


def load_builtin(config: ForecastingConfig, argument: str, seed: int) -> Splits:
    """A built-in series (``weather`` when ``argument`` is empty), split and windowed."""
    return windowed_splits(builtin_series(argument), config)


def load_csv(config: ForecastingConfig, path: str, seed: int) -> Splits:
    """The user's CSV series, checked, split and windowed."""
    return windowed_splits(read_csv(Path(path), config), config)


def load_jena(config: ForecastingConfig, argument: str, seed: int) -> Splits:
    """The Jena climate series (downloaded once), split and windowed."""
    return windowed_splits(jena_series(), config)


def load_test_builtin(config: ForecastingConfig, argument: str, info: ForecastingInfo):
    """Every window of a built-in series in the trained model's columns, as test data."""
    return every_window(builtin_series(argument), config, info)


def load_test_csv(config: ForecastingConfig, path: str, info: ForecastingInfo):
    """Every window of a CSV series in the trained model's columns, as test data."""
    return every_window(read_csv(Path(path), config), config, info)


def load_test_jena(config: ForecastingConfig, argument: str, info: ForecastingInfo):
    """Every window of the Jena series in the trained model's columns, as test data."""
    return every_window(jena_series(), config, info)


def windowed_splits(series: Series, config: ForecastingConfig) -> Splits:
    """Check ``series``, split it chronologically and cut each split into windows."""
    prepared = prepare(series, config, config.target_columns, config.feature_columns)
    bounds = split_bounds(len(prepared.values), config, series.where)
    steps = config.window - (prepared.transform == "log_return")
    shape = (len(prepared.features), config.horizon, len(prepared.targets))
    linear.check_size(steps, *shape, series.where)
    windows = [
        _split_windows(prepared, split, bound, config, series.where)
        for split, bound in zip(SPLIT_NAMES, bounds, strict=True)
    ]
    info = _info(series, prepared, bounds, config)
    info = info.replace(linear=linear.fit(windows[0], windows[1], info))
    log_found(info)
    return Splits(*windows, info)


def every_window(series: Series, config: ForecastingConfig, info: ForecastingInfo):
    """Every window of ``series`` in the trained model's columns: ``(inputs, targets)``."""
    config = config.with_settings(
        {"window": info.window, "horizon": info.horizon, "target_transform": info.transform}
    )
    targets, features = tuple(info.target_columns), tuple(info.feature_columns)
    prepared = prepare(series, config, targets, features, exact=True)
    _check_enough_rows(len(prepared.values), config, series.where, "the file")
    inputs, targets, _ = make_windows(prepared, 0, len(prepared.values), config)
    if len(targets) == 0:
        raise UserError(f"{series.where}: no window without missing values")
    return inputs, targets


def _split_windows(prepared: Prepared, split: str, bound, config, where: str):
    """The windows of one split; UserError when missing values leave none."""
    start, stop = bound
    inputs, targets, dropped = make_windows(prepared, start, stop, config)
    if len(targets) == 0:
        raise UserError(
            f"{where}: no window without missing values in the {split} split "
            f"({_span(prepared, start, stop)}); set missing=interpolate"
        )
    if dropped:
        prepared.notes.append(f"{dropped} {split} windows touching a missing value dropped")
    return inputs, targets


# === Sources ===


def builtin_series(argument: str) -> Series:
    """The built-in series ``argument`` names: weather (the default), weather-hourly, stock."""
    readers: dict[str, Callable[[], Series]] = {
        "weather": _seattle_weather,
        "weather-hourly": _seattle_hourly,
        "stock": _stocks,
    }
    return readers[argument or "weather"]()


def read_csv(path: Path, config: ForecastingConfig) -> Series:
    """A user's CSV: ``time_column`` parsed as timestamps (or step numbers), rows in file order."""
    frame, lines = read_table_with_lines(path, ",", config.encoding)
    where = str(path)
    if frame.empty:
        raise UserError(f"{where}: no data rows")
    if config.time_column not in frame.columns:
        raise UserError(
            f"{where}: no time column {config.time_column!r} (set time_column=...; "
            f"columns: {', '.join(map(str, frame.columns))})"
        )
    labels = np.array([f"line {n}" for n in lines], dtype=object)
    times = _parse_times(frame[config.time_column], config.time_format, where, labels)
    frame = frame.drop(columns=[config.time_column]).set_axis(times, axis=0)
    return Series(
        frame=frame,
        labels=labels,
        where=where,
        name=path.stem,
        source=f"csv file {path}",
        time_column=config.time_column,
        time_format=config.time_format,
    )


def _parse_times(column: pd.Series, time_format: str, where: str, labels) -> pd.Index:
    text = column.astype(str).str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().all():
        return pd.Index(numbers.to_numpy(dtype=float), name=column.name)  # step numbers
    try:
        parsed = pd.to_datetime(text, format=time_format or None, errors="coerce")
    except (ValueError, TypeError, OverflowError, re.error) as err:  # a bad directive
        raise UserError(
            f"setting 'time_format' is not a usable strftime format: {time_format!r} ({err})"
        ) from None
    bad = parsed.isna().to_numpy()
    if bad.any():
        raise UserError(
            f"{where}: time column {column.name!r} has values that are not timestamps at "
            f"{_rows(labels[bad])} (e.g. {text[bad].iloc[0]!r}); "
            "set time_format=... (e.g. %d.%m.%Y %H:%M)"
        )
    return pd.DatetimeIndex(parsed, name=column.name)


def _seattle_weather() -> Series:
    from vega_datasets import local_data

    frame = local_data.seattle_weather().set_index("date")
    return Series(
        frame=frame,
        labels=_time_labels(frame.index),
        where="builtin:weather",
        name="seattle_weather",
        source="Seattle daily weather 2012-2015 (vega_datasets 0.9.0 seattle_weather, "
        "NOAA records); real data",
        time_column="date",
        default_targets=("temp_max",),
        frequency="D",
    )


def _seattle_hourly() -> Series:
    from vega_datasets import local_data

    return _hourly_series(
        local_data.seattle_temps().set_index("date"),
        "date",
        "Seattle hourly temperature 2010 in deg F (vega_datasets 0.9.0 seattle_temps); "
        "real data, {filled} missing hour (DST change) filled by interpolation",
        where="builtin:weather-hourly",
        name="seattle_hourly_temperature",
        default_targets=("temp",),
    )


def _stocks() -> Series:
    import bokeh_sampledata.stocks as stocks

    data = stocks.data
    wide = (
        data[data["ticker"].isin(STOCK_TICKERS)]
        .pivot(index="date", columns="ticker", values="adj_close")[list(STOCK_TICKERS)]
        .dropna()
        .sort_index()
    )
    wide.columns.name = None
    first, last = wide.index[0].date(), wide.index[-1].date()
    return Series(
        frame=wide,
        labels=_time_labels(wide.index),
        where="builtin:stock",
        name="stocks_aapl_ibm_msft_goog",
        source=f"daily adjusted closes of {', '.join(STOCK_TICKERS)} on the {len(wide):,} "
        f"trading days all four share ({first} to {last}; GOOG starts in 2004), from "
        "bokeh-sampledata 2026.1 (Quandl WIKI prices, public domain); real data",
        time_column="date",
        default_targets=STOCK_TICKERS,
        transform="log_return",
        frequency="trading day",
        seasonal_period=5,
        check_gaps=False,  # a step is a trading day: weekends and holidays are not gaps
    )


def jena_series() -> Series:
    """The Jena climate recording on the hour, downloaded once through ``keras.utils.get_file``."""
    frame = _read_jena_file()
    times = pd.to_datetime(frame.pop("Date Time"), format=JENA_TIME_FORMAT)
    frame = frame.set_axis(pd.DatetimeIndex(times, name="Date Time"), axis=0)
    for column in ("wv (m/s)", "max. wv (m/s)"):
        if column in frame:  # the recording's -9999 placeholders, as the TF tutorial does
            frame.loc[frame[column] < 0, column] = 0.0
    frame = frame[~frame.index.duplicated()].sort_index()
    frame = frame[frame.index.minute == 0]  # hourly, as keras-io keeps every 6th 10-min row
    return _hourly_series(
        frame,
        "Date Time",
        "Jena climate 2009-2016 (Max Planck Institute for Biogeochemistry, via "
        "keras.utils.get_file), on the hour; {filled} missing hours interpolated",
        where="jena",
        name="jena_climate",
        time_format=JENA_TIME_FORMAT,
        default_targets=("T (degC)",),
    )


def _read_jena_file() -> pd.DataFrame:
    import keras

    try:
        path = Path(keras.utils.get_file("jena_climate_2009_2016.csv.zip", origin=JENA_URL))
    except Exception as err:  # no network, a proxy, a broken download
        raise UserError(
            f"jena: could not download {JENA_URL} ({type(err).__name__}: {err})"
        ) from None
    if not zipfile.is_zipfile(path):
        return pd.read_csv(path)
    with zipfile.ZipFile(path) as archive:
        member = next(n for n in archive.namelist() if n.endswith(".csv"))
        return pd.read_csv(io.BytesIO(archive.read(member)))


def _hourly_series(frame: pd.DataFrame, time_column: str, source: str, **fields) -> Series:
    """``frame`` on a full hourly grid, the hours it lacked interpolated; ``source`` says
    how many where it names ``{filled}``."""
    grid = pd.date_range(frame.index[0], frame.index[-1], freq="h", name=time_column)
    filled = len(grid) - len(frame)
    frame = frame.reindex(grid).interpolate(method="time")
    return Series(
        frame=frame,
        labels=_time_labels(frame.index),
        source=source.format(filled=filled),
        time_column=time_column,
        frequency="h",
        **fields,
    )


def _time_labels(index: pd.Index) -> np.ndarray:
    return np.array([time_text(t) for t in index], dtype=object)


def time_text(time) -> str:
    """A timestamp as text, without a midnight time of day."""
    if isinstance(time, pd.Timestamp) and time == time.normalize():
        return str(time.date())
    return str(time)


# === Checks ===


def prepare(
    series: Series,
    config: ForecastingConfig,
    targets: tuple[str, ...],
    features: tuple[str, ...],
    exact: bool = False,
) -> Prepared:
    """Columns chosen and checked numeric, time order and steps checked, missing values handled.

    ``exact``: use exactly ``features`` as the inputs (a trained model's columns).
    """
    targets = targets or series.default_targets
    values = _model_columns(series, targets, features, exact)
    notes: list[str] = []
    values, labels = _in_time_order(values, series.labels, series.where, notes)
    transform = series.transform if config.target_transform == "auto" else config.target_transform
    if transform == "log_return":
        _check_positive(values, labels, targets, series.where)
    values, labels, frequency, offset = _regular_steps(values, labels, series, config)
    values = _handle_missing(values, labels, config.missing, series.where, notes)
    period = config.seasonal_period or series.seasonal_period or _seasonal_period(offset)
    if config.window - (transform == "log_return") < period:
        raise UserError(
            f"setting 'window' ({config.window}) must cover the seasonal period of {period} "
            f"steps ({frequency} data) for the seasonal-naive baseline; raise window or set "
            "seasonal_period"
        )
    return Prepared(
        values=values.to_numpy(dtype=np.float32),
        times=values.index,
        labels=labels,
        features=list(values.columns),
        targets=list(targets),
        transform=transform,
        frequency=frequency,
        seasonal_period=period,
        notes=notes,
    )


def _model_columns(series: Series, targets, features, exact: bool) -> pd.DataFrame:
    """The targets, then the other input columns, as float numbers (NaN where missing)."""
    where, frame = series.where, series.frame
    columns = [str(c) for c in frame.columns]
    if not targets:
        raise UserError(f"{where}: set target_columns=... (columns: {', '.join(columns)})")
    for key, names in (("target_columns", targets), ("feature_columns", features)):
        unknown = [n for n in names if n not in columns]
        if unknown:
            raise UserError(
                f"{where}: no column {unknown[0]!r} (set {key}=...; columns: {', '.join(columns)})"
            )
    numeric = {c: to_numbers(frame[c]) for c in frame.columns}
    if exact:
        chosen = list(features)
    else:
        extra = features or [c for c in frame.columns if _is_numeric(frame[c], numeric[c])]
        chosen = list(targets) + [c for c in extra if c not in targets]
    for column in chosen:
        bad = ~_is_number_or_missing(frame[column], numeric[column])
        if bad.any():
            kind = "target" if column in targets else "feature"
            raise UserError(
                f"{where}: {kind} column {column!r} is not numeric at {_rows(series.labels[bad])} "
                f"(e.g. {str(frame[column].to_numpy()[bad][0])!r})"
            )
    values = pd.DataFrame({c: numeric[c] for c in chosen}).set_axis(frame.index, axis=0)
    _check_finite(values, series.labels, where)
    return values


def _check_positive(values: pd.DataFrame, labels: np.ndarray, targets, where: str) -> None:
    """Log returns need prices: UserError naming the rows of a target at or below zero."""
    for column in targets:
        bad = (values[column] <= 0).to_numpy()
        if bad.any():
            raise UserError(
                f"{where}: target_transform=log_return needs positive values; column "
                f"{column!r} is <= 0 at {_rows(labels[bad])}"
            )


def _check_finite(values: pd.DataFrame, labels: np.ndarray, where: str) -> None:
    """UserError naming the column and rows of an infinite value, or one float32 cannot hold
    (NaN and empty cells are missing values, handled by ``missing``)."""
    limit = float(np.finfo(np.float32).max)
    for column in values.columns:
        numbers = values[column].to_numpy(dtype=float)
        bad = np.isinf(numbers) | (np.abs(np.nan_to_num(numbers)) > limit)
        if bad.any():
            raise UserError(
                f"{where}: column {column!r} has infinite or out-of-range values (beyond "
                f"+-{limit:.4g}) at {_rows(labels[bad])} (e.g. {numbers[bad][0]:g}: "
                "outside float32 range)"
            )


def to_numbers(column: pd.Series) -> pd.Series:
    """A column as floats: NaN for the missing-value tokens and for text that is no number."""
    if pd.api.types.is_numeric_dtype(column):
        return column.astype(float)
    text = column.astype(str).str.strip()
    return pd.to_numeric(text.where(~text.str.lower().isin(MISSING_TOKENS)), errors="coerce")


def _is_number_or_missing(column: pd.Series, numbers: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(column):
        return np.ones(len(column), dtype=bool)
    missing = column.astype(str).str.strip().str.lower().isin(MISSING_TOKENS)
    return (numbers.notna() | missing).to_numpy()


def _is_numeric(column: pd.Series, numbers: pd.Series) -> bool:
    return bool(_is_number_or_missing(column, numbers).all() and numbers.notna().any())


def _in_time_order(values: pd.DataFrame, labels: np.ndarray, where: str, notes: list[str]):
    order = np.argsort(values.index.to_numpy(), kind="stable")
    if (order != np.arange(len(order))).any():
        notes.append("rows sorted into time order")
    values, labels = values.iloc[order], labels[order]
    duplicated = values.index.duplicated(keep=False)
    if duplicated.any():
        raise UserError(
            f"{where}: duplicate timestamps at {_rows(labels[duplicated])} "
            f"({time_text(values.index[duplicated][0])})"
        )
    return values, labels


def _regular_steps(values: pd.DataFrame, labels: np.ndarray, series: Series, config):
    """Find irregular timestamps; refuse them, fill them in, or ignore them (``gaps``).

    Returns ``(values, labels, frequency name, pandas offset or None)``.
    """
    index, where = values.index, series.where
    if not series.check_gaps:
        return values, labels, series.frequency, None
    if len(index) < 3:
        return values, labels, config.frequency or "unknown", None
    grid, name, offset = _regular_grid(index, config.frequency or series.frequency, where)
    off_grid = ~index.isin(grid)
    missing = grid.difference(index)
    if not off_grid.any() and len(missing) == 0:
        return values, labels, name, offset
    if config.gaps == "ignore":
        return values, labels, f"{name}, irregular (rows taken as consecutive steps)", offset
    if off_grid.any():
        raise UserError(
            f"{where}: timestamps off the regular {name} grid at {_rows(labels[off_grid])} "
            f"({time_text(index[off_grid][0])}); set frequency=..., resample the file, "
            "or set gaps=ignore"
        )
    if config.gaps == "error":
        raise _gaps_error(index, grid, labels, len(missing), name, where)
    label_of = dict(zip(index, labels, strict=True))
    labels = np.array(
        [label_of.get(t, f"{time_text(t)} (inserted for a gap)") for t in grid], dtype=object
    )
    return values.reindex(grid), labels, name, offset


def _regular_grid(index: pd.Index, frequency: str, where: str):
    """The regular grid from the first to the last timestamp: ``(grid, name, offset)``."""
    if isinstance(index, pd.DatetimeIndex):
        offset = _frequency(index, frequency, where)
        try:
            steps = (index[-1] - index[0]) / pd.Timedelta(offset)
        except (ValueError, TypeError):
            steps = 0.0  # a calendar offset (MS, YE, ...): no more steps than days
        _check_grid_size(steps, len(index), offset.freqstr, where)
        grid = pd.date_range(index[0], index[-1], freq=offset, name=index.name)
        return grid, offset.freqstr, offset
    step = _numeric_step(index, frequency)
    _check_grid_size((index[-1] - index[0]) / step, len(index), f"step {step:g}", where)
    count = round((index[-1] - index[0]) / step) + 1
    return pd.Index(index[0] + step * np.arange(count), name=index.name), f"step {step:g}", None


def _gaps_error(index, grid, labels, missing: int, name: str, where: str) -> UserError:
    """The error naming the first gaps: the rows on either side of each."""
    expected_next = grid[grid.get_indexer(index[:-1]) + 1]
    positions = np.flatnonzero(np.asarray(index[1:] != expected_next))
    described = [
        f"{labels[i]} ({time_text(index[i])}) and {labels[i + 1]} ({time_text(index[i + 1])})"
        for i in positions[:3]
    ]
    more = f" and {len(positions) - 3} more" if len(positions) > 3 else ""
    return UserError(
        f"{where}: irregular timestamps: {missing} missing {name} steps, in the "
        f"gap(s) between {'; '.join(described)}{more}; "
        "set gaps=fill (then missing=...) or gaps=ignore"
    )


def _check_grid_size(steps: float, rows: int, name: str, where: str) -> None:
    """UserError when a regular grid at ``name`` would hold far more steps than the file has
    rows (e.g. frequency=1s on daily data): it is a wrong frequency, not gaps to fill."""
    limit = max(100 * rows, 1_000_000)
    if not steps <= limit:
        raise UserError(
            f"{where}: a regular {name} grid from the first to the last timestamp has "
            f"{steps:,.0f} steps for {rows:,} rows; check setting 'frequency'"
        )


def _numeric_step(index: pd.Index, setting: str) -> float:
    """The step of a time column of plain numbers: ``frequency`` as a number, or the median."""
    if not setting:
        return float(np.median(np.diff(index)))
    try:
        step = float(setting)
    except ValueError:
        step = 0.0
    if not step > 0:
        raise UserError(
            f"setting 'frequency' must be a positive number for a numeric time column, "
            f"got {setting!r}"
        )
    return step


def _frequency(index: pd.DatetimeIndex, setting: str, where: str):
    """The ``frequency`` setting as a pandas offset, or the one the timestamps follow."""
    if setting:
        try:
            return pd.tseries.frequencies.to_offset(setting)
        except ValueError:
            raise UserError(
                f"setting 'frequency' is not a pandas offset alias: {setting!r}"
            ) from None
    with pd.option_context("future.infer_freq_returns_offset", True):
        inferred = pd.infer_freq(index)
    return inferred if inferred is not None else _coarsest_frequency(index, where)


def _coarsest_frequency(index: pd.DatetimeIndex, where: str):
    """Irregular timestamps: the coarsest calendar or fixed step whose grid holds them all."""
    step = pd.Series(index[1:] - index[:-1]).mode()[0]
    if step <= pd.Timedelta(0):
        raise UserError(f"{where}: cannot infer the time step; set frequency=...")
    if step % pd.Timedelta(days=1) == pd.Timedelta(0):
        step = f"{step.days}D"
    weekday = index[0].day_name()[:3].upper()
    candidates = [step, "B", f"W-{weekday}", "MS", "ME", "QS", "QE", "YS", "YE"]
    best, best_size = None, None
    for candidate in candidates:
        offset = pd.tseries.frequencies.to_offset(candidate)
        grid = pd.date_range(index[0], index[-1], freq=offset)
        if index.isin(grid).all() and (best is None or len(grid) < best_size):
            best, best_size = offset, len(grid)
    return best or pd.tseries.frequencies.to_offset(step)


def _seasonal_period(offset) -> int:
    """Same day last week for daily data, same hour yesterday for hourly, and so on."""
    if offset is None:
        return 1
    code = offset.rule_code.split("-")[0]
    calendar = {"B": 5, "C": 5, "W": 52, "BMS": 12, "BME": 12}
    if code in calendar:
        return calendar[code]
    if code.startswith(("M", "SM")):
        return 12
    if code.startswith(("Q", "BQ")):
        return 4
    try:
        step = pd.Timedelta(offset)
    except ValueError:
        return 1
    day = pd.Timedelta(days=1)
    if step == day:
        return 7
    if step == 7 * day:
        return 52
    if step < day and day % step == pd.Timedelta(0):
        return int(day / step)
    return 1


def _handle_missing(values: pd.DataFrame, labels, missing: str, where: str, notes: list[str]):
    empty = values.isna()
    rows = empty.any(axis=1).to_numpy()
    if not rows.any():
        return values
    columns = [c for c in values.columns if empty[c].any()]
    if missing == "error":
        raise UserError(
            f"{where}: missing values in column(s) {', '.join(map(repr, columns))} at "
            f"{_rows(labels[rows])}; set missing=interpolate or missing=drop"
        )
    if missing == "drop":
        notes.append(f"{rows.sum()} row(s) with missing values: windows touching them dropped")
        return values
    method = "time" if isinstance(values.index, pd.DatetimeIndex) else "index"
    notes.append(f"{empty.to_numpy().sum()} missing values interpolated ({method})")
    return values.interpolate(method=method, limit_direction="both")


def _rows(labels, limit: int = 5) -> str:
    labels = list(labels)
    more = f" and {len(labels) - limit} more" if len(labels) > limit else ""
    return ", ".join(labels[:limit]) + more


# === Splits and windows ===


def split_bounds(rows: int, config: ForecastingConfig, where: str) -> list[tuple[int, int]]:
    """Row ranges of train, validation and test, in time order; each holds one window at least."""
    test = math.ceil(rows * config.test_fraction)
    validation = math.ceil(rows * config.validation_fraction)
    train = rows - validation - test
    bounds = [(0, train), (train, train + validation), (train + validation, rows)]
    need = config.window + config.horizon
    if min(stop - start for start, stop in bounds) < need:
        raise UserError(
            f"{where}: too few rows for one window in every split: {rows} rows split into "
            f"{train}/{validation}/{test} (train/validation/test), and each split needs "
            f"window + horizon = {need} rows; lower window or add rows"
        )
    return bounds


def _check_enough_rows(rows: int, config: ForecastingConfig, where: str, what: str) -> None:
    need = config.window + config.horizon
    if rows < need:
        raise UserError(
            f"{where}: too few rows for one window: {what} has {rows} rows and a window needs "
            f"window + horizon = {need}"
        )


def make_windows(prepared: Prepared, start: int, stop: int, config: ForecastingConfig):
    """Windows of rows ``[start, stop)``: inputs [n, window, features] in original units and
    targets [n, horizon, targets] (log returns for ``log_return``); windows touching a missing
    value are dropped. Returns ``(inputs, targets, dropped)``."""
    import keras

    window, horizon = config.window, config.horizon
    dataset = keras.utils.timeseries_dataset_from_array(
        prepared.values[start:stop],
        None,
        sequence_length=window + horizon,
        sequence_stride=1,
        shuffle=False,
        batch_size=2048,
    )
    blocks = np.concatenate(list(dataset.as_numpy_iterator()), axis=0)
    columns = [prepared.features.index(t) for t in prepared.targets]
    future = blocks[:, window:, columns]
    if prepared.transform == "log_return":
        targets = np.log(future / blocks[:, window - 1 : -1, columns])
    else:
        targets = future
    keep = ~np.isnan(blocks).any(axis=(1, 2))
    inputs = blocks[keep, :window].astype(np.float32)
    return inputs, targets[keep].astype(np.float32), int((~keep).sum())


def transformed_series(values: np.ndarray, target_indices: list[int], transform: str):
    """What the model's first layer makes of a series ``[..., steps, features]``: log returns
    of the target columns (the other columns from the second step on), or the values."""
    if transform != "log_return":
        return values
    out = values[..., 1:, :].copy()
    now, before = values[..., 1:, target_indices], values[..., :-1, target_indices]
    out[..., target_indices] = np.log(now / before)
    return out


def _info(series: Series, prepared: Prepared, bounds, config: ForecastingConfig):
    """The record of the checked series, with statistics of the training split alone."""
    start, stop = bounds[0]
    targets = [prepared.features.index(t) for t in prepared.targets]
    train = transformed_series(
        prepared.values[start:stop].astype(np.float64), targets, prepared.transform
    )
    mean = np.nanmean(train, axis=0)
    variance = np.nanvar(train, axis=0)
    _check_scalable(variance, prepared.features, series.where)
    variance[~(variance > 0)] = 1.0
    return ForecastingInfo(
        name=series.name,
        source=series.source,
        time_column=series.time_column,
        time_format=series.time_format,
        frequency=prepared.frequency,
        seasonal_period=prepared.seasonal_period,
        feature_columns=prepared.features,
        target_columns=prepared.targets,
        target_indices=targets,
        transform=prepared.transform,
        window=config.window,
        horizon=config.horizon,
        feature_mean=mean.tolist(),
        feature_variance=variance.tolist(),
        target_mean=mean[targets].tolist(),
        target_std=np.sqrt(variance[targets]).tolist(),
        mase_scale=_persistence_error(train[:, targets], prepared.transform).tolist(),
        split_periods=_periods(prepared, bounds),
        notes=prepared.notes,
    )


def _check_scalable(variance: np.ndarray, columns: list[str], where: str) -> None:
    """UserError naming a column whose training-split variance float32 cannot hold: the
    model normalises inside the graph, in float32, so its scaled form would be undefined."""
    limit = float(np.finfo(np.float32).max)
    for column, value in zip(columns, variance, strict=True):
        if not np.isfinite(value) or value > limit:
            raise UserError(
                f"{where}: column {column!r} varies too much for float32 (training-split "
                f"variance {value:.4g}, beyond {limit:.4g}); rescale it, e.g. to other units"
            )


def _persistence_error(series: np.ndarray, transform: str) -> np.ndarray:
    """Per target, the mean absolute error of one-step persistence; 0 where the series is
    constant (MASE is then undefined, and reported as such)."""
    # For returns, persistence (the random walk) forecasts a zero return.
    error = np.abs(series) if transform == "log_return" else np.abs(np.diff(series, axis=0))
    scale = np.nanmean(error, axis=0)
    scale[~(scale > 0)] = 0.0
    return scale


def _periods(prepared: Prepared, bounds) -> dict[str, SplitPeriod]:
    return {
        split: SplitPeriod(
            first=time_text(prepared.times[a]),
            last=time_text(prepared.times[b - 1]),
            rows=b - a,
            first_row=a,
        )
        for split, (a, b) in zip(SPLIT_NAMES, bounds, strict=True)
    }


def _span(prepared: Prepared, start: int, stop: int) -> str:
    return f"{prepared.labels[start]} to {prepared.labels[stop - 1]}"


def log_found(info: ForecastingInfo) -> None:
    """One progress line about what the data checks found."""
    if info.notes:
        log("data: " + "; ".join(info.notes))
