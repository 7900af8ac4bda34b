"""The per-item and per-request bounds an export declares in ``assets.extra/limits.json``."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)

# Used when an export has no limits.json, or leaves a key out: small enough that one
# request cannot exhaust the server's memory, large enough for every pipeline's examples.
DEFAULT_MAX_ITEMS = 64
DEFAULT_MAX_ITEM_BYTES = 64 * 1024  # one string item
DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024  # all string items of one input
DEFAULT_MAX_ITEM_ELEMENTS = 2 * 1024 * 1024  # one numeric item (about 2 min of 16 kHz audio)
DEFAULT_MAX_REQUEST_ELEMENTS = 16 * 1024 * 1024  # all numeric items of one input


@dataclasses.dataclass(frozen=True)
class InputLimits:
    """Bounds of one input: bytes for strings, elements for numbers (None: not bounded)."""

    max_item_bytes: int | None = None
    max_request_bytes: int | None = None
    max_item_elements: int | None = None
    max_request_elements: int | None = None


@dataclasses.dataclass(frozen=True)
class Limits:
    """Items per request and each input's bounds; ``for_input`` falls back to the defaults."""

    max_items: int = DEFAULT_MAX_ITEMS
    inputs: dict[str, InputLimits] = dataclasses.field(default_factory=dict)

    def for_input(self, name: str, is_string: bool) -> InputLimits:
        """The bounds of input ``name``, with the defaults for any key the export left out."""
        given = self.inputs.get(name, InputLimits())
        if is_string:
            return InputLimits(
                max_item_bytes=given.max_item_bytes or DEFAULT_MAX_ITEM_BYTES,
                max_request_bytes=given.max_request_bytes or DEFAULT_MAX_REQUEST_BYTES,
            )
        return InputLimits(
            max_item_elements=given.max_item_elements or DEFAULT_MAX_ITEM_ELEMENTS,
            max_request_elements=given.max_request_elements or DEFAULT_MAX_REQUEST_ELEMENTS,
        )


def _positive(value, where: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{where} must be a positive integer, not {value!r}")
    return value


def read_limits(version_dir: Path) -> Limits:
    """``version_dir/assets.extra/limits.json`` as ``Limits``; the defaults when it is absent.

    A malformed file is logged and the defaults are used, so one bad export does not stop
    the others from serving.
    """
    path = version_dir / "assets.extra" / "limits.json"
    if not path.is_file():
        return Limits()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        inputs = {}
        for name, entry in (raw.get("inputs") or {}).items():
            inputs[str(name)] = InputLimits(
                **{
                    key: _positive(entry.get(key), f"{path}: inputs.{name}.{key}")
                    for key in (f.name for f in dataclasses.fields(InputLimits))
                }
            )
        max_items = _positive(raw.get("max_items"), f"{path}: max_items") or DEFAULT_MAX_ITEMS
        return Limits(max_items=max_items, inputs=inputs)
    except (ValueError, AttributeError, TypeError) as error:
        log.warning("%s is malformed (%s); using the default limits", path, error)
        return Limits()
