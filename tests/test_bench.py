"""The benchmark's arithmetic and its experimental kernels (never its timings)."""

import argparse

import numpy as np
import pytest
import tensorflow as tf

from bench import variants
from bench.__main__ import parse_args as parse_bench_args
from bench.__main__ import target, verdict
from bench.approaches import APPROACHES, parse_args
from bench.workloads import SHAPES, Shape, matmul_loop_workloads, parse_shape
from layers import LSTM, native


def _row(cell="lstm", mode="train", shape=SHAPES[0], ratio=1.0, ceiling=3.0):
    return {
        "cell": cell,
        "mode": mode,
        "shape": vars(shape),
        "ratio_ours_keras": ratio,
        "float32_ceiling_ratio": ceiling,
    }


def test_targets_follow_the_issue():
    assert target(_row(mode="train")) == 1.5
    assert target(_row(mode="train", shape=SHAPES[2])) == 1.0
    assert target(_row(mode="infer", shape=SHAPES[1])) == 2.0
    assert target(_row(cell="simple_rnn")) is None


def test_verdict_separates_missed_from_beyond_the_float32_ceiling_and_the_loop_bound():
    assert verdict(_row(mode="infer", ratio=2.1)) == "met"
    assert verdict(_row(mode="infer", ratio=1.2, ceiling=3.0)) == "missed"
    assert verdict(_row(mode="infer", ratio=1.2, ceiling=1.8)) == "beyond peak"
    assert verdict({**_row(mode="infer", ratio=1.2), "loop_bound_ratio": 1.9}) == (
        "beyond loop bound"
    )
    assert verdict({**_row(mode="infer", ratio=1.2), "loop_bound_ratio": 2.2}) == "missed"
    assert verdict(_row(cell="simple_rnn")) == "-"


def test_rows_name_the_kernels_ours_ran(monkeypatch):
    from bench.__main__ import ours_kernels

    assert ours_kernels("simple_rnn") == "xla"
    assert ours_kernels("lstm") == ("native" if native.enabled() else "xla")
    monkeypatch.setenv(native.NATIVE_ENV, "0")
    assert ours_kernels("gru") == "xla"
    monkeypatch.setenv("RNN_SUITE_FAST_PATH", "0")
    assert ours_kernels("gru") == "plain"


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_loop_bound_workloads_run_and_stay_finite(cell, bidirectional):
    runs = matmul_loop_workloads(cell, Shape(8, 5, 3, 4), bidirectional)
    for mode in ("train", "infer"):
        assert np.isfinite(runs[mode]().numpy()), mode


def test_the_loop_bound_is_timed_only_where_ours_runs_the_xla_kernels(monkeypatch):
    from bench.__main__ import BOUND, group_variants

    def bound_cells():
        variants = group_variants(Shape(8, 5, 3, 4), False, ("lstm", "simple_rnn"), False)
        return {key[1] for key in variants if key[0] == BOUND}

    if native.available():
        assert bound_cells() == set()  # the native kernels have no plain-TensorFlow twin
    monkeypatch.setenv(native.NATIVE_ENV, "0")
    assert bound_cells() == {"lstm"}  # SimpleRNN has no target


@pytest.mark.parametrize("jit_compile", [False, True])
def test_our_workloads_run_whole_steps_compiled_by_xla(jit_compile):
    """XLA cannot compile the native ops: a whole-step XLA workload traces ours
    inside `layers.serving_kernels()`, on the plain-TensorFlow loops."""
    from bench.workloads import keras_workloads, make_keras_layer

    shape = Shape(4, 5, 3, 8)
    runs = keras_workloads(make_keras_layer("ours", "lstm", 8, False), shape, jit_compile)
    for mode in ("train", "infer"):
        assert np.isfinite(runs[mode]().numpy()).all(), mode


def test_parse_shape():
    assert parse_shape("2") == SHAPES[1]
    assert parse_shape("8x10x4->16") == Shape(8, 10, 4, 16)
    with pytest.raises(argparse.ArgumentTypeError):
        parse_shape("8x10x4")


def test_approaches_cover_the_ways_the_issue_lists():
    names = {a.name for a in APPROACHES}
    assert {"autodiff", "unroll", "bfloat16", "xla-whole-step", "input-projection-first"} <= names
    assert "xla-kernels" in names
    assert any(a.threads for a in APPROACHES)
    assert any("TF_ENABLE_ONEDNN_OPTS" in a.env for a in APPROACHES)
    with pytest.raises(SystemExit):
        parse_args(["--only", "no-such-approach"])


@pytest.mark.parametrize("name", sorted(variants.VARIANT_LAYERS))
def test_variant_kernels_equal_the_fast_path(name):
    x = tf.constant(np.random.default_rng(0).normal(size=(4, 6, 3)).astype("float32"))
    reference = LSTM(5)
    reference(x)
    variant = variants.VARIANT_LAYERS[name](5)
    variant(x)
    variant.set_weights(reference.get_weights())
    np.testing.assert_allclose(variant(x), reference(x), atol=1e-6)
    if name in variants.WRONG_GRADIENTS:
        return

    def gradients(layer):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(layer(x, training=True)))
        return tape.gradient(loss, layer.trainable_variables)

    for ours, theirs in zip(gradients(variant), gradients(reference), strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_serving_rows_compare_the_exports_and_hold_them_against_the_target(tmp_path):
    from bench import serving

    shape = Shape(2, 4, 3, 5)
    for cell in serving.SERVING_CELLS:  # the two exports serve the same numbers
        runs = serving.serving_variants(cell, shape, tmp_path / cell)
        assert set(runs) == {("keras", cell), ("ours", cell)}
    rows = serving.measure_serving([shape], ["gru"], rounds=1, min_seconds=0.0)
    (row,) = rows
    assert row["cell"] == "gru" and row["shape"] == vars(shape)
    rate = row["seq_per_s"]
    assert row["ratio_ours_keras"] == pytest.approx(rate["ours"] / rate["keras"])
    assert row["verdict"] == (
        "met" if row["ratio_ours_keras"] >= serving.SERVING_TARGET else "missed"
    )
    assert "gru" in serving.serving_table(rows)


def test_serving_rows_are_optional_and_take_five_rounds():
    args = parse_bench_args(["--quick"])
    assert args.serving_rounds == 5 and len(args.serving_shapes) == 1 and args.shapes
    assert parse_bench_args(["--no-serving"]).serving_shapes == []
    only = parse_bench_args(["--serving-only", "--serving-shapes", "4x10x3x8"])
    assert only.shapes == [] and only.serving_shapes == [Shape(4, 10, 3, 8)]
    assert parse_bench_args(["--rounds", "2"]).serving_rounds == 2
