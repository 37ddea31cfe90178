"""The fused C++ time loop against the keras.ops loop: same values and gradients."""

import numpy as np
import pytest
import tensorflow as tf

import lifsg
from lifsg import fused, neuron

if not fused.available():
    pytest.skip("the fused kernel does not build here (no C++ compiler?)", allow_module_level=True)


def _run(implementation, make_layer, x, dtype):
    previous = neuron.set_implementation(implementation)
    try:
        layer = make_layer(dtype)
        x = tf.constant(x.astype(dtype))
        weights = tf.constant(np.random.default_rng(5).normal(size=x.shape).astype(dtype))
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = layer(x)
            loss = tf.reduce_sum(out * weights[..., : out.shape[-1]])
        sources = [x, *layer.trainable_weights]
        grads = tape.gradient(loss, sources)
        return out.numpy(), [g.numpy() for g in grads]
    finally:
        neuron.set_implementation(previous)


LAYERS = {
    f"{reset}-{surrogate}": (
        lambda dtype, reset=reset, surrogate=surrogate: lifsg.LIF(
            w_leak=[0.0, 0.1, 0.3, 1.0],
            reset=reset,
            surrogate=surrogate,
            trainable_threshold=True,
            dtype=dtype,
        )
    )
    for reset in neuron.RESETS
    for surrogate in ("flat", "esser")
}
LAYERS["potential"] = lambda dtype: lifsg.LIF(w_leak=0.2, return_potential=True, dtype=dtype)
LAYERS["readout"] = lambda dtype: lifsg.LeakyReadout(
    w_leak=[0.0, 0.5, 0.9, 1.0], reduce=None, dtype=dtype
)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_fused_equals_loop(name, dtype, rng):
    x = rng.uniform(-0.2, 0.9, (3, 30, 2, 4))  # rank 4: a leak per channel of the last axis
    fused_out, fused_grads = _run("fused", LAYERS[name], x, dtype)
    loop_out, loop_grads = _run("loop", LAYERS[name], x, dtype)
    np.testing.assert_array_equal(fused_out, loop_out)
    assert len(fused_grads) == len(loop_grads)
    eps = 1e-5 if dtype == "float32" else 1e-12  # sums over batch and time in another order
    for a, b in zip(fused_grads, loop_grads):
        np.testing.assert_allclose(a, b, rtol=eps, atol=eps * np.abs(b).max())


def test_unknown_implementation():
    with pytest.raises(ValueError, match="valid: auto, fused, loop"):
        neuron.set_implementation("cuda")
