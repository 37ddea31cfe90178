// Fused LIF time loop for TensorFlow (CPU): one op for the forward, one for the backward.
// Compiled and loaded by lifsg/fused.py; the math is that of lifsg/neuron.py (lif_step) with the
// same arithmetic, so values match the keras.ops loop bit for bit, NaN and inf included: ReLU
// and the spike pass NaN on (ReLU(NaN) = NaN, H(NaN) = NaN); the delayed and zero resets select.
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

// ReLU that passes NaN on (a NaN compares false): one max instruction when vectorised.
template <typename T>
static inline T Relu(T a) {
  return a < T(0) ? T(0) : a;
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
          nv = Relu(xo[c] + (th[c] - p >= T(0) ? d[c] * p : T(0)));
        } else if (MODE == 1) {
          nv = Relu(xo[c] + d[c] * p - th[c] * yo[c]);
        } else if (MODE == 2) {
          nv = yo[c] > T(0) ? T(0) : Relu(xo[c] + d[c] * p);
        } else {
          nv = Relu(xo[c] + d[c] * p);
        }
        const T u = nv - th[c];
        const T s = MODE == 3 ? T(0) : u >= T(0) ? T(1) : u < T(0) ? T(0) : u;  // H(NaN) = NaN
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
