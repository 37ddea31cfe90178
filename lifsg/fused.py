"""Fused LIF time loop for TensorFlow: one C++ kernel for the forward, one for the backward.

The whole recurrence of :mod:`lifsg.neuron` runs inside a single TensorFlow op per direction,
so a 500-step sequence costs two op launches instead of thousands. The math is exactly that of
:func:`lifsg.neuron.lif_step` (delayed reset with detached reset factor, ReLU floor, resets
"delayed", "subtract", "zero") and of the non-spiking read-out; the gradient is wrapped with
``tf.custom_gradient`` over the whole loop and needs only the potentials ``V`` (the ReLU mask is
``V > 0``, the reset factor and the previous spikes follow from ``V_{t-1}``). The surrogate
derivative is applied in one vectorised TensorFlow expression over the whole sequence, so any
:class:`lifsg.surrogates.Surrogate`, custom ones included, works unchanged.

The kernels are compiled on first use with the C++ compiler and TensorFlow's headers
(``tf.sysconfig``), cached under ``$LIFSG_CACHE_DIR`` (default ``~/.cache/lifsg``) keyed by the
source, TensorFlow version and Python platform. Where no compiler is present or the build fails,
:func:`available` is False and :mod:`lifsg.neuron` uses its pure keras.ops loop. Call
:func:`build` ahead of time (``python -m lifsg.fused``) to pay the ~30 s compile once.
"""

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings

from lifsg import surrogates

MODES = {"delayed": 0, "subtract": 1, "zero": 2, "integrator": 3}

_SOURCE = r"""
#include <algorithm>
#include <vector>
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/work_sharder.h"

using namespace tensorflow;

#define RS __restrict__

REGISTER_OP("LifsgLifForward")
    .Input("x: T")
    .Input("decay: T")
    .Input("threshold: T")
    .Output("v: T")
    .Output("y: T")
    .Attr("mode: int")
    .Attr("T: {float, double}")
    .SetShapeFn([](shape_inference::InferenceContext* c) {
      c->set_output(0, c->input(0));
      c->set_output(1, c->input(0));
      return OkStatus();
    });

REGISTER_OP("LifsgLifBackward")
    .Input("v: T")
    .Input("g: T")
    .Input("decay: T")
    .Input("threshold: T")
    .Output("gx: T")
    .Output("gdecay: T")
    .Output("gthreshold: T")
    .Attr("mode: int")
    .Attr("T: {float, double}")
    .SetShapeFn([](shape_inference::InferenceContext* c) {
      c->set_output(0, c->input(0));
      c->set_output(1, c->input(2));
      c->set_output(2, c->input(3));
      return OkStatus();
    });

// x, v, y: (B, T, R, C) flattened; decay, threshold: (C,).
static Status CheckShapes(const Tensor& x, const Tensor& decay, const Tensor& threshold) {
  if (x.dims() < 3) return errors::InvalidArgument("x must have rank >= 3 (batch, time, ...)");
  const int64_t c = x.dim_size(x.dims() - 1);
  if (decay.dims() != 1 || decay.dim_size(0) != c || threshold.dims() != 1 ||
      threshold.dim_size(0) != c)
    return errors::InvalidArgument("decay and threshold must be vectors of the last axis size");
  return OkStatus();
}

// One batch row of the forward recurrence; MODE is a compile-time constant so that the inner
// loop has no branches (spikes are random: branches would mispredict) and vectorises.
template <typename T, int MODE>
static void ForwardRow(const T* RS x, T* RS v, T* RS y, T* RS vprev, T* RS yprev,
                       const T* RS d, const T* RS th, int64_t S, int64_t R, int64_t C) {
  const int64_t F = R * C;
  for (int64_t t = 0; t < S; ++t) {
    const T* RS xt = x + t * F;
    T* RS vt = v + t * F;
    T* RS yt = y + t * F;
    for (int64_t r = 0; r < R; ++r) {
      const int64_t o = r * C;
      T* RS vo = vprev + o;
      T* RS yo = yprev + o;
      const T* RS xo = xt + o;
      T* RS vw = vt + o;
      T* RS yw = yt + o;
      for (int64_t c = 0; c < C; ++c) {
        const T p = vo[c];
        T nv;
        if (MODE == 0) {
          const T a = xo[c] + (th[c] - p >= T(0) ? d[c] * p : T(0));
          nv = a > T(0) ? a : T(0);
        } else if (MODE == 1) {
          const T a = xo[c] + d[c] * p - th[c] * yo[c];
          nv = a > T(0) ? a : T(0);
        } else if (MODE == 2) {
          const T a = xo[c] + d[c] * p;
          nv = (a > T(0) ? a : T(0)) * (T(1) - yo[c]);
        } else {
          const T a = xo[c] + d[c] * p;
          nv = a > T(0) ? a : T(0);
        }
        const T s = (MODE != 3 && nv - th[c] >= T(0)) ? T(1) : T(0);
        vw[c] = nv;
        yw[c] = s;
        vo[c] = nv;
        yo[c] = s;
      }
    }
  }
}

// One batch row of the backward recurrence (reverse time). g: dL/dV_t injected at each step.
template <typename T, int MODE>
static void BackwardRow(const T* RS v, const T* RS g, T* RS gx, T* RS gf, const T* RS zeros,
                        const T* RS d, const T* RS th, T* RS sd, T* RS st, int64_t S,
                        int64_t R, int64_t C) {
  const int64_t F = R * C;
  for (int64_t t = S - 1; t >= 0; --t) {
    const T* RS vt = v + t * F;
    const T* RS vm = t > 0 ? vt - F : zeros;
    const T* RS gt = g + t * F;
    T* RS gxt = gx + t * F;
    for (int64_t r = 0; r < R; ++r) {
      const int64_t o = r * C;
      const T* RS vo = vt + o;
      const T* RS po = vm + o;
      const T* RS go = gt + o;
      T* RS gxo = gxt + o;
      T* RS gfo = gf + o;
      for (int64_t c = 0; c < C; ++c) {
        const T ga = vo[c] > T(0) ? go[c] + gfo[c] : T(0);
        gxo[c] = ga;
        const T p = po[c];
        if (MODE == 0) {
          const T gk = th[c] - p >= T(0) ? ga : T(0);  // ga * keep
          sd[c] += gk * p;
          gfo[c] = gk * d[c];
        } else {
          sd[c] += ga * p;
          gfo[c] = ga * d[c];
          if (MODE == 1) st[c] += p - th[c] >= T(0) ? ga : T(0);
        }
      }
    }
  }
}

template <typename T>
class LifForwardOp : public OpKernel {
 public:
  explicit LifForwardOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("mode", &mode_));
  }
  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const Tensor& decay = ctx->input(1);
    const Tensor& threshold = ctx->input(2);
    OP_REQUIRES_OK(ctx, CheckShapes(x, decay, threshold));
    Tensor* v = nullptr;
    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &v));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, x.shape(), &y));
    const int64_t B = x.dim_size(0), S = x.dim_size(1), C = x.dim_size(x.dims() - 1);
    const int64_t F = B * S == 0 ? 0 : x.NumElements() / (B * S), R = C == 0 ? 0 : F / C;
    const T* xp = x.flat<T>().data();
    const T* dp = decay.flat<T>().data();
    const T* th = threshold.flat<T>().data();
    T* vp = v->flat<T>().data();
    T* yp = y->flat<T>().data();
    const int mode = mode_;
    auto work = [&](int64_t b0, int64_t b1) {
      std::vector<T> vprev(F), yprev(F);
      for (int64_t b = b0; b < b1; ++b) {
        std::fill(vprev.begin(), vprev.end(), T(0));
        std::fill(yprev.begin(), yprev.end(), T(0));
        const int64_t off = b * S * F;
        auto* f = mode == 0   ? ForwardRow<T, 0>
                  : mode == 1 ? ForwardRow<T, 1>
                  : mode == 2 ? ForwardRow<T, 2>
                              : ForwardRow<T, 3>;
        f(xp + off, vp + off, yp + off, vprev.data(), yprev.data(), dp, th, S, R, C);
      }
    };
    auto* pool = ctx->device()->tensorflow_cpu_worker_threads();
    Shard(pool->num_threads, pool->workers, B, std::max<int64_t>(1, 8 * S * F), work);
  }

 private:
  int mode_;
};

template <typename T>
class LifBackwardOp : public OpKernel {
 public:
  explicit LifBackwardOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("mode", &mode_));
  }
  void Compute(OpKernelContext* ctx) override {
    const Tensor& v = ctx->input(0);
    const Tensor& g = ctx->input(1);
    const Tensor& decay = ctx->input(2);
    const Tensor& threshold = ctx->input(3);
    OP_REQUIRES_OK(ctx, CheckShapes(v, decay, threshold));
    OP_REQUIRES(ctx, g.shape() == v.shape(), errors::InvalidArgument("g must match v"));
    Tensor* gx = nullptr;
    Tensor* gd = nullptr;
    Tensor* gt = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, v.shape(), &gx));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, decay.shape(), &gd));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, threshold.shape(), &gt));
    const int64_t B = v.dim_size(0), S = v.dim_size(1), C = v.dim_size(v.dims() - 1);
    const int64_t F = B * S == 0 ? 0 : v.NumElements() / (B * S), R = C == 0 ? 0 : F / C;
    const T* vp = v.flat<T>().data();
    const T* gp = g.flat<T>().data();
    const T* dp = decay.flat<T>().data();
    const T* th = threshold.flat<T>().data();
    T* gxp = gx->flat<T>().data();
    const int mode = mode_;
    std::vector<double> acc_d(B * C, 0.0), acc_t(B * C, 0.0);
    auto work = [&](int64_t b0, int64_t b1) {
      std::vector<T> gf(F), zeros(F, T(0)), sd(C), st(C);
      for (int64_t b = b0; b < b1; ++b) {
        std::fill(gf.begin(), gf.end(), T(0));
        std::fill(sd.begin(), sd.end(), T(0));
        std::fill(st.begin(), st.end(), T(0));
        const int64_t off = b * S * F;
        auto* f = mode == 0   ? BackwardRow<T, 0>
                  : mode == 1 ? BackwardRow<T, 1>
                  : mode == 2 ? BackwardRow<T, 2>
                              : BackwardRow<T, 3>;
        f(vp + off, gp + off, gxp + off, gf.data(), zeros.data(), dp, th, sd.data(), st.data(),
          S, R, C);
        for (int64_t c = 0; c < C; ++c) {
          acc_d[b * C + c] = sd[c];
          acc_t[b * C + c] = st[c];
        }
      }
    };
    auto* pool = ctx->device()->tensorflow_cpu_worker_threads();
    Shard(pool->num_threads, pool->workers, B, std::max<int64_t>(1, 8 * S * F), work);
    T* gdp = gd->flat<T>().data();
    T* gtp = gt->flat<T>().data();
    for (int64_t c = 0; c < C; ++c) {
      double sdc = 0.0, stc = 0.0;
      for (int64_t b = 0; b < B; ++b) {
        sdc += acc_d[b * C + c];
        stc += acc_t[b * C + c];
      }
      gdp[c] = static_cast<T>(sdc);
      gtp[c] = static_cast<T>(-stc);
    }
  }

 private:
  int mode_;
};

#define REGISTER(T)                                                                   \
  REGISTER_KERNEL_BUILDER(                                                            \
      Name("LifsgLifForward").Device(DEVICE_CPU).TypeConstraint<T>("T"),              \
      LifForwardOp<T>);                                                               \
  REGISTER_KERNEL_BUILDER(                                                            \
      Name("LifsgLifBackward").Device(DEVICE_CPU).TypeConstraint<T>("T"),             \
      LifBackwardOp<T>);
REGISTER(float)
REGISTER(double)
"""

# -ffp-contract=off: no fused multiply-adds, so the float results match the loop's bit for bit;
# -fno-trapping-math lets the selects vectorise (it changes no value).
_FLAGS = ["-shared", "-fPIC", "-O3", "-march=native", "-ffp-contract=off", "-fno-trapping-math"]
_lock = threading.Lock()
_module = None
_error = None


def _cache_dir():
    return os.environ.get("LIFSG_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "lifsg"
    )


def _cpu_flags():
    """The CPU's feature flags (the kernel is built with -march=native)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return line
    except OSError:
        pass
    return platform.processor()


def _library_path():
    import tensorflow as tf

    parts = [_SOURCE, " ".join(_FLAGS), tf.__version__, sys.version, platform.platform()]
    key = "\0".join([*parts, _cpu_flags()])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return os.path.join(_cache_dir(), f"lifsg_fused_{digest}.so")


def _compile(path):
    import tensorflow as tf

    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        raise RuntimeError("no C++ compiler (g++/c++) found")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(path)) as tmp:
        src = os.path.join(tmp, "lifsg_fused.cc")
        out = os.path.join(tmp, "lifsg_fused.so")
        with open(src, "w") as f:
            f.write(_SOURCE)
        cmd = [compiler, *_FLAGS, "-o", out, src]
        cmd += tf.sysconfig.get_compile_flags() + tf.sysconfig.get_link_flags()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"compiling the fused LIF kernel failed:\n{proc.stderr[-2000:]}")
        os.replace(out, path)  # atomic: concurrent builders never see half a file


def build():
    """Compile (or load from the cache) the kernels; return the op module or raise."""
    global _module, _error
    with _lock:
        if _module is not None:
            return _module
        import tensorflow as tf

        path = _library_path()
        if not os.path.exists(path):
            _compile(path)
        _module = tf.load_op_library(path)
        _error = None
        return _module


def available():
    """True where the TensorFlow backend is active and the kernels compile and load."""
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


def supports(x):
    """Whether the fused kernel handles this tensor (float32/float64, rank >= 3)."""
    import keras

    dtype = keras.backend.standardize_dtype(x.dtype)
    return dtype in ("float32", "float64") and len(x.shape) >= 3


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


if __name__ == "__main__":
    build()
    print(_library_path())
