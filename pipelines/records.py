"""The typed, versioned record of what a loader hands the model builder.

Each pipeline subclasses ``DataInfo`` as a frozen dataclass with the fields its
model, evaluation and export need (class names, vocabularies, normalisation
statistics) and sets ``VERSION``. A run writes it to ``data_info.json`` with its
schema name and version; reading refuses another pipeline's record, and one from a
newer version, with a clear error. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Self

import pydantic

from pipelines.errors import UserError


@dataclasses.dataclass(frozen=True)
class DataInfo:
    """What every data set tells the model: its name and where it came from.

    Attributes:
        name: a short name of the data set (``rotten_tomatoes``, a file's stem).
        source: one line saying where the data came from and whether it is real.
    """

    VERSION: ClassVar[int] = 1

    name: str
    source: str

    @classmethod
    def schema_name(cls) -> str:
        """The name written beside the version (the class name)."""
        return cls.__name__

    def to_json(self) -> dict[str, Any]:
        """``{"schema": NAME, "version": N, "fields": {...}}``, JSON-able."""
        return {
            "schema": self.schema_name(),
            "version": self.VERSION,
            "fields": pydantic.TypeAdapter(type(self)).dump_python(self, mode="json"),
        }

    @classmethod
    def from_json(cls, payload: Any, path: Path | str = "data_info.json") -> Self:
        """The record written by ``to_json``; UserError for another schema or a newer version."""
        if not isinstance(payload, dict) or not {"schema", "version", "fields"} <= set(payload):
            raise UserError(
                f"{path}: not a data record (no schema and version); the run was written by "
                "an older version of rnn-suite: train it again"
            )
        if payload["schema"] != cls.schema_name():
            raise UserError(f"{path}: a {payload['schema']} record, not {cls.schema_name()}")
        version = payload["version"]
        if not isinstance(version, int) or version > cls.VERSION:
            raise UserError(
                f"{path}: {cls.schema_name()} version {version!r} is newer than this "
                f"rnn-suite reads ({cls.VERSION}); upgrade rnn-suite"
            )
        if version < cls.VERSION:
            raise UserError(
                f"{path}: {cls.schema_name()} version {version} is older than this "
                f"rnn-suite reads ({cls.VERSION}); train the run again"
            )
        try:
            return pydantic.TypeAdapter(cls).validate_python(payload["fields"])
        except pydantic.ValidationError as error:
            first = error.errors(include_url=False)[0]
            where = ".".join(map(str, first["loc"]))
            raise UserError(f"{path}: field {where!r}: {first['msg']}") from None

    def replace(self, **changes: Any) -> Self:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)
