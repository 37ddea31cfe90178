"""The layers against the NumPy reference: every reset mode and implementation, forward and
gradients."""

import itertools

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

import lifsg
from lifsg import fused, neuron, reference, surrogates

NEEDS_FUSED = pytest.mark.skipif(
    not fused.available(), reason=f"fused kernel unavailable: {fused.unavailable_reason()}"
)
IMPLEMENTATIONS = [pytest.param("fused", marks=NEEDS_FUSED), "loop"]


def _layer_run(x, w_leak, threshold, reset, surrogate, return_potential, implementation):
    layer = lifsg.LIF(
        implementation=implementation,
        w_leak=w_leak,
        threshold=threshold,
        trainable_threshold=True,
        reset=reset,
        surrogate=surrogate,
        return_potential=return_potential,
        dtype="float64",
    )
    x = tf.constant(x)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        out = layer(x)
        loss = tf.reduce_sum(out * WEIGHTS[: x.shape[0], : x.shape[1], : x.shape[2]])
    sources = [x, layer.w_leak, layer.threshold_weight]
    grads = tape.gradient(loss, sources)  # None where unconnected (threshold, potential out)
    return out.numpy(), [
        np.zeros(s.shape) if g is None else g.numpy() for s, g in zip(sources, grads)
    ]


WEIGHTS = tf.constant(np.random.default_rng(7).normal(size=(4, 40, 6)).astype("float64"))


# The loop takes seconds per case: in the quick run each reset and surrogate once.
QUICK_LOOP = {
    ("delayed", "flat", False),
    ("subtract", "superspike", True),
    ("zero", "sigmoid", False),
    ("delayed", "esser", True),
}
GRID = list(
    itertools.product(neuron.RESETS, ["flat", "superspike", "sigmoid", "esser"], [False, True])
)
CASES = [pytest.param(*case, "fused", marks=NEEDS_FUSED) for case in GRID] + [
    pytest.param(*case, "loop", marks=() if case in QUICK_LOOP else pytest.mark.slow)
    for case in GRID
]


@pytest.mark.parametrize("reset, surrogate, return_potential, implementation", CASES)
def test_layer_matches_reference(reset, surrogate, return_potential, implementation, rng):
    x = rng.uniform(-0.3, 0.9, (4, 40, 6))
    w_leak = rng.uniform(0, 0.5, 6)
    s = surrogates.get(surrogate)
    out, (gx, gleak, gtheta) = _layer_run(
        x, w_leak, 1.0, reset, s, return_potential, implementation
    )
    trace = reference.lif_forward(x, w_leak, 1.0, reset)
    np.testing.assert_allclose(out, trace.v if return_potential else trace.y, atol=1e-12)
    assert trace.y.sum() > 20  # the test exercises resets
    w = WEIGHTS.numpy()
    derivative = lambda u: ops.convert_to_numpy(s.derivative(u))  # noqa: E731
    g = reference.lif_backward(
        trace,
        derivative,
        grad_v=w if return_potential else None,
        grad_y=None if return_potential else w,
    )
    np.testing.assert_allclose(gx, g["x"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gleak, g["w_leak"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gtheta, g["threshold"], rtol=1e-9, atol=1e-12)


def test_reference_backward_matches_finite_differences(rng):
    """The hand-written backward is the derivative of the potential (no spikes involved)."""
    x = rng.uniform(0.0, 0.3, (2, 12, 3))
    w_leak = np.array([0.1, 0.3, 0.5])
    w = rng.normal(size=x.shape)
    trace = reference.lif_forward(x, w_leak, threshold=100.0)
    g = reference.lif_backward(trace, np.ones_like, grad_v=w)
    eps = 1e-6
    for feature in range(3):
        bumped = w_leak.copy()
        bumped[feature] += eps
        up = (reference.lif_forward(x, bumped, 100.0).v * w).sum()
        bumped[feature] -= 2 * eps
        down = (reference.lif_forward(x, bumped, 100.0).v * w).sum()
        assert g["w_leak"][feature] == pytest.approx((up - down) / (2 * eps), rel=1e-6)


def test_delayed_reset_keeps_new_input():
    """The reset drops the old potential and adds the new input on top, one step late (the
    layers follow the reference: test_layer_matches_reference)."""
    x = np.array([[[1.2], [0.3], [0.4]]])
    trace = reference.lif_forward(x, 0.0)
    np.testing.assert_allclose(trace.v[0, :, 0], [1.2, 0.3, 0.7])
    np.testing.assert_array_equal(trace.y[0, :, 0], [1, 0, 0])


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_readout_matches_reference(implementation, rng):
    x = rng.normal(size=(3, 15, 4)).astype("float32")
    layer = lifsg.LeakyReadout(
        w_leak=[0.0, 0.1, 0.5, 1.0], reduce=None, implementation=implementation
    )
    np.testing.assert_allclose(
        layer(x).numpy(),
        reference.leaky_integrator_forward(x, [0.0, 0.1, 0.5, 1.0]),
        rtol=1e-5,
        atol=1e-6,
    )
