"""Inside `layers.serving_kernels()` our layers run plain TensorFlow loops
(`layers._serving`): their results equal Keras's built-in layers' on the same
weights (masks, go_backwards, initial and returned states, both GRU variants,
Bidirectional, stacks, gradients), and their graphs hold nothing marked for XLA
compilation (which TensorFlow Serving's model server refuses) and no op outside
TensorFlow's registry."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers import GRU, LSTM, Bidirectional, SimpleRNN, _serving, native, serving_kernels
from tests.layers.conftest import BATCH, FEATURES, STEPS

XLA_MARKS = ("_XlaMustCompile", "_XlaCompile", "_XlaScope")
OUR_OP_PREFIX = "RnnSuite"
SEQUENCES = tf.TensorSpec((None, None, FEATURES))
MASK = tf.TensorSpec((None, None), tf.bool)


def _copy_weights(ours, theirs):
    """Give both layers Keras's weights plus 0.1 (non-zero biases)."""
    theirs.set_weights([w + 0.1 for w in theirs.get_weights()])
    ours.set_weights(theirs.get_weights())


def _serving_runs(monkeypatch):
    """Record each call of the serving loops (each traced layer call is one)."""
    calls = []
    run = _serving.run

    def counted(name, *args, **kwargs):
        calls.append(name)
        return run(name, *args, **kwargs)

    monkeypatch.setattr(_serving, "run", counted)
    return calls


def _graph_marks(graph_def) -> set[str]:
    """XLA attributes on any node or function of `graph_def`, and any op type that
    is ours or missing from TensorFlow's registry (function calls aside)."""
    from tensorflow.python.framework import op_def_registry

    functions = {f.signature.name for f in graph_def.library.function}
    nodes = list(graph_def.node)
    found = set()
    for function in graph_def.library.function:
        found |= {key for key in function.attr if key in XLA_MARKS}
        nodes += function.node_def
    for node in nodes:
        found |= {key for key in node.attr if key in XLA_MARKS}
        if node.op not in functions and (
            node.op.startswith(OUR_OP_PREFIX) or op_def_registry.get(node.op) is None
        ):
            found.add(node.op)
    return found


def _traced(function, *specs):
    """`function` traced for `specs`; returns the concrete function."""
    return tf.function(function).get_concrete_function(*specs)


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_outputs_and_states_equal_keras(
    cell_case, go_backwards, masked, inputs, padding_mask, monkeypatch
):
    kwargs = {"return_sequences": True, "return_state": True, "go_backwards": go_backwards}
    ours, theirs = cell_case.our_layer(**kwargs), cell_case.keras_rnn(**kwargs)
    ours(inputs), theirs(inputs)
    _copy_weights(ours, theirs)
    rng = np.random.default_rng(1)
    count = 2 if ours.kernel_name == "lstm" else 1
    states = [tf.constant(rng.normal(size=(BATCH, ours.units)), tf.float32) for _ in range(count)]
    mask = tf.constant(padding_mask) if masked else None
    calls = _serving_runs(monkeypatch)
    with serving_kernels():
        served = _traced(
            lambda x, m: ours(x, mask=m if masked else None, initial_state=states), SEQUENCES, MASK
        )
    assert calls == [ours.kernel_name]
    assert _graph_marks(served.graph.as_graph_def()) == set()
    got = served(tf.constant(inputs), tf.constant(padding_mask))
    expected = theirs(inputs, mask=mask, initial_state=states)
    assert len(got) == len(expected) == 1 + count
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, atol=1e-5)


@pytest.mark.parametrize("zero_output_for_mask", [False, True])
def test_last_output_with_leading_and_inner_masked_steps_equals_keras(
    cell_case, zero_output_for_mask, inputs
):
    kwargs = {"zero_output_for_mask": zero_output_for_mask}
    ours, theirs = cell_case.our_layer(**kwargs), cell_case.keras_rnn(**kwargs)
    ours(inputs), theirs(inputs)
    _copy_weights(ours, theirs)
    mask = np.random.default_rng(3).random((BATCH, STEPS)) < 0.6
    mask[0] = False  # masked throughout: the output stays zero
    mask[1, :2] = False
    with serving_kernels():
        served = _traced(lambda x, m: ours(x, mask=m), SEQUENCES, MASK)
    np.testing.assert_allclose(
        served(tf.constant(inputs), tf.constant(mask)), theirs(inputs, mask=mask), atol=1e-5
    )


@pytest.mark.parametrize("kind", ["lstm", "gru", "gru_reset_before", "simple_rnn"])
def test_gradients_inside_serving_kernels_equal_keras(kind, inputs, padding_mask):
    """A model traced for training inside the block runs the loops too: their
    gradients (TensorFlow's own, through `tf.while_loop`) equal Keras's."""
    layer_class, keras_class, kwargs = {
        "lstm": (LSTM, keras.layers.LSTM, {}),
        "gru": (GRU, keras.layers.GRU, {}),
        "gru_reset_before": (GRU, keras.layers.GRU, {"reset_after": False}),
        "simple_rnn": (SimpleRNN, keras.layers.SimpleRNN, {}),
    }[kind]
    ours = layer_class(4, return_sequences=True, go_backwards=True, **kwargs)
    theirs = keras_class(4, return_sequences=True, go_backwards=True, **kwargs)
    ours(inputs), theirs(inputs)
    _copy_weights(ours, theirs)

    def gradients(layer, x, mask):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = layer(x, mask=mask, training=True)
            loss = tf.reduce_sum(out * tf.cos(out))
        return tape.gradient(loss, [x, *layer.trainable_weights])

    with serving_kernels():
        served = _traced(lambda x, m: gradients(ours, x, m), SEQUENCES, MASK)
    assert _graph_marks(served.graph.as_graph_def()) == set()
    got = served(tf.constant(inputs), tf.constant(padding_mask))
    expected = gradients(theirs, tf.constant(inputs), tf.constant(padding_mask))
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, atol=1e-5)


def _stack(layer_class, bidirectional, **kwargs):
    """Two recurrent layers (the first returning sequences) over masked inputs,
    each wrapped in `bidirectional` if given."""
    x = keras.Input((None, FEATURES))
    m = keras.Input((None,), dtype="bool")
    first = layer_class(5, return_sequences=True, **kwargs)
    second = layer_class(3, **kwargs)
    if bidirectional is not None:
        first, second = bidirectional(first), bidirectional(second)
    return keras.Model([x, m], second(first(x, mask=m), mask=m))


STACKS = {
    "lstm": (LSTM, keras.layers.LSTM, {}),
    "gru": (GRU, keras.layers.GRU, {}),
    "gru_reset_before": (GRU, keras.layers.GRU, {"reset_after": False}),
    "simple_rnn": (SimpleRNN, keras.layers.SimpleRNN, {"activation": "relu"}),
}


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("kind", sorted(STACKS))
def test_stacked_and_bidirectional_equal_keras(kind, bidirectional, monkeypatch):
    layer_class, keras_class, kwargs = STACKS[kind]
    ours = _stack(layer_class, Bidirectional if bidirectional else None, **kwargs)
    theirs = _stack(keras_class, keras.layers.Bidirectional if bidirectional else None, **kwargs)
    theirs.set_weights([w + 0.05 for w in theirs.get_weights()])
    ours.set_weights(theirs.get_weights())
    rng = np.random.default_rng(5)
    x = rng.normal(size=(9, 8, FEATURES)).astype("float32")
    mask = np.arange(8)[None, :] < rng.integers(1, 9, size=9)[:, None]
    calls = _serving_runs(monkeypatch)
    with serving_kernels():
        served = _traced(lambda x, m: ours([x, m], training=False), SEQUENCES, MASK)
    assert len(calls) == 4 if bidirectional else 2
    assert _graph_marks(served.graph.as_graph_def()) == set()
    np.testing.assert_allclose(
        served(tf.constant(x), tf.constant(mask)), theirs([x, mask]), atol=1e-5
    )
    one = served(tf.constant(x[:1, :3]), tf.constant(mask[:1, :3]))  # any batch and length
    np.testing.assert_allclose(one, theirs([x[:1, :3], mask[:1, :3]]), atol=1e-5)


def test_outside_the_block_the_graph_check_finds_what_serving_refuses():
    """The same layers traced outside the block run the XLA kernels (marked for
    compilation) or the native ops: the check catches both."""
    layer = LSTM(8)
    layer(np.zeros((1, STEPS, FEATURES), "float32"))
    with native.use_native(False):
        xla = _traced(lambda x: layer(x), SEQUENCES).graph.as_graph_def()
    assert "_XlaMustCompile" in _graph_marks(xla)
    if native.available():
        with native.use_native(True):
            ops = _graph_marks(_traced(lambda x: layer(x), SEQUENCES).graph.as_graph_def())
        assert any(op.startswith(OUR_OP_PREFIX) for op in ops)
    with serving_kernels(), native.use_native(True):
        assert native.serving() and not native.enabled()
        assert _graph_marks(_traced(lambda x: layer(x), SEQUENCES).graph.as_graph_def()) == set()
    assert not native.serving()


@pytest.mark.parametrize("kind", sorted(STACKS))
@pytest.mark.parametrize("return_sequences", [False, True])
def test_batches_cut_into_chains_equal_keras(kind, return_sequences, monkeypatch):
    """Batches of enough rows run as one loop per core on a slice of the batch
    (uneven slices here), smaller ones as one loop: both equal Keras's results."""
    monkeypatch.setattr(_serving, "chain_count", lambda batch, concurrent_loops=1: 3)
    monkeypatch.setattr(_serving, "MIN_CHAIN_ROWS", 2)
    layer_class, keras_class, kwargs = STACKS[kind]
    kwargs = {**kwargs, "return_sequences": return_sequences, "return_state": True}
    ours = layer_class(4, go_backwards=True, **kwargs)
    theirs = keras_class(4, go_backwards=True, **kwargs)
    rng = np.random.default_rng(6)
    x = rng.normal(size=(7, STEPS, FEATURES)).astype("float32")
    mask = np.arange(STEPS)[None, :] < rng.integers(1, STEPS + 1, size=7)[:, None]
    ours(x), theirs(x)
    _copy_weights(ours, theirs)
    count = 2 if ours.kernel_name == "lstm" else 1
    states = [tf.constant(rng.normal(size=(7, 4)), tf.float32) for _ in range(count)]

    def call(x, m, *initial):
        return ours(x, mask=m, initial_state=list(initial))

    specs = [SEQUENCES, MASK] + [tf.TensorSpec((None, 4))] * len(states)
    with serving_kernels():
        served = _traced(call, *specs)
    graph = served.graph.as_graph_def()
    assert _graph_marks(graph) == set()
    assert {"If", "StatelessIf"} & {n.op for n in graph.node}  # chains or one loop, by rows
    for rows in (7, 1):  # cut into three chains; one loop
        got = served(tf.constant(x[:rows]), tf.constant(mask[:rows]), *[s[:rows] for s in states])
        expected = theirs(x[:rows], mask=mask[:rows], initial_state=[s[:rows] for s in states])
        for g, e in zip(got, expected, strict=True):
            np.testing.assert_allclose(g, e, atol=1e-5)
