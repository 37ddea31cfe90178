"""A Keras-style check of one layer class, in the spirit of keras' ``run_layer_test``.

:func:`check_layer` builds the layer, calls it symbolically, eagerly and in a graph,
round-trips its config and a ``.keras`` file, runs it under each dtype policy with finite,
non-zero gradients, and takes one training step (eagerly: no compiled ``fit``, to stay quick).
Every layer test calls it once per layer configuration; the tests beside it assert only what
is specific to the layer.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

POLICIES = ("float32", "float64", "mixed_float16")


def check_layer(
    layer_cls,
    init_kwargs,
    input_shape,
    expected_output_shape,
    *,
    input_range=(0.0, 1.0),
    random=False,
    input_gradient=True,
    unsupported=None,
    tmp_path,
    seed=0,
):
    """Check ``layer_cls(**init_kwargs)`` on input of ``input_shape`` (batch first).

    expected_output_shape: the output shape for that input (batch first).
    input_range: (low, high) of the uniform test input (default [0, 1]: intensities for the
        encoders, currents that make the LIF layers fire).
    random: the layer draws random numbers at each call (PoissonEncoder): two calls differ, so
        eager and graph calls are not compared; a loaded ``.keras`` file must still give the
        next draw (the generator state is saved).
    input_gradient: the output depends differentiably on the input (False for spike encoders).
    unsupported: ``{policy: (error type, message regex)}`` for dtype policies the layer
        refuses; calling it under them must raise that error.
    tmp_path: a folder for the ``.keras`` file.
    """
    unsupported = unsupported or {}
    assert set(unsupported) <= set(POLICIES), unsupported
    rng = np.random.default_rng(seed)
    x = rng.uniform(*input_range, input_shape).astype("float32")
    keras.utils.set_random_seed(seed)

    layer = _build_and_call(layer_cls, init_kwargs, x, expected_output_shape)
    _check_config(layer, layer_cls)
    _check_keras_file(layer_cls, init_kwargs, x, tmp_path)
    for policy in POLICIES:
        if policy in unsupported:
            error, words = unsupported[policy]
            with pytest.raises(error, match=words):
                layer_cls(**init_kwargs, dtype=policy)(x)
        else:
            _check_policy(layer_cls, init_kwargs, x, policy, input_gradient, random)


def _build_and_call(layer_cls, init_kwargs, x, expected_output_shape):
    layer = layer_cls(**init_kwargs)
    symbolic = layer(keras.KerasTensor((None, *x.shape[1:])))
    assert layer.built
    assert tuple(symbolic.shape) == (None, *expected_output_shape[1:])
    assert tuple(layer.compute_output_shape((None, *x.shape[1:]))) == tuple(symbolic.shape)
    y = layer(x)
    assert tuple(y.shape) == tuple(expected_output_shape)
    assert keras.backend.standardize_dtype(y.dtype) == layer.compute_dtype
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(y)))
    return layer


def _check_config(layer, layer_cls):
    config = layer.get_config()
    json.dumps(config)  # plain Python types only (NumPy numbers converted)
    assert layer_cls.from_config(config).get_config() == config
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"].startswith("lifsg>")
    clone = keras.saving.deserialize_keras_object(serialized)
    assert type(clone) is layer_cls and clone.get_config() == config


def _check_keras_file(layer_cls, init_kwargs, x, tmp_path):
    model = keras.Sequential([keras.Input(x.shape[1:]), layer_cls(**init_kwargs)])
    path = tmp_path / f"{layer_cls.__name__}.keras"
    model.save(path)  # before any draw: the loaded model continues the same random stream
    loaded = keras.models.load_model(path)
    assert type(loaded.layers[-1]) is layer_cls
    assert loaded.layers[-1].get_config() == model.layers[-1].get_config()
    for a, b in zip(loaded.weights, model.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))


def _check_policy(layer_cls, init_kwargs, x, policy, input_gradient, random):
    """Output in the compute dtype, weights in the variable dtype, finite gradients that
    reach the input (where differentiable) and every trainable weight. In float32 also: a
    graph gives the eager values and gradients (unless the layer is random), and one SGD step
    on the loss changes every trainable weight."""
    layer = layer_cls(**init_kwargs, dtype=policy)
    x = tf.constant(x)
    layer.build(x.shape)
    sources = ([x] if input_gradient else []) + layer.trainable_weights

    def run():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            upstream = tf.cast(tf.random.stateless_normal(tf.shape(y), (1, 2)), y.dtype)
            loss = tf.reduce_sum(tf.cast(y * upstream, "float32"))
        return y, tape.gradient(loss, sources)

    y, grads = run()
    assert y.dtype == layer.compute_dtype, policy
    assert all(w.dtype == layer.variable_dtype for w in layer.weights), policy
    for source, grad in zip(sources, grads, strict=True):
        name = getattr(source, "path", "input")
        assert grad is not None, (policy, name)
        grad = tf.cast(grad, "float32").numpy()
        assert np.all(np.isfinite(grad)) and np.any(grad != 0), (policy, name)
    if policy != "float32":
        return
    if not random:
        graph_y, graph_grads = tf.function(run)()
        np.testing.assert_array_equal(graph_y.numpy(), y.numpy())
        for a, b in zip(graph_grads, grads, strict=True):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)
    weights = layer.trainable_weights  # a training step changes every one
    before = [w.numpy().copy() for w in weights]
    keras.optimizers.SGD(0.1).apply(grads[len(sources) - len(weights) :], weights)
    for old, w in zip(before, weights):
        assert not np.array_equal(old, w.numpy()), w.path
