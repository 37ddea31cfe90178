"""Surrogates: derivatives, peaks, registry, and their gradient through the LIF layer."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

import lifsg
from lifsg import surrogates

U = np.linspace(-1.0, 1.0, 401).astype("float32")
PAPER_FORMULAS = {  # docs/model.md section 3, beta = 10
    "flat": lambda u: np.ones_like(u),
    "superspike": lambda u: 1 / (10 * np.abs(u) + 1) ** 2,
    "sigmoid": lambda u: 10 * (s := 1 / (1 + np.exp(-10 * u))) * (1 - s),
    "esser": lambda u: np.maximum(0, 1 - 10 * np.abs(u)),
}


def test_available_lists_at_least_the_required():
    required = {"flat", "superspike", "sigmoid", "esser", "atan", "gaussian", "exponential"}
    assert required | {"boxcar"} <= set(surrogates.available())


@pytest.mark.parametrize("name", sorted(PAPER_FORMULAS))
def test_paper_derivatives(name):
    got = ops.convert_to_numpy(surrogates.get(name).derivative(U))
    np.testing.assert_allclose(got, PAPER_FORMULAS[name](U.astype("float64")), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", surrogates.available())
def test_peak_is_the_maximum_at_zero(name):
    s = surrogates.get(name)
    values = ops.convert_to_numpy(s.derivative(U))
    assert values.max() == pytest.approx(s.peak, rel=1e-5)
    assert ops.convert_to_numpy(s.derivative(np.zeros(1, "float32")))[0] == pytest.approx(s.peak)
    assert s.width > 0


def test_sigmoid_has_the_beta_factor():
    assert surrogates.get("sigmoid", beta=10.0).peak == 2.5
    got = ops.convert_to_numpy(surrogates.get("sigmoid", beta=4.0).derivative(np.zeros(1)))
    assert got[0] == pytest.approx(1.0)


@pytest.mark.parametrize("name", surrogates.available())
def test_forward_is_heaviside(name):
    u = np.array([-0.5, -1e-6, 0.0, 1e-6, 2.0], "float32")
    y = ops.convert_to_numpy(surrogates.get(name)(u))
    np.testing.assert_array_equal(y, [0, 0, 1, 1, 1])


@pytest.mark.parametrize("name", surrogates.available())
def test_backward_through_layer_equals_derivative(name, rng):
    """One step: y_0 = H(x_0 - 1), so dy/dx = surrogate'(x - 1) exactly."""
    s = surrogates.get(name, beta=7.0)
    x = tf.constant(rng.uniform(0.5, 1.5, (1, 1, 64)).astype("float32"))
    layer = lifsg.LIF(surrogate=s, w_leak=0.0)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
    grad = tape.gradient(y, x).numpy()
    expected = ops.convert_to_numpy(s.derivative(x.numpy() - 1.0))
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-7)


def test_custom_callable():
    s = surrogates.get(lambda u: 3.0 * ops.ones_like(u))
    assert isinstance(s, surrogates.Custom) and s.peak is None
    x = tf.constant([[[0.2]]])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = lifsg.LIF(surrogate=s)(x)
    assert tape.gradient(y, x).numpy().item() == 3.0


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="superspike") as err:
        surrogates.get("nope")
    assert "nope" in str(err.value)
    with pytest.raises(ValueError, match="unknown surrogate"):
        lifsg.LIF(surrogate="Nope")


def test_bad_types_and_parameters():
    with pytest.raises(TypeError, match="callable"):
        surrogates.get(3.0)
    with pytest.raises(TypeError, match="callable"):
        surrogates.Custom(42)
    with pytest.raises(ValueError, match="beta"):
        surrogates.get("esser", beta=-1.0)
    with pytest.raises(ValueError, match="does not take"):
        surrogates.get("flat", gamma=2.0)
    assert surrogates.get("flat", beta=2.0) == surrogates.get("flat")  # no width to set


def test_serialization_round_trip():
    for name in surrogates.available():
        s = surrogates.get(name, beta=3.0)
        config = keras.saving.serialize_keras_object(s)
        assert keras.saving.deserialize_keras_object(config) == s
    assert math.isinf(surrogates.get("flat").width)
