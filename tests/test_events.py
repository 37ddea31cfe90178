"""The event-driven projection (lifsg.events) against the dense matmul: values and gradients."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

import lifsg
from lifsg import events

if not events.available():
    pytest.skip("the event ops do not build here (no C++ compiler?)", allow_module_level=True)

EPS = {"float32": 1e-5, "float64": 1e-12}  # the same sums in another order


def _close(a, b, dtype):
    a, b = np.asarray(a), np.asarray(b)
    scale = max(np.abs(b).max(), 1.0)
    np.testing.assert_allclose(a, b, rtol=EPS[dtype], atol=EPS[dtype] * scale)


def _sparse(rng, shape, density, dtype, binary=True):
    x = (rng.random(shape) < density).astype(dtype)
    return x if binary else x * rng.normal(size=shape).astype(dtype)


def _project_with_grads(x, kernel, projection, function):
    x, kernel = tf.constant(x), tf.Variable(kernel)
    upstream = tf.constant(np.random.default_rng(7).normal(size=(*x.shape[:-1], kernel.shape[1])))

    def run():
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = events.project(x, tf.convert_to_tensor(kernel), projection)
            loss = tf.reduce_sum(out * tf.cast(upstream, out.dtype))
        return (out, *tape.gradient(loss, [x, kernel]))

    return [t.numpy() for t in (tf.function(run)() if function else run())]


FAST = {("events", "float32", True, False)}  # each case takes seconds
GRID = [
    pytest.param(*case, marks=() if case in FAST else pytest.mark.slow)
    for case in itertools.product(["events", "auto"], EPS, [True, False], [False, True])
]


@pytest.mark.parametrize("projection, dtype, binary, function", GRID)
def test_project_equals_matmul(projection, dtype, binary, function, rng):
    x = _sparse(rng, (3, 20, 2, 50), 0.05, dtype, binary)  # rank 4, F not a multiple of 16
    kernel = rng.normal(size=(50, 40)).astype(dtype)
    got = _project_with_grads(x, kernel, projection, function)
    want = _project_with_grads(x, kernel, "dense", function)
    for a, b in zip(got, want, strict=True):
        assert a.dtype == np.dtype(dtype)
        _close(a, b, dtype)


def test_auto_takes_the_matmul_for_dense_input_and_narrow_layers(rng):
    lib = events.build()
    dense = tf.constant(rng.random((64, 40)), tf.float32)
    _, _, _, ok = lib.lifsg_events_from_dense(dense, max_density=events.MAX_DENSITY)
    assert not bool(ok)
    sparse = tf.constant(_sparse(rng, (64, 40), 0.05, "float32"))
    splits, cols, vals, ok = lib.lifsg_events_from_dense(sparse, max_density=events.MAX_DENSITY)
    assert bool(ok)
    rows, found = np.nonzero(sparse.numpy())
    np.testing.assert_array_equal(cols.numpy(), found)
    np.testing.assert_array_equal(np.diff(splits.numpy()), np.bincount(rows, minlength=64))
    # a density just above the limit, found only by the exact count: still correct values
    x = _sparse(rng, (40, 100), 0.15, "float32")
    kernel = rng.normal(size=(100, 64)).astype("float32")
    _close(events.project(tf.constant(x), tf.constant(kernel)), x @ kernel, "float32")
    narrow = events.project(tf.constant(x), tf.constant(kernel[:, :5]))
    _close(narrow, x @ kernel[:, :5], "float32")


def test_nan_and_inf_inputs_propagate(rng):
    x = _sparse(rng, (2, 5, 20), 0.1, "float32")
    x[0, 1, 3], x[1, 2, 7] = np.nan, np.inf
    kernel = np.abs(rng.normal(size=(20, 32))).astype("float32") + 0.1
    out = events.project(tf.constant(x), tf.constant(kernel), "events").numpy()
    want = x @ kernel
    np.testing.assert_array_equal(np.isnan(out), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(out), np.isinf(want))
    assert np.isnan(out[0, 1]).all() and np.isinf(out[1, 2]).all()


def test_zero_rows_and_empty_batch(rng):
    kernel = tf.constant(rng.normal(size=(16, 33)), tf.float32)
    zeros = tf.zeros((2, 4, 16))
    np.testing.assert_array_equal(events.project(zeros, kernel, "events").numpy(), 0.0)
    empty = events.project(tf.zeros((0, 4, 16)), kernel, "events")
    assert tuple(empty.shape) == (0, 4, 33)


def test_ops_reject_bad_events():
    lib = events.build()
    w = tf.ones((4, 3))
    vals = tf.ones((2,))
    with pytest.raises(tf.errors.InvalidArgumentError, match="outside"):
        lib.lifsg_events_matmul(tf.constant([0, 2], tf.int64), tf.constant([0, 9]), vals, w)
    with pytest.raises(tf.errors.InvalidArgumentError, match="number of events"):
        lib.lifsg_events_matmul(tf.constant([0, 1], tf.int64), tf.constant([0, 1]), vals, w)
    with pytest.raises(tf.errors.InvalidArgumentError, match="one row per event row"):
        lib.lifsg_events_kernel_grad(
            tf.constant([0, 2], tf.int64), tf.constant([0, 1]), vals, tf.ones((3, 3)), features=4
        )


def test_bad_projection_names():
    with pytest.raises(ValueError, match="unknown projection 'sparse'"):
        lifsg.DenseLIF(4, projection="sparse")
    with pytest.raises(TypeError, match="LIF takes no projection"):
        lifsg.LIF(projection="events")


# ---------------------------------------------------------------------- the layers


def _layer_run(make_layer, spikes_in, dtype, implementation):
    """Output and gradients (input, every weight) of a layer fed by the spikes of a LIF layer."""
    layer = make_layer(dtype, implementation)
    upstream = lifsg.LIF(w_leak=0.1, threshold=0.8, dtype=dtype, implementation=implementation)
    currents = tf.constant(spikes_in.astype(dtype))
    with tf.GradientTape() as tape:
        tape.watch(currents)
        spikes = upstream(currents)
        out = layer(spikes)
        weights = np.random.default_rng(3).normal(size=out.shape).astype(dtype)
        loss = tf.reduce_sum(out * weights)
    grads = tape.gradient(loss, [currents, *layer.trainable_weights])
    return spikes.numpy().mean(), out.numpy(), [g.numpy() for g in grads]


FAST_LAYER = {("float32", "fused")}
LAYERS = {
    "dense_lif": lambda dtype, projection, implementation: lifsg.DenseLIF(
        48,
        surrogate="esser",
        w_leak=0.05,
        trainable_threshold=True,
        projection=projection,
        kernel_initializer=keras.initializers.RandomNormal(0.0, 0.5, seed=1),
        dtype=dtype,
        implementation=implementation,
    ),
    "readout": lambda dtype, projection, implementation: lifsg.LeakyReadout(
        40,
        reduce=None,
        projection=projection,
        w_leak=0.2,
        kernel_initializer=keras.initializers.RandomNormal(0.0, 0.5, seed=2),
        dtype=dtype,
        implementation=implementation,
    ),
}


@pytest.mark.parametrize(
    "name, dtype, implementation",
    [
        pytest.param(*case, marks=() if case[1:] in FAST_LAYER else pytest.mark.slow)
        for case in itertools.product(sorted(LAYERS), EPS, ["fused", "loop"])
    ],
)
def test_layer_events_equal_dense(name, dtype, implementation, rng):
    """Fed by LIF spikes (about 5 % density): the event projection gives the dense layer's
    spikes and every gradient, the upstream layer's input gradient included."""
    currents = rng.uniform(-0.5, 0.5, (3, 40, 64))
    outs = {}
    for projection in ("dense", "events", "auto"):
        make = LAYERS[name]
        outs[projection] = _layer_run(
            lambda d, i, make=make, p=projection: make(d, p, i), currents, dtype, implementation
        )
    density = outs["dense"][0]
    assert 0.01 < density < events.MAX_DENSITY
    for projection in ("events", "auto"):
        _, out, grads = outs[projection]
        _close(out, outs["dense"][1], dtype)
        assert len(grads) == len(outs["dense"][2])
        for a, b in zip(grads, outs["dense"][2]):
            _close(a, b, dtype)


def test_projection_round_trips_and_old_configs_load(tmp_path, rng):
    inputs = keras.Input((6, 20))
    hidden = lifsg.DenseLIF(32, projection="events", w_leak=0.1)(inputs)
    outputs = lifsg.LeakyReadout(3, projection="dense")(hidden)
    model = keras.Model(inputs, outputs)
    x = _sparse(rng, (4, 6, 20), 0.2, "float32") * 3.0
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert [lay.projection for lay in loaded.layers[1:]] == ["events", "dense"]
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    config = lifsg.DenseLIF(8).get_config()
    assert config.pop("projection") == "auto"
    assert lifsg.DenseLIF.from_config(config).projection == "auto"


# ------------------------------------------------------------------ Poisson spikes


@pytest.mark.slow  # traces and compares three graphs
def test_poisson_spikes_feed_the_projection_without_a_scan(rng):
    """The encoder's spikes carry their events: same currents and kernel gradient as the
    matmul of the very same spikes, and the dense tensor is not formed unless used."""
    encoder = lifsg.PoissonEncoder(30, factor=1.0, dt=0.05, seed=3)
    images = tf.constant(rng.random((4, 10, 10)), tf.float32)
    kernel = tf.Variable(rng.normal(size=(100, 48)).astype("float32"))

    @tf.function
    def run():
        spikes = encoder(images)
        assert events._attached_events(spikes) is not None  # traced: a graph tensor
        with tf.GradientTape(persistent=True) as tape:
            ev = events.project(spikes, tf.convert_to_tensor(kernel), "auto")
            dense = tf.matmul(spikes, kernel)
            g = tf.cos(tf.range(48, dtype=tf.float32))
            loss_ev, loss_dense = tf.reduce_sum(ev * g), tf.reduce_sum(dense * g)
        return spikes, ev, dense, tape.gradient(loss_ev, kernel), tape.gradient(loss_dense, kernel)

    spikes, ev, dense, g_ev, g_dense = (t.numpy() for t in run())
    assert 0 < spikes.sum() and set(np.unique(spikes)) <= {0.0, 1.0}
    _close(ev, dense, "float32")
    _close(g_ev, g_dense, "float32")
    graph = run.get_concrete_function().graph
    only_events = tf.function(
        lambda: events.project(encoder(images), kernel.value())
    ).get_concrete_function()
    assert "LifsgEventsToDense" in {op.type for op in graph.get_operations()}
    assert "MatMul" not in {
        op.type for op in only_events.graph.get_operations()
    }  # no dense product, no scan
    assert "LifsgEventsFromDense" not in {op.type for op in only_events.graph.get_operations()}


def test_poisson_spikes_statistics():
    """Per unit and step a spike with probability p, independent over steps: the counts per
    unit follow Binomial(steps, p), consecutive steps are uncorrelated."""
    p = np.repeat([[0.0, 0.001, 0.02, 0.1, 1.0]], 4000, axis=0).astype("float32")
    steps = 50
    spikes = events.poisson_spikes(tf.constant(p), steps, keras.random.SeedGenerator(11)).numpy()
    assert spikes.shape == (4000, steps, 5) and spikes.dtype == np.float32
    counts = spikes.sum(axis=1)
    assert counts[:, 0].max() == 0 and (counts[:, 4] == steps).all()
    for j in (1, 2, 3):
        n = counts[:, j].size * steps
        mean, sd = p[0, j], np.sqrt(p[0, j] * (1 - p[0, j]) / n)
        assert abs(spikes[:, :, j].mean() - mean) < 4 * sd
        if j > 1:  # enough spikes to test the spread: a binomial's variance, no clumping
            want = steps * p[0, j] * (1 - p[0, j])
            assert abs(counts[:, j].var() - want) < 0.1 * want
    a, b = spikes[:, :-1, 3].ravel(), spikes[:, 1:, 3].ravel()
    assert abs(np.corrcoef(a, b)[0, 1]) < 4 / np.sqrt(a.size)
    # the spike time is uniform over the window (no edge effect of the gap sampler)
    per_step = spikes[:, :, 2].mean(axis=0)
    assert abs(per_step[: steps // 2].mean() - per_step[steps // 2 :].mean()) < 0.005


def test_poisson_encoder_reproducible_and_sparse_path_used(rng):
    images = rng.random((3, 28, 28)).astype("float32")
    a = lifsg.PoissonEncoder(40, factor=1.0, dt=0.005, seed=5)
    b = lifsg.PoissonEncoder(40, factor=1.0, dt=0.005, seed=5)
    first = a(images).numpy()
    np.testing.assert_array_equal(first, b(images).numpy())
    assert not np.array_equal(first, a(images).numpy())  # the generator advances
    assert events.poisson_supported(tf.constant(images), 0.005)
    assert not events.poisson_supported(tf.constant(images), 0.5)  # dense rates: one draw per step
