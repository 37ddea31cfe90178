"""One NaN policy for the fused kernel, the loop (also under XLA) and the NumPy reference.

NaN propagates: ReLU and the spike pass it on, so a NaN input shows in that step's potential
and spike; then the "delayed" reset drops it, "subtract" and "zero" carry it on (see
lifsg.neuron). XLA may round finite values differently (fused multiply-adds), so there the
finite values are compared to 1e-12 and the NaN positions exactly.
"""

import numpy as np
import pytest
import tensorflow as tf

import lifsg
from lifsg import fused, neuron, reference

RUNS = [
    pytest.param(
        "fused",
        marks=pytest.mark.skipif(
            not fused.available(), reason=f"fused kernel unavailable: {fused.unavailable_reason()}"
        ),
    ),
    "loop",
    pytest.param("loop-xla", marks=pytest.mark.slow),  # an XLA compile per case
]


def _check(layer, x, run, expected):
    if run == "loop-xla":
        out = tf.function(layer, jit_compile=True)(x).numpy()
        np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
        np.testing.assert_allclose(out, expected, rtol=1e-12)
    else:
        np.testing.assert_array_equal(layer(x).numpy(), expected)


def _input(bad):
    x = np.full((2, 8, 3), 0.4)
    x[0, 2, 1] = bad
    x[1, 5, 0] = np.nan
    return x


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("reset", neuron.RESETS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_lif_follows_the_reference(run, reset, bad):
    x = _input(bad)
    trace = reference.lif_forward(x, 0.1, 1.0, reset)
    implementation = run.split("-")[0]
    for potential, expected in ((True, trace.v), (False, trace.y)):
        layer = lifsg.LIF(
            w_leak=0.1,
            reset=reset,
            return_potential=potential,
            dtype="float64",
            implementation=implementation,
        )
        _check(layer, x, run, expected)


@pytest.mark.parametrize("run", RUNS)
def test_readout_follows_the_reference(run):
    x = _input(np.inf)
    layer = lifsg.LeakyReadout(
        w_leak=0.1, reduce=None, dtype="float64", implementation=run.split("-")[0]
    )
    _check(layer, x, run, reference.leaky_integrator_forward(x, 0.1))


def test_the_reference_propagates_nan():
    x = _input(np.nan)
    for reset in neuron.RESETS:
        trace = reference.lif_forward(x, 0.1, 1.0, reset)
        assert np.isnan(trace.v[1, 5, 0]) and np.isnan(trace.y[1, 5, 0])  # at its step
        assert np.isfinite(trace.v[1, :5]).all() and np.isfinite(trace.v[:, :, 2]).all()
        assert np.isnan(trace.v[1, 5:, 0]).all() == (reset != "delayed")  # carried on or reset
    v = reference.leaky_integrator_forward(x, 0.1)
    assert np.isnan(v[1, 5:, 0]).all() and np.isfinite(v[1, :5]).all()
