"""The typed data record: a JSON round trip, and refusals of other schemas and versions."""

from __future__ import annotations

import pytest

from pipelines.errors import UserError
from pipelines.sentiment.data import SentimentInfo

RECORD = SentimentInfo(name="toy", source="test", class_names=["neg", "pos"], vocabulary=["a"])


def test_round_trip():
    payload = RECORD.to_json()
    assert payload["schema"] == "SentimentInfo" and payload["version"] == SentimentInfo.VERSION
    assert SentimentInfo.from_json(payload) == RECORD


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": SentimentInfo.VERSION + 1}, "newer than this rnn-suite reads"),
        ({"version": 0}, "older than this rnn-suite reads"),
        ({"schema": "MusicInfo"}, "a MusicInfo record, not SentimentInfo"),
        ({"fields": {"name": "toy", "source": "test"}}, "field 'class_names'"),
    ],
)
def test_other_schemas_versions_and_fields_are_refused(change, message):
    with pytest.raises(UserError, match=message):
        SentimentInfo.from_json(RECORD.to_json() | change, "run/data_info.json")


def test_a_dict_from_before_the_records_is_refused():
    with pytest.raises(UserError, match="older version of rnn-suite"):
        SentimentInfo.from_json({"name": "toy", "class_names": []})
