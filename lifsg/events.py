"""Event-driven input projection: ``x @ kernel`` from the non-zero entries of ``x`` only.

A layer fed by spikes (the 0/1 output of an encoder or of a LIF layer) mostly multiplies
zeros: in the paper's MNIST setting 0.06 % of the encoder's entries are spikes. The event path
computes the same projection from the events (C++ op, lifsg/kernels/events.cc):

- forward: each output row is the sum of ``x[r, i] * kernel[i]`` over the non-zero ``x[r, i]``
  (for spikes: the sum of the kernel rows of the active inputs); the events are kept as a
  compact list (row offsets, columns, values; 12 bytes per event) instead of ``x``;
- backward: the kernel gradient ``x^T g`` is accumulated only at the events; the input
  gradient ``g kernel^T`` is a dense matmul, computed only where something upstream needs it
  (TensorFlow prunes it otherwise, e.g. behind an encoder).

Values and gradients equal the dense matmul's up to float summation order. Any mostly-zero
input works (values other than 1 are multiplied in); NaN and inf inputs propagate as in the
matmul. A non-finite kernel entry reaches only the rows whose input at that feature is
non-zero (the matmul would spread ``0 * inf = NaN`` to every row).

``projection`` (a layer argument of :class:`lifsg.DenseLIF` and :class:`lifsg.LeakyReadout`):

- ``"auto"`` (default): events for spikes that carry their events (:func:`poisson_spikes`,
  the PoissonEncoder's) and, for other input, where the layer has at least :data:`MIN_UNITS`
  units and the batch's density is at most :data:`MAX_DENSITY` (measured by the op itself: a
  look at 64 Ki entries, then the exact count of its pass); the dense matmul otherwise;
- ``"events"``: always the event path; ``"dense"``: always ``keras.ops.matmul``.

The event path needs the TensorFlow backend, float32/float64 and a CPU (the ops have CPU
kernels only); elsewhere (JAX and other backends, float16, inside XLA compilation, ops placed
on a GPU) every choice computes the dense matmul.
"""

import threading
import warnings

import keras
from keras import ops

from lifsg import fused, kernels

PROJECTIONS = ("auto", "dense", "events")
MAX_DENSITY = 0.1  # "auto": events at or below this fraction of non-zero inputs
MIN_UNITS = 32  # "auto": narrower projections are cheaper as a matmul than a scan for events


def check_projection(projection):
    """Return ``projection`` if it is one of :data:`PROJECTIONS`, else raise ValueError."""
    if projection not in PROJECTIONS:
        raise ValueError(f"unknown projection {projection!r}; valid: {', '.join(PROJECTIONS)}")
    return projection


def supported(x):
    """Whether the event ops can run on ``x`` here (see the module doc)."""
    if keras.backend.backend() != "tensorflow":
        return False
    dtype = keras.backend.standardize_dtype(x.dtype)
    if dtype not in ("float32", "float64") or fused.xla_compiling():
        return False
    return fused.on_cpu(x) and available()


def project(x, kernel, projection="auto"):
    """``x @ kernel`` over the last axis: x (..., F), kernel (F, U), one float dtype -> (..., U).

    ``projection`` as in the module doc. Input made by :func:`poisson_spikes` (directly or
    through reshapes) is not scanned: its events come with it.
    """
    check_projection(projection)
    units = kernel.shape[-1]
    if projection == "dense" or not supported(x):
        return ops.matmul(x, kernel)
    import tensorflow as tf

    kernel = tf.convert_to_tensor(kernel)
    attached = _attached_events(x)
    if attached is not None:
        out = _matmul_attached(*attached, kernel)
    elif projection == "auto" and units < MIN_UNITS:
        return ops.matmul(x, kernel)
    else:
        max_density = -1.0 if projection == "events" else MAX_DENSITY
        out = _matmul_scanned(tf.reshape(x, [-1, x.shape[-1]]), kernel, max_density)
    out = tf.reshape(out, tf.concat([tf.shape(x)[:-1], [units]], axis=0))
    out.set_shape(x.shape[:-1].concatenate([units]))
    return out


def _matmul_scanned(x2, kernel, max_density):
    """(R, F) @ (F, U) from the events found in x2; dense above ``max_density`` (if >= 0)."""
    import tensorflow as tf

    lib = build()
    features = x2.shape[-1]

    @tf.custom_gradient
    def run(x2, kernel):
        splits, cols, vals, ok = lib.lifsg_events_from_dense(x2, max_density=max_density)

        def events_out():
            return lib.lifsg_events_matmul(splits, cols, vals, kernel)

        y = events_out() if max_density < 0 else tf.cond(ok, events_out, lambda: x2 @ kernel)

        def grad(g):
            gx = tf.matmul(g, kernel, transpose_b=True)  # pruned where nothing needs it

            def events_gw():
                return lib.lifsg_events_kernel_grad(splits, cols, vals, g, features=features)

            if max_density < 0:
                return gx, events_gw()
            return gx, tf.cond(ok, events_gw, lambda: tf.matmul(x2, g, transpose_a=True))

        return y, grad

    return run(x2, kernel)


def _matmul_attached(splits, cols, vals, kernel):
    """``x @ kernel`` for x given by its events; x itself is never formed (no gradient)."""
    import tensorflow as tf

    lib = build()
    features = kernel.shape[0]

    @tf.custom_gradient
    def run(kernel):
        def grad(g):
            return lib.lifsg_events_kernel_grad(splits, cols, vals, g, features=features)

        return lib.lifsg_events_matmul(splits, cols, vals, kernel), grad

    return run(kernel)


def _attached_events(x):
    """(row_splits, cols, vals) if graph tensor ``x`` is an events-to-dense result, possibly
    reshaped, with the same last axis; else None."""
    import tensorflow as tf

    if not isinstance(x, tf.Tensor) or isinstance(x, tf.__internal__.EagerTensor):
        return None  # eager values (also those captured by a function) carry no op
    t = x
    while t.op.type in ("Reshape", "Identity"):
        t = t.op.inputs[0]
    if t.op.type != "LifsgEventsToDense" or t.shape[-1] != x.shape[-1]:
        return None
    return tuple(t.op.inputs)


def to_dense(row_splits, cols, vals, features):
    """The (R, features) matrix of the events (tagged: :func:`project` reuses the events)."""
    return build().lifsg_events_to_dense(row_splits, cols, vals, features=features)


def poisson_supported(p, max_p):
    """Whether :func:`poisson_spikes` serves a rate code with spike probabilities up to
    ``max_p`` per step: sparse enough (``max_p <= MAX_DENSITY``) and the event ops run."""
    return max_p <= MAX_DENSITY and supported(p)


def poisson_spikes(p, steps, seed_generator):
    """Bernoulli spikes: (batch, features) probabilities ``p`` -> (batch, steps, features) 0/1.

    The same process as one uniform draw per step and unit, drawn from its inter-spike gaps
    (geometric: ``floor(log(u) / log(1 - p))`` steps, ``u`` uniform in (0, 1], float64), so
    the cost grows with the spikes, not with ``steps * features``. The result carries its
    events: a :func:`project` of it (e.g. the DenseLIF after a PoissonEncoder) never reads
    the dense tensor, which is then not even formed. One draw of ``seed_generator`` per call.
    """
    import tensorflow as tf

    features = p.shape[-1]
    batch = tf.shape(p, out_type=tf.int64)[0]
    flat = tf.reshape(tf.cast(p, tf.float64), [-1])
    unit = tf.where(flat > 0)[:, 0]  # (batch * features) units that can spike
    log_q = tf.math.log1p(-tf.gather(flat, unit))  # -inf where p = 1: a spike every step
    seed = tf.cast(tf.math.floormod(seed_generator.next(), tf.int32.max - 1), tf.int32)

    def draw(i, unit, log_q, t, found_unit, found_t):
        u = 1.0 - tf.random.stateless_uniform(
            tf.shape(unit), tf.random.experimental.stateless_fold_in(seed, i), dtype=tf.float64
        )
        t = t + 1 + tf.cast(tf.floor(tf.math.log(u) / log_q), tf.int64)
        live = t < steps
        unit, log_q, t = (tf.boolean_mask(v, live) for v in (unit, log_q, t))
        return i + 1, unit, log_q, t, found_unit.write(i, unit), found_t.write(i, t)

    arrays = [
        tf.TensorArray(tf.int64, 0, dynamic_size=True, element_shape=[None], infer_shape=False)
        for _ in range(2)
    ]
    init = (tf.constant(0), unit, log_q, -tf.ones_like(unit), *arrays)
    shapes = (tf.TensorShape([]), *[tf.TensorShape([None])] * 3, *[tf.TensorShape(None)] * 2)
    *_, found_unit, found_t = tf.while_loop(
        lambda i, unit, *_: tf.size(unit) > 0,
        draw,
        init,
        shape_invariants=shapes,
        maximum_iterations=steps + 1,
    )
    unit, t = found_unit.concat(), found_t.concat()
    batch_index, feature = unit // features, unit % features
    order = tf.argsort((batch_index * steps + t) * features + feature)
    rows = tf.gather(batch_index * steps + t, order)
    splits = tf.searchsorted(rows, tf.range(batch * steps + 1), side="left", out_type=tf.int64)
    cols = tf.cast(tf.gather(feature, order), tf.int32)
    vals = tf.ones(tf.shape(cols), dtype=p.dtype)
    spikes = to_dense(splits, cols, vals, features)
    return tf.reshape(spikes, tf.stack([batch, steps, features]))


_lock = threading.Lock()
_module = None
_error = None


def build(rebuild=False):
    """Load the event ops (compiling ``lifsg/kernels/events.cc`` where the cache of
    :mod:`lifsg.kernels` has no verified library); return the op module or raise."""
    global _module
    with _lock:
        if _module is not None and not rebuild:
            return _module
        import tensorflow as tf

        _module = tf.load_op_library(kernels.cached_library("events", rebuild))
        for op in _NOT_DIFFERENTIABLE:
            if op not in _registered:
                tf.no_gradient(op)
                _registered.add(op)
        return _module


_NOT_DIFFERENTIABLE = (  # integer or 0/1 results; the others sit inside custom gradients
    "LifsgEventsFromDense",
    "LifsgEventsToDense",
    "LifsgSpikeBits",
    "LifsgBitsToSpikes",
)
_registered = set()


def available():
    """True where the event ops compile and load (the first failure is warned about once)."""
    global _error
    if _module is not None:
        return True
    if _error is not None:
        return False
    try:
        build()
        return True
    except Exception as err:  # no compiler, missing headers: the dense paths serve
        _error = err
        warnings.warn(f"lifsg: event ops unavailable, using dense paths ({err})", stacklevel=2)
        return False
