"""The layers: :func:`layer_check.check_layer` for each configuration (shapes, config, saving,
dtype policies, gradients, a training step), then what is specific to them, and bad input."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from layer_check import check_layer

import lifsg
from lifsg import LIF, DenseLIF, LeakyReadout, fused, surrogates

FUSED = pytest.mark.skipif(
    not fused.available(), reason=f"fused kernel unavailable: {fused.unavailable_reason()}"
)
NO_16_BIT = {"mixed_float16": (ValueError, "float32/float64")}  # the fused kernel's dtypes
X = (3, 7, 4)  # input (batch, time, features)
CASES = {  # name: (class, arguments, input shape, output shape)
    "LIF": (LIF, dict(surrogate="superspike", reset="subtract", w_leak=0.2), X, X),
    "LIF-trainable-threshold": (
        LIF,
        dict(trainable_threshold=True, threshold=0.7, surrogate="sigmoid"),
        X,
        X,
    ),
    "LIF-potential": (LIF, dict(return_potential=True, reset="zero"), X, X),
    "LIF-conv": (LIF, dict(w_leak=[0.0, 0.5, 1.0]), (2, 6, 5, 5, 3), (2, 6, 5, 5, 3)),
    "LIF-chunked": (LIF, dict(time_chunk=3, trainable_threshold=True), X, X),
    "DenseLIF": (
        DenseLIF,
        dict(units=5, surrogate=surrogates.get("esser", beta=4.0)),
        X,
        (3, 7, 5),
    ),
    "DenseLIF-loop": (DenseLIF, dict(units=np.int64(3), implementation="loop"), X, (3, 7, 3)),
    "DenseLIF-events": (DenseLIF, dict(units=6, projection="events"), X, (3, 7, 6)),
    "LeakyReadout": (LeakyReadout, dict(units=3, reduce="mean", activation="softmax"), X, (3, 3)),
    "LeakyReadout-last": (LeakyReadout, dict(units=2, w_leak=0.3), X, (3, 2)),
    "LeakyReadout-seq": (LeakyReadout, dict(reduce=None, w_leak=[0.1, 0.2, 0.3, 0.4]), X, X),
}


# One configuration per class in the quick run (each check takes seconds); the others are slow.
FAST = {"LIF-trainable-threshold", "DenseLIF", "LeakyReadout"}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=() if n in FAST else pytest.mark.slow) for n in sorted(CASES)]
)
def test_layer_check(name, tmp_path):
    cls, kwargs, input_shape, output_shape = CASES[name]
    check_layer(cls, kwargs, input_shape, output_shape, tmp_path=tmp_path)


@FUSED
@pytest.mark.slow  # "auto" runs the fused kernel in the quick checks (float32, float64)
@pytest.mark.parametrize(
    "cls, kwargs, out",
    [(LIF, {}, X), (DenseLIF, {"units": 4}, X), (LeakyReadout, {}, (3, 4))],
)
def test_layer_check_fused(cls, kwargs, out, tmp_path):
    """The fused kernel refuses the 16-bit policies with a clear error."""
    kwargs = dict(kwargs, implementation="fused")
    check_layer(cls, kwargs, X, out, unsupported=NO_16_BIT, tmp_path=tmp_path)


def test_configs_without_implementation_load_as_auto():
    """Models stored before the argument existed load with the default."""
    config = lifsg.DenseLIF(3, implementation="loop").get_config()
    del config["implementation"]
    assert lifsg.DenseLIF.from_config(config).implementation == "auto"


def test_implementation_per_layer():
    assert lifsg.LIF().implementation == "auto" and lifsg.LIF().supports_jit
    fused_layer = lifsg.LeakyReadout(implementation="fused")
    assert not fused_layer.supports_jit  # Keras then compiles the model without XLA
    with pytest.raises(ValueError, match="valid: auto, fused, loop"):
        lifsg.DenseLIF(3, implementation="cuda")


@pytest.mark.slow  # compiles and fits a model: the quick checks train one step eagerly
def test_model_in_a_few_lines(tmp_path, rng):
    """The issue's example: encoder -> DenseLIF -> read-out, fit, save, load."""
    model = keras.Sequential(
        [
            keras.Input((28, 28)),
            lifsg.PoissonEncoder(steps=20, seed=1),
            lifsg.DenseLIF(32),
            lifsg.LeakyReadout(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    x = rng.uniform(0, 1, (64, 28, 28)).astype("float32")
    y = rng.integers(0, 10, 64)
    history = model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    # The Poisson seed generator state is saved with the weights: the next draw is identical.
    np.testing.assert_array_equal(loaded.predict(x[:8], verbose=0), model.predict(x[:8], verbose=0))


def test_convolutional_input_has_a_leak_per_channel(rng):
    x = rng.uniform(0, 1.5, (2, 6, 5, 5, 3)).astype("float32")
    layer = lifsg.LIF(w_leak=[0.0, 0.5, 1.0])
    y = layer(x)
    assert y.shape == x.shape and layer.w_leak.shape == (3,)
    flat = lifsg.LIF(w_leak=[0.0, 0.5, 1.0])(x.transpose(0, 2, 3, 1, 4).reshape(50, 6, 3))
    np.testing.assert_array_equal(
        y.numpy().transpose(0, 2, 3, 1, 4).reshape(50, 6, 3), flat.numpy()
    )


def test_hybrid_conv_model(rng):
    model = keras.Sequential(
        [
            keras.Input((8, 28, 28, 1)),
            keras.layers.TimeDistributed(keras.layers.Conv2D(4, 3, strides=2)),
            lifsg.LIF(),
            keras.layers.Reshape((8, -1)),
            lifsg.LeakyReadout(10, activation="softmax"),
        ]
    )
    out = model(rng.uniform(0, 1, (2, 8, 28, 28, 1)).astype("float32"))
    assert out.shape == (2, 10)
    np.testing.assert_allclose(out.numpy().sum(axis=1), 1.0, rtol=1e-5)


def test_leak_constraint_keeps_unit_interval():
    layer = lifsg.LIF(w_leak=0.5)
    layer.build((None, 3, 2))
    assert layer.w_leak.constraint is not None
    np.testing.assert_array_equal(layer.w_leak.constraint(np.array([-0.5, 1.5])), [0.0, 1.0])


def test_leak_initializer_outside_unit_interval_is_an_error():
    layer = lifsg.DenseLIF(4, w_leak_initializer=keras.initializers.RandomUniform(0.5, 2.0))
    with pytest.raises(ValueError, match=r"w_leak_initializer gave leaks outside \[0, 1\]"):
        layer.build((None, 3, 2))


@pytest.mark.parametrize("implementation", ["auto", "loop"])
def test_assigned_leak_acts_as_the_nearest_bound(implementation, rng):
    x = rng.uniform(0, 0.8, (2, 12, 3)).astype("float32")
    layer = lifsg.LIF(w_leak=0.5, return_potential=True, implementation=implementation)
    layer(x)
    layer.w_leak.assign([1.5, -0.5, 0.25])
    bounded = lifsg.LIF(w_leak=[1.0, 0.0, 0.25], return_potential=True)
    np.testing.assert_array_equal(layer(x).numpy(), bounded(x).numpy())


def test_trainable_threshold_stays_positive():
    """Training once drove a threshold to -17.75: the neuron then fired on zero input."""
    layer = lifsg.LIF(trainable_threshold=True, threshold=0.5)
    layer.build((None, 4, 3))
    constraint = layer.threshold_weight.constraint
    assert isinstance(constraint, lifsg.layers.Positive) and constraint.min_value == 5e-4
    optimizer = keras.optimizers.SGD(learning_rate=100.0)
    optimizer.apply([tf.ones(3)], [layer.threshold_weight])  # one step to 0.5 - 100
    np.testing.assert_allclose(layer.threshold_weight.numpy(), 5e-4)
    assert layer(np.zeros((2, 4, 3), "float32")).numpy().sum() == 0  # silent on zero input
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(constraint))
    assert clone.min_value == 5e-4
    with pytest.raises(ValueError, match="min_value"):
        lifsg.layers.Positive(0.0)


def test_numpy_numbers_are_accepted():
    layer = lifsg.DenseLIF(np.int64(4), threshold=np.float32(0.5), w_leak=np.float64(0.1))
    assert type(layer.units) is int and layer.units == 4 and layer.threshold == 0.5
    assert lifsg.LeakyReadout(np.int32(2))(np.zeros((1, 3, 5), "float32")).shape == (1, 2)


@pytest.mark.slow  # compiles and fits; check_layer runs each layer under the policies quickly
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_dtype_policies(policy, rng):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model = keras.Sequential(
            [
                keras.Input((10,)),
                lifsg.ConstantEncoder(steps=6),
                lifsg.DenseLIF(8),
                lifsg.LeakyReadout(3, activation="softmax", dtype="float32"),
            ]
        )
        compute = keras.mixed_precision.dtype_policy().compute_dtype
        assert model.layers[0].compute_dtype == compute
        x = rng.uniform(0, 1, (5, 10)).astype("float32")
        assert model.layers[0](x).dtype == compute
        assert model.layers[1](model.layers[0](x)).dtype == compute
        assert model.layers[1].kernel.dtype == "float32"
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(x, np.arange(5) % 3, epochs=1, verbose=0)
    finally:
        keras.config.set_dtype_policy(previous)


BAD_CONSTRUCTORS = [
    (lambda: lifsg.LIF(w_leak=-0.1), ValueError, "w_leak"),
    (lambda: lifsg.LIF(w_leak=1.5), ValueError, "w_leak"),
    (lambda: lifsg.LIF(w_leak=float("nan")), ValueError, "w_leak"),
    (lambda: lifsg.LIF(reset="soft"), ValueError, "reset"),
    (lambda: lifsg.LIF(surrogate=7), TypeError, "callable"),
    (lambda: lifsg.LIF(threshold=0.0), ValueError, "threshold"),
    (lambda: lifsg.LIF(units=3), TypeError, "DenseLIF"),
    (lambda: lifsg.DenseLIF(0), ValueError, "units"),
    (lambda: lifsg.DenseLIF(True), ValueError, "units"),
    (lambda: lifsg.DenseLIF(4.0), ValueError, "units"),
    (lambda: lifsg.LIF(threshold=True), ValueError, "threshold"),
    (lambda: lifsg.LIF(threshold="1"), ValueError, "threshold"),
    (lambda: lifsg.LIF(w_leak=True), ValueError, "w_leak"),
    (lambda: lifsg.LIF(w_leak="0.1"), ValueError, "w_leak"),
    (lambda: lifsg.LeakyReadout(reduce="sum"), ValueError, "reduce"),
]


@pytest.mark.parametrize("make, error, words", BAD_CONSTRUCTORS)
def test_bad_arguments(make, error, words):
    with pytest.raises(error, match=words):
        make()


def test_bad_input_shapes():
    with pytest.raises(ValueError, match="rank >= 3"):
        lifsg.LIF()(np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match="time axis has length 0"):
        lifsg.DenseLIF(3)(np.zeros((2, 0, 3), "float32"))
    layer = lifsg.LIF(w_leak=[0.1, 0.2])
    with pytest.raises(ValueError, match="2 values for 5 features"):
        layer(np.zeros((1, 3, 5), "float32"))


@pytest.mark.parametrize("dtype", ["int32", "bool"])
def test_non_float_input_is_a_clear_error(dtype):
    for layer in (lifsg.LIF(), lifsg.DenseLIF(2), lifsg.LeakyReadout()):
        with pytest.raises(TypeError, match=f"floating-point input currents, got {dtype}"):
            layer(np.zeros((2, 3, 4), dtype))


@pytest.mark.parametrize("implementation", ["auto", pytest.param("loop", marks=pytest.mark.slow)])
def test_time_axis_known_only_at_run_time(implementation, rng):
    """Same values and gradients as with a static time axis; an empty one gives an empty
    output."""
    layer = lifsg.DenseLIF(4, surrogate="esser", implementation=implementation)
    x = tf.constant(rng.uniform(0, 1, (2, 9, 3)).astype("float32"))
    layer.build(x.shape)

    def run(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * tf.range(1.0, 5.0))
        return y, tape.gradient(loss, [x, *layer.trainable_weights])

    static = tf.function(run)(x)
    dynamic = tf.function(run, input_signature=[tf.TensorSpec((None, None, 3))])
    for a, b in zip(tf.nest.flatten(static), tf.nest.flatten(dynamic(x))):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    empty, grads = dynamic(tf.zeros((2, 0, 3)))
    assert empty.shape == (2, 0, 4)
    assert all(np.all(g.numpy() == 0) for g in grads)
