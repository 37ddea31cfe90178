// Event-driven input projection for lifsg (lifsg/events.py). Events are the non-zero entries
// of a matrix x (R, F), kept in compressed rows: row_splits (R + 1, int64), cols (int32) and
// vals, columns increasing within a row.
//
// LifsgEventsFromDense(x) -> row_splits, cols, vals, ok
//   The events of x, in one pass. With max_density >= 0 it gives up on input denser than
//   that (ok false, empty events): first after a look at up to 64 Ki entries in evenly spaced
//   rows (above twice the limit), else as soon as the count passes max_density * R * F.
// LifsgEventsToDense(row_splits, cols, vals) -> x (R, features)
// LifsgEventsMatmul(row_splits, cols, vals, w (F, U)) -> out (R, U)
//   out[r] = sum over the events of row r of vals * w[col]: x @ w from the events.
// LifsgEventsKernelGrad(row_splits, cols, vals, g (R, U)) -> gw (features, U)
//   gw[i] = sum over the events (r, i) of vals * g[r]: x^T g, the kernel gradient.
//
// Spikes as bits, for long sequences run in chunks (lifsg/chunked.py):
// LifsgSpikeBits(v (B, S, N), threshold (C)) -> bits (B, S, ceil(N / 8)) uint8: the spikes of
//   the potentials v, v[n] - threshold[n % C] >= 0 (as the LIF kernel decides), bit k of byte j
//   for n = 8j + k
// LifsgBitsToSpikes(bits (C, B, S, ceil(N / 8))) -> y (B, steps, N), steps <= C * S: chunk c
//   holds steps c * S ... c * S + S - 1 (the last one possibly past `steps`: dropped).
//
// All use TensorFlow's CPU thread pool. Results do not depend on the number of threads,
// except the kernel gradient's summation order (one partial sum per thread, added in order).
#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <vector>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/work_sharder.h"

using namespace tensorflow;
using shape_inference::InferenceContext;

#define RS __restrict__

REGISTER_OP("LifsgEventsFromDense")
    .Input("x: T")
    .Output("row_splits: int64")
    .Output("cols: int32")
    .Output("vals: T")
    .Output("ok: bool")
    .Attr("max_density: float")
    .Attr("T: {float, double}")
    .SetShapeFn([](InferenceContext* c) {
      for (int k = 0; k < 3; ++k) c->set_output(k, c->Vector(c->UnknownDim()));
      c->set_output(3, c->Scalar());
      return OkStatus();
    });

REGISTER_OP("LifsgEventsToDense")
    .Input("row_splits: int64")
    .Input("cols: int32")
    .Input("vals: T")
    .Output("x: T")
    .Attr("features: int")
    .Attr("T: {float, double}")
    .SetShapeFn([](InferenceContext* c) {
      int64_t features;
      TF_RETURN_IF_ERROR(c->GetAttr("features", &features));
      c->set_output(0, c->Matrix(c->UnknownDim(), features));
      return OkStatus();
    });

REGISTER_OP("LifsgEventsMatmul")
    .Input("row_splits: int64")
    .Input("cols: int32")
    .Input("vals: T")
    .Input("w: T")
    .Output("out: T")
    .Attr("T: {float, double}")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->Matrix(c->UnknownDim(), c->Dim(c->input(3), 1)));
      return OkStatus();
    });

REGISTER_OP("LifsgEventsKernelGrad")
    .Input("row_splits: int64")
    .Input("cols: int32")
    .Input("vals: T")
    .Input("g: T")
    .Output("gw: T")
    .Attr("features: int")
    .Attr("T: {float, double}")
    .SetShapeFn([](InferenceContext* c) {
      int64_t features;
      TF_RETURN_IF_ERROR(c->GetAttr("features", &features));
      c->set_output(0, c->Matrix(features, c->Dim(c->input(3), 1)));
      return OkStatus();
    });

REGISTER_OP("LifsgSpikeBits")
    .Input("v: T")
    .Input("threshold: T")
    .Output("bits: uint8")
    .Attr("T: {float, double}")
    .SetShapeFn([](InferenceContext* c) {
      shape_inference::ShapeHandle y;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 3, &y));
      shape_inference::DimensionHandle n = c->Dim(y, 2);
      shape_inference::DimensionHandle bytes = c->UnknownDim();
      if (c->ValueKnown(n)) bytes = c->MakeDim((c->Value(n) + 7) / 8);
      c->set_output(0, c->MakeShape({c->Dim(y, 0), c->Dim(y, 1), bytes}));
      return OkStatus();
    });

REGISTER_OP("LifsgBitsToSpikes")
    .Input("bits: uint8")
    .Output("y: T")
    .Attr("steps: int")
    .Attr("features: int")
    .Attr("T: {float, double}")
    .SetShapeFn([](InferenceContext* c) {
      int64_t steps, features;
      TF_RETURN_IF_ERROR(c->GetAttr("steps", &steps));
      TF_RETURN_IF_ERROR(c->GetAttr("features", &features));
      shape_inference::ShapeHandle bits;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &bits));
      c->set_output(0, c->MakeShape({c->Dim(bits, 1), steps, features}));
      return OkStatus();
    });

// Runs fn(block) for block in [0, blocks) on the CPU thread pool; cost: work per block.
static void RunBlocks(OpKernelContext* ctx, int64_t blocks, int64_t cost,
                      const std::function<void(int64_t)>& fn) {
  auto* pool = ctx->device()->tensorflow_cpu_worker_threads();
  Shard(pool->num_threads, pool->workers, blocks, std::max<int64_t>(1, cost),
        [&](int64_t b0, int64_t b1) {
          for (int64_t b = b0; b < b1; ++b) fn(b);
        });
}

static int64_t NumThreads(OpKernelContext* ctx) {
  return ctx->device()->tensorflow_cpu_worker_threads()->num_threads;
}

// Validates compressed rows against `features` columns; returns the number of rows.
template <typename T>
static Status CheckEvents(const Tensor& splits, const Tensor& cols, const Tensor& vals,
                          int64_t features, int64_t* rows) {
  if (splits.dims() != 1 || splits.dim_size(0) < 1 || cols.dims() != 1 || vals.dims() != 1 ||
      cols.dim_size(0) != vals.dim_size(0))
    return errors::InvalidArgument("events must be row_splits (R + 1), cols and vals (nnz)");
  const int64_t R = splits.dim_size(0) - 1;
  const int64_t* sp = splits.flat<int64_t>().data();
  if (sp[0] != 0 || sp[R] != cols.dim_size(0))
    return errors::InvalidArgument("row_splits must run from 0 to the number of events");
  for (int64_t r = 0; r < R; ++r)
    if (sp[r + 1] < sp[r]) return errors::InvalidArgument("row_splits must not decrease");
  const int32* cp = cols.flat<int32>().data();
  for (int64_t k = 0; k < cols.dim_size(0); ++k)
    if (cp[k] < 0 || cp[k] >= features)
      return errors::InvalidArgument("event column ", cp[k], " outside [0, ", features, ")");
  *rows = R;
  return OkStatus();
}

// A look at up to 64 Ki entries in evenly spaced rows: true if clearly above the limit.
template <typename T>
static bool TooDense(const T* RS x, int64_t R, int64_t F, float max_density) {
  if (R == 0 || F == 0) return false;
  const int64_t probe = std::min<int64_t>(R, std::max<int64_t>(1, 65536 / F));
  int64_t n = 0;
  for (int64_t k = 0; k < probe; ++k) {
    const T* RS xr = x + (R * k / probe) * F;
    for (int64_t i = 0; i < F; ++i) n += xr[i] != T(0);
  }
  return n > 2.0 * max_density * probe * F;
}

template <typename T>
class EventsFromDenseOp : public OpKernel {
 public:
  explicit EventsFromDenseOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("max_density", &max_density_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    OP_REQUIRES(ctx, x.dims() == 2,
                errors::InvalidArgument("x must be a matrix, got ", x.shape().DebugString()));
    const int64_t R = x.dim_size(0), F = x.dim_size(1);
    OP_REQUIRES(ctx, F < (int64_t{1} << 31), errors::InvalidArgument("2^31 or more columns"));
    const T* xp = x.flat<T>().data();
    Tensor* ok = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(3, TensorShape({}), &ok));
    const int64_t cap = max_density_ < 0 ? -1 : static_cast<int64_t>(max_density_ * R * F);
    bool dense = cap >= 0 && TooDense(xp, R, F, max_density_);

    const int64_t blocks = dense ? 0 : std::max<int64_t>(1, std::min(R, 4 * NumThreads(ctx)));
    std::vector<std::vector<int32>> bcols(blocks);
    std::vector<std::vector<T>> bvals(blocks);
    std::vector<int64_t> counts(R, 0);
    std::atomic<int64_t> total{0};
    std::atomic<bool> over{false};
    auto block = [&](int64_t b) {
      const int64_t r0 = R * b / blocks, r1 = R * (b + 1) / blocks;
      auto& cols = bcols[b];
      auto& vals = bvals[b];
      for (int64_t r = r0; r < r1; ++r) {
        if (over.load(std::memory_order_relaxed)) return;
        const T* RS xr = xp + r * F;
        const size_t before = cols.size();
        int64_t i = 0;
        for (; i + 16 <= F; i += 16) {  // all-zero blocks of 16 cost one vector test
          bool any = false;
          for (int j = 0; j < 16; ++j) any |= xr[i + j] != T(0);
          if (!any) continue;
          for (int j = 0; j < 16; ++j) {
            if (xr[i + j] == T(0)) continue;
            cols.push_back(static_cast<int32>(i + j));
            vals.push_back(xr[i + j]);
          }
        }
        for (; i < F; ++i) {
          if (xr[i] == T(0)) continue;
          cols.push_back(static_cast<int32>(i));
          vals.push_back(xr[i]);
        }
        const int64_t n = static_cast<int64_t>(cols.size() - before);
        counts[r] = n;
        if (cap >= 0 && total.fetch_add(n, std::memory_order_relaxed) + n > cap) {
          over.store(true, std::memory_order_relaxed);
          return;
        }
      }
    };
    if (!dense) RunBlocks(ctx, blocks, (R / blocks + 1) * F, block);
    dense = dense || over.load();
    ok->scalar<bool>()() = !dense;

    int64_t nnz = 0;
    for (int64_t b = 0; b < blocks && !dense; ++b) nnz += static_cast<int64_t>(bcols[b].size());
    Tensor *splits = nullptr, *cols = nullptr, *vals = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({dense ? 0 : R + 1}), &splits));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({nnz}), &cols));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({nnz}), &vals));
    if (dense) return;
    int64_t* sp = splits->flat<int64_t>().data();
    sp[0] = 0;
    for (int64_t r = 0; r < R; ++r) sp[r + 1] = sp[r] + counts[r];
    int32* cp = cols->flat<int32>().data();
    T* vp = vals->flat<T>().data();
    for (int64_t b = 0; b < blocks; ++b) {
      std::memcpy(cp, bcols[b].data(), bcols[b].size() * sizeof(int32));
      std::memcpy(vp, bvals[b].data(), bvals[b].size() * sizeof(T));
      cp += bcols[b].size();
      vp += bvals[b].size();
    }
  }

 private:
  float max_density_;
};

template <typename T>
class EventsToDenseOp : public OpKernel {
 public:
  explicit EventsToDenseOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("features", &features_));
  }

  void Compute(OpKernelContext* ctx) override {
    int64_t R = 0;
    const int64_t F = features_;
    OP_REQUIRES_OK(ctx, CheckEvents<T>(ctx->input(0), ctx->input(1), ctx->input(2), F, &R));
    const int64_t* sp = ctx->input(0).flat<int64_t>().data();
    const int32* cp = ctx->input(1).flat<int32>().data();
    const T* vp = ctx->input(2).flat<T>().data();
    Tensor* x = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({R, F}), &x));
    T* xp = x->flat<T>().data();
    RunBlocks(ctx, R, F, [&](int64_t r) {
      T* RS xr = xp + r * F;
      std::fill(xr, xr + F, T(0));
      for (int64_t k = sp[r]; k < sp[r + 1]; ++k) xr[cp[k]] += vp[k];
    });
  }

 private:
  int64_t features_;
};

template <typename T>
class EventsMatmulOp : public OpKernel {
 public:
  explicit EventsMatmulOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& w = ctx->input(3);
    OP_REQUIRES(ctx, w.dims() == 2, errors::InvalidArgument("w must be a matrix"));
    const int64_t F = w.dim_size(0), U = w.dim_size(1);
    int64_t R = 0;
    OP_REQUIRES_OK(ctx, CheckEvents<T>(ctx->input(0), ctx->input(1), ctx->input(2), F, &R));
    const int64_t* sp = ctx->input(0).flat<int64_t>().data();
    const int32* cp = ctx->input(1).flat<int32>().data();
    const T* vp = ctx->input(2).flat<T>().data();
    const T* wp = w.flat<T>().data();
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({R, U}), &out));
    T* op = out->flat<T>().data();
    const int64_t per_row = R == 0 ? 0 : sp[R] / R;
    RunBlocks(ctx, R, (per_row + 1) * U, [&](int64_t r) {
      T* RS o = op + r * U;
      std::fill(o, o + U, T(0));
      for (int64_t k = sp[r]; k < sp[r + 1]; ++k) {
        const T v = vp[k];
        const T* RS wr = wp + static_cast<int64_t>(cp[k]) * U;
        for (int64_t u = 0; u < U; ++u) o[u] += v * wr[u];
      }
    });
  }
};

template <typename T>
class EventsKernelGradOp : public OpKernel {
 public:
  explicit EventsKernelGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("features", &features_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& g = ctx->input(3);
    const int64_t F = features_;
    int64_t R = 0;
    OP_REQUIRES_OK(ctx, CheckEvents<T>(ctx->input(0), ctx->input(1), ctx->input(2), F, &R));
    OP_REQUIRES(ctx, g.dims() == 2 && g.dim_size(0) == R,
                errors::InvalidArgument("g must be (rows, units) with one row per event row"));
    const int64_t U = g.dim_size(1);
    const int64_t* sp = ctx->input(0).flat<int64_t>().data();
    const int32* cp = ctx->input(1).flat<int32>().data();
    const T* vp = ctx->input(2).flat<T>().data();
    const T* gp = g.flat<T>().data();
    Tensor* gw = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({F, U}), &gw));
    T* gwp = gw->flat<T>().data();
    std::fill(gwp, gwp + F * U, T(0));
    // One partial sum per thread (the first is the output itself), added in a fixed order.
    const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(NumThreads(ctx), R));
    std::vector<std::vector<T>> partial(parts - 1);
    RunBlocks(ctx, parts, (sp[R] / parts + 1) * U + F * U, [&](int64_t p) {
      T* RS acc = gwp;
      if (p > 0) {
        partial[p - 1].assign(F * U, T(0));
        acc = partial[p - 1].data();
      }
      for (int64_t r = R * p / parts; r < R * (p + 1) / parts; ++r) {
        const T* RS gr = gp + r * U;
        for (int64_t k = sp[r]; k < sp[r + 1]; ++k) {
          const T v = vp[k];
          T* RS a = acc + static_cast<int64_t>(cp[k]) * U;
          for (int64_t u = 0; u < U; ++u) a[u] += v * gr[u];
        }
      }
    });
    for (int64_t p = 1; p < parts; ++p) {
      const T* RS src = partial[p - 1].data();
      for (int64_t k = 0; k < F * U; ++k) gwp[k] += src[k];
    }
  }

 private:
  int64_t features_;
};

template <typename T>
class SpikeBitsOp : public OpKernel {
 public:
  explicit SpikeBitsOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& v = ctx->input(0);
    const Tensor& threshold = ctx->input(1);
    OP_REQUIRES(ctx, v.dims() == 3, errors::InvalidArgument("v must be (batch, steps, N)"));
    const int64_t rows = v.dim_size(0) * v.dim_size(1), N = v.dim_size(2), nb = (N + 7) / 8;
    const int64_t C = threshold.NumElements();
    OP_REQUIRES(ctx, threshold.dims() == 1 && C > 0 && N % C == 0,
                errors::InvalidArgument("threshold must be a vector whose length divides N"));
    Tensor* bits = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            0, TensorShape({v.dim_size(0), v.dim_size(1), nb}), &bits));
    const T* vp = v.flat<T>().data();
    const T* th = threshold.flat<T>().data();
    uint8* bp = bits->flat<uint8>().data();
    RunBlocks(ctx, rows, N, [&](int64_t r) {
      const T* RS vr = vp + r * N;
      uint8* RS br = bp + r * nb;
      for (int64_t j = 0; j < nb; ++j) {
        uint8 byte = 0;
        for (int64_t k = 0; k < 8 && 8 * j + k < N; ++k) {
          const int64_t n = 8 * j + k;
          byte |= static_cast<uint8>(vr[n] - th[n % C] >= T(0)) << k;
        }
        br[j] = byte;
      }
    });
  }
};

template <typename T>
class BitsToSpikesOp : public OpKernel {
 public:
  explicit BitsToSpikesOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("steps", &steps_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("features", &features_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& bits = ctx->input(0);
    OP_REQUIRES(ctx, bits.dims() == 4,
                errors::InvalidArgument("bits must be (chunks, batch, steps, bytes)"));
    const int64_t C = bits.dim_size(0), B = bits.dim_size(1), S = bits.dim_size(2);
    const int64_t nb = bits.dim_size(3), N = features_, steps = steps_;
    OP_REQUIRES(ctx, nb == (N + 7) / 8 && steps <= C * S && steps >= 0,
                errors::InvalidArgument("bits do not hold ", steps, " steps of ", N, " features"));
    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({B, steps, N}), &y));
    const uint8* bp = bits.flat<uint8>().data();
    T* yp = y->flat<T>().data();
    RunBlocks(ctx, B * steps, N, [&](int64_t r) {
      const int64_t b = r / steps, t = r % steps;
      const uint8* RS br = bp + (((t / S) * B + b) * S + t % S) * nb;
      T* RS yr = yp + r * N;
      for (int64_t n = 0; n < N; ++n) yr[n] = (br[n >> 3] >> (n & 7)) & 1 ? T(1) : T(0);
    });
  }

 private:
  int64_t steps_, features_;
};

#define REGISTER(NAME, OP, T) \
  REGISTER_KERNEL_BUILDER(Name(NAME).Device(DEVICE_CPU).TypeConstraint<T>("T"), OP<T>)
#define REGISTER_ALL(T)                                          \
  REGISTER("LifsgEventsFromDense", EventsFromDenseOp, T);        \
  REGISTER("LifsgEventsToDense", EventsToDenseOp, T);            \
  REGISTER("LifsgEventsMatmul", EventsMatmulOp, T);              \
  REGISTER("LifsgEventsKernelGrad", EventsKernelGradOp, T);      \
  REGISTER("LifsgSpikeBits", SpikeBitsOp, T);              \
  REGISTER("LifsgBitsToSpikes", BitsToSpikesOp, T);
REGISTER_ALL(float)
REGISTER_ALL(double)
