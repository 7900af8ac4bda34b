"""Settings every pipeline has, declared once as pydantic fields, and the ``--set`` machinery.

Each setting is a field carrying its type, its default, its allowed values
(``ge``/``le``/``gt``/``lt`` bounds, ``Literal`` choices, a validator) and a
one-line ``description``. From those fields alone come the ``run NAME --help``
table, the validation of ``--set``, experiment files and stored run configs,
the JSON Schema (``python -m pipelines schema NAME``) and the reference pages.

Nothing here imports TensorFlow: ``python -m pipelines --help`` reads configs.
"""

from __future__ import annotations

import copy
import json
import typing
from typing import Any, ClassVar, Literal, Self

import pydantic
from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo

from pipelines.errors import UserError
from pipelines.text_files import DEFAULT_ENCODING

PRESET_NAMES = ("smoke", "default", "full")
CELLS = ("simple_rnn", "lstm", "gru")
# Caps that hold whatever the memory limit says: a size past them is a typo, not a plan.
MAX_UNITS = 4096
MAX_DEPTH = 16
MAX_BATCH = 65_536
MAX_EPOCHS = 100_000
MAX_STEPS = 100_000  # sequence lengths, windows, frames
MAX_VOCABULARY = 2_000_000
MAX_EXAMPLES = 100_000_000
MAX_NAME = 256  # column names, voice names, file-format strings
BYTES_PER_FLOAT = 4


def count_field(default: int, description: str, *, low: int = 1, high: int = MAX_STEPS) -> Any:
    """An integer setting in ``[low, high]``."""
    return Field(default, ge=low, le=high, description=description)


def name_field(default: str, description: str) -> Any:
    """A short text setting (a column name, a format)."""
    return Field(default, max_length=MAX_NAME, description=description)


def encoding_field(what: str) -> Any:
    """The ``encoding`` setting of a pipeline that reads the user's text files."""
    return Field(
        DEFAULT_ENCODING,
        description=f"text encoding of {what} (a UTF-8 byte-order mark is accepted)",
    )


def with_default(config_class: type[BaseModel], name: str, default: Any) -> FieldInfo:
    """``config_class``'s declaration of ``name`` with another default, for a subclass."""
    info = copy.copy(config_class.model_fields[name])
    info.default = default
    return info


class BaseConfig(BaseModel):
    """Training settings every pipeline has; a pipeline subclasses it and adds its own.

    Subclasses set ``PRESETS``: for each of ``smoke``, ``default`` and ``full`` the
    fields that differ from the declared defaults. Presets are validated by the same
    model, so a bad preset fails the test suite, not a user's run.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    # The recurrent stack (layers.recurrent_stack).
    cell: Literal["simple_rnn", "lstm", "gru"] = Field("lstm", description="recurrent cell kind")
    units: int = Field(64, ge=1, le=MAX_UNITS, description="hidden units per recurrent layer")
    depth: int = Field(1, ge=1, le=MAX_DEPTH, description="stacked recurrent layers")
    bidirectional: bool = Field(False, description="run each recurrent layer both ways")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout on layer inputs")
    recurrent_dropout: float = Field(
        0.0, ge=0.0, lt=1.0, description="dropout on recurrent state (leaves the fast path)"
    )
    # Optimisation.
    learning_rate: float = Field(1e-3, gt=0.0, le=10.0, description="Adam's learning rate")
    lr_schedule: Literal["constant", "cosine"] = Field(
        "constant",
        description="constant: learning_rate throughout; cosine: decays each epoch from "
        "learning_rate to a twentieth of it over the epochs",
    )
    clipnorm: float = Field(
        1.0, ge=0.0, le=1e6, description="clip gradients to this norm; 0 turns clipping off"
    )
    batch_size: int = Field(64, ge=1, le=MAX_BATCH, description="examples per training step")
    epochs: int = Field(10, ge=1, le=MAX_EPOCHS, description="most training epochs")
    patience: int = Field(
        3, ge=0, le=MAX_EPOCHS, description="epochs without a better val_loss before stopping"
    )
    # Data split.
    validation_fraction: float = Field(
        0.1, gt=0.0, lt=0.5, description="share of the examples held out for validation"
    )
    test_fraction: float = Field(
        0.1, gt=0.0, lt=0.5, description="share of the examples held out for the test"
    )
    # Tuning (--tune).
    tune_epochs: int = Field(3, ge=1, le=MAX_EPOCHS, description="epochs of each tuning trial")
    # Resources.
    memory_limit_gb: float = Field(
        8.0,
        gt=0.0,
        le=65_536.0,
        description="refuse a run whose estimated training memory (GiB) exceeds this",
    )

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"smoke": {}, "default": {}, "full": {}}

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_preset(cls, preset: str) -> Self:
        """The config of a named preset (``smoke``, ``default`` or ``full``)."""
        if preset not in cls.PRESETS:
            raise UserError(f"unknown preset {preset!r}; choose one of {', '.join(cls.PRESETS)}")
        return cls.validated(cls.PRESETS[preset], f"preset {preset!r}")

    @classmethod
    def validated(cls, values: dict[str, Any], where: str = "") -> Self:
        """A config from ``values``; UserError ``setting 'KEY' ...`` naming what is wrong."""
        try:
            return cls.model_validate(values)
        except pydantic.ValidationError as error:
            raise settings_error(error, where, list(cls.model_fields)) from None

    def with_settings(self, settings: dict[str, Any], where: str = "") -> Self:
        """A copy with some fields replaced, validated as a whole."""
        return self.validated({**self.to_dict(), **settings}, where)

    def with_overrides(self, pairs: list[str]) -> Self:
        """A copy with ``--set`` ``KEY=VALUE`` strings applied; UserError for a bad key or value."""
        return self.with_settings(parse_overrides(type(self), pairs), "--set")

    def to_dict(self) -> dict[str, Any]:
        """Every setting, as plain JSON-able values."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "") -> Self:
        """Inverse of ``to_dict``; an unknown key or bad value is a UserError."""
        return cls.validated(values, where)

    # -- resources ----------------------------------------------------------------------
    def sequence_steps(self) -> int:
        """Time steps of one training example, for the memory estimate (pipelines refine it)."""
        return 100

    def estimated_memory_bytes(self, parameters: int | None = None) -> int:
        """Training memory: weights, gradients and Adam's two moments, plus one batch's
        recurrent activations kept for the backward pass.

        ``parameters`` is the model's exact count when it is built; before that, the
        recurrent stack's own count (inputs as wide as the units) stands in for it.
        """
        directions = 2 if self.bidirectional else 1
        gates = {"simple_rnn": 1, "lstm": 4, "gru": 3}[self.cell]
        if parameters is None:
            per_layer = gates * (2 * self.units * directions + 1) * self.units * directions
            parameters = per_layer * self.depth
        activations = (
            self.batch_size * self.sequence_steps() * self.units * directions * self.depth
        ) * (gates + 2)
        return BYTES_PER_FLOAT * (4 * parameters + 2 * activations)

    def check_memory(self, parameters: int | None = None) -> None:
        """UserError when the estimate exceeds ``memory_limit_gb``."""
        needed = self.estimated_memory_bytes(parameters) / 2**30
        if needed > self.memory_limit_gb:
            raise UserError(
                f"setting 'memory_limit_gb': training would need about {needed:,.1f} GiB "
                f"(parameters, optimizer state and one batch's activations), more than the "
                f"limit of {self.memory_limit_gb:g} GiB; lower units, depth, batch_size or "
                "the sequence length, or raise memory_limit_gb"
            )


def settings_error(
    error: pydantic.ValidationError, where: str = "", known: list[str] | None = None
) -> UserError:
    """The first problem of a validation error as ``setting 'KEY' = VALUE: what is allowed``."""
    first = error.errors(include_url=False)[0]
    key = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    message = message[0].lower() + message[1:]
    prefix = f"{where}: " if where else ""
    if first["type"] == "extra_forbidden":
        listed = f"; known settings: {', '.join(known)}" if known else ""
        return UserError(f"{prefix}unknown setting {key!r}{listed}")
    if not key:  # a check across several settings names them itself
        return UserError(f"{prefix}{message}")
    value = first.get("input")
    printable = isinstance(value, str) and value.isprintable()
    shown = value if printable else json.dumps(value, default=repr)
    return UserError(f"{prefix}setting {key!r} = {shown[:80]}: {message}")


def parse_overrides(config_class: type[BaseConfig], pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings as raw values keyed by setting; the model does the typing.

    A tuple setting takes comma-separated items (``target_columns=a,b``); ``none`` or an
    empty value clears an optional setting.
    """
    fields = config_class.model_fields
    settings: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise UserError(f"--set expects KEY=VALUE, got {pair!r}")
        if key not in fields:
            raise UserError(f"--set: unknown setting {key!r}; known settings: {', '.join(fields)}")
        settings[key] = _raw_value(raw.strip(), fields[key].annotation)
    return settings


def _raw_value(raw: str, annotation: Any) -> Any:
    args = typing.get_args(annotation)
    if type(None) in args and raw.lower() in ("", "none", "null"):
        return None
    if typing.get_origin(annotation) is tuple or any(typing.get_origin(a) is tuple for a in args):
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


# -- describing settings (help, docs) ---------------------------------------------------


def type_name(annotation: Any) -> str:
    """A short name for a field's type: ``int``, ``float``, ``str``, ``list of str``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return type_name(typing.get_args(annotation)[0])
    if origin is Literal:
        return "choice"
    if origin is tuple:
        items = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        return f"list of {type_name(items[0])}"
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if args and type(None) in typing.get_args(annotation):
        return f"{type_name(args[0])} or none"
    return getattr(annotation, "__name__", str(annotation))


def allowed_values(info: FieldInfo) -> str:
    """What a field accepts, from its declaration: ``1..4096``, ``[0, 1)``, ``lstm|gru``."""
    if typing.get_origin(info.annotation) is Literal:
        return "|".join(str(v) for v in typing.get_args(info.annotation))
    low = high = None
    low_open = high_open = False
    for item in info.metadata:
        for attribute, is_low, is_open in (
            ("ge", True, False),
            ("gt", True, True),
            ("le", False, False),
            ("lt", False, True),
        ):
            value = getattr(item, attribute, None)
            if value is None:
                continue
            if is_low:
                low, low_open = value, is_open
            else:
                high, high_open = value, is_open
        if getattr(item, "max_length", None) is not None:
            unit = "chars" if info.annotation is str else "items"
            return f"≤{item.max_length} {unit}"
    if low is None and high is None:
        return "any" if info.annotation is not bool else "true|false"
    if info.annotation is int and not (low_open or high_open):
        return f"{'' if low is None else low}..{'' if high is None else high}"
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    return f"{left}{'-inf' if low is None else low:g}, {'inf' if high is None else high:g}{right}"


def settings_table(config_class: type[BaseConfig], preset: str = "default") -> list[dict[str, str]]:
    """One row per setting: name, type, the preset's value, allowed values, meaning."""
    values = config_class.from_preset(preset).to_dict()
    return [
        {
            "name": name,
            "type": type_name(info.annotation),
            "default": _shown(values[name]),
            "allowed": allowed_values(info),
            "meaning": info.description or "",
        }
        for name, info in config_class.model_fields.items()
    ]


def _shown(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(map(str, value)) or "(none)"
    if isinstance(value, str):
        return value or '""'
    return json.dumps(value)


def settings_schema(config_class: type[BaseConfig]) -> dict[str, Any]:
    """The JSON Schema of the settings, with each preset's value beside the default."""
    schema = config_class.model_json_schema()
    presets = {name: config_class.from_preset(name).to_dict() for name in config_class.PRESETS}
    for name, prop in schema.get("properties", {}).items():
        prop["x-presets"] = {preset: values[name] for preset, values in presets.items()}
    schema.pop("required", None)
    return schema
