"""XLA: every layer trains under ``jit_compile=True`` with the default implementation (all slow:
an XLA compile each).

Keras turns ``jit_compile="auto"`` on where TensorFlow sees a GPU, so this is the default path
on GPU machines. The fused op has no XLA kernel: "auto" takes the loop inside XLA compilation.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import lifsg
from lifsg import neuron, reference, surrogates


def _head():  # for a sequence output
    return [keras.layers.Flatten(), keras.layers.Dense(2)]


MODELS = {  # name: (input shape, layers)
    "LIF": ((7, 5), lambda: [keras.layers.Dense(6), lifsg.LIF(trainable_threshold=True), *_head()]),
    "DenseLIF": (
        (7, 5),
        lambda: [lifsg.DenseLIF(6, surrogate="esser", reset="subtract"), *_head()],
    ),
    "LeakyReadout": ((7, 5), lambda: [lifsg.LeakyReadout(6, reduce=None), *_head()]),
    "encoder": (
        (4, 5),
        lambda: [lifsg.PoissonEncoder(steps=7, seed=1), lifsg.DenseLIF(8), lifsg.LeakyReadout(2)],
    ),
}


def _model(name):
    keras.utils.set_random_seed(0)
    shape, layers = MODELS[name]
    return keras.Sequential([keras.Input(shape), *layers()]), shape


@pytest.mark.slow  # one XLA compile of a training step takes 10-45 s here
@pytest.mark.parametrize("name", sorted(MODELS))
def test_fit_and_predict_under_xla(name, rng):
    model, shape = _model(name)
    reference, _ = _model(name)
    model.compile("adam", "mse", jit_compile=True)
    reference.compile("adam", "mse", jit_compile=False)
    x = rng.uniform(0, 1, (16, *shape)).astype("float32")
    y = rng.normal(size=(16, 2)).astype("float32")
    if name != "encoder":  # the encoder draws random spikes: no two runs see the same input
        np.testing.assert_allclose(
            model.predict(x, verbose=0), reference.predict(x, verbose=0), rtol=1e-5, atol=1e-5
        )
    before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert model.jit_compile is True  # Keras did not fall back to plain graphs
    assert np.all(np.isfinite(history.history["loss"]))
    changed = [not np.array_equal(a, w.numpy()) for a, w in zip(before, model.trainable_weights)]
    assert all(changed)


@pytest.mark.slow  # an XLA compile
def test_the_loop_under_xla_handles_an_empty_dynamic_time_axis():
    lif = tf.function(
        lambda x: neuron.lif_loop(x, 0.9, 1.0, surrogates.get("flat")), jit_compile=True
    )
    run = lif.get_concrete_function(tf.TensorSpec((None, None, 1)))  # time known at run time
    assert run(tf.zeros((2, 0, 1))).shape == (2, 0, 1)
    x = np.full((1, 3, 1), 0.6, "float32")
    np.testing.assert_array_equal(run(tf.constant(x)).numpy(), reference.lif_forward(x, 0.1).y)
