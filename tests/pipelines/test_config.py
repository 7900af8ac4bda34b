"""Settings: presets and ``--set KEY=VALUE`` parsing."""

from __future__ import annotations

import pytest

from pipelines.errors import UserError
from pipelines.sentiment.config import SentimentConfig


def test_presets_exist_and_differ():
    smoke, default = SentimentConfig.from_preset("smoke"), SentimentConfig.from_preset("default")
    assert smoke.epochs < default.epochs
    assert SentimentConfig.from_preset("full").depth == 2


def test_overrides_are_typed():
    config = SentimentConfig.from_preset("default").with_overrides(
        ["units=32", "bidirectional=false", "dropout=0.25", "cell=gru", "text-column=review"]
    )
    assert (config.units, config.bidirectional, config.dropout, config.cell) == (
        32,
        False,
        0.25,
        "gru",
    )
    assert config.text_column == "review"


def test_round_trip_through_dict():
    config = SentimentConfig.from_preset("smoke")
    assert SentimentConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("nope=1", "unknown setting 'nope'"),
        ("units", "expects KEY=VALUE"),
        ("bidirectional=perhaps", "setting 'bidirectional' = perhaps: input should be"),
        ("learning_rate=fast", "setting 'learning_rate' = fast: input should be"),
    ],
)
def test_bad_overrides(pair, message):
    with pytest.raises(UserError, match=message):
        SentimentConfig.from_preset("default").with_overrides([pair])


def test_clipnorm_is_a_setting_of_every_pipeline():
    assert SentimentConfig.from_preset("default").with_overrides(["clipnorm=0.5"]).clipnorm == 0.5
