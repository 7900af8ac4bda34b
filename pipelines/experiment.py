"""Experiment files: one YAML or JSON file holds a whole run, and a run's ``config.json`` is one.

```yaml
pipeline: sentiment
preset: default          # smoke | default | full
data: builtin            # any --data spec
seed: 0
out: runs/my-experiment  # optional
settings: {units: 64, dropout: 0.2}
tuning:                  # optional; present means tune first
  tuner: bayesian
  max_trials: 8
  objective: {name: val_accuracy, direction: max}
  space:
    units: {choices: [32, 64, 128]}
```

``Experiment`` is the declaration; ``resolve`` validates it against the pipeline's
settings, data sources and search space and returns what the runner needs. Nothing
here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field

from pipelines import registry, strict_json
from pipelines.config_base import PRESET_NAMES, BaseConfig, settings_error
from pipelines.errors import UserError
from pipelines.sources import DataSpec
from tuning.space import Dimension, Objective, SearchSpace, as_json, merged

MAX_FILE_BYTES = 1_000_000  # an experiment file is a page of settings, not data
# Levels of nested mappings and lists an experiment file may have (the deepest real one,
# tuning.space.KEY.choices, has four); deeper nesting is refused before it is built.
MAX_NESTING = 16
MAX_TRIALS_BY_PRESET = {"smoke": 2, "default": 6, "full": 12}


class Tuning(BaseModel):
    """The ``tuning`` section: present means search before the final training."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tuner: Literal["random", "bayesian", "hyperband"] = Field(
        "random", description="the Keras Tuner search"
    )
    max_trials: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description="trials of a random or Bayesian search (default by preset: "
        + ", ".join(f"{k} {v}" for k, v in MAX_TRIALS_BY_PRESET.items())
        + ")",
    )
    max_epochs: int | None = Field(
        None, ge=2, le=10_000, description="Hyperband's longest trial (default: tune_epochs)"
    )
    objective: Objective = Field(default_factory=Objective, description="what is optimised")
    space: dict[str, Dimension | None] = Field(
        default_factory=dict,
        description="replaces the named entries of the pipeline's default search space "
        "(null: that setting is not tuned)",
    )
    workers: int = Field(
        0, ge=0, le=256, description="local worker processes of a distributed search"
    )


class Experiment(BaseModel):
    """A whole run: pipeline, preset, data, settings, seed, output folder and tuning."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pipeline: str = Field(description="the pipeline's name (see `list`)")
    preset: Literal["smoke", "default", "full"] = Field(
        "default", description="the settings to start from"
    )
    data: str = Field("builtin", max_length=4096, description="the --data spec")
    seed: int = Field(
        0, ge=0, lt=2**32, description="fixes data splits, initialisation and shuffling"
    )
    out: str | None = Field(None, max_length=4096, description="the run directory")
    settings: dict[str, Any] = Field(
        default_factory=dict, description="settings that differ from the preset's"
    )
    tuning: Tuning | None = Field(None, description="present: tune before training")
    deterministic: bool = Field(False, description="TensorFlow op determinism")
    checkpoint_steps: int = Field(
        20, ge=0, le=10**9, description="back up the training state every N steps"
    )
    versions: dict[str, str] | None = Field(
        None, description="written by a run: the Python, TensorFlow and Keras it used"
    )


@dataclasses.dataclass(frozen=True)
class Resolved:
    """An experiment checked against its pipeline: what the runner works from."""

    experiment: Experiment
    name: str
    config: BaseConfig
    data: DataSpec
    space: SearchSpace

    @property
    def max_trials(self) -> int:
        """Trials of the search: the tuning section's, else the preset's default."""
        tuning = self.experiment.tuning
        return (tuning and tuning.max_trials) or MAX_TRIALS_BY_PRESET[self.experiment.preset]

    def search_record(self) -> dict[str, Any]:
        """The searched space and objective, as written to the tuning report."""
        tuning = self.experiment.tuning
        return {
            "tuner": tuning.tuner,
            "objective": tuning.objective.model_dump(),
            "space": as_json(self.space),
        }

    def config_file(self, tuned: bool = False) -> dict[str, Any]:
        """The experiment file a run writes as ``config.json``: every setting resolved,
        the output folder left out; once tuned, the tuning section too (so rerunning
        it trains the same model without searching)."""
        experiment = self.experiment.model_copy(
            update={
                "pipeline": self.name,
                "settings": self.config.to_dict(),
                "out": None,
                "tuning": None if tuned else self.experiment.tuning,
            }
        )
        return experiment.model_dump(mode="json", exclude_none=True)


def read_file(path: Path | str) -> dict[str, Any]:
    """The mapping in a YAML or JSON experiment file (safe loader; bounded size and nesting,
    no YAML aliases)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as error:
        raise UserError(f"{path}: cannot read ({error.strerror})") from None
    if size > MAX_FILE_BYTES:
        raise UserError(f"{path}: {size:,} bytes; an experiment file may have {MAX_FILE_BYTES:,}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: not UTF-8 text (byte {error.start})") from None
    try:
        loaded = yaml.load(text, Loader=_NoAliasLoader)
    except _TooDeep as error:
        raise UserError(f"{path}: {error}") from None
    except yaml.YAMLError as error:
        raise UserError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(loaded, dict):
        raise UserError(f"{path}: an experiment file is a mapping (pipeline: ..., settings: ...)")
    return loaded


class _TooDeep(yaml.YAMLError):
    """An experiment file nested deeper than ``MAX_NESTING``."""


class _NoAliasLoader(yaml.SafeLoader):
    """The safe loader without anchors and aliases (a few bytes could expand to gigabytes)
    and with at most ``MAX_NESTING`` levels (the composer recurses once per level)."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError(
                f"YAML aliases are not accepted (line {event.start_mark.line + 1})"
            )
        depth = getattr(self, "_depth", 0)
        if depth > MAX_NESTING:
            raise _TooDeep(
                f"nested deeper than {MAX_NESTING} levels (line {event.start_mark.line + 1}); "
                "an experiment file is a few levels of settings"
            )
        self._depth = depth + 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth = depth


def parse(
    values: dict[str, Any], where: str = "experiment", labels: dict[str, str] | None = None
) -> Experiment:
    """An ``Experiment`` from a mapping; UserError naming the file and the key path.

    ``labels`` name a key path as the user wrote it (``{"seed": "--seed"}`` for flags).
    """
    try:
        return Experiment.model_validate(values)
    except pydantic.ValidationError as error:
        first = error.errors(include_url=False)[0]
        key = ".".join(str(part) for part in first["loc"]) or "(top level)"
        if labels and key in labels:
            where, key = "", labels[key]
        message = first["msg"][0].lower() + first["msg"][1:]
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        elif first["type"] == "missing":
            message = "required key missing"
        raise UserError(f"{where}: {key}: {message}" if where else f"{key}: {message}") from None


def load(path: Path | str) -> Experiment:
    """Read and parse an experiment file."""
    return parse(read_file(path), str(path))


def resolve(experiment: Experiment, where: str = "experiment") -> Resolved:
    """Check ``experiment`` against its pipeline's settings, data sources and search space."""
    name = registry.canonical_name(experiment.pipeline)
    module = registry.config_module(name)
    config_class: type[BaseConfig] = module.CONFIG_CLASS
    base = config_class.from_preset(experiment.preset)
    try:
        config = config_class.model_validate({**base.to_dict(), **experiment.settings})
    except pydantic.ValidationError as error:
        raise settings_error(
            error, _settings_where(where), list(config_class.model_fields)
        ) from None
    spec = module.DATA_SOURCES.parse(experiment.data)
    space: SearchSpace = {}
    if experiment.tuning is not None:
        space = merged(module.SEARCH_SPACE, experiment.tuning.space)
        check_space(space, config, where)
        _check_tuner_options(experiment.tuning, where)
    return Resolved(experiment, name, config, spec, space)


def _settings_where(where: str) -> str:
    return "" if where in ("experiment", "--set") else where


def check_space(space: SearchSpace, config: BaseConfig, where: str) -> None:
    """Every tuned name is a setting, and every value a dimension can take is allowed."""
    fields = type(config).model_fields
    for name, dimension in space.items():
        path = f"{where}: tuning.space.{name}"
        if name not in fields:
            raise UserError(
                f"{path}: not a setting of this pipeline; settings: {', '.join(fields)}"
            )
        candidates = dimension.choices or [dimension.min, dimension.max]
        if dimension.choices is None and fields[name].annotation is int:
            candidates = [int(dimension.min), int(dimension.max)]
        for value in candidates:
            try:
                config.with_settings({name: value})
            except UserError as error:
                raise UserError(f"{path}: {error}") from None
        if dimension.when:
            ((parent, _),) = dimension.when.items()
            if parent not in space or space[parent].choices is None:
                raise UserError(f"{path}: 'when' names {parent!r}, which is not tuned by choices")


def _check_tuner_options(tuning: Tuning, where: str) -> None:
    if tuning.tuner == "hyperband" and tuning.max_trials is not None:
        raise UserError(
            f"{where}: tuning.max_trials: hyperband decides its own trials; set max_epochs"
        )
    if tuning.tuner != "hyperband" and tuning.max_epochs is not None:
        raise UserError(f"{where}: tuning.max_epochs applies to the hyperband tuner only")


def schema(name: str) -> dict[str, Any]:
    """The JSON Schema of an experiment file for pipeline ``name``, its settings included."""
    from pipelines.config_base import settings_schema

    canonical = registry.canonical_name(name)
    module = registry.config_module(canonical)
    document = Experiment.model_json_schema()
    settings = settings_schema(module.CONFIG_CLASS)
    document["$defs"] = {**document.get("$defs", {}), **settings.pop("$defs", {})}
    document["properties"]["pipeline"] = {"const": canonical, "description": "the pipeline"}
    document["properties"]["settings"] = settings
    tuning = document["$defs"]["Tuning"]["properties"]["space"]
    tuning["propertyNames"] = {"enum": list(module.CONFIG_CLASS.model_fields)}
    document["title"] = f"rnn-suite experiment: {canonical}"
    return document


def with_overrides(experiment: Experiment, **changes: Any) -> Experiment:
    """A copy with the given top-level keys replaced (``None`` values are ignored)."""
    update = {key: value for key, value in changes.items() if value is not None}
    return parse({**experiment.model_dump(exclude_none=True), **update}, "command line")


def dumps(values: dict[str, Any]) -> str:
    """Strict JSON text of an experiment mapping."""
    return strict_json.dumps(values, indent=2) + "\n"


__all__ = ["PRESET_NAMES", "Experiment", "Resolved", "Tuning", "load", "parse", "resolve"]
