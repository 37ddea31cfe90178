"""Spike encoders: intensities in [0, 1] -> (batch, time, features).

Inputs of any shape (batch, ...) are flattened row-major to (batch, features). Outputs are in
the layer's compute dtype. Intensities outside [0, 1] or NaN raise an error: a ValueError in
eager code, an InvalidArgumentError inside a TensorFlow graph, a runtime error under JAX jit.

Under XLA on TensorFlow (``jit_compile=True``, which Keras picks by default where TensorFlow
sees a GPU) an assert cannot stop the computation: XLA drops it. There the check is part of the
data flow instead: every sample with a bad intensity gets an all-NaN output, so the loss turns
NaN (Keras prints ``loss: nan``; ``keras.callbacks.TerminateOnNaN`` stops training) rather than
training on clipped or saturated spike trains.
"""

import math

import keras
import numpy as np
from keras import ops

from lifsg import events


def _in_unit_interval(x, axis=None):
    return ops.all(ops.logical_and(ops.greater_equal(x, 0), ops.less_equal(x, 1)), axis=axis)


def _xla_compiling():
    if keras.backend.backend() != "tensorflow":
        return False
    from lifsg import fused

    return fused.xla_compiling()


def _raise_unless(ok, message):
    if not bool(ok):
        raise ValueError(message)


def check_intensities(x, who):
    """Raise unless every entry of ``x`` lies in [0, 1] (NaN fails). Returns ``x``.

    Eager values are checked at once; TensorFlow graphs get an assert op; traced JAX values
    a debug callback that raises at run time. (Under XLA on TensorFlow the encoders use a NaN
    output instead, see the module docstring.)
    """
    message = f"{who}: intensities must lie in [0, 1] with no NaN (scale images by 1/255)"
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        if not tf.executing_eagerly() or isinstance(x, keras.KerasTensor):
            with tf.control_dependencies([tf.debugging.Assert(_in_unit_interval(x), [message])]):
                return tf.identity(x)
    elif backend == "jax":
        import jax

        if isinstance(x, jax.core.Tracer):
            jax.debug.callback(_raise_unless, _in_unit_interval(x), message)
            return x
    _raise_unless(ops.convert_to_numpy(_in_unit_interval(x)), message)
    return x


class _Encoder(keras.layers.Layer):
    """Shared: validates ``steps``, flattens and checks the input; subclasses implement
    ``encode(x)`` for intensities x (batch, features) in the compute dtype."""

    def __init__(self, steps, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 1:
            raise ValueError(
                f"{type(self).__name__}: steps must be a positive integer, got {steps!r}"
            )
        self.steps = int(steps)

    def call(self, inputs):
        if len(inputs.shape) < 2:
            raise ValueError(
                f"{type(self).__name__} expects a batch of intensities (batch, ...), "
                f"got shape {tuple(inputs.shape)}"
            )
        features = inputs.shape[1:]  # flattened to a static size where it is known
        size = math.prod(features) if None not in features else None
        x = ops.reshape(inputs, (-1, size) if size else (ops.shape(inputs)[0], -1))
        if _xla_compiling():  # an assert would be dropped: poison the bad samples instead
            out = self.encode(ops.cast(x, self.compute_dtype))
            bad = ops.logical_not(_in_unit_interval(x, axis=1))[:, None, None]
            return ops.where(bad, ops.cast(math.nan, out.dtype), out)
        x = check_intensities(x, type(self).__name__)
        return self.encode(ops.cast(x, self.compute_dtype))

    def compute_output_shape(self, input_shape):
        features = math.prod(input_shape[1:]) if None not in input_shape[1:] else None
        return (input_shape[0], self.steps, features)

    def get_config(self):
        config = super().get_config()
        config["steps"] = self.steps
        return config


def _check_rate(factor, dt, who):
    factor, dt = float(factor), float(dt)
    if not (math.isfinite(factor) and math.isfinite(dt)) or factor <= 0 or dt <= 0:
        raise ValueError(f"{who}: factor and dt must be finite and > 0, got {factor}, {dt}")
    return factor, dt


@keras.saving.register_keras_serializable(package="lifsg")
class PoissonEncoder(_Encoder):
    """Rate coding: at each step a unit spikes with probability ``p = x * factor * dt``.

    The paper's MNIST setting (pixels / 255, factor 1/255 on raw values) is ``steps=100,
    factor=1.0, dt=0.005``: at most 0.5 expected spikes per white pixel. ``factor * dt`` must
    not exceed 1 (p is a probability). Reproducible under ``seed``: two encoders with the same
    seed give the same spike trains call by call. Where ``factor * dt <= 0.1`` and the event
    ops run (TensorFlow on CPU), the spikes are drawn from their inter-spike gaps and carry
    their events to the next projection (:func:`lifsg.events.poisson_spikes`): the same
    process, another random stream than the one uniform draw per step used elsewhere.
    """

    def __init__(self, steps, factor=1.0, dt=1.0, seed=None, **kwargs):
        super().__init__(steps, **kwargs)
        self.factor, self.dt = _check_rate(factor, dt, "PoissonEncoder")
        if self.factor * self.dt > 1:
            raise ValueError(
                f"PoissonEncoder: factor * dt = {self.factor * self.dt} > 1 would make spike "
                "probabilities above 1"
            )
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def encode(self, x):
        """Spikes (batch, steps, features) for intensities ``x`` (batch, features)."""
        p = x * (self.factor * self.dt)
        if events.poisson_supported(p, self.factor * self.dt):
            return events.poisson_spikes(p, self.steps, self.seed_generator)
        shape = (ops.shape(p)[0], self.steps, ops.shape(p)[1])
        u = keras.random.uniform(shape, seed=self.seed_generator, dtype=self.compute_dtype)
        return ops.cast(ops.less(u, p[:, None, :]), self.compute_dtype)

    def save_own_variables(self, store):
        """Save the random generator's state, so a loaded model continues the same draws."""
        store["seed_state"] = ops.convert_to_numpy(self.seed_generator.state)

    def load_own_variables(self, store):
        self.seed_generator.state.assign(store["seed_state"])

    def get_config(self):
        config = super().get_config()
        config.update(factor=self.factor, dt=self.dt, seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package="lifsg")
class LatencyEncoder(_Encoder):
    """Time-to-first-spike coding: one spike at step ``floor(tau * ln(x / (x - threshold)) *
    steps)`` for ``x > threshold``, none otherwise.

    That is the time a leaky integrator with time constant ``tau`` (in units of the window)
    needs to reach ``threshold`` under constant input ``x``: bright pixels fire early. A
    latency at or beyond the window (``x`` close to the threshold) means no spike in the
    window: nothing is written outside it. Defaults: tau 1.0, threshold 0.2.
    """

    def __init__(self, steps, tau=1.0, threshold=0.2, **kwargs):
        super().__init__(steps, **kwargs)
        self.tau, self.threshold = float(tau), float(threshold)
        if not math.isfinite(self.tau) or self.tau <= 0:
            raise ValueError(f"LatencyEncoder: tau must be finite and > 0, got {tau}")
        if not 0 <= self.threshold < 1:
            raise ValueError(f"LatencyEncoder: threshold must lie in [0, 1), got {threshold}")

    def latency(self, x):
        """Spike step per unit (float; ``inf`` where ``x <= threshold``). x: (batch, features)."""
        above = ops.greater(x, self.threshold)
        safe = ops.where(above, x, 1.0)
        t = self.tau * ops.log(safe / (safe - self.threshold)) * self.steps
        return ops.where(above, ops.floor(t), math.inf)

    def encode(self, x):
        """Spikes (batch, steps, features) for intensities ``x`` (batch, features)."""
        t = self.latency(ops.cast(x, "float32"))
        inside = ops.less(t, self.steps)
        index = ops.cast(ops.where(inside, t, 0), "int32")
        spikes = ops.one_hot(index, self.steps, dtype=self.compute_dtype)
        spikes = spikes * ops.cast(inside, self.compute_dtype)[..., None]
        return ops.moveaxis(spikes, -1, 1)

    def get_config(self):
        config = super().get_config()
        config.update(tau=self.tau, threshold=self.threshold)
        return config


@keras.saving.register_keras_serializable(package="lifsg")
class ConstantEncoder(_Encoder):
    """Constant current: ``x * factor * dt`` repeated at every one of ``steps`` steps."""

    def __init__(self, steps, factor=1.0, dt=1.0, **kwargs):
        super().__init__(steps, **kwargs)
        self.factor, self.dt = _check_rate(factor, dt, "ConstantEncoder")

    def encode(self, x):
        """Currents (batch, steps, features) for intensities ``x`` (batch, features)."""
        x = x * (self.factor * self.dt)
        return ops.repeat(x[:, None, :], self.steps, axis=1)

    def get_config(self):
        config = super().get_config()
        config.update(factor=self.factor, dt=self.dt)
        return config
