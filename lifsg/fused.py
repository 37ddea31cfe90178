"""Fused LIF time loop for TensorFlow: one C++ kernel for the forward, one for the backward.

The whole recurrence of :mod:`lifsg.neuron` runs inside a single TensorFlow op per direction,
so a 500-step sequence costs two op launches instead of thousands. The math is exactly that of
:func:`lifsg.neuron.lif_step` (delayed reset with detached reset factor, ReLU floor, resets
"delayed", "subtract", "zero", NaN passed on) and of the non-spiking read-out; the gradient is
wrapped with ``tf.custom_gradient`` over the whole loop and needs only the potentials ``V`` (the
ReLU mask is ``V > 0``, the reset factor and the previous spikes follow from ``V_{t-1}``). The
surrogate derivative is applied in one vectorised TensorFlow expression over the whole sequence,
so any :class:`lifsg.surrogates.Surrogate`, custom ones included, works unchanged.

The ops have CPU kernels only and no XLA kernel: :func:`runs_here` tells :mod:`lifsg.neuron`
where ``implementation="auto"`` may use them (not inside XLA compilation, not where the ops
would be placed on a GPU or another accelerator).

The C++ source is ``lifsg/kernels/lif.cc``, compiled on first use and cached by
:mod:`lifsg.kernels` (verified by a digest before each load, rebuilt where it does not match).
Where no compiler is present or the build fails, :func:`available` is False
(:func:`unavailable_reason` says why, with the compiler's message) and :mod:`lifsg.neuron` uses
its keras.ops loop. ``python -m lifsg.fused`` builds the library ahead of time (``--rebuild``
compiles it afresh).
"""

import argparse
import sys
import threading
import warnings

from lifsg import kernels, surrogates

MODES = {"delayed": 0, "subtract": 1, "zero": 2, "integrator": 3}
_lock = threading.Lock()
_module = None
_error = None


def build(rebuild=False):
    """Load the kernels (compiling them where the cache has no verified library); return the op
    module or raise RuntimeError with the compiler's message.

    rebuild: compile afresh even if the cache holds a good library (meant for a fresh process:
    a library already loaded stays loaded).
    """
    global _module, _error
    with _lock:
        if _module is not None and not rebuild:
            return _module
        import tensorflow as tf

        _module = tf.load_op_library(kernels.cached_library("lif", rebuild))
        _error = None
        return _module


def available():
    """True where the TensorFlow backend is active and the kernels compile and load.

    The first failure is remembered (see :func:`unavailable_reason`) and warned about once.
    """
    global _error
    import keras

    if keras.backend.backend() != "tensorflow":
        return False
    if _module is not None:
        return True
    if _error is not None:
        return False
    try:
        build()
        return True
    except Exception as err:  # no compiler, missing headers, ABI mismatch: fall back
        _error = err
        warnings.warn(
            f"lifsg: fused LIF kernel unavailable, using the keras.ops loop ({err})",
            stacklevel=2,
        )
        return False


def unavailable_reason():
    """Why the kernels are unavailable (None where they are, or were not tried yet)."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return f"the fused kernel needs the TensorFlow backend, not {keras.backend.backend()}"
    return None if _error is None else str(_error)


def supports(x):
    """Whether the fused kernel handles this tensor (float32/float64, rank >= 3)."""
    import keras

    dtype = keras.backend.standardize_dtype(x.dtype)
    return dtype in ("float32", "float64") and len(x.shape) >= 3


def xla_compiling():
    """True while TensorFlow traces a function for XLA (``jit_compile=True``)."""
    import tensorflow as tf
    from tensorflow.python.ops import control_flow_util

    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def _accelerators():
    """TensorFlow's logical devices other than CPUs (GPUs, TPUs, pluggable devices)."""
    import tensorflow as tf

    return [d.name for d in tf.config.list_logical_devices() if d.device_type != "CPU"]


def on_cpu(x):
    """Whether an op on ``x`` created here runs on a CPU.

    Eager: the device TensorFlow picks for an op on ``x``; in a graph: the device scope in
    force, and where none is, whether TensorFlow sees no accelerator (its placer prefers them).
    """
    import tensorflow as tf

    device = tf.identity(x).device
    if device:
        return tf.DeviceSpec.from_string(device).device_type == "CPU"
    return not _accelerators()


def runs_here(x):
    """Whether ``implementation="auto"`` should run the fused kernel on ``x``: TensorFlow
    backend, a supported tensor, not inside XLA compilation, on a CPU, and the kernel loads."""
    import keras

    if keras.backend.backend() != "tensorflow" or not supports(x) or xla_compiling():
        return False
    return on_cpu(x) and available()


def _vector(value, n, dtype):
    import tensorflow as tf

    value = tf.cast(tf.convert_to_tensor(value), dtype)
    return tf.broadcast_to(tf.reshape(value, [-1]) if value.shape.rank else value, [n])


def lif(x, decay, threshold, spike_fn, reset="delayed", return_potential=False):
    """Fused LIF over (batch, time, ...features). Same result and gradients as the loop."""
    import tensorflow as tf

    ops_module = build()
    mode = MODES[reset]
    n = x.shape[-1]
    flat = isinstance(spike_fn, surrogates.Flat)
    axes = list(range(len(x.shape) - 1))

    def forward(x, decay, theta):
        v, y = ops_module.lifsg_lif_forward(x, decay, theta, mode=mode)

        def grad(upstream):
            if return_potential:
                g, g_theta = upstream, None  # V is the output: no spike path
            else:
                g = upstream
                if not flat:
                    g = upstream * tf.cast(spike_fn.derivative(v - theta), x.dtype)
                g_theta = -tf.reduce_sum(g, axis=axes)
            gx, gdecay, gtheta = ops_module.lifsg_lif_backward(v, g, decay, theta, mode=mode)
            return gx, gdecay, gtheta if g_theta is None else gtheta + g_theta

        return (v if return_potential else y), grad

    if isinstance(threshold, (int, float)):  # a constant: no threshold gradient to compute
        theta = _vector(threshold, n, x.dtype)

        @tf.custom_gradient
        def run(x, decay):
            out, grad = forward(x, decay, theta)
            return out, lambda upstream: grad(upstream)[:2]

        return run(x, _vector(decay, n, x.dtype))

    @tf.custom_gradient
    def run_theta(x, decay, theta):
        return forward(x, decay, theta)

    return run_theta(x, _vector(decay, n, x.dtype), _vector(threshold, n, x.dtype))


def leaky_integrator(x, decay):
    """Fused non-spiking read-out ``V_t = ReLU(x_t + decay * V_{t-1})`` over (batch, time, ...)."""
    import tensorflow as tf

    ops_module = build()
    n = x.shape[-1]
    mode = MODES["integrator"]

    @tf.custom_gradient
    def run(x, decay):
        zero = tf.zeros_like(decay)
        v, _ = ops_module.lifsg_lif_forward(x, decay, zero, mode=mode)

        def grad(upstream):
            gx, gdecay, _ = ops_module.lifsg_lif_backward(v, upstream, decay, zero, mode=mode)
            return gx, gdecay

        return v, grad

    return run(x, _vector(decay, n, x.dtype))


def main(argv=None):
    """``python -m lifsg.fused [--rebuild]``: build (or verify) the cached library."""
    parser = argparse.ArgumentParser(prog="python -m lifsg.fused", description=main.__doc__)
    parser.add_argument(
        "--rebuild", action="store_true", help="compile afresh even if the cache is good"
    )
    args = parser.parse_args(argv)
    try:
        build(rebuild=args.rebuild)
    except Exception as err:
        print(f"lifsg.fused: {err}", file=sys.stderr)
        return 1
    print(kernels.library_path("lif"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
