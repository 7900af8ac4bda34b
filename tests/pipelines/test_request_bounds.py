"""Every export bounds a serving request as a whole, inside its graph, as well as per item,
and records the bounds in ``assets.extra/limits.json``.

The exports are written from untrained models (the ``untrained_exports`` fixture of
tests/conftest.py) and loaded in-process.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.serving.exports import record


@pytest.mark.parametrize("name", ["forecasting", "music"])
def test_where_items_cannot_add_up_past_the_request_bound_their_count_bounds_it(name):
    """These exports' item count times the item bound is within ``max_request_elements``:
    the in-graph item-count check bounds the request as a whole."""
    from pipelines import registry

    pipeline = registry.load_pipeline(name)
    limits = pipeline.serving_limits(record(name)[2])
    for entry in limits["inputs"].values():
        assert limits["max_items"] * entry["max_item_elements"] <= entry["max_request_elements"]


def test_video_refuses_a_request_over_its_whole_request_bound(untrained_exports):
    import tensorflow as tf

    pipeline, info, path = untrained_exports("video-activity")
    bound = pipeline.serving_limits(info)["inputs"]["frames"]["max_request_elements"]
    clips = np.zeros((2, 2, 4096, 4096, 3), np.uint8)  # each clip within its own bound
    assert clips[0].size <= bound < clips.size
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=f"frames holds more than {bound} values over the"
    ):
        serve(frames=tf.constant(clips))


def test_music_generate_bounds_the_steps_of_a_whole_request(untrained_exports):
    import tensorflow as tf

    from pipelines.export import check_limits
    from pipelines.music.config import MAX_GENERATE_STEPS
    from pipelines.music.pipeline import MAX_SERVING_GENERATED_STEPS

    _, _, path = untrained_exports("music")
    limits = json.loads((path / "assets.extra" / "limits.json").read_text())
    assert limits["max_request_total_generated_steps"] == MAX_SERVING_GENERATED_STEPS
    check_limits(limits)
    generate = tf.saved_model.load(str(path)).signatures["generate"]
    primers = MAX_SERVING_GENERATED_STEPS // MAX_GENERATE_STEPS + 1  # each within its bounds
    request = {
        "primer": tf.constant(np.full((primers, 4), 40, np.int32)),
        "steps": tf.constant(MAX_GENERATE_STEPS, tf.int32),
        "temperature": tf.constant(1.0),
        "top_k": tf.constant(0, tf.int32),
        "seed": tf.constant([1, 2], tf.int32),
    }
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match="primers x steps is more than .* over the whole request "
        r"\(max_request_total_generated_steps",
    ):
        generate(**request)
    request["steps"] = tf.constant(2, tf.int32)
    assert generate(**request)["tokens"].shape == (primers, 2 * 4)


def test_check_limits_takes_positive_whole_request_totals_only():
    from pipelines.export import check_limits, number_input

    limits = {"max_items": 2, "inputs": {"x": number_input("int32", 4, 8)}}
    check_limits({**limits, "max_request_total_steps": 16})
    with pytest.raises(ValueError, match="max_request_total_steps must be a positive integer"):
        check_limits({**limits, "max_request_total_steps": 0})
    with pytest.raises(ValueError, match="limits need max_items and inputs"):
        check_limits({**limits, "max_total_steps": 16})


def test_limits_files_keep_their_keys(untrained_exports):
    for name in ("sentiment", "speech-to-text"):
        pipeline, info, path = untrained_exports(name)
        limits = json.loads((Path(path) / "assets.extra" / "limits.json").read_text())
        assert limits == pipeline.serving_limits(info)
        assert set(limits) == {"max_items", "inputs"}
