"""Long sequences in bounded memory: a spiking layer run over time in chunks and recomputed
in the backward pass (``time_chunk`` of :class:`lifsg.LIF` and :class:`lifsg.DenseLIF`).

The forward pass runs ``time_chunk`` steps at a time (a ``tf.while_loop``), each chunk
continuing from the potential where the previous one ended (``initial_state`` of
:func:`lifsg.neuron.lif_loop`: the same values, bit for bit). It keeps one potential
(batch, ...features) per chunk boundary and the spikes as bits (one bit per entry) until the
output is formed. The backward pass recomputes each chunk from its boundary potential, last
chunk first (currents, projection included, and potentials), back-propagates through that
chunk alone and hands the gradient of its first potential to the chunk before; the layer's
input gradient is computed only where a gradient tape watches the input. Nothing of the size
(batch, time, features) is stored besides the input, the output and their gradients, where the
whole-sequence path also keeps the currents or potentials of every step (and the keras.ops loop
every intermediate). The price: one more forward pass (projection and neuron) per chunk.
Gradients equal the whole-sequence ones up to float summation order.

Needs TensorFlow on CPU with float32/float64 (the bit ops of :mod:`lifsg.events`) and a static
number of steps above ``time_chunk``; otherwise the layer runs the whole sequence at once.
"""

import numbers

from lifsg import events, neuron


def check_time_chunk(time_chunk):
    """Return ``time_chunk`` (None or an integer >= 1), else raise ValueError."""
    if time_chunk is None:
        return None
    integral = isinstance(time_chunk, numbers.Integral) and not isinstance(time_chunk, bool)
    if not integral or time_chunk < 1:
        raise ValueError(f"time_chunk must be None or a positive integer, got {time_chunk!r}")
    return int(time_chunk)


def applies(inputs, time_chunk):
    """Whether :func:`lif` runs ``inputs`` in chunks: a chunk size below the static number of
    steps, and the spike-bit ops can run (TensorFlow on CPU, float32/float64)."""
    steps = inputs.shape[1]
    return (
        time_chunk is not None and steps is not None and steps > time_chunk
    ) and events.supported(inputs)


def _potentials(layer, x, v_prev):
    """V of one chunk of a LIF layer from its input slice and the potential before it."""
    return neuron.lif_loop(
        layer._currents(x),
        layer._decay(),
        layer._threshold(),
        layer.surrogate,
        layer.reset,
        return_potential=True,
        implementation=layer.implementation,
        initial_state=v_prev,
    )


def _chunk(layer, x, v_prev):
    """(output, last potential) of one chunk, differentiable (for the backward pass)."""
    v = _potentials(layer, x, v_prev)
    out = v if layer.return_potential else layer.surrogate(v - layer._threshold())
    return out, v[:, -1]


def _watched(x):
    """Whether a gradient tape needs the gradient of ``x`` (True where this is unknown)."""
    try:
        from tensorflow.python.eager import record
    except ImportError:  # pragma: no cover
        return True
    return record.should_record_backprop([x])


def lif(layer, inputs):
    """``layer(inputs)`` for a :class:`lifsg.LIF` (or DenseLIF) in chunks of
    ``layer.time_chunk`` steps, with the recomputing backward pass described above."""
    import tensorflow as tf

    lib = events.build()
    steps, size, dtype = inputs.shape[1], layer.time_chunk, layer.compute_dtype
    chunks = -(-steps // size)
    out_shape = inputs.shape[2:-1].concatenate([layer.features])  # per step
    loop = dict(maximum_iterations=chunks, parallel_iterations=1)

    def piece(t, i):
        """Steps [i * size, (i + 1) * size) of t, zero-padded past the end (causal: padding
        changes nothing before it, and its outputs are dropped)."""
        c = t[:, i * size : (i + 1) * size]
        if steps % size:
            pad = [[0, 0], [0, size - tf.shape(c)[1]]] + [[0, 0]] * (len(t.shape) - 2)
            c = tf.pad(c, pad)
        c.set_shape(t.shape[:1].concatenate([size]).concatenate(t.shape[2:]))
        return c

    def assemble(stacked):
        """(chunks, batch, size, ...) -> (batch, steps, ...)."""
        rank = len(stacked.shape)
        y = tf.transpose(stacked, [1, 0, *range(2, rank)])
        y = tf.reshape(y, tf.concat([tf.shape(y)[:1], [chunks * size], tf.shape(y)[3:]], 0))
        return y[:, :steps]

    def spike_bits(v):
        threshold = tf.reshape(tf.cast(layer._threshold(), dtype), [-1])
        threshold = tf.broadcast_to(threshold, [layer.features])
        return lib.lifsg_spike_bits(tf.reshape(v, [tf.shape(v)[0], size, -1]), threshold)

    x = tf.convert_to_tensor(inputs)
    need_gx = _watched(x)

    @tf.custom_gradient
    def run(x):
        zeros = tf.zeros(tf.concat([tf.shape(x)[:1], out_shape], 0), dtype)

        def forward(i, v, states, outs):
            v_chunk = _potentials(layer, piece(x, i), v)
            out = v_chunk if layer.return_potential else spike_bits(v_chunk)
            return i + 1, v_chunk[:, -1], states.write(i, v), outs.write(i, out)

        out_type = dtype if layer.return_potential else tf.uint8
        arrays = (tf.TensorArray(dtype, chunks), tf.TensorArray(out_type, chunks))
        _, _, states, outs = tf.while_loop(
            lambda i, *_: i < chunks, forward, (0, zeros, *arrays), **loop
        )
        states = states.stack()  # the potential before each chunk (batch, ...features)
        if layer.return_potential:
            y = assemble(outs.stack())
        else:
            features = out_shape.num_elements()
            y = lib.lifsg_bits_to_spikes(outs.stack(), steps=steps, features=features, T=dtype)
            y = tf.reshape(y, tf.concat([tf.shape(x)[:2], out_shape], 0))

        def grad(g, variables=None):
            variables = list(variables or [])

            def backward(i, carry, totals, gx):
                j = chunks - 1 - i
                x_c, v_prev = piece(x, j), states[j]
                with tf.GradientTape() as tape:
                    tape.watch([x_c, v_prev])
                    out, v_last = _chunk(layer, x_c, v_prev)
                grads = tape.gradient(
                    [out, v_last],
                    [v_prev, *variables] + ([x_c] if need_gx else []),
                    output_gradients=[piece(g, j), carry],
                    unconnected_gradients=tf.UnconnectedGradients.ZERO,
                )
                totals = [a + b for a, b in zip(totals, grads[1:], strict=False)]
                return i + 1, grads[0], totals, gx.write(j, grads[-1]) if need_gx else gx

            gx = tf.TensorArray(x.dtype, chunks) if need_gx else tf.constant(0)
            init = (0, zeros, [tf.zeros_like(v) for v in variables], gx)
            _, _, totals, gx = tf.while_loop(lambda i, *_: i < chunks, backward, init, **loop)
            # No tape watches the input (e.g. data, an encoder's spikes): no input gradient.
            return (assemble(gx.stack()) if need_gx else None), totals

        return y, grad

    out = run(x)
    out.set_shape(inputs.shape[:2].concatenate(out_shape))
    return out
