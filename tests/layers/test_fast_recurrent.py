"""The fast path of our layers (`layers.recurrent`): equal to Keras's built-in
layers across batch chains, masks, states and modes, through the native and
the XLA kernels; chosen by default; and an exact fallback to Keras's loop where
it does not apply."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers import (
    GRU,
    LSTM,
    Bidirectional,
    FastRNN,
    SimpleRNN,
    _kernels,
    native,
    recurrent,
    recurrent_layers,
    recurrent_stack,
)

CASES = {
    "lstm": (LSTM, keras.layers.LSTM, {}),  # the native kernels where built
    "lstm_xla": (LSTM, keras.layers.LSTM, {}),  # the XLA kernels
    "gru": (GRU, keras.layers.GRU, {}),  # the native kernels where built
    "gru_xla": (GRU, keras.layers.GRU, {}),  # the XLA kernels
    "gru_reset_before": (GRU, keras.layers.GRU, {"reset_after": False}),
    "simple_rnn": (SimpleRNN, keras.layers.SimpleRNN, {}),
}
FEATURES, STEPS = 4, 7


@pytest.fixture(autouse=True)
def _kernels_of_the_case(request):
    """Cases `*_xla` run the XLA kernels; every other case the default ones."""
    callspec = getattr(request.node, "callspec", None)
    enabled = not (callspec and str(callspec.params.get("case", "")).endswith("_xla"))
    with native.use_native(enabled):
        yield


def _pair(case, batch=32, units=5, **kwargs):
    """Our layer and Keras's, sharing random weights, and inputs for them."""
    ours_class, keras_class, extra = CASES[case]
    ours = ours_class(units, **extra, **kwargs)
    theirs = keras_class(units, **extra, **kwargs)
    inputs = np.random.default_rng(1).normal(size=(batch, STEPS, FEATURES)).astype("float32")
    ours(inputs[:2])
    theirs(inputs[:2])
    weights = [w + 0.1 for w in theirs.get_weights()]  # non-zero biases
    theirs.set_weights(weights)
    ours.set_weights(weights)
    return ours, theirs, inputs


def _results(layer, inputs, training, mask=None, initial_state=None):
    """Every output of `layer` and the gradients of a loss on them w.r.t. the
    inputs, the initial states and every weight."""
    x = tf.constant(inputs)
    states = [tf.constant(s) for s in initial_state] if initial_state else []
    with tf.GradientTape() as tape:
        tape.watch([x, *states])
        kwargs = {"initial_state": states} if states else {}
        out = tf.nest.flatten(layer(x, mask=mask, training=training, **kwargs))
        loss = tf.add_n([tf.reduce_sum(o * tf.cos(o)) for o in out])
    grads = tape.gradient(loss, [x, *states, *layer.trainable_weights])
    return [o.numpy() for o in out] + [g.numpy() for g in grads]


def _assert_same(ours, theirs, tolerance=2e-6):
    assert len(ours) == len(theirs)
    for got, expected in zip(ours, theirs, strict=True):
        atol = tolerance * max(1.0, float(np.abs(expected).max()))
        np.testing.assert_allclose(got, expected, atol=atol, rtol=0)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("training", [True, False])
def test_forward_and_gradients_equal_keras(case, go_backwards, masked, training):
    ours, theirs, inputs = _pair(case, return_sequences=True, go_backwards=go_backwards)
    assert ours.fallback_reason(training) is None, "the fast path must run"
    mask = None
    if masked:
        lengths = np.random.default_rng(2).integers(1, 8, size=32)
        mask = np.arange(STEPS)[None, :] < lengths[:, None]
    _assert_same(_results(ours, inputs, training, mask), _results(theirs, inputs, False, mask))


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("zero_output_for_mask", [False, True])
def test_masks_with_holes_initial_states_and_returned_states(
    case, return_sequences, zero_output_for_mask
):
    kwargs = {"return_state": True, "zero_output_for_mask": zero_output_for_mask}
    ours, theirs, inputs = _pair(case, batch=5, return_sequences=return_sequences, **kwargs)
    mask = np.random.default_rng(3).random((5, STEPS)) < 0.6
    mask[0] = False  # a sequence masked throughout
    mask[1, :3] = False  # leading masked steps: outputs stay zero, states stay initial
    rng = np.random.default_rng(4)
    initial_state = [rng.normal(size=(5, 5)).astype("float32") for _ in ours.state_size]
    for training in (True, False):
        _assert_same(
            _results(ours, inputs, training, mask, initial_state),
            _results(theirs, inputs, False, mask, initial_state),
        )


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("batch", [1, 2, 5])
def test_uneven_and_empty_chains(case, batch, monkeypatch):
    monkeypatch.setattr(_kernels, "chain_count", lambda batch_size, concurrent_loops=1: 3)
    ours, theirs, inputs = _pair(case, batch=batch, return_sequences=True)
    _assert_same(_results(ours, inputs, True), _results(theirs, inputs, False))


def test_chain_count_follows_cores_and_batch():
    cores = _kernels.chain_count(None)
    assert 1 <= cores <= _kernels.MAX_CHAINS
    assert _kernels.chain_count(1) == 1
    assert _kernels.chain_count(10_000) == cores
    assert _kernels.chain_count(10_000, concurrent_loops=2) == max(1, cores // 2)
    assert _kernels.chain_count(10_000, concurrent_loops=64) == 1


def test_our_bidirectional_shares_the_cores_and_round_trips(tmp_path):
    wrapped = Bidirectional(LSTM(4, return_sequences=True))
    plain = Bidirectional(keras.layers.GRU(3))
    assert wrapped.forward_layer.concurrent_loops == wrapped.backward_layer.concurrent_loops == 2
    assert not hasattr(plain.forward_layer, "concurrent_loops")
    x = keras.Input((STEPS, FEATURES))
    model = keras.Model(x, wrapped(x))
    path = tmp_path / "bidirectional.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    inputs = np.random.default_rng(0).normal(size=(3, STEPS, FEATURES)).astype("float32")
    np.testing.assert_allclose(loaded(inputs), model(inputs), atol=1e-6)
    assert type(loaded.layers[-1]) is Bidirectional
    assert loaded.layers[-1].backward_layer.concurrent_loops == 2


@pytest.mark.parametrize("case", sorted(CASES))
def test_unknown_batch_size_in_a_graph(case):
    ours, theirs, inputs = _pair(case, batch=9, return_sequences=True)

    @tf.function(input_signature=[tf.TensorSpec((None, None, FEATURES))])
    def gradients(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(ours(x, training=True)))
        return tape.gradient(loss, ours.trainable_weights)

    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(theirs(inputs)))
    _assert_same(gradients(inputs), tape.gradient(loss, theirs.trainable_weights))


FALLBACKS = [
    pytest.param({"unroll": True}, True, "unroll", id="unroll"),
    pytest.param({"recurrent_dropout": 0.5, "seed": 2}, True, "recurrent dropout", id="rec_drop"),
    pytest.param({"dtype": "mixed_float16"}, False, "float16", id="float16"),
]


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize(("kwargs", "training", "reason"), FALLBACKS)
def test_fallback_equals_keras_rnn_exactly(case, kwargs, training, reason):
    ours, _, inputs = _pair(case, batch=3, return_sequences=True, **kwargs)
    assert reason in ours.fallback_reason(training)
    cell = type(ours.cell).from_config(ours.cell.get_config())
    generic = keras.layers.RNN(cell, return_sequences=True, unroll=ours.unroll)
    generic(inputs[:2])
    generic.set_weights(ours.get_weights())
    np.testing.assert_array_equal(
        ours(inputs, training=training), generic(inputs, training=training)
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_wide_layers_train_on_the_fast_path_with_keras_numbers(case):
    ours, theirs, inputs = _pair(case, batch=4, units=512, return_sequences=True)
    assert ours.fallback_reason(training=True) is None
    # Sums over 512-unit rows round differently in the joint matmul: a wider tolerance. With these
    # weights the gradients inside reach 100 times the largest bias gradient, so float32 rounding
    # shows there most: over 16 weight seeds the native GRU's results (its bias gradients the
    # most) differed from Keras's by up to 1.25e-5 of their largest (1.21e-5 since the native
    # vector activations), the LSTM's by 0.24e-5. Against float64: test_native_kernels.py.
    _assert_same(_results(ours, inputs, True), _results(theirs, inputs, False), tolerance=2e-5)


def test_recurrent_dropout_falls_back_only_in_training():
    layer = LSTM(3, recurrent_dropout=0.3)
    assert layer.fallback_reason(training=False) is None
    assert layer.fallback_reason(training=True) is not None


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
def test_recurrent_layers_use_the_fast_path(cell):
    stack = recurrent_layers(cell=cell, units=4, depth=2, bidirectional=True, dropout=0.2)
    rnns = [rnn for layer in stack for rnn in (layer.forward_layer, layer.backward_layer)]
    assert all(isinstance(rnn, FastRNN) for rnn in rnns)
    assert all(rnn.fallback_reason(training=True) is None for rnn in rnns)


def test_fit_a_masked_bidirectional_stack():
    inputs = keras.Input((None, 3))
    x = keras.layers.Masking(0.0)(inputs)
    x = recurrent_stack(x, cell="lstm", units=4, depth=2, bidirectional=True, dropout=0.1, seed=1)
    model = keras.Model(inputs, keras.layers.Dense(1)(x))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    rng = np.random.default_rng(0)
    x_train = rng.normal(size=(10, 6, 3)).astype("float32")
    x_train[:, 4:] = 0.0  # padding
    y_train = x_train[:, :4].sum(axis=(1, 2))[:, None]
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x_train, y_train, batch_size=4, epochs=3, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert all(not np.allclose(b, a) for b, a in zip(before, model.get_weights(), strict=True))


def _count_fast_runs(monkeypatch):
    """Count the calls of the fast kernels (each traced layer call is one)."""
    calls = []
    run_chains = _kernels.run_chains

    def counted(*args, **kwargs):
        calls.append(args[0])
        return run_chains(*args, **kwargs)

    monkeypatch.setattr(_kernels, "run_chains", counted)
    return calls


@pytest.mark.parametrize("wrapper", ["keras", "ours"])
@pytest.mark.parametrize("case", ["lstm", "gru"])
@pytest.mark.parametrize("training", [True, False])
def test_stacked_bidirectional_with_mask_equals_keras(case, training, wrapper, monkeypatch):
    """Bidirectional(ours) twice, masked, in `keras.layers.Bidirectional` or
    ours: outputs and every gradient equal Keras's built-in layers in
    `keras.layers.Bidirectional`, and all four layers run fast."""
    ours_class, keras_class, _ = CASES[case]
    ours_wrapper = Bidirectional if wrapper == "ours" else keras.layers.Bidirectional
    rng = np.random.default_rng(5)
    inputs = rng.normal(size=(24, STEPS, FEATURES)).astype("float32")
    mask = np.arange(STEPS)[None, :] < rng.integers(1, STEPS + 1, size=24)[:, None]

    def model(layer_class, bidirectional=keras.layers.Bidirectional):
        x = keras.Input((STEPS, FEATURES))
        m = keras.Input((STEPS,), dtype="bool")
        y = bidirectional(layer_class(5, return_sequences=True))(x, mask=m)
        y = bidirectional(layer_class(3))(y, mask=m)
        return keras.Model([x, m], y)

    theirs = model(keras_class)
    ours = model(ours_class, ours_wrapper)
    ours.set_weights([w + 0.05 for w in theirs.get_weights()])
    theirs.set_weights(ours.get_weights())
    calls = _count_fast_runs(monkeypatch)

    def results(net, training):
        x = tf.constant(inputs)
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = net([x, tf.constant(mask)], training=training)
            loss = tf.reduce_sum(out * tf.cos(out))
        grads = tape.gradient(loss, [x, *net.trainable_weights])
        return [out.numpy()] + [g.numpy() for g in grads]

    _assert_same(results(ours, training), results(theirs, False))
    assert len(calls) == 4


@pytest.mark.parametrize("case", sorted(CASES))
def test_input_dropout_in_training_stays_on_the_fast_path(case, monkeypatch):
    ours, _, inputs = _pair(case, batch=4, dropout=0.4, seed=3)
    assert ours.fallback_reason(training=True) is None
    calls = _count_fast_runs(monkeypatch)
    ours(inputs, training=True)
    assert len(calls) == 1


def _plain_equivalent(layer, inputs, training):
    cell = type(layer.cell).from_config(layer.cell.get_config())
    generic = keras.layers.RNN(cell, return_sequences=layer.return_sequences)
    generic(inputs[:2])
    generic.set_weights(layer.get_weights())
    return generic(inputs, training=training)


@pytest.mark.parametrize("case", sorted(CASES))
def test_switch_off_by_environment_runs_the_plain_cell(case, monkeypatch):
    ours, _, inputs = _pair(case, batch=3, return_sequences=True)
    monkeypatch.setenv(recurrent.FAST_PATH_ENV, "0")
    assert not recurrent.fast_path_enabled()
    assert recurrent.FAST_PATH_ENV in ours.fallback_reason(training=True)
    calls = _count_fast_runs(monkeypatch)
    np.testing.assert_array_equal(
        ours(inputs, training=True), _plain_equivalent(ours, inputs, True)
    )
    assert calls == []
    monkeypatch.setenv(recurrent.FAST_PATH_ENV, "1")
    assert ours.fallback_reason(training=True) is None
    ours(inputs)
    assert len(calls) == 1


def test_switch_by_context_manager_nests_and_overrides_the_environment(monkeypatch):
    layer, _, inputs = _pair("lstm", batch=3, return_sequences=True)
    monkeypatch.setenv(recurrent.FAST_PATH_ENV, "off")
    with recurrent.use_fast_path(True):
        assert layer.fallback_reason() is None
        with recurrent.use_fast_path(False):
            assert layer.fallback_reason() is not None
            calls = _count_fast_runs(monkeypatch)
            np.testing.assert_array_equal(layer(inputs), _plain_equivalent(layer, inputs, False))
            assert calls == []
        assert recurrent.fast_path_enabled()
    assert not recurrent.fast_path_enabled()
    monkeypatch.delenv(recurrent.FAST_PATH_ENV)
    assert recurrent.fast_path_enabled()
