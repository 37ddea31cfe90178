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

NaN propagates, the same in the loop (eager, graph or XLA), the fused kernel and
:mod:`lifsg.reference`: ReLU and the spike pass NaN on (``H(NaN) = NaN``), so a NaN input gives
a NaN potential and a NaN spike at its step, and the next layer sees it. The "delayed" and
"zero" resets are selections, not products with a 0/1 factor (XLA turns such a product into a
selection anyway, while ``NaN * 0`` is NaN), and NaN compares false: the delayed reset does not
keep a NaN potential, "zero" sees no spike in a NaN one and keeps it, "subtract" is arithmetic;
so after the NaN step "delayed" recovers and "subtract" and "zero" stay NaN. An infinite
potential spikes; "delayed" and "zero" then drop it. The read-out stays NaN once it is.
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
        keep = ops.greater_equal(threshold - v_prev, 0)
        v = ops.relu(x_t + ops.where(keep, decay * v_prev, 0.0))
    elif reset == "subtract":
        v = ops.relu(x_t + decay * v_prev - threshold * ops.stop_gradient(y_prev))
    else:
        v = ops.where(ops.greater(y_prev, 0), 0.0, ops.relu(x_t + decay * v_prev))
    return v, spike(v - threshold, spike_fn)


def spike(u, spike_fn):
    """Spikes ``H(u)`` at ``u = V - threshold`` with ``spike_fn``'s surrogate backward, and
    ``H(NaN) = NaN``: a NaN potential gives a NaN spike, not a silent 0 (adding 0 elsewhere
    changes no value; the gradient is the spike function's)."""
    return spike_fn(u) + ops.stop_gradient(ops.where(ops.isnan(u), u, 0.0))


IMPLEMENTATIONS = ("auto", "fused", "loop")


def check_implementation(implementation):
    """Return ``implementation`` if it is one of :data:`IMPLEMENTATIONS`, else raise ValueError.

    - ``"auto"`` (default): the fused C++ kernel (:mod:`lifsg.fused`) where it can run
      (:func:`lifsg.fused.runs_here`: TensorFlow backend, float32/float64, not inside XLA
      compilation, on a CPU, the kernel compiles); the loop otherwise. It measured fastest
      on CPU (benchmarks/README.md).
    - ``"fused"``: always the fused kernel (raises where it cannot run).
    - ``"loop"``: the keras.ops loop (a ``tf.while_loop`` over a TensorArray on TensorFlow,
      ``ops.scan`` on other backends); XLA compiles it.
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(
            f"unknown implementation {implementation!r}; valid: {', '.join(IMPLEMENTATIONS)}"
        )
    return implementation


def _use_fused(x, implementation):
    check_implementation(implementation)
    if implementation == "loop":
        return False
    from lifsg import fused

    if implementation == "auto":
        return fused.runs_here(x)
    if keras.backend.backend() != "tensorflow" or not fused.supports(x):
        raise ValueError(
            "implementation 'fused' needs the TensorFlow backend and float32/float64 inputs"
            f" of rank >= 3, got {keras.backend.backend()} {x.dtype} rank {len(x.shape)}"
        )
    if fused.xla_compiling():
        raise ValueError(
            "implementation 'fused' cannot run inside XLA compilation (jit_compile=True): the"
            " fused op has no XLA kernel; use implementation 'auto' or 'loop'"
        )
    fused.build()
    return True


def scan(step, init, xs):
    """``carry, ys = scan(step, init, xs)`` over the leading axis of ``xs``.

    step(carry, x_t) -> (carry, y_t), where y_t has the shape and dtype of x_t. TensorFlow gets
    a plain ``tf.while_loop`` that reads ``xs`` from one TensorArray and writes ``ys`` to another
    (reading ``xs[t]`` by slicing would make the backward pass O(T^2): each step's slice
    gradient is a dense tensor of the whole sequence); other backends use ``ops.scan``. An
    empty leading axis gives ``init`` and an empty ``ys``.
    """
    if keras.backend.backend() != "tensorflow":
        return ops.scan(step, init, xs)
    import tensorflow as tf

    n = xs.shape[0]  # static where known (XLA needs a static trip count)
    if n == 0:
        return init, xs
    padded = n is None
    if padded:
        # A length known only at run time may be 0, and an empty TensorArray can neither stack
        # (its element shape is not fully known) nor compile under XLA: one zero step past the
        # end keeps both arrays non-empty. The loop never runs it.
        n = tf.shape(xs)[0]
        xs = tf.concat([xs, tf.zeros(tf.concat([[1], tf.shape(xs)[1:]], 0), xs.dtype)], 0)
    size = n + 1 if padded else n
    xs_ta = tf.TensorArray(xs.dtype, size=size, element_shape=xs.shape[1:]).unstack(xs)
    ys = tf.TensorArray(xs.dtype, size=size, element_shape=xs.shape[1:])

    def body(t, carry, ys):
        carry, y_t = step(carry, xs_ta.read(t))
        return t + 1, carry, ys.write(t, y_t)

    _, carry, ys = tf.while_loop(
        lambda t, *_: t < n, body, (tf.constant(0), init, ys), maximum_iterations=n
    )
    if padded:
        return carry, ys.write(n, xs_ta.read(n)).stack()[:n]
    return carry, ys.stack()


def lif_loop(
    x,
    decay,
    threshold,
    spike_fn,
    reset="delayed",
    return_potential=False,
    implementation="auto",
    initial_state=None,
):
    """Run the LIF neuron over time.

    x: (batch, time, ...features) input currents. Returns spikes, or potentials if
    ``return_potential``, of the same shape and dtype. ``implementation`` ("auto", "fused" or
    "loop", see :func:`check_implementation`) chooses the fused kernel or the loop; both give
    the same values and gradients.
    initial_state: the potential before step 0, (batch, ...features), to continue a sequence
    (spikes before step 0: ``V - threshold >= 0``); default zeros. Its gradient is returned.
    """
    if initial_state is not None:  # step 0 from that state, then on from a zero state: the
        # next update adds nothing to the (non-negative) V_0, so the values are the same bits
        y_prev = ops.cast(ops.greater_equal(initial_state - threshold, 0), x.dtype)
        v0, _ = lif_step(x[:, 0], initial_state, y_prev, decay, threshold, spike_fn, reset)
        batch = ops.arange(ops.shape(x)[0], dtype="int32")
        x = ops.scatter_update(x, ops.stack([batch, ops.zeros_like(batch)], axis=1), v0)
    if _use_fused(x, implementation):
        from lifsg import fused

        return fused.lif(x, decay, threshold, spike_fn, reset, return_potential)
    x_tm = ops.moveaxis(x, 1, 0)
    zeros = ops.zeros(ops.shape(x_tm)[1:], x.dtype)

    def step(carry, x_t):
        v, y = lif_step(x_t, *carry, decay, threshold, spike_fn, reset)
        return (v, y), (v if return_potential else y)

    _, out = scan(step, (zeros, zeros), x_tm)
    return ops.moveaxis(out, 0, 1)


def leaky_integrator_loop(x, decay, implementation="auto"):
    """The non-spiking read-out: ``V_t = ReLU(x_t + decay * V_{t-1})``, ``V_{-1} = 0``.

    x: (batch, time, ...features). Returns V of the same shape. ``implementation`` as in
    :func:`lif_loop`.
    """
    if _use_fused(x, implementation):
        from lifsg import fused

        return fused.leaky_integrator(x, decay)
    x_tm = ops.moveaxis(x, 1, 0)

    def step(v, x_t):
        v = ops.relu(x_t + decay * v)
        return v, v

    _, out = scan(step, ops.zeros(ops.shape(x_tm)[1:], x.dtype), x_tm)
    return ops.moveaxis(out, 0, 1)
