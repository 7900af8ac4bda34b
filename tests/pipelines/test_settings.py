"""Every declared setting of every pipeline: a value just outside each bound is refused with
``setting 'KEY'``, a value on the bound is accepted; choices, texts and presets likewise.

Runs in-process and imports no TensorFlow.
"""

from __future__ import annotations

import math
import typing

import pytest

from pipelines import registry
from pipelines.config_base import BaseConfig
from pipelines.errors import UserError


def _fields():
    for name in registry.PIPELINES:
        config_class = registry.config_module(name).CONFIG_CLASS
        for key, info in config_class.model_fields.items():
            yield pytest.param(config_class, key, info, id=f"{name}.{key}")


def _bounds(info) -> list[tuple[str, float]]:
    found = []
    for item in info.metadata:
        for attribute in ("ge", "gt", "le", "lt"):
            value = getattr(item, attribute, None)
            if value is not None:
                found.append((attribute, value))
    return found


def _base(config_class: type[BaseConfig]) -> BaseConfig:
    return config_class.from_preset("default")


def _outside_and_on(info, kind: str, bound: float):
    """(a value just outside the bound, the nearest value on or inside it)."""
    if info.annotation is int:
        step = 1
        outside = {"ge": bound - step, "gt": bound, "le": bound + step, "lt": bound}[kind]
        on = {"ge": bound, "gt": bound + step, "le": bound, "lt": bound - step}[kind]
        return outside, on
    below, above = math.nextafter(bound, -math.inf), math.nextafter(bound, math.inf)
    outside = {"ge": below, "gt": bound, "le": above, "lt": bound}[kind]
    on = {"ge": bound, "gt": above, "le": bound, "lt": below}[kind]
    return outside, on


@pytest.mark.parametrize(("config_class", "key", "info"), list(_fields()))
def test_each_bound_refuses_just_outside_and_accepts_on_it(config_class, key, info):
    base = _base(config_class)
    checked = 0
    for kind, bound in _bounds(info):
        outside, on = _outside_and_on(info, kind, bound)
        with pytest.raises(UserError, match=f"setting '{key}' = .*: input should be"):
            base.with_settings({key: outside})
        _accepts_or_names_other_settings(base, key, on)
        checked += 1
    if typing.get_origin(info.annotation) is typing.Literal:
        for choice in typing.get_args(info.annotation):
            _accepts_or_names_other_settings(base, key, choice)
        with pytest.raises(UserError, match=f"setting '{key}'"):
            base.with_settings({key: "not-a-choice"})
        checked += 1
    for item in info.metadata:
        if getattr(item, "max_length", None) is not None:
            with pytest.raises(UserError, match=f"setting '{key}'"):
                base.with_settings({key: "x" * (item.max_length + 1)})
            checked += 1
    if info.annotation is bool:
        for value in (True, False):
            _accepts_or_names_other_settings(base, key, value)
        with pytest.raises(UserError, match=f"setting '{key}' = perhaps"):
            base.with_settings({key: "perhaps"})
        checked += 1
    if info.annotation in (int, float) and not checked:
        pytest.fail(f"{config_class.__name__}.{key} is a number without declared bounds")


def _accepts_or_names_other_settings(base: BaseConfig, key: str, value) -> None:
    """The value passes its own declaration: accepted, or refused only by a rule across
    settings whose message names another setting (the preset's value of which conflicts)."""
    try:
        assert getattr(base.with_settings({key: value}), key) == value
    except UserError as error:
        message = str(error)
        assert "input should be" not in message, message
        others = set(type(base).model_fields) - {key}
        assert any(f"'{other}'" in message for other in others), message


@pytest.mark.parametrize("name", list(registry.PIPELINES))
def test_every_setting_has_a_meaning_and_every_preset_validates(name):
    config_class = registry.config_module(name).CONFIG_CLASS
    for key, info in config_class.model_fields.items():
        assert info.description, f"{name}: setting {key!r} has no description"
    for preset in ("smoke", "default", "full"):
        assert isinstance(config_class.from_preset(preset), config_class)


@pytest.mark.parametrize("name", list(registry.PIPELINES))
def test_unknown_and_ill_typed_settings_are_refused(name):
    base = _base(registry.config_module(name).CONFIG_CLASS)
    with pytest.raises(UserError, match="unknown setting 'no_such_setting'"):
        base.with_settings({"no_such_setting": 1})
    with pytest.raises(UserError, match="setting 'units' = many"):
        base.with_overrides(["units=many"])
    with pytest.raises(UserError, match="setting 'learning_rate'"):
        base.with_overrides(["learning_rate=nan"])


def test_memory_estimate_refuses_a_run_that_cannot_fit():
    config_class = registry.config_module("sentiment").CONFIG_CLASS
    big = _base(config_class).with_settings({"units": 4096, "depth": 16, "batch_size": 4096})
    with pytest.raises(UserError, match="memory_limit_gb.*GiB"):
        big.check_memory()
    big.with_settings({"memory_limit_gb": 65536}).check_memory()
    _base(config_class).check_memory()
