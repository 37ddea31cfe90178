"""The discrete LIF neuron of Gerum & Schilling (2021): one update step and the time loop.

This is the one place the paper's equation lives. With ``reset="delayed"`` (the paper's rule)::

    V_t = ReLU( x_t + (1 - w_leak) * V_{t-1} * H(threshold - V_{t-1}) )     V_{-1} = 0
    y_t = H(V_t - threshold)

``H(u) = 1 for u >= 0``. The spike's H gets a surrogate derivative in the backward pass; the
reset factor gets none (detached reset). The reset acts one step after the spike: the old
potential is dropped and the new input is added on top. As the equation states, a potential
exactly equal to the threshold spikes and is not reset. The other reset rules, with
``s = y_{t-1}`` detached:

- ``"subtract"``: ``V_t = ReLU(x_t + (1 - w_leak) * V_{t-1} - threshold * s)``
- ``"zero"``: ``V_t = ReLU(x_t + (1 - w_leak) * V_{t-1}) * (1 - s)`` (the step after a spike is
  refractory: its input is dropped too).

The non-spiking read-out uses the same update without spike and reset.
"""

import keras
from keras import ops

RESETS = ("delayed", "subtract", "zero")


def check_reset(reset):
    """Return ``reset`` if it is a known reset rule, else raise ValueError."""
    if reset not in RESETS:
        raise ValueError(f"unknown reset {reset!r}; valid: {', '.join(RESETS)}")
    return reset


def lif_step(x_t, v_prev, y_prev, decay, threshold, spike_fn, reset="delayed"):
    """One LIF update. Returns ``(v_t, y_t)``.

    x_t, v_prev, y_prev: (batch, ...features) input current, previous potential and spikes.
    decay: ``1 - w_leak``, broadcastable to the features. threshold: scalar or per feature.
    spike_fn: a :class:`lifsg.surrogates.Surrogate` (Heaviside with surrogate backward).
    """
    if reset == "delayed":
        keep = ops.stop_gradient(ops.cast(ops.greater_equal(threshold - v_prev, 0), x_t.dtype))
        v = ops.relu(x_t + decay * v_prev * keep)
    elif reset == "subtract":
        v = ops.relu(x_t + decay * v_prev - threshold * ops.stop_gradient(y_prev))
    else:
        v = ops.relu(x_t + decay * v_prev) * (1.0 - ops.stop_gradient(y_prev))
    return v, spike_fn(v - threshold)


def scan(step, init, xs):
    """``carry, ys = scan(step, init, xs)`` over the leading axis of ``xs``.

    step(carry, x_t) -> (carry, y_t) with a single tensor y_t. TensorFlow gets a plain
    ``tf.while_loop`` writing one TensorArray (Keras' generic TF scan keeps the carry in
    TensorArrays and must output the carry's structure); other backends use ``ops.scan``.
    """
    if keras.backend.backend() != "tensorflow":
        return ops.scan(step, init, xs)
    import tensorflow as tf

    n = tf.shape(xs)[0]
    carry, y0 = step(init, xs[0])
    ys = tf.TensorArray(y0.dtype, size=n, element_shape=y0.shape).write(0, y0)

    def body(t, carry, ys):
        carry, y_t = step(carry, xs[t])
        return t + 1, carry, ys.write(t, y_t)

    _, carry, ys = tf.while_loop(lambda t, *_: t < n, body, (tf.constant(1), carry, ys))
    out = ys.stack()
    out.set_shape(xs.shape[:1].concatenate(y0.shape))
    return carry, out


def lif_loop(x, decay, threshold, spike_fn, reset="delayed", return_potential=False):
    """Run the LIF neuron over time.

    x: (batch, time, ...features) input currents. Returns spikes, or potentials if
    ``return_potential``, of the same shape and dtype.
    """
    x_tm = ops.moveaxis(x, 1, 0)
    zeros = ops.zeros_like(x_tm[0])

    def step(carry, x_t):
        v, y = lif_step(x_t, *carry, decay, threshold, spike_fn, reset)
        return (v, y), (v if return_potential else y)

    _, out = scan(step, (zeros, zeros), x_tm)
    return ops.moveaxis(out, 0, 1)


def leaky_integrator_loop(x, decay):
    """The non-spiking read-out: ``V_t = ReLU(x_t + decay * V_{t-1})``, ``V_{-1} = 0``.

    x: (batch, time, ...features). Returns V of the same shape.
    """
    x_tm = ops.moveaxis(x, 1, 0)

    def step(v, x_t):
        v = ops.relu(x_t + decay * v)
        return v, v

    _, out = scan(step, ops.zeros_like(x_tm[0]), x_tm)
    return ops.moveaxis(out, 0, 1)
