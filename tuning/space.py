"""Search spaces as data: what each tuned setting ranges over, and the search's objective.

A space maps a setting's name to a ``Dimension``: its ``choices``, or a ``min`` and
``max`` with ``linear`` or ``log`` sampling (and an optional ``step``), optionally
active only ``when`` another tuned setting takes given values. Each pipeline
declares its default space this way; an experiment file's ``tuning.space``
replaces the entries it names. ``declare`` turns one dimension into Keras Tuner's
``hp.Choice``/``hp.Int``/``hp.Float``/``hp.Boolean`` in one place. Nothing here
imports TensorFlow.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

Value = StrictBool | int | float | str


class Dimension(BaseModel):
    """The values one tuned setting takes."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    choices: list[Value] | None = Field(
        None, min_length=1, max_length=1000, description="the values to choose from"
    )
    min: float | None = Field(None, description="lowest value of a range")
    max: float | None = Field(None, description="highest value of a range")
    step: float | None = Field(None, gt=0, description="spacing of a range's values")
    sampling: Literal["linear", "log"] = Field("linear", description="how a range is sampled")
    when: dict[str, list[Value]] | None = Field(
        None,
        description="active only when the named tuned setting takes one of these values",
    )

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        ranged = self.min is not None or self.max is not None
        if (self.choices is None) == (not ranged):
            raise ValueError("give either 'choices' or both 'min' and 'max'")
        if ranged:
            if self.min is None or self.max is None or not self.min < self.max:
                raise ValueError("a range needs 'min' < 'max'")
            if self.sampling == "log" and self.min <= 0:
                raise ValueError("log sampling needs 'min' > 0")
        elif self.step is not None or self.sampling != "linear":
            raise ValueError("'step' and 'sampling' apply to ranges, not to 'choices'")
        if self.when is not None and len(self.when) != 1:
            raise ValueError("'when' names exactly one other tuned setting")
        return self

    def describe(self) -> str:
        """One line: ``32|64|128`` or ``[0.0001, 0.01] log``."""
        condition = ""
        if self.when:
            ((parent, values),) = self.when.items()
            condition = f" when {parent} in {'|'.join(map(str, values))}"
        if self.choices is not None:
            return "|".join(map(str, self.choices)) + condition
        step = f" step {self.step:g}" if self.step else ""
        return f"[{self.min:g}, {self.max:g}] {self.sampling}{step}{condition}"


class Objective(BaseModel):
    """What a search optimises: a ``val_*`` value of the epoch logs, and its direction."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        "val_loss",
        pattern=r"^val_[A-Za-z0-9_]+$",
        description="a val_* value of the epoch logs (val_loss, val_accuracy, val_cer, ...)",
    )
    direction: Literal["min", "max"] = Field("min", description="minimise or maximise it")


SearchSpace = dict[str, Dimension]

# The space every pipeline starts from; a pipeline's own declaration replaces entries.
BASE_SPACE: SearchSpace = {
    "units": Dimension(choices=[32, 64, 128, 256]),
    "dropout": Dimension(min=0.0, max=0.5),
    "learning_rate": Dimension(min=1e-4, max=1e-2, sampling="log"),
    "batch_size": Dimension(choices=[32, 64, 128]),
    "cell": Dimension(choices=["lstm", "gru"]),
    "depth": Dimension(choices=[1, 2]),
    "bidirectional": Dimension(choices=[False, True]),
}

# Settings Keras Tuner's ``fit`` decides (the rest are decided in ``build``).
FIT_SETTINGS = ("batch_size",)


def space(**entries: Dimension | dict[str, Any] | None) -> SearchSpace:
    """``BASE_SPACE`` with ``entries`` replaced (a ``None`` entry removes that setting)."""
    merged = dict(BASE_SPACE)
    for name, entry in entries.items():
        if entry is None:
            merged.pop(name, None)
        else:
            merged[name] = entry if isinstance(entry, Dimension) else Dimension(**entry)
    return merged


def merged(default: SearchSpace, overrides: dict[str, Dimension | None]) -> SearchSpace:
    """An experiment's space: the pipeline's default with the named entries replaced
    (``None`` leaves that setting untuned)."""
    combined = {**default, **overrides}
    return {name: dimension for name, dimension in combined.items() if dimension is not None}


def declare(hp, name: str, dimension: Dimension, default: Any) -> Any:
    """Declare ``name`` on Keras Tuner's ``hp`` from ``dimension``; returns its value.

    ``default`` (the config's value) is the search's first guess where the dimension
    allows it. Integer ranges (both bounds whole, an integer setting) become ``hp.Int``.
    """
    if dimension.when:
        ((parent, values),) = dimension.when.items()
        with hp.conditional_scope(parent, values):
            return _declare_plain(hp, name, dimension, default)
    return _declare_plain(hp, name, dimension, default)


def _declare_plain(hp, name: str, dimension: Dimension, default: Any) -> Any:
    if dimension.choices is not None:
        values = dimension.choices
        if all(isinstance(v, bool) for v in values) and len(set(values)) == 2:
            return hp.Boolean(name, default=bool(default) if default in values else values[0])
        if len(set(values)) == 1:
            return hp.Fixed(name, values[0])
        return hp.Choice(name, values, default=default if default in values else values[0])
    inside = default is not None and dimension.min <= default <= dimension.max
    if isinstance(default, int) and not isinstance(default, bool):
        return hp.Int(
            name,
            int(dimension.min),
            int(dimension.max),
            step=int(dimension.step) if dimension.step else None,
            sampling=dimension.sampling,
            default=default if inside else None,
        )
    return hp.Float(
        name,
        dimension.min,
        dimension.max,
        step=dimension.step,
        sampling=dimension.sampling,
        default=float(default) if inside else None,
    )


def as_json(search_space: SearchSpace) -> dict[str, Any]:
    """The space as plain data (for the tuner report and the resume check)."""
    return {name: dim.model_dump(exclude_none=True) for name, dim in search_space.items()}
