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


IMPLEMENTATIONS = ("auto", "fused", "loop")
_implementation = "auto"


def set_implementation(name):
    """Choose how the time loop runs; returns the previous choice.

    - ``"auto"`` (default): the fused C++ kernel (:mod:`lifsg.fused`) where the backend is
      TensorFlow, the dtype float32/float64 and the kernel compiles; the loop otherwise.
      It measured fastest (benchmarks/README.md).
    - ``"fused"``: always the fused kernel (raises where it is unavailable).
    - ``"loop"``: the keras.ops loop (a ``tf.while_loop`` over a TensorArray on TensorFlow,
      ``ops.scan`` on other backends).

    The choice applies when a layer is called (traced), so set it before building a model.
    """
    global _implementation
    if name not in IMPLEMENTATIONS:
        raise ValueError(f"unknown implementation {name!r}; valid: {', '.join(IMPLEMENTATIONS)}")
    previous, _implementation = _implementation, name
    return previous


def get_implementation():
    """The current choice of :func:`set_implementation`."""
    return _implementation


def _use_fused(x):
    if _implementation == "loop":
        return False
    from lifsg import fused

    if _implementation == "fused":
        if keras.backend.backend() != "tensorflow" or not fused.supports(x):
            raise ValueError(
                "implementation 'fused' needs the TensorFlow backend and float32/float64 inputs"
                f" of rank >= 3, got {keras.backend.backend()} {x.dtype} rank {len(x.shape)}"
            )
        fused.build()
        return True
    return keras.backend.backend() == "tensorflow" and fused.supports(x) and fused.available()


def scan(step, init, xs):
    """``carry, ys = scan(step, init, xs)`` over the leading axis of ``xs``.

    step(carry, x_t) -> (carry, y_t) with a single tensor y_t. TensorFlow gets a plain
    ``tf.while_loop`` that reads ``xs`` from one TensorArray and writes ``ys`` to another
    (reading ``xs[t]`` by slicing would make the backward pass O(T^2): each step's slice
    gradient is a dense tensor of the whole sequence); other backends use ``ops.scan``.
    """
    if keras.backend.backend() != "tensorflow":
        return ops.scan(step, init, xs)
    import tensorflow as tf

    n = xs.shape[0] if xs.shape[0] is not None else tf.shape(xs)[0]  # static where known (XLA)
    xs_ta = tf.TensorArray(xs.dtype, size=n, element_shape=xs.shape[1:]).unstack(xs)
    carry, y0 = step(init, xs_ta.read(0))
    ys = tf.TensorArray(y0.dtype, size=n, element_shape=y0.shape).write(0, y0)

    def body(t, carry, ys):
        carry, y_t = step(carry, xs_ta.read(t))
        return t + 1, carry, ys.write(t, y_t)

    _, carry, ys = tf.while_loop(
        lambda t, *_: t < n, body, (tf.constant(1), carry, ys), maximum_iterations=n
    )
    out = ys.stack()
    out.set_shape(xs.shape[:1].concatenate(y0.shape))
    return carry, out


def lif_loop(x, decay, threshold, spike_fn, reset="delayed", return_potential=False):
    """Run the LIF neuron over time.

    x: (batch, time, ...features) input currents. Returns spikes, or potentials if
    ``return_potential``, of the same shape and dtype. Runs the fused kernel or the loop, as
    :func:`set_implementation` chose; both give the same values and gradients.
    """
    if _use_fused(x):
        from lifsg import fused

        return fused.lif(x, decay, threshold, spike_fn, reset, return_potential)
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
    if _use_fused(x):
        from lifsg import fused

        return fused.leaky_integrator(x, decay)
    x_tm = ops.moveaxis(x, 1, 0)

    def step(v, x_t):
        v = ops.relu(x_t + decay * v)
        return v, v

    _, out = scan(step, ops.zeros_like(x_tm[0]), x_tm)
    return ops.moveaxis(out, 0, 1)
