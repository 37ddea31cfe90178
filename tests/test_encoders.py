"""Spike encoders: :func:`layer_check.check_layer` for each, then statistics, the latency
formula, reproducibility and bad input."""

import numpy as np
import pytest
import tensorflow as tf
from layer_check import check_layer

import lifsg

ENCODERS = {
    "poisson": lambda: lifsg.PoissonEncoder(steps=50, factor=1.0, dt=0.5, seed=3),
    "latency": lambda: lifsg.LatencyEncoder(steps=50, tau=1.0, threshold=0.2),
    "constant": lambda: lifsg.ConstantEncoder(steps=50, factor=2.0, dt=0.25),
}


CHECKS = {  # name: (class, arguments, check_layer options)
    "poisson": (
        lifsg.PoissonEncoder,
        dict(steps=6, factor=1.0, dt=0.5, seed=3),
        dict(random=True, input_gradient=False),
    ),
    "poisson-sparse": (  # spikes drawn from their gaps (lifsg.events)
        lifsg.PoissonEncoder,
        dict(steps=6, factor=1.0, dt=0.05, seed=3),
        dict(random=True, input_gradient=False),
    ),
    "latency": (lifsg.LatencyEncoder, dict(steps=6, tau=0.5), dict(input_gradient=False)),
    "constant": (lifsg.ConstantEncoder, dict(steps=6, factor=2.0, dt=0.25), {}),
}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_layer_check(name, tmp_path):
    """Images (3, 4, 5) flattened to 20 units over 6 steps."""
    cls, kwargs, options = CHECKS[name]
    check_layer(cls, kwargs, (3, 4, 5), (3, 6, 20), tmp_path=tmp_path, **options)


@pytest.mark.parametrize("name", ["latency", "constant"])
def test_flattening_is_row_major(name, rng):
    images = rng.uniform(0, 1, (3, 4, 5)).astype("float32")
    out = ENCODERS[name]()(images)
    np.testing.assert_array_equal(out.numpy(), ENCODERS[name]()(images.reshape(3, 20)).numpy())


def test_poisson_rate_and_reproducibility(rng):
    x = np.repeat(np.linspace(0, 1, 11)[None], 400, axis=0).astype("float32")
    encoder = lifsg.PoissonEncoder(steps=50, factor=1.0, dt=0.5, seed=3)
    spikes = encoder(x).numpy()
    assert set(np.unique(spikes)) <= {0.0, 1.0}
    rate = spikes.mean(axis=(0, 1))
    expected = np.linspace(0, 1, 11) * 0.5
    assert np.all(np.abs(rate - expected) <= 4 * np.sqrt(expected * (1 - expected) / 20000) + 1e-9)
    assert rate[0] == 0.0
    again = lifsg.PoissonEncoder(steps=50, factor=1.0, dt=0.5, seed=3)(x).numpy()
    np.testing.assert_array_equal(spikes, again)
    assert not np.array_equal(spikes, encoder(x).numpy())  # the generator advances


def test_poisson_paper_setting_is_sparse(rng):
    x = rng.uniform(0, 1, (50, 784)).astype("float32")
    spikes = lifsg.PoissonEncoder(steps=100, factor=1.0, dt=0.005, seed=0)(x).numpy()
    assert spikes.sum(axis=1).max() <= 8  # at most ~0.5 expected spikes per white pixel
    assert spikes.mean() < 0.005


def test_latency_formula_and_window():
    x = np.array([[0.0, 0.2, 0.21, 0.3, 0.5, 1.0]], "float32")
    steps = 100
    out = lifsg.LatencyEncoder(steps=steps, tau=1.0, threshold=0.2)(x).numpy()[0]
    assert out.shape == (steps, 6)
    assert np.all(out.sum(axis=0) <= 1)
    expected = {
        3: np.floor(np.log(0.3 / 0.1) * steps),
        4: np.floor(np.log(0.5 / 0.3) * steps),
        5: np.floor(np.log(1.0 / 0.8) * steps),
    }
    for unit in range(6):
        times = np.flatnonzero(out[:, unit])
        if unit in expected and expected[unit] < steps:
            assert times.tolist() == [expected[unit]]
        else:  # at or below threshold, or beyond the window: no spike, nothing outside
            assert times.size == 0
    assert np.flatnonzero(out[:, 5]) == [22]


def test_latency_with_short_window_writes_nothing_outside():
    x = np.linspace(0.2, 1.0, 81)[None].astype("float32")
    out = lifsg.LatencyEncoder(steps=5, tau=1.0)(x).numpy()
    assert out.shape == (1, 5, 81) and out.sum() == (out.sum(axis=1) == 1).sum()


def test_constant_current_is_tiled():
    x = np.array([[0.0, 0.4, 1.0]], "float32")
    out = lifsg.ConstantEncoder(steps=4, factor=2.0, dt=0.25)(x).numpy()
    np.testing.assert_allclose(out[0], np.tile([0.0, 0.2, 0.5], (4, 1)))


@pytest.mark.parametrize("name", sorted(ENCODERS))
@pytest.mark.parametrize("bad", [1.5, -0.1, np.nan])
def test_bad_intensities_raise_eagerly(name, bad):
    x = np.full((2, 3), 0.5, "float32")
    x[1, 2] = bad
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ENCODERS[name]()(x)


def test_bad_intensities_raise_in_a_graph():
    encoder = lifsg.ConstantEncoder(steps=3)
    fn = tf.function(lambda x: encoder(x))
    fn(tf.constant([[0.5]]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[0, 1\]"):
        fn(tf.constant([[2.0]]))


@pytest.mark.parametrize(  # an XLA compile each: one encoder in the quick run
    "name", [n if n == "constant" else pytest.param(n, marks=pytest.mark.slow) for n in ENCODERS]
)
def test_bad_intensities_under_xla_make_their_sample_nan(name):
    """XLA drops asserts: there a sample with a bad intensity gets an all-NaN output instead,
    so the loss turns NaN; the other samples are encoded as usual."""
    x = np.full((3, 4), 0.6, "float32")
    x[1, 2], x[2, 0] = 1.5, np.nan
    out = tf.function(ENCODERS[name](), jit_compile=True)(x).numpy()
    assert out.shape == (3, 50, 4)
    assert np.isnan(out[1:]).all() and not np.isnan(out[0]).any()
    if name != "poisson":
        np.testing.assert_array_equal(out[0], ENCODERS[name]()(x[:1]).numpy()[0])


def test_bad_encoder_arguments():
    with pytest.raises(ValueError, match="steps"):
        lifsg.PoissonEncoder(steps=0)
    with pytest.raises(ValueError, match="probabilities above 1"):
        lifsg.PoissonEncoder(steps=5, factor=3.0, dt=0.5)
    with pytest.raises(ValueError, match="threshold"):
        lifsg.LatencyEncoder(steps=5, threshold=1.0)
    with pytest.raises(ValueError, match="batch"):
        lifsg.ConstantEncoder(steps=5)(np.zeros(3, "float32"))
