"""Settings, data sources and search space of the forecasting pipeline. Imports no TensorFlow."""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

from pydantic import Field, field_validator, model_validator

from pipelines.config_base import (
    MAX_NAME,
    BaseConfig,
    count_field,
    encoding_field,
    name_field,
    with_default,
)
from pipelines.sources import DataSource, DataSources
from pipelines.text_files import TextEncoding
from tuning.space import space

SUMMARY = "time-series forecasting: past window -> next steps (built-in: Seattle weather, stocks)"

MAX_COLUMNS = 1000  # target or feature columns named in one setting
MAX_HORIZON = 10_000  # forecast steps: far past any useful lead time
MAX_QUANTILES = 99  # quantile levels given beside a forecast
MAX_BACKTEST_FOLDS = 20  # cutoffs of a rolling-origin backtest (each trains a model)


class ForecastingConfig(BaseConfig):
    """Every setting of the forecasting pipeline."""

    window: int = count_field(28, "past steps the model sees", low=2)
    horizon: int = count_field(1, "future steps it forecasts (1: many-to-one)", high=MAX_HORIZON)
    time_column: str = Field(
        "date", min_length=1, max_length=MAX_NAME, description="csv: the timestamp column"
    )
    time_format: str = name_field("", "csv: strftime format of time_column; empty infers it")
    target_columns: tuple[str, ...] = Field(
        (), description="columns to forecast; empty: the source's (csv: required)"
    )
    feature_columns: tuple[str, ...] = Field(
        (), description="extra input columns; empty: every numeric column"
    )
    target_transform: Literal["auto", "none", "log_return"] = Field(
        "auto", description="log_return: prices in, log returns out; auto: the source's choice"
    )
    missing: Literal["error", "interpolate", "drop"] = Field(
        "error", description="NaN or empty cells: refuse, interpolate, or drop windows touching one"
    )
    gaps: Literal["error", "fill", "ignore"] = Field(
        "error", description="irregular timestamps: refuse, insert the missing times, or ignore"
    )
    frequency: str = name_field("", "pandas offset alias (D, h, 10min, MS) or step; empty infers")
    seasonal_period: int = count_field(
        0, "steps per season for seasonal naive; 0: from the frequency", low=0
    )
    encoding: TextEncoding = encoding_field("a csv file")
    anchor: Literal["linear", "persistence", "none"] = Field(
        "linear",
        description="what the network corrects: linear (the ridge forecast, itself around "
        "the last value), persistence (the last value), or none (it forecasts the level); "
        "anchored, it reads each window scaled by its own mean and spread",
    )
    quantiles: tuple[float, ...] = Field(
        (0.1, 0.5, 0.9),
        description="quantile levels given beside each forecast, increasing, each in (0, 1); "
        "the lowest and highest bound the interval whose coverage the report gives; "
        "empty: none",
    )
    backtest_folds: int = count_field(
        0,
        "rolling-origin backtest: cut the period after the training split into this many "
        "folds; at each fold's start train on everything before it and score the fold, "
        "model beside every baseline; 0: none",
        low=0,
        high=MAX_BACKTEST_FOLDS,
    )
    backtest_mode: Literal["retrain", "refit"] = Field(
        "retrain",
        description="backtest: retrain a new model at each cutoff, or refit the run's "
        "model (train on from its weights: faster)",
    )
    validation_fraction: float = with_default(BaseConfig, "validation_fraction", 0.15)
    test_fraction: float = with_default(BaseConfig, "test_fraction", 0.15)

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"units": 8, "epochs": 2, "patience": 1, "tune_epochs": 1},
        "default": {"cell": "gru", "units": 32, "epochs": 60, "patience": 8, "batch_size": 32},
        "full": {
            "cell": "gru",
            "units": 64,
            "depth": 2,
            "dropout": 0.1,
            "window": 56,
            "epochs": 150,
            "patience": 15,
            "batch_size": 32,
        },
    }

    @field_validator("target_columns", "feature_columns")
    @classmethod
    def _column_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        """At most MAX_COLUMNS distinct, non-empty names of at most MAX_NAME characters."""
        if len(names) > MAX_COLUMNS:
            raise ValueError(f"more than {MAX_COLUMNS} columns ({len(names)})")
        if any(not name or len(name) > MAX_NAME for name in names):
            raise ValueError(f"a column name must have 1 to {MAX_NAME} characters")
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"column {twice[0]!r} is named twice")
        return names

    @field_validator("quantiles")
    @classmethod
    def _quantile_levels(cls, levels: tuple[float, ...]) -> tuple[float, ...]:
        """At most MAX_QUANTILES levels, each strictly between 0 and 1, increasing."""
        if len(levels) > MAX_QUANTILES:
            raise ValueError(f"more than {MAX_QUANTILES} quantile levels ({len(levels)})")
        if any(not 0 < q < 1 for q in levels):
            raise ValueError("each quantile level must be strictly between 0 and 1")
        if any(b <= a for a, b in zip(levels, levels[1:], strict=False)):
            raise ValueError("quantile levels must be increasing, each named once")
        if len(levels) == 1:
            raise ValueError("give at least two quantile levels (an interval), or none")
        return levels

    @model_validator(mode="after")
    def _season_inside_window(self) -> Self:
        """The seasonal-naive baseline looks one season back inside the window."""
        log_returns = self.target_transform == "log_return"
        if self.seasonal_period > self.window - log_returns:
            less = " less the step target_transform=log_return takes" if log_returns else ""
            raise ValueError(
                f"setting 'seasonal_period' ({self.seasonal_period}) must be at most setting "
                f"'window' ({self.window}){less}; raise window or lower seasonal_period"
            )
        return self

    def sequence_steps(self) -> int:
        """Steps of one input window."""
        return self.window


_SHAPE = ("window", "horizon", "target_columns", "feature_columns")
_CHECKS = (
    "missing",
    "gaps",
    "frequency",
    "seasonal_period",
    "validation_fraction",
    "test_fraction",
)

DATA_SOURCES = DataSources(
    "forecasting",
    DataSource(
        "builtin",
        "load_builtin",
        "real series shipped with Python packages. weather (the default): Seattle daily "
        "weather 2012-2015 (1,461 days: precipitation, temp_max, temp_min, wind) from "
        "vega_datasets 0.9.0; target the next day's temp_max (deg C) from the past `window` "
        "days of every numeric column. weather-hourly: Seattle hourly temperature 2010 (8,759 "
        "hours, deg F) from vega_datasets; the one missing hour (the DST change) is filled by "
        "interpolation; a very smooth series, where a linear model on the window is hard to "
        "beat. stock: daily split/dividend-adjusted closes of AAPL, IBM, MSFT and GOOG from "
        "bokeh-sampledata 2026.1 (Quandl WIKI, public domain) on the 2,148 trading days all "
        "four share (2004-08-19 to 2013-03-01); inputs are prices, targets the next days' log "
        "returns (target_transform=log_return); price-level errors and directional accuracy "
        "are reported too. Splits are chronological (train, validation, test; every window "
        "inside one split); normalisation statistics come from the training split only and "
        "live inside the model, so the export takes windows in original units.",
        argument="choice",
        choices=("weather", "weather-hourly", "stock"),
        optional=True,
        settings=(
            *_SHAPE,
            "target_transform",
            "seasonal_period",
            "validation_fraction",
            "test_fraction",
        ),
        test_loader="load_test_builtin",
    ),
    DataSource(
        "csv",
        "load_csv",
        "your own series, any frequency, comma-separated with a header: set time_column, "
        "target_columns and optionally feature_columns and time_format (e.g. %d.%m.%Y). "
        "Targets are always inputs too; feature_columns adds others (default: every numeric "
        "column). Missing values (missing=error|interpolate|drop) and irregular timestamps "
        "(gaps=error|fill|ignore) are refused with the rows named unless a setting says how "
        "to handle them. Chronological split.",
        argument="file",
        settings=(
            "time_column",
            "time_format",
            "encoding",
            *_SHAPE,
            "target_transform",
            *_CHECKS,
        ),
        test_loader="load_test_csv",
    ),
    DataSource(
        "jena",
        "load_jena",
        "the Jena climate series 2009-2016 (keras.utils.get_file; needs internet), kept "
        "hourly as keras-io does; target T (degC). Real data, chronological split.",
        settings=(*_SHAPE, "missing", "validation_fraction", "test_fraction"),
        test_loader="load_test_jena",
    ),
)

SEARCH_SPACE = space(
    units={"choices": [16, 32, 64, 128]},
    batch_size={"choices": [16, 32, 64]},
    anchor={"choices": ["linear", "persistence", "none"]},
)

CONFIG_CLASS = ForecastingConfig
