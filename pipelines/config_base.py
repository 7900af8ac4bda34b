"""Settings shared by every pipeline, and the `--set KEY=VALUE` machinery.

Nothing here imports TensorFlow: `python -m pipelines --help` reads configs.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, ClassVar, Self

from pipelines.errors import UserError

PRESET_NAMES = ("smoke", "default", "full")
INT_RANGE = (-(2**31), 2**31 - 1)  # every int setting reaches TensorFlow as an int32 at most


@dataclasses.dataclass(frozen=True)
class BaseConfig:
    """Training settings every pipeline has; a pipeline subclasses it and adds its own.

    Subclasses set ``PRESETS``: for each of ``smoke``, ``default`` and ``full``
    the fields that differ from the dataclass defaults.
    """

    # The recurrent stack (layers.recurrent_layers).
    cell: str = "lstm"
    units: int = 64
    depth: int = 1
    bidirectional: bool = False
    dropout: float = 0.0
    recurrent_dropout: float = 0.0
    # Optimisation.
    learning_rate: float = 1e-3
    clipnorm: float = 1.0  # gradient clipping by norm; 0 turns it off
    batch_size: int = 64
    epochs: int = 10
    patience: int = 3  # early stopping on validation loss
    # Tuning (--tune).
    tune_epochs: int = 3
    max_trials: int = 6

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"smoke": {}, "default": {}, "full": {}}

    def __post_init__(self) -> None:
        cells = ("simple_rnn", "lstm", "gru")
        if self.cell not in cells:
            raise UserError(f"setting 'cell' must be one of {', '.join(cells)}, got {self.cell!r}")
        for key in ("units", "depth", "batch_size", "epochs", "tune_epochs", "max_trials"):
            if getattr(self, key) < 1:
                raise UserError(f"setting {key!r} must be at least 1, got {getattr(self, key)}")
        for key in ("dropout", "recurrent_dropout"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise UserError(f"setting {key!r} must be in [0, 1), got {getattr(self, key)}")
        if self.learning_rate <= 0 or self.clipnorm < 0 or self.patience < 0:
            raise UserError("settings 'learning_rate' must be > 0, 'clipnorm' and 'patience' >= 0")

    @classmethod
    def from_preset(cls, preset: str) -> Self:
        """The config of a named preset (``smoke``, ``default`` or ``full``)."""
        if preset not in cls.PRESETS:
            raise UserError(f"unknown preset {preset!r}; choose one of {', '.join(cls.PRESETS)}")
        return cls(**cls.PRESETS[preset])

    def with_settings(self, settings: dict[str, Any]) -> Self:
        """A copy with some fields replaced by already-typed values."""
        return dataclasses.replace(self, **settings)

    def with_overrides(self, pairs: list[str]) -> Self:
        """A copy with ``--set`` ``KEY=VALUE`` strings applied; UserError for a bad key or value."""
        return self.with_settings(parse_overrides(type(self), pairs))

    def to_dict(self) -> dict[str, Any]:
        """Every setting, as plain JSON-able values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        """Inverse of ``to_dict``; keys the class does not know are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: _from_json(v) for k, v in values.items() if k in names})


def check_split_fractions(validation_fraction: float, test_fraction: float) -> None:
    """UserError unless both held-out fractions are in (0, 1) and leave training rows."""
    if not (
        0 < validation_fraction < 1
        and 0 < test_fraction < 1
        and validation_fraction + test_fraction < 1
    ):
        raise UserError(
            "settings 'validation_fraction' and 'test_fraction' must be in (0, 1) "
            "and sum to less than 1"
        )


def setting_types(config_class: type) -> dict[str, type]:
    """Field name -> the Python type its values are parsed to."""
    hints = typing.get_type_hints(config_class)
    return {f.name: hints[f.name] for f in dataclasses.fields(config_class)}


def parse_overrides(config_class: type, pairs: list[str]) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` strings against the fields of ``config_class``."""
    types_by_name = setting_types(config_class)
    settings: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise UserError(f"--set expects KEY=VALUE, got {pair!r}")
        if key not in types_by_name:
            known = ", ".join(sorted(types_by_name))
            raise UserError(f"unknown setting {key!r} in --set; known settings: {known}")
        settings[key] = parse_value(key, raw.strip(), types_by_name[key])
    return settings


def parse_value(key: str, raw: str, kind: Any) -> Any:
    """Turn the text of one ``--set`` value into ``kind``; a UserError names the key."""
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):  # "str | None"
        if raw.lower() in ("", "none", "null"):
            return None
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
        origin = typing.get_origin(kind)
    try:
        if kind is bool:
            return _parse_bool(raw)
        if kind is int:
            value = int(raw)
            if not INT_RANGE[0] <= value <= INT_RANGE[1]:
                raise UserError(f"setting {key!r} is out of range (a 32-bit int), got {raw!r}")
            return value
        if kind is float:
            value = float(raw)
            if not math.isfinite(value):
                raise UserError(f"setting {key!r} expects a finite float, got {raw!r}")
            return value
        if origin is tuple:
            (item,) = {a for a in typing.get_args(kind) if a is not Ellipsis}
            return tuple(parse_value(key, part.strip(), item) for part in raw.split(",") if part)
        return raw
    except ValueError:
        name = getattr(kind, "__name__", str(kind))
        raise UserError(f"setting {key!r} expects {name}, got {raw!r}") from None


def _parse_bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _from_json(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(value)
    return value
