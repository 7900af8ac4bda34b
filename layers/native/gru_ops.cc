// Whole-sequence GRU kernels (Keras's reset_after=True) as TensorFlow ops.
//
// Same design as lstm_ops.cc: `threads` threads each own a slice of the units
// (their columns of the z, r and h gates), meet at a spin barrier once a step,
// and write batch-major per-step results. The factors are those of
// `_gru_after_forward` / `_gru_after_backward` in layers/_kernels.py:
//   q_in  = [q_z, q_r, q_h],  q_rec = [q_z, q_r, q_h * r],  z (one where masked),
// so that for d3 = [dh, dh, dh] the gradients of the input and recurrent
// projections are d3 * q_in and d3 * q_rec, and dh_prev = d_rec @ U^T + dh * z.
// Activations: sigmoid gates and tanh; other activations, and reset_after=False,
// take the XLA kernels.

#include "common.h"

namespace {

using namespace rnn_suite;  // NOLINT: this file is its implementation

constexpr int kGates = 3;  // z, r, h

// ------------------------------------------------------------------ forward

REGISTER_OP("RnnSuiteGruForward")
    .Input("x: float")               // (batch, steps, features)
    .Input("h0: float")              // (batch, units)
    .Input("kernel: float")          // (features, 3 units), gates z, r, h
    .Input("recurrent: float")       // (units, 3 units)
    .Input("input_bias: float")      // (3 units)
    .Input("recurrent_bias: float")  // (3 units)
    .Input("mask: float")            // (batch, steps, 1), or empty for none
    .Attr("save: bool")
    .Attr("keep: bool")
    .Attr("threads: int >= 1")
    .Attr("matmuls_only: bool = false")  // for bench/: see kMatmulsOnlyDoc in common.h
    .Output("h: float")        // (batch, units)
    .Output("outputs: float")  // (batch, steps, units) if keep, else (batch, 0, units)
    .Output("q_in: float")     // (batch, steps, 3 units) if save, else empty
    .Output("q_rec: float")    // (batch, steps, 3 units) if save, else empty
    .Output("z: float")        // (batch, steps, units) if save, else empty
    .SetShapeFn([](InferenceContext* c) {
      bool save, keep;
      TF_RETURN_IF_ERROR(c->GetAttr("save", &save));
      TF_RETURN_IF_ERROR(c->GetAttr("keep", &keep));
      auto batch = c->Dim(c->input(0), 0), steps = c->Dim(c->input(0), 1);
      auto units = c->Dim(c->input(3), 0);
      tensorflow::shape_inference::DimensionHandle three;
      TF_RETURN_IF_ERROR(c->Multiply(units, 3, &three));
      c->set_output(0, c->Matrix(batch, units));
      c->set_output(1, c->MakeShape({batch, keep ? steps : c->MakeDim(0), units}));
      c->set_output(2, save ? c->MakeShape({batch, steps, three}) : c->Vector(0));
      c->set_output(3, save ? c->MakeShape({batch, steps, three}) : c->Vector(0));
      c->set_output(4, save ? c->MakeShape({batch, steps, units}) : c->Vector(0));
      return tensorflow::OkStatus();
    });

class GruForwardOp : public OpKernel {
 public:
  explicit GruForwardOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("save", &save_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("keep", &keep_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("threads", &threads_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("matmuls_only", &matmuls_only_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const int units = ctx->input(3).dim_size(0);
    CheckInputs(ctx, x, units);
    if (!ctx->status().ok()) return;
    const int batch = x.dim_size(0), steps = x.dim_size(1), features = x.dim_size(2);
    Tensor *h_out, *outputs, *q_in, *q_rec, *z_out;
    auto per_step = [&](int width) {
      return save_ ? TensorShape({batch, steps, width}) : TensorShape({0});
    };
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({batch, units}), &h_out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({batch, keep_ ? steps : 0, units}), &outputs));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, per_step(3 * units), &q_in));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(3, per_step(3 * units), &q_rec));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(4, per_step(units), &z_out));
    if (batch == 0) return;

    const float* xd = x.flat<float>().data();
    const Mask mask = MaskOf(ctx->input(6), steps);
    Matrix h[2] = {Eigen::Map<const Matrix>(ctx->input(1).flat<float>().data(), batch, units),
                   Matrix(batch, units)};
    float* out = keep_ ? outputs->flat<float>().data() : nullptr;
    float* qi = save_ ? q_in->flat<float>().data() : nullptr;
    float* qr = save_ ? q_rec->flat<float>().data() : nullptr;
    float* zd = save_ ? z_out->flat<float>().data() : nullptr;
    const size_t row = size_t(steps) * units;  // floats from one batch row to the next, per unit
    const int threads = ThreadCount(threads_, units);
    SpinBarrier barrier(threads);

    auto work = [&](int k) {
      const Slice s = SliceOf(k, threads, units);
      const int n = s.size();
      const Matrix wx = GateColumns(ctx->input(2).flat<float>().data(), features, units, kGates, s);
      const Matrix wh = GateColumns(ctx->input(3).flat<float>().data(), units, units, kGates, s);
      const Matrix bx = GateColumns(ctx->input(4).flat<float>().data(), 1, units, kGates, s);
      const Matrix bh = GateColumns(ctx->input(5).flat<float>().data(), 1, units, kGates, s);
      Matrix xz(batch, kGates * n), hz(batch, kGates * n);
      Array hn(batch, n);
      for (int t = 0; t < steps; ++t) {
        const Matrix& h_prev = h[t & 1];
        xz.noalias() = ConstView(xd + t * features, batch, features, Strided(steps * features)) * wx;
        xz.rowwise() += bx.row(0);
        hz.noalias() = h_prev * wh;
        if (matmuls_only_) {
          barrier.Wait();
          continue;
        }
        hz.rowwise() += bh.row(0);
        const Array zr = (xz.leftCols(2 * n) + hz.leftCols(2 * n)).array().logistic();
        const auto z = zr.leftCols(n), r = zr.rightCols(n);
        const auto h_h = hz.rightCols(n).array();
        const Array hh = (xz.rightCols(n).array() + r * h_h).tanh();
        const auto h_old = h_prev.middleCols(s.begin, n).array();
        hn = z * h_old + (1.0f - z) * hh;  // Keras's order of operations
        if (save_) {
          View qit(qi + size_t(t) * 3 * units, batch, 3 * units, Strided(3 * row));
          View qrt(qr + size_t(t) * 3 * units, batch, 3 * units, Strided(3 * row));
          View zt(zd + size_t(t) * units, batch, units, Strided(row));
          const Array q_h = (1.0f - z) * (1.0f - hh * hh);
          const Array q_z = (h_old - hh) * (z * (1.0f - z));
          const Array q_r = h_h * (r * (1.0f - r)) * q_h;
          qit.middleCols(s.begin, n) = q_z.matrix();
          qit.middleCols(units + s.begin, n) = q_r.matrix();
          qit.middleCols(2 * units + s.begin, n) = q_h.matrix();
          qrt.middleCols(s.begin, n) = q_z.matrix();
          qrt.middleCols(units + s.begin, n) = q_r.matrix();
          qrt.middleCols(2 * units + s.begin, n) = (q_h * r).matrix();
          zt.middleCols(s.begin, n) = z.matrix();
          for (int b = 0; b < batch; ++b) {
            if (mask.Keeps(b, t)) continue;
            for (int gate = 0; gate < kGates; ++gate) {
              qit.row(b).segment(gate * units + s.begin, n).setZero();
              qrt.row(b).segment(gate * units + s.begin, n).setZero();
            }
            zt.row(b).segment(s.begin, n).setOnes();
          }
        }
        for (int b = 0; b < batch; ++b) {
          if (!mask.Keeps(b, t)) hn.row(b) = h_old.row(b);
        }
        h[(t + 1) & 1].middleCols(s.begin, n) = hn.matrix();
        if (keep_) View(out + size_t(t) * units + s.begin, batch, n, Strided(row)) = hn.matrix();
        barrier.Wait();
      }
    };
    RunTogether(ctx, threads, work);
    Eigen::Map<Matrix>(h_out->flat<float>().data(), batch, units) = h[steps & 1];
  }

 private:
  bool save_, keep_, matmuls_only_;
  int threads_;
};

REGISTER_KERNEL_BUILDER(Name("RnnSuiteGruForward").Device(tensorflow::DEVICE_CPU), GruForwardOp);

// ----------------------------------------------------------------- backward

REGISTER_OP("RnnSuiteGruBackward")
    .Input("d_outputs: float")  // (batch, steps, units), or empty for none
    .Input("dh: float")         // (batch, units): gradient of the final h
    .Input("q_in: float")       // (batch, steps, 3 units)
    .Input("q_rec: float")      // (batch, steps, 3 units)
    .Input("z: float")          // (batch, steps, units)
    .Input("recurrent: float")  // (units, 3 units)
    .Input("mask: float")       // (batch, steps, 1), or empty for none
    .Attr("threads: int >= 1")
    .Attr("matmuls_only: bool = false")  // for bench/: see kMatmulsOnlyDoc in common.h
    .Output("dh0: float")    // (batch, units)
    .Output("d_in: float")   // (batch, steps, 3 units): gradients of the input projection
    .Output("d_rec: float")  // (batch, steps, 3 units): and of the recurrent projection
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(1));
      c->set_output(1, c->input(2));
      c->set_output(2, c->input(2));
      return tensorflow::OkStatus();
    });

class GruBackwardOp : public OpKernel {
 public:
  explicit GruBackwardOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("threads", &threads_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("matmuls_only", &matmuls_only_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& q_in = ctx->input(2);
    OP_REQUIRES(ctx, q_in.dims() == 3,
                tensorflow::errors::InvalidArgument("q_in must be (batch, steps, 3 units)"));
    const int batch = q_in.dim_size(0), steps = q_in.dim_size(1), units = ctx->input(5).dim_size(0);
    Tensor *dh0, *d_in, *d_rec;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({batch, units}), &dh0));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, q_in.shape(), &d_in));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, q_in.shape(), &d_rec));
    if (batch == 0) return;

    const float* d_out = ctx->input(0).NumElements() ? ctx->input(0).flat<float>().data() : nullptr;
    const float* qi = q_in.flat<float>().data();
    const float* qr = ctx->input(3).flat<float>().data();
    const float* zd = ctx->input(4).flat<float>().data();
    float* din = d_in->flat<float>().data();
    float* drec = d_rec->flat<float>().data();
    const Mask mask = MaskOf(ctx->input(6), steps);
    const size_t row = size_t(steps) * units;
    const int threads = ThreadCount(threads_, units);
    SpinBarrier barrier(threads);

    auto work = [&](int k) {
      const Slice s = SliceOf(k, threads, units);
      const int n = s.size();
      // dh_prev[:, slice] = d_rec @ U[slice, :]^T: this thread's rows of U, transposed.
      const Matrix u_t = ConstView(ctx->input(5).flat<float>().data() + size_t(s.begin) * 3 * units,
                                   n, 3 * units, Strided(3 * units)).transpose();
      Array dh = ConstView(ctx->input(1).flat<float>().data() + s.begin, batch, n, Strided(units));
      Array d(batch, n);
      Matrix dh_prev(batch, n);
      for (int t = steps - 1; t >= 0; --t) {
        ConstView qit(qi + size_t(t) * 3 * units, batch, 3 * units, Strided(3 * row));
        ConstView qrt(qr + size_t(t) * 3 * units, batch, 3 * units, Strided(3 * row));
        View dint(din + size_t(t) * 3 * units, batch, 3 * units, Strided(3 * row));
        View drect(drec + size_t(t) * 3 * units, batch, 3 * units, Strided(3 * row));
        if (matmuls_only_) {
          barrier.Wait();
          dh_prev.noalias() = qrt * u_t;
          continue;
        }
        d = dh;
        if (d_out) d += ConstView(d_out + t * units + s.begin, batch, n, Strided(row)).array();
        for (int gate = 0; gate < kGates; ++gate) {
          const int at = gate * units + s.begin;
          dint.middleCols(at, n) = (d * qit.middleCols(at, n).array()).matrix();
          drect.middleCols(at, n) = (d * qrt.middleCols(at, n).array()).matrix();
        }
        barrier.Wait();  // d_rec of step t is complete
        dh_prev.noalias() = drect * u_t;
        dh = dh_prev.array() +
             d * ConstView(zd + size_t(t) * units + s.begin, batch, n, Strided(row)).array();
      }
      View(dh0->flat<float>().data() + s.begin, batch, n, Strided(units)) = dh.matrix();
    };
    RunTogether(ctx, threads, work);
  }

 private:
  int threads_;
  bool matmuls_only_;
};

REGISTER_KERNEL_BUILDER(Name("RnnSuiteGruBackward").Device(tensorflow::DEVICE_CPU), GruBackwardOp);

}  // namespace
