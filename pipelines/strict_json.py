"""Strict JSON: every JSON file the project writes holds finite numbers only.

The convention for a metric that cannot be computed (for example MAPE when the test
targets include zeros, or MASE when the training series never changes): its value is
``null`` and a key ``<metric>_reason`` beside it says why, e.g.
``{"mase": null, "mase_reason": "undefined: ..."}``. ``defined_metrics`` applies it, and
``dumps`` refuses anything else that is not finite (``allow_nan=False``), naming the key.

Imports no TensorFlow.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from pipelines.errors import UserError

REASON_SUFFIX = "_reason"
NON_FINITE_HINT = "try a lower learning_rate"


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` with ``allow_nan=False`` and NumPy values made plain; a drop-in.

    Raises ``ValueError`` naming the key path of the first value that is not finite.
    """
    kwargs.setdefault("default", plain)
    try:
        return json.dumps(value, allow_nan=False, **kwargs)
    except ValueError:
        where = first_non_finite(value)
        if where is None:
            raise
        raise ValueError(f"not strict JSON: {where} is not a finite number") from None


def plain(value: Any) -> Any:
    """A JSON-able stand-in for NumPy scalars and arrays, tuples, sets and other objects."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, tuple | set):
        return list(value)
    return str(value)


def first_non_finite(value: Any, path: str = "$") -> str | None:
    """The key path (``$.test.mase``) of the first NaN or infinite number in ``value``."""
    if isinstance(value, dict):
        for key, item in value.items():
            found = first_non_finite(item, f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = first_non_finite(item, f"{path}[{index}]")
            if found:
                return found
        return None
    if isinstance(value, np.ndarray):
        return first_non_finite(value.tolist(), path)
    if isinstance(value, float | np.floating) and not math.isfinite(float(value)):
        return path
    return None


def undefined(name: str, reason: str) -> dict[str, Any]:
    """The entries of a metric that cannot be computed: ``null`` and its reason."""
    return {name: None, name + REASON_SUFFIX: f"undefined: {reason}"}


def defined_metrics(metrics: dict[str, Any], reasons: dict[str, str]) -> dict[str, Any]:
    """``metrics`` with each non-finite value replaced by ``null`` and a ``_reason`` key.

    ``reasons`` maps a metric name to why it can be undefined; a metric missing from it
    gets a generic reason.
    """
    out: dict[str, Any] = {}
    for name, value in metrics.items():
        if isinstance(value, float | np.floating) and not math.isfinite(float(value)):
            out |= undefined(name, reasons.get(name, "not a finite number on this test split"))
        else:
            out[name] = value
    return out


def defined_evaluation(
    test: dict[str, Any],
    baselines: dict[str, dict[str, Any]],
    reasons: dict[str, str] | None = None,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``defined_metrics`` applied to the model's metrics and to every baseline's."""
    reasons = reasons or {}
    return defined_metrics(test, reasons), {
        name: defined_metrics(values, reasons) for name, values in baselines.items()
    }


def is_metric_key(key: str) -> bool:
    """Whether a key of a metrics mapping names a metric (not a metric's reason)."""
    return not key.endswith(REASON_SUFFIX)


def require_finite_outputs(outputs: Any, split: str = "test") -> None:
    """UserError when a trained model's outputs on ``split`` include NaN or infinity."""
    values = np.asarray(outputs)
    if not np.issubdtype(values.dtype, np.floating):
        return
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        raise UserError(
            f"the trained model produced non-finite outputs on the {split} split ({bad:,} of "
            f"{values.size:,} values are NaN or infinite); {NON_FINITE_HINT}"
        )
