// Whole-sequence LSTM kernels as TensorFlow ops: the native part of the fast path.
//
// Why native: on a CPU a step's matmul, e.g. (32, 288) @ (288, 1024), is too
// small for XLA or Eigen's threaded products to share between cores, so the
// XLA kernels in layers/_kernels.py cut the *batch* into one chain per core,
// and every core then streams all the weights each step (1.2 MB at 256 units:
// more than a core's L2 cache). These ops cut the *units* instead: each of
// `threads` threads owns a slice of the units, keeps its own slice of the
// weights in its cache, computes its gates for the whole batch, and the
// threads meet at a spin barrier once a step to swap the new state. This is
// how oneDNN's and torch's CPU LSTMs spend the cores.
//
// The factors are those of `_lstm_forward` / `_lstm_backward` in
// layers/_kernels.py (gates i, f, o, c), but every per-step result is batch
// major, (batch, steps, ...) like the layer's input and output, so that neither
// the outputs nor the weight gradients after the backward loop need a transpose.
// Activations: sigmoid gates and tanh; other activations take the XLA kernels.

#include "common.h"

namespace {

using namespace rnn_suite;  // NOLINT: this file is its implementation

constexpr int kGates = 4;  // i, f, o, c

// ------------------------------------------------------------------ forward

REGISTER_OP("RnnSuiteLstmForward")
    .Input("x: float")          // (batch, steps, features)
    .Input("h0: float")         // (batch, units)
    .Input("c0: float")         // (batch, units)
    .Input("kernel: float")     // (features, 4 units), gates i, f, o, c
    .Input("recurrent: float")  // (units, 4 units)
    .Input("bias: float")       // (4 units)
    .Input("mask: float")       // (batch, steps, 1), or empty for none
    .Attr("save: bool")
    .Attr("keep: bool")
    .Attr("threads: int >= 1")
    .Attr("matmuls_only: bool = false")  // for bench/: see kMatmulsOnlyDoc in common.h
    .Output("h: float")        // (batch, units)
    .Output("c: float")        // (batch, units)
    .Output("outputs: float")  // (batch, steps, units) if keep, else (batch, 0, units)
    .Output("p: float")        // (batch, steps, 4 units) if save, else empty
    .Output("kf: float")       // (batch, steps, 2 units) if save, else empty
    .SetShapeFn([](InferenceContext* c) {
      bool save, keep;
      TF_RETURN_IF_ERROR(c->GetAttr("save", &save));
      TF_RETURN_IF_ERROR(c->GetAttr("keep", &keep));
      auto batch = c->Dim(c->input(0), 0), steps = c->Dim(c->input(0), 1);
      auto units = c->Dim(c->input(4), 0);
      tensorflow::shape_inference::DimensionHandle four, two;
      TF_RETURN_IF_ERROR(c->Multiply(units, 4, &four));
      TF_RETURN_IF_ERROR(c->Multiply(units, 2, &two));
      c->set_output(0, c->Matrix(batch, units));
      c->set_output(1, c->Matrix(batch, units));
      c->set_output(2, c->MakeShape({batch, keep ? steps : c->MakeDim(0), units}));
      c->set_output(3, save ? c->MakeShape({batch, steps, four}) : c->Vector(0));
      c->set_output(4, save ? c->MakeShape({batch, steps, two}) : c->Vector(0));
      return tensorflow::OkStatus();
    });

class LstmForwardOp : public OpKernel {
 public:
  explicit LstmForwardOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("save", &save_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("keep", &keep_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("threads", &threads_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("matmuls_only", &matmuls_only_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const int units = ctx->input(4).dim_size(0);
    CheckInputs(ctx, x, units);
    if (!ctx->status().ok()) return;
    const int batch = x.dim_size(0), steps = x.dim_size(1), features = x.dim_size(2);
    Tensor *h_out, *c_out, *outputs, *p, *kf;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({batch, units}), &h_out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({batch, units}), &c_out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({batch, keep_ ? steps : 0, units}), &outputs));
    TensorShape p_shape = save_ ? TensorShape({batch, steps, 4 * units}) : TensorShape({0});
    TensorShape kf_shape = save_ ? TensorShape({batch, steps, 2 * units}) : TensorShape({0});
    OP_REQUIRES_OK(ctx, ctx->allocate_output(3, p_shape, &p));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(4, kf_shape, &kf));
    if (batch == 0) return;

    const float* xd = x.flat<float>().data();
    const Mask mask = MaskOf(ctx->input(6), steps);
    // Two state buffers: step t reads one and writes the other, so that one barrier
    // a step suffices (no thread writes a buffer another may still be reading).
    Matrix h[2] = {Eigen::Map<const Matrix>(ctx->input(1).flat<float>().data(), batch, units),
                   Matrix(batch, units)};
    float* out = keep_ ? outputs->flat<float>().data() : nullptr;
    float* pd = save_ ? p->flat<float>().data() : nullptr;
    float* kfd = save_ ? kf->flat<float>().data() : nullptr;
    const int threads = ThreadCount(threads_, units);
    SpinBarrier barrier(threads);

    auto work = [&](int k) {
      const Slice s = SliceOf(k, threads, units);
      const int n = s.size();
      const Matrix wx = GateColumns(ctx->input(3).flat<float>().data(), features, units, kGates, s);
      const Matrix wh = GateColumns(ctx->input(4).flat<float>().data(), units, units, kGates, s);
      const Matrix b = GateColumns(ctx->input(5).flat<float>().data(), 1, units, kGates, s);
      Array c = ConstView(ctx->input(2).flat<float>().data() + s.begin, batch, n, Strided(units));
      Matrix z(batch, kGates * n);
      Array hn(batch, n), cn(batch, n);
      for (int t = 0; t < steps; ++t) {
        const Matrix& h_prev = h[t & 1];
        z.noalias() = ConstView(xd + t * features, batch, features, Strided(steps * features)) * wx;
        z.noalias() += h_prev * wh;
        if (matmuls_only_) {
          barrier.Wait();
          continue;
        }
        z.rowwise() += b.row(0);
        const Array sig = z.leftCols(3 * n).array().logistic();
        const Array g = z.rightCols(n).array().tanh();
        const auto i = sig.leftCols(n), f = sig.middleCols(n, n), o = sig.rightCols(n);
        cn = f * c + i * g;
        const Array tc = cn.tanh();
        hn = o * tc;
        if (save_) {
          // p = [g, c_prev, tc, i] * activation derivatives; kf = [o * tanh'(c), f].
          View pt(pd + size_t(t) * 4 * units, batch, 4 * units, Strided(size_t(steps) * 4 * units));
          View kft(kfd + size_t(t) * 2 * units, batch, 2 * units, Strided(size_t(steps) * 2 * units));
          const Array ds = sig * (1.0f - sig);
          pt.middleCols(s.begin, n) = (g * ds.leftCols(n)).matrix();
          pt.middleCols(units + s.begin, n) = (c * ds.middleCols(n, n)).matrix();
          pt.middleCols(2 * units + s.begin, n) = (tc * ds.rightCols(n)).matrix();
          pt.middleCols(3 * units + s.begin, n) = (i * (1.0f - g * g)).matrix();
          kft.middleCols(s.begin, n) = (o * (1.0f - tc * tc)).matrix();
          kft.middleCols(units + s.begin, n) = f.matrix();
          for (int r = 0; r < batch; ++r) {
            if (mask.Keeps(r, t)) continue;
            for (int gate = 0; gate < kGates; ++gate) pt.row(r).segment(gate * units + s.begin, n).setZero();
            kft.row(r).segment(s.begin, n).setZero();
            kft.row(r).segment(units + s.begin, n).setOnes();
          }
        }
        for (int r = 0; r < batch; ++r) {
          if (mask.Keeps(r, t)) continue;
          hn.row(r) = h_prev.row(r).segment(s.begin, n).array();
          cn.row(r) = c.row(r);
        }
        c = cn;
        h[(t + 1) & 1].middleCols(s.begin, n) = hn.matrix();
        if (keep_) {
          View(out + size_t(t) * units + s.begin, batch, n, Strided(size_t(steps) * units)) = hn.matrix();
        }
        barrier.Wait();
      }
      View(c_out->flat<float>().data() + s.begin, batch, n, Strided(units)) = c.matrix();
    };
    RunTogether(ctx, threads, work);
    Eigen::Map<Matrix>(h_out->flat<float>().data(), batch, units) = h[steps & 1];
  }

 private:
  bool save_, keep_, matmuls_only_;
  int threads_;
};

REGISTER_KERNEL_BUILDER(Name("RnnSuiteLstmForward").Device(tensorflow::DEVICE_CPU), LstmForwardOp);

// ----------------------------------------------------------------- backward

REGISTER_OP("RnnSuiteLstmBackward")
    .Input("d_outputs: float")  // (batch, steps, units), or empty for none
    .Input("dh: float")         // (batch, units): gradient of the final h
    .Input("dc: float")         // (batch, units): gradient of the final c
    .Input("p: float")          // (batch, steps, 4 units)
    .Input("kf: float")         // (batch, steps, 2 units)
    .Input("recurrent: float")  // (units, 4 units)
    .Input("mask: float")       // (batch, steps, 1), or empty for none
    .Attr("threads: int >= 1")
    .Attr("matmuls_only: bool = false")  // for bench/: see kMatmulsOnlyDoc in common.h
    .Output("dh0: float")  // (batch, units)
    .Output("dc0: float")  // (batch, units)
    .Output("dz: float")   // (batch, steps, 4 units): gradients of the pre-activations
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(1));
      c->set_output(1, c->input(2));
      c->set_output(2, c->input(3));
      return tensorflow::OkStatus();
    });

class LstmBackwardOp : public OpKernel {
 public:
  explicit LstmBackwardOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("threads", &threads_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("matmuls_only", &matmuls_only_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& p = ctx->input(3);
    OP_REQUIRES(ctx, p.dims() == 3, tensorflow::errors::InvalidArgument("p must be (batch, steps, 4 units)"));
    const int batch = p.dim_size(0), steps = p.dim_size(1), units = ctx->input(5).dim_size(0);
    Tensor *dh0, *dc0, *dz;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({batch, units}), &dh0));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({batch, units}), &dc0));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, p.shape(), &dz));
    if (batch == 0) return;

    const float* d_out = ctx->input(0).NumElements() ? ctx->input(0).flat<float>().data() : nullptr;
    const float* pd = p.flat<float>().data();
    const float* kfd = ctx->input(4).flat<float>().data();
    float* dzd = dz->flat<float>().data();
    const Mask mask = MaskOf(ctx->input(6), steps);
    const int threads = ThreadCount(threads_, units);
    SpinBarrier barrier(threads);

    auto work = [&](int k) {
      const Slice s = SliceOf(k, threads, units);
      const int n = s.size();
      // dh_prev[:, slice] = dz @ U[slice, :]^T: this thread's rows of U, transposed.
      const Matrix u_t = ConstView(ctx->input(5).flat<float>().data() + size_t(s.begin) * 4 * units,
                                   n, 4 * units, Strided(4 * units)).transpose();
      Array dh = ConstView(ctx->input(1).flat<float>().data() + s.begin, batch, n, Strided(units));
      Array dc = ConstView(ctx->input(2).flat<float>().data() + s.begin, batch, n, Strided(units));
      Array d(batch, n), dcell(batch, n);
      Matrix dh_prev(batch, n);
      for (int t = steps - 1; t >= 0; --t) {
        const size_t row = size_t(steps) * units;  // floats from one batch row to the next, per unit
        ConstView kft(kfd + size_t(t) * 2 * units, batch, 2 * units, Strided(2 * row));
        ConstView pt(pd + size_t(t) * 4 * units, batch, 4 * units, Strided(4 * row));
        View dzt(dzd + size_t(t) * 4 * units, batch, 4 * units, Strided(4 * row));
        if (matmuls_only_) {
          barrier.Wait();
          dh_prev.noalias() = pt * u_t;
          continue;
        }
        d = dh;
        if (d_out) d += ConstView(d_out + t * units + s.begin, batch, n, Strided(row)).array();
        dcell = dc + d * kft.middleCols(s.begin, n).array();
        dzt.middleCols(s.begin, n) = (dcell * pt.middleCols(s.begin, n).array()).matrix();
        dzt.middleCols(units + s.begin, n) = (dcell * pt.middleCols(units + s.begin, n).array()).matrix();
        dzt.middleCols(2 * units + s.begin, n) = (d * pt.middleCols(2 * units + s.begin, n).array()).matrix();
        dzt.middleCols(3 * units + s.begin, n) = (dcell * pt.middleCols(3 * units + s.begin, n).array()).matrix();
        barrier.Wait();  // dz of step t is complete
        dh_prev.noalias() = dzt * u_t;
        dh = dh_prev.array();
        for (int r = 0; r < batch; ++r) {
          if (!mask.Keeps(r, t)) dh.row(r) += d.row(r);  // the state passed through
        }
        dc = dcell * kft.middleCols(units + s.begin, n).array();
      }
      View(dh0->flat<float>().data() + s.begin, batch, n, Strided(units)) = dh.matrix();
      View(dc0->flat<float>().data() + s.begin, batch, n, Strided(units)) = dc.matrix();
    };
    RunTogether(ctx, threads, work);
  }

 private:
  int threads_;
  bool matmuls_only_;
};

REGISTER_KERNEL_BUILDER(Name("RnnSuiteLstmBackward").Device(tensorflow::DEVICE_CPU), LstmBackwardOp);

}  // namespace
