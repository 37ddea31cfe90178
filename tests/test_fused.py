"""The fused C++ time loop against the keras.ops loop: same values and gradients; where
"auto" runs it."""

import numpy as np
import pytest
import tensorflow as tf

import lifsg
from lifsg import fused, neuron

if not fused.available():
    pytest.skip(f"fused kernel unavailable: {fused.unavailable_reason()}", allow_module_level=True)


def _run(implementation, make_layer, x, dtype):
    layer = make_layer(dtype, implementation)
    x = tf.constant(x.astype(dtype))
    weights = tf.constant(np.random.default_rng(5).normal(size=x.shape).astype(dtype))
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = layer(x)
        loss = tf.reduce_sum(out * weights[..., : out.shape[-1]])
    sources = [x, *layer.trainable_weights]
    grads = tape.gradient(loss, sources)
    return out.numpy(), [g.numpy() for g in grads]


LAYERS = {
    f"{reset}-{surrogate}": (
        lambda dtype, implementation, reset=reset, surrogate=surrogate: lifsg.LIF(
            w_leak=[0.0, 0.1, 0.3, 1.0],
            reset=reset,
            surrogate=surrogate,
            trainable_threshold=True,
            dtype=dtype,
            implementation=implementation,
        )
    )
    for reset in neuron.RESETS
    for surrogate in ("flat", "esser")
}
LAYERS["potential"] = lambda dtype, implementation: lifsg.LIF(
    w_leak=0.2, return_potential=True, dtype=dtype, implementation=implementation
)
LAYERS["readout"] = lambda dtype, implementation: lifsg.LeakyReadout(
    w_leak=[0.0, 0.5, 0.9, 1.0], reduce=None, dtype=dtype, implementation=implementation
)


@pytest.mark.parametrize(  # float64 in the slow run (seconds per case)
    "dtype", ["float32", pytest.param("float64", marks=pytest.mark.slow)]
)
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


def _uses_fused_op(layer, shape, device=None):
    def run(x):
        if device is None:
            return layer(x)
        with tf.device(device):
            return layer(x)

    graph = tf.function(run).get_concrete_function(tf.TensorSpec(shape)).graph
    return any(op.type == "LifsgLifForward" for op in graph.get_operations())


def test_auto_uses_the_fused_kernel_on_cpu():
    assert _uses_fused_op(lifsg.LIF(), (2, 5, 3))
    assert _uses_fused_op(lifsg.LeakyReadout(), (2, 5, 3))
    assert not _uses_fused_op(lifsg.LIF(implementation="loop"), (2, 5, 3))
    assert not _uses_fused_op(lifsg.LIF(dtype="float16"), (2, 5, 3))  # no float16 kernel


@pytest.mark.slow  # traces three graphs
def test_auto_avoids_the_fused_op_where_an_accelerator_would_run_it(monkeypatch):
    """Where TensorFlow sees a GPU and no device scope is set, its placer would put the ops on
    the GPU, which the fused op (CPU kernels only) cannot run on: "auto" takes the loop there.
    A CPU device scope keeps the fused kernel. (No GPU here: the device list is replaced.)"""
    monkeypatch.setattr(fused, "_accelerators", lambda: ["/device:GPU:0"])
    assert not _uses_fused_op(lifsg.DenseLIF(4), (2, 5, 3))
    assert _uses_fused_op(lifsg.DenseLIF(4), (2, 5, 3), device="/CPU:0")
    # "fused" stays the user's choice: TensorFlow places the op on the CPU.
    assert _uses_fused_op(lifsg.DenseLIF(4, implementation="fused"), (2, 5, 3))


def test_fused_is_refused_where_it_cannot_run():
    with pytest.raises(ValueError, match="float32/float64"):
        lifsg.LIF(implementation="fused", dtype="float16")(np.ones((1, 3, 2), "float16"))
    layer = lifsg.LIF(implementation="fused")
    jit = tf.function(layer, jit_compile=True)
    with pytest.raises(ValueError, match="inside XLA compilation"):
        jit(tf.ones((1, 3, 2)))
