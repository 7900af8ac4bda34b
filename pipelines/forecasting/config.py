"""Settings of the forecasting pipeline. Imports no TensorFlow."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from pipelines.config_base import BaseConfig, check_split_fractions
from pipelines.errors import UserError

SUMMARY = "time-series forecasting: past window -> next steps (built-in: Seattle weather, stocks)"

DATA_HELP = """\
data (--data SPEC):
  builtin, builtin:weather
                    Seattle daily weather 2012-2015 (1,461 days: precipitation, temp_max,
                    temp_min, wind) from vega_datasets 0.9.0; target: the next day's temp_max
                    (deg C) from the past `window` days of every numeric column. Real data.
  builtin:weather-hourly
                    Seattle hourly temperature 2010 (8,759 hours, deg F) from vega_datasets;
                    the one missing hour (the DST change) is filled by interpolation. A very
                    smooth series: a linear model on the window is hard to beat.
  builtin:stock     daily split/dividend-adjusted closes of AAPL, IBM, MSFT and GOOG from
                    bokeh-sampledata 2026.1 (Quandl WIKI, public domain), on the 2,148 trading
                    days all four share (2004-08-19 to 2013-03-01). Inputs are prices; targets
                    are the next days' log returns (target_transform=log_return); price-level
                    errors and directional accuracy are reported too.
  csv:PATH          your own series, any frequency: --set time_column=date target_columns=a,b
                    [feature_columns=c,d] [time_format=%d.%m.%Y]. Targets are always inputs too;
                    feature_columns adds others (default: every numeric column).
  jena              the Jena climate series 2009-2016 (keras.utils.get_file; needs internet),
                    kept hourly as keras-io does; target T (degC).
  Splits are chronological (train, then validation, then test; every window lies inside one
  split). Normalisation statistics come from the training split only and live inside the
  model, so the export takes windows in original units. Missing values (missing=error|
  interpolate|drop) and irregular timestamps (gaps=error|fill|ignore) are refused with the
  rows named unless a setting says how to handle them."""

MISSING_CHOICES = ("error", "interpolate", "drop")
GAPS_CHOICES = ("error", "fill", "ignore")
TRANSFORM_CHOICES = ("auto", "none", "log_return")


@dataclasses.dataclass(frozen=True)
class ForecastingConfig(BaseConfig):
    """Every setting of the forecasting pipeline."""

    window: int = 28  # past steps the model sees
    horizon: int = 1  # future steps it forecasts (1: many-to-one)
    time_column: str = "date"  # csv: the timestamp column
    time_format: str = ""  # csv: strftime format of time_column ("" infers it)
    target_columns: tuple[str, ...] = ()  # () = the source's default (csv: required)
    feature_columns: tuple[str, ...] = ()  # extra inputs; () = every numeric column
    target_transform: str = "auto"  # none | log_return (prices in, log returns out); auto: source's
    missing: str = "error"  # NaN or empty cells: error | interpolate | drop (windows touching one)
    gaps: str = "error"  # irregular timestamps: error | fill (insert missing times) | ignore
    frequency: str = ""  # pandas offset alias (D, h, 10min, MS, ...); "" infers it
    seasonal_period: int = 0  # steps per season for seasonal naive; 0 from the frequency
    residual: bool = True  # learn a correction to persistence rather than the level itself
    validation_fraction: float = 0.15
    test_fraction: float = 0.15

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.window < 2 or self.horizon < 1 or self.seasonal_period < 0:
            raise UserError(
                "settings 'window' must be at least 2, 'horizon' at least 1 and "
                "'seasonal_period' at least 0"
            )
        for key, choices in (
            ("missing", MISSING_CHOICES),
            ("gaps", GAPS_CHOICES),
            ("target_transform", TRANSFORM_CHOICES),
        ):
            if getattr(self, key) not in choices:
                raise UserError(
                    f"setting {key!r} must be one of {', '.join(choices)}, "
                    f"got {getattr(self, key)!r}"
                )
        check_split_fractions(self.validation_fraction, self.test_fraction)

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "units": 8,
            "epochs": 2,
            "patience": 1,
            "tune_epochs": 1,
            "max_trials": 2,
        },
        "default": {
            "cell": "gru",
            "units": 32,
            "epochs": 60,
            "patience": 8,
            "batch_size": 32,
        },
        "full": {
            "cell": "gru",
            "units": 64,
            "depth": 2,
            "dropout": 0.1,
            "window": 56,
            "epochs": 150,
            "patience": 15,
            "batch_size": 32,
            "max_trials": 12,
        },
    }


CONFIG_CLASS = ForecastingConfig
