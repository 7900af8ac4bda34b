"""The batcher on its own: padding, splitting outputs back, and the bounds of a batch."""

from __future__ import annotations

import threading

import numpy as np

from pipelines.serving.batching import Batcher, pad_and_stack
from pipelines.serving.codec import InputSpec
from pipelines.serving.errors import BadRequestError
from pipelines.serving.limits import InputLimits, Limits

AUDIO = {"audio": InputSpec("audio", "float32", (None, None))}


def test_items_are_padded_to_the_longest_in_the_batch():
    numbers = pad_and_stack([np.ones((1, 2), np.float32), np.full((2, 3), 2, np.float32)])
    np.testing.assert_array_equal(numbers, [[1, 1, 0], [2, 2, 2], [2, 2, 2]])
    texts = pad_and_stack([np.array([[b"a"]], object), np.array([[b"b", b"c"]], object)])
    assert texts.tolist() == [[b"a", b""], [b"b", b"c"]]


class Recorder:
    """A model that returns each item's sum and records the batches it was given; it waits
    for ``release`` first, so that the requests queue up behind the first batch."""

    def __init__(self):
        self.batches: list[tuple[int, ...]] = []
        self.release = threading.Event()

    def __call__(self, inputs):
        self.release.wait(30)
        audio = inputs["audio"]
        if (audio < 0).any():
            raise BadRequestError("negative audio")
        self.batches.append(audio.shape)
        return {"total": audio.sum(axis=1)}


def _submit_all(batcher: Batcher, model: Recorder, requests: list[np.ndarray]):
    futures = [batcher.submit({"audio": r}, len(r)) for r in requests]
    model.release.set()
    return [f.exception(30) or f.result() for f in futures]


def test_a_batch_never_exceeds_the_exports_max_items_and_outputs_are_split_back():
    model = Recorder()
    batcher = Batcher(model, AUDIO, Limits(max_items=3), max_batch_size=10, timeout_ms=200)
    requests = [np.full((1, 2 + i), i, np.float32) for i in range(7)]
    answers = _submit_all(batcher, model, requests)
    assert all(shape[0] <= 3 for shape in model.batches)
    assert sum(shape[0] for shape in model.batches) == 7
    assert any(shape[0] > 1 for shape in model.batches)
    for i, answer in enumerate(answers):
        assert answer["total"].tolist() == [i * (2 + i)]


def test_a_padded_batch_stays_within_the_request_bound():
    limits = Limits(max_items=10, inputs={"audio": InputLimits(max_request_elements=8)})
    model = Recorder()
    batcher = Batcher(model, AUDIO, limits, max_batch_size=10, timeout_ms=200)
    _submit_all(batcher, model, [np.ones((1, 4), np.float32) for _ in range(4)])
    assert all(rows * length <= 8 for rows, length in model.batches)


def test_one_bad_request_does_not_fail_the_others_in_its_batch():
    model = Recorder()
    batcher = Batcher(model, AUDIO, Limits(), max_batch_size=10, timeout_ms=200)
    requests = [np.ones((1, 2), np.float32), -np.ones((1, 2), np.float32), np.ones((1, 3))]
    good, bad, other = _submit_all(batcher, model, [r.astype(np.float32) for r in requests])
    assert good["total"].tolist() == [2.0] and other["total"].tolist() == [3.0]
    assert isinstance(bad, BadRequestError)


def test_a_lone_request_runs_at_once_when_no_other_is_in_the_server():
    model = Recorder()
    model.release.set()
    # A timeout far longer than the wait below: the answer can only come from not waiting.
    batcher = Batcher(
        model, AUDIO, Limits(), max_batch_size=10, timeout_ms=600_000, in_flight=lambda: 1
    )
    answer = batcher.submit({"audio": np.ones((1, 2), np.float32)}, 1).result(timeout=60)
    assert answer["total"].tolist() == [2.0]


def test_a_batch_waits_while_another_request_is_in_the_server():
    model = Recorder()
    model.release.set()
    batcher = Batcher(
        model, AUDIO, Limits(), max_batch_size=2, timeout_ms=600_000, in_flight=lambda: 2
    )
    first = batcher.submit({"audio": np.ones((1, 2), np.float32)}, 1)
    assert not first.done()  # waiting: the other request is still being read
    second = batcher.submit({"audio": np.ones((1, 3), np.float32)}, 1)
    assert first.result(timeout=60)["total"].tolist() == [2.0]
    assert second.result(timeout=60)["total"].tolist() == [3.0]
    assert model.batches == [(2, 3)]
