"""Long sequences in chunks (lifsg.chunked): the same values bit for bit, the same gradients."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

import lifsg
from lifsg import chunked, events, neuron

if not events.available():
    pytest.skip("the event ops do not build here (no C++ compiler?)", allow_module_level=True)

EPS = {"float32": 2e-6, "float64": 1e-13}  # the same sums over time in another order


def _run(make_layer, x, dtype, implementation="auto", watch_input=True, function=True):
    """Output and gradients (input if watched, then every trainable weight) of a layer."""
    layer = make_layer(dtype, implementation)
    x = tf.constant(x.astype(dtype))
    layer.build(x.shape)
    weights = tf.constant(np.random.default_rng(5).normal(size=(*x.shape[:-1], 8)), dtype)

    def step():
        with tf.GradientTape() as tape:
            if watch_input:
                tape.watch(x)
            out = layer(x)
            loss = tf.reduce_sum(out * weights[..., : out.shape[-1]])
        sources = ([x] if watch_input else []) + layer.trainable_weights
        return out, tape.gradient(loss, sources)

    out, grads = tf.function(step)() if function else step()
    return out.numpy(), [g.numpy() for g in grads]


def _compare(make, x, dtype, chunk, **kw):
    whole_out, whole_grads = _run(lambda d, i: make(d, None, i), x, dtype, **kw)
    out, grads = _run(lambda d, i: make(d, chunk, i), x, dtype, **kw)
    np.testing.assert_array_equal(out, whole_out)  # bit for bit
    assert len(grads) == len(whole_grads)
    for a, b in zip(grads, whole_grads):
        scale = max(np.abs(b).max(), 1.0)
        np.testing.assert_allclose(a, b, rtol=EPS[dtype], atol=EPS[dtype] * scale)
    return out


def _dense_lif(reset, surrogate):
    return lambda dtype, chunk, implementation: lifsg.DenseLIF(
        8,
        reset=reset,
        surrogate=surrogate,
        trainable_threshold=True,
        w_leak=[0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.9, 1.0],
        kernel_initializer=keras.initializers.RandomNormal(0.0, 0.7, seed=1),
        bias_initializer=keras.initializers.Constant(0.05),
        time_chunk=chunk,
        dtype=dtype,
        implementation=implementation,
    )


FAST = {("delayed", "flat", "float32", "fused")}  # each case takes seconds
GRID = [
    pytest.param(*case, marks=() if case in FAST else pytest.mark.slow)
    for case in itertools.product(
        neuron.RESETS, ["flat", "esser"], ["float32", "float64"], ["fused", "loop"]
    )
]


@pytest.mark.parametrize("reset, surrogate, dtype, implementation", GRID)
def test_dense_lif_in_chunks_equals_whole_sequence(reset, surrogate, dtype, implementation, rng):
    x = rng.uniform(-0.3, 0.9, (3, 23, 6))  # 23 steps: chunks of 5, the last one short
    out = _compare(_dense_lif(reset, surrogate), x, dtype, 5, implementation=implementation)
    assert 0.02 < out.mean() < 0.5


@pytest.mark.slow  # seconds per chunk size; the quick run has the DenseLIF case above
@pytest.mark.parametrize("chunk", [1, 4, 7, 19])
def test_lif_rank4_potentials_and_chunk_sizes(chunk, rng):
    x = rng.uniform(-0.2, 0.7, (2, 20, 3, 4))  # a leak per channel of the last axis

    def make(dtype, time_chunk, implementation):
        return lifsg.LIF(
            w_leak=[0.0, 0.1, 0.4, 1.0],
            time_chunk=time_chunk,
            dtype=dtype,
            implementation=implementation,
        )

    _compare(make, x, "float64", chunk)

    def potential(dtype, time_chunk, implementation):
        return lifsg.LIF(w_leak=0.2, return_potential=True, time_chunk=time_chunk, dtype=dtype)

    _compare(potential, x, "float32", chunk)


@pytest.mark.slow  # two more chunked runs with gradients
def test_eager_and_unwatched_input(rng):
    """Eager calls work; without a tape on the input only the weights get gradients."""
    x = rng.uniform(-0.3, 0.9, (2, 17, 6))
    make = _dense_lif("delayed", "flat")
    _compare(make, x, "float32", 4, function=False)
    _compare(make, x, "float32", 4, watch_input=False)


def test_whole_sequence_where_chunks_do_not_apply():
    assert not chunked.applies(tf.zeros((2, 50, 3)), 50)  # no more steps than one chunk
    assert not chunked.applies(keras.KerasTensor((2, None, 3)), 10)  # unknown length
    assert not chunked.applies(tf.zeros((2, 51, 3), tf.float16), 50)  # no float16 bit ops
    assert chunked.applies(tf.zeros((2, 51, 3)), 50)
    assert not chunked.applies(tf.zeros((2, 51, 3)), None)


def test_time_chunk_validation_and_config():
    """(Config and .keras round trips of a chunked layer: test_layers.py's check_layer.)"""
    for bad in (0, -3, 2.5, True, "10"):
        with pytest.raises(ValueError, match="time_chunk must be None or a positive integer"):
            lifsg.LIF(time_chunk=bad)
    assert lifsg.LIF(time_chunk=np.int64(8)).time_chunk == 8
    config = lifsg.DenseLIF(4).get_config()
    assert config.pop("time_chunk") is None
    assert lifsg.DenseLIF.from_config(config).time_chunk is None  # stored models without it


@pytest.mark.slow  # compiles two training steps
def test_fit_with_chunks_matches_whole_sequence(rng):
    """One training step of a model with a chunked hidden layer after another trainable layer
    (its input gradient is needed) gives the weights of the whole-sequence model."""
    x = rng.uniform(0, 1, (8, 21, 5)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 8)]
    weights = []
    for chunk in (None, 6):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((21, 5))
        h = lifsg.DenseLIF(16, w_leak=0.1, time_chunk=chunk, name="a")(inputs)
        h = lifsg.DenseLIF(16, w_leak=0.1, time_chunk=chunk, name="b")(h)
        model = keras.Model(inputs, lifsg.LeakyReadout(3, activation="softmax")(h))
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss="categorical_crossentropy")
        model.train_on_batch(x, y)
        weights.append([w.numpy() for w in model.weights])
    for a, b in zip(*weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_spike_bit_ops_round_trip(rng):
    lib = events.build()
    v = rng.normal(1.0, 0.5, (3, 4, 2 * 13)).astype("float32")  # 26 entries: not whole bytes
    threshold = np.array([0.8, 1.3], "float32")  # per channel of the last axis
    bits = lib.lifsg_spike_bits(tf.constant(v), tf.constant(threshold)).numpy()
    assert bits.shape == (3, 4, 4) and bits.dtype == np.uint8
    spikes = (v - np.tile(threshold, 13) >= 0).astype("float32")
    chunks = np.stack([bits, bits[:, ::-1]])  # two chunks of 4 steps
    y = lib.lifsg_bits_to_spikes(tf.constant(chunks), steps=7, features=26, T=tf.float32)
    want = np.concatenate([spikes, spikes[:, ::-1]], axis=1)[:, :7]
    np.testing.assert_array_equal(y.numpy(), want)
    with pytest.raises(tf.errors.InvalidArgumentError, match="do not hold"):
        lib.lifsg_bits_to_spikes(tf.constant(chunks), steps=9, features=26, T=tf.float32)
