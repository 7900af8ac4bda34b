// Whole-sequence GRU kernels (Keras's reset_after=True) as TensorFlow ops.
//
// Same design as lstm_ops.cc: `threads` threads each own a slice of the units
// (their columns of the z, r and h gates), meet at a spin barrier once a step,
// write batch-major outputs and projection gradients and time-major factors,
// and sum the bias gradients in the backward loop. The factors are those of
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
    .Attr("reverse: bool = false")  // steps from last to first, as if x and mask were flipped
    .Output("h: float")        // (batch, units)
    .Output("outputs: float")  // (batch, steps, units) if keep, else (batch, 0, units)
    .Output("q_in: float")     // (steps, batch, 3 units) if save, else empty
    .Output("q_rec: float")    // (steps, batch, 3 units) if save, else empty
    .Output("z: float")        // (steps, batch, units) if save, else empty
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
      c->set_output(2, save ? c->MakeShape({steps, batch, three}) : c->Vector(0));
      c->set_output(3, save ? c->MakeShape({steps, batch, three}) : c->Vector(0));
      c->set_output(4, save ? c->MakeShape({steps, batch, units}) : c->Vector(0));
      return tensorflow::OkStatus();
    });

class GruForwardOp : public OpKernel {
 public:
  explicit GruForwardOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("save", &save_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("keep", &keep_));
    ReadLoopAttrs(ctx, &loop_);
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const int units = ctx->input(3).dim_size(0);
    CheckInputs(ctx, x, units);
    if (!ctx->status().ok()) return;
    const int batch = x.dim_size(0), steps = x.dim_size(1), features = x.dim_size(2);
    Tensor *h_out, *outputs, *q_in, *q_rec, *z_out;
    auto per_step = [&](int width) {
      return save_ ? TensorShape({steps, batch, width}) : TensorShape({0});
    };
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({batch, units}), &h_out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({batch, keep_ ? steps : 0, units}), &outputs));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, per_step(3 * units), &q_in));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(3, per_step(3 * units), &q_rec));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(4, per_step(units), &z_out));
    if (batch == 0) return;

    const float* xd = x.flat<float>().data();
    const Mask mask = MaskOf(ctx->input(6), steps, loop_.reverse);
    Matrix h[2] = {Eigen::Map<const Matrix>(ctx->input(1).flat<float>().data(), batch, units),
                   Matrix(batch, units)};
    float* out = keep_ ? outputs->flat<float>().data() : nullptr;
    float* qi = save_ ? q_in->flat<float>().data() : nullptr;
    float* qr = save_ ? q_rec->flat<float>().data() : nullptr;
    float* zd = save_ ? z_out->flat<float>().data() : nullptr;
    const int threads = ThreadCount(loop_.threads, units);
    SpinBarrier barrier(threads);

    auto work = [&](int k) {
      const Slice s = SliceOf(k, threads, units);
      const int n = s.size();
      const Matrix wx = GateColumns(ctx->input(2).flat<float>().data(), features, units, kGates, s);
      const Matrix wh = GateColumns(ctx->input(3).flat<float>().data(), units, units, kGates, s);
      const Matrix bx = GateColumns(ctx->input(4).flat<float>().data(), 1, units, kGates, s);
      const Matrix bh = GateColumns(ctx->input(5).flat<float>().data(), 1, units, kGates, s);
      // The z and r gates sum both projections, so one product over [x | h] gives
      // them; the h gate needs its recurrent part apart (it is scaled by r).
      Matrix w_zr(features + units, 2 * n);
      w_zr << wx.leftCols(2 * n), wh.leftCols(2 * n);
      const PackedMatrix zr_packed(w_zr), xh_packed(wx.rightCols(n)), hh_packed(wh.rightCols(n));
      const FloatBuffer zr_bias = zr_packed.PadRow(bx.leftCols(2 * n) + bh.leftCols(2 * n));
      const FloatBuffer xh_bias = xh_packed.PadRow(bx.rightCols(n));
      const FloatBuffer hh_bias = hh_packed.PadRow(bh.rightCols(n));
      Matrix zr(batch, zr_packed.padded_cols()), xh(batch, xh_packed.padded_cols()),
          hh(batch, hh_packed.padded_cols());
      for (int t = 0; t < steps; ++t) {
        const Matrix& h_prev = h[t & 1];
        Matrix& h_next = h[(t + 1) & 1];
        const int step = loop_.reverse ? steps - 1 - t : t;  // of x
        const Operand x_t{xd + step * features, steps * features, features}, h_t{h_prev.data(), units, units};
        zr_packed.Multiply(batch, x_t, h_t, zr_bias.data(), zr.data(), zr.cols());
        xh_packed.Multiply(batch, x_t, kNoOperand, xh_bias.data(), xh.data(), xh.cols());
        hh_packed.Multiply(batch, h_t, kNoOperand, hh_bias.data(), hh.data(), hh.cols());
        for (int b = 0; b < batch; ++b) {
          RowSegment h_new(h_next.row(b).data() + s.begin, n);
          ConstRowSegment h_old(h_prev.row(b).data() + s.begin, n);
          const size_t at = size_t(t) * batch + b;  // row of the (steps, batch, ...) factors
          float* qib = save_ ? qi + at * 3 * units + s.begin : nullptr;
          float* qrb = save_ ? qr + at * 3 * units + s.begin : nullptr;
          float* zb = save_ ? zd + at * units + s.begin : nullptr;
          if (!mask.Keeps(b, t)) {
            h_new = h_old;
            if (save_) {  // q = 0 and z = 1: no gradient into this step's gates, dh passes
              for (int gate = 0; gate < kGates; ++gate) {
                RowSegment(qib + gate * units, n).setZero();
                RowSegment(qrb + gate * units, n).setZero();
              }
              RowSegment(zb, n).setOnes();
            }
          } else {
            const float *zrb = zr.row(b).data(), *xhb = xh.row(b).data(), *hhb = hh.row(b).data();
            ForChunks(n, [&](int j, auto size) {
              const Vector z = Sigmoid(Load(zrb + j, size)), r = Sigmoid(Load(zrb + n + j, size));
              const Vector h_rec = Load(hhb + j, size), h_old_j = Load(h_old.data() + j, size);
              const Vector h_hat = Tanh(Load(xhb + j, size) + r * h_rec);
              Store(h_new.data() + j, z * h_old_j + (1.0f - z) * h_hat, size);  // Keras's order of operations
              if (save_) {
                const Vector q_h = (1.0f - z) * (1.0f - h_hat * h_hat);
                const Vector q_z = (h_old_j - h_hat) * (z * (1.0f - z));
                const Vector q_r = h_rec * (r * (1.0f - r)) * q_h;
                Store(qib + j, q_z, size), Store(qib + units + j, q_r, size), Store(qib + 2 * units + j, q_h, size);
                Store(qrb + j, q_z, size), Store(qrb + units + j, q_r, size);
                Store(qrb + 2 * units + j, q_h * r, size);
                Store(zb + j, z, size);
              }
            });
          }
          if (keep_) RowSegment(out + (size_t(b) * steps + t) * units + s.begin, n) = h_new;
        }
        barrier.Wait();
      }
    };
    RunTogether(ctx, threads, work);
    Eigen::Map<Matrix>(h_out->flat<float>().data(), batch, units) = h[steps & 1];
  }

 private:
  bool save_, keep_;
  LoopAttrs loop_;
};

REGISTER_KERNEL_BUILDER(Name("RnnSuiteGruForward").Device(tensorflow::DEVICE_CPU), GruForwardOp);

// ----------------------------------------------------------------- backward

REGISTER_OP("RnnSuiteGruBackward")
    .Input("d_outputs: float")  // (batch, steps, units), or empty for none
    .Input("dh: float")         // (batch, units): gradient of the final h
    .Input("q_in: float")       // (steps, batch, 3 units)
    .Input("q_rec: float")      // (steps, batch, 3 units)
    .Input("z: float")          // (steps, batch, units)
    .Input("recurrent: float")  // (units, 3 units)
    .Input("mask: float")       // (batch, steps, 1), or empty for none
    .Attr("threads: int >= 1")
    .Attr("reverse: bool = false")  // steps from last to first, as if x and mask were flipped
    .Output("dh0: float")    // (batch, units)
    .Output("d_in: float")   // (batch, steps, 3 units): gradients of the input projection
    .Output("d_rec: float")  // (batch, steps, 3 units): and of the recurrent projection
    .Output("d_input_bias: float")      // (3 units): d_in summed over batch and steps
    .Output("d_recurrent_bias: float")  // (3 units): d_rec summed over batch and steps
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(1));
      auto q = c->input(2);
      c->set_output(1, c->MakeShape({c->Dim(q, 1), c->Dim(q, 0), c->Dim(q, 2)}));
      c->set_output(2, c->MakeShape({c->Dim(q, 1), c->Dim(q, 0), c->Dim(q, 2)}));
      c->set_output(3, c->Vector(c->Dim(q, 2)));
      c->set_output(4, c->Vector(c->Dim(q, 2)));
      return tensorflow::OkStatus();
    });

class GruBackwardOp : public OpKernel {
 public:
  explicit GruBackwardOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    ReadLoopAttrs(ctx, &loop_);
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& q_in = ctx->input(2);
    OP_REQUIRES(ctx, q_in.dims() == 3,
                tensorflow::errors::InvalidArgument("q_in must be (steps, batch, 3 units)"));
    const int steps = q_in.dim_size(0), batch = q_in.dim_size(1), units = ctx->input(5).dim_size(0);
    Tensor *dh0, *d_in, *d_rec, *d_biases[2];
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({batch, units}), &dh0));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({batch, steps, 3 * units}), &d_in));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({batch, steps, 3 * units}), &d_rec));
    for (int i = 0; i < 2; ++i) {
      OP_REQUIRES_OK(ctx, ctx->allocate_output(3 + i, TensorShape({3 * units}), &d_biases[i]));
      d_biases[i]->flat<float>().setZero();
    }
    if (batch == 0) return;

    const float* d_out = ctx->input(0).NumElements() ? ctx->input(0).flat<float>().data() : nullptr;
    const float* qi = q_in.flat<float>().data();
    const float* qr = ctx->input(3).flat<float>().data();
    const float* zd = ctx->input(4).flat<float>().data();
    float* din = d_in->flat<float>().data();
    float* drec = d_rec->flat<float>().data();
    const Mask mask = MaskOf(ctx->input(6), steps, loop_.reverse);
    const size_t row = size_t(steps) * units;
    const int threads = ThreadCount(loop_.threads, units);
    SpinBarrier barrier(threads);

    auto work = [&](int k) {
      const Slice s = SliceOf(k, threads, units);
      const int n = s.size();
      // dh_prev[:, slice] = d_rec @ U[slice, :]^T: this thread's rows of U, transposed.
      const PackedMatrix u_t(ConstView(ctx->input(5).flat<float>().data() + size_t(s.begin) * 3 * units,
                                       n, 3 * units, Strided(3 * units)).transpose());
      Array dh = ConstView(ctx->input(1).flat<float>().data() + s.begin, batch, n, Strided(units));
      Array d(batch, n);
      // Bias gradients: [input, recurrent] x [gates], summed per step, then over steps.
      Eigen::ArrayXf bias_sum = Eigen::ArrayXf::Zero(2 * kGates * n), step_sum(2 * kGates * n);
      Matrix dh_prev(batch, u_t.padded_cols());
      for (int t = steps - 1; t >= 0; --t) {
        step_sum.setZero();
        for (int b = 0; b < batch; ++b) {
          const size_t at = (size_t(b) * steps + t) * 3 * units + s.begin;  // of d_in, d_rec
          const size_t q_at = (size_t(t) * batch + b) * 3 * units + s.begin;  // of the factors
          const float* d_out_b = d_out ? d_out + (size_t(b) * steps + t) * units + s.begin : nullptr;
          const float* dhb = dh.row(b).data();
          float *db = d.row(b).data(), *sums = step_sum.data();
          ForChunks(n, [&](int j, auto size) {
            auto d_j = Part(db + j, size);
            d_j = Part(dhb + j, size);
            if (d_out_b) d_j += Part(d_out_b + j, size);
            for (int gate = 0; gate < kGates; ++gate) {
              const int g = gate * units + j;
              const auto d_input = (d_j * Part(qi + q_at + g, size)).eval();
              const auto d_recurrent = (d_j * Part(qr + q_at + g, size)).eval();
              Part(din + at + g, size) = d_input;
              Part(drec + at + g, size) = d_recurrent;
              Part(sums + gate * n + j, size) += d_input;
              Part(sums + (kGates + gate) * n + j, size) += d_recurrent;
            }
          });
        }
        bias_sum += step_sum;  // per step first: smaller rounding than one running sum
        barrier.Wait();  // d_rec of step t is complete
        u_t.Multiply(batch, {drec + size_t(t) * 3 * units, int(3 * row), 3 * units}, kNoOperand, nullptr,
                     dh_prev.data(), dh_prev.cols());
        dh = dh_prev.leftCols(n).array() +
             d * ConstView(zd + size_t(t) * batch * units + s.begin, batch, n, Strided(units)).array();
      }
      View(dh0->flat<float>().data() + s.begin, batch, n, Strided(units)) = dh.matrix();
      for (int i = 0; i < 2; ++i)
        for (int gate = 0; gate < kGates; ++gate)
          RowSegment(d_biases[i]->flat<float>().data() + gate * units + s.begin, n) =
              bias_sum.segment((i * kGates + gate) * n, n);
    };
    RunTogether(ctx, threads, work);
  }

 private:
  LoopAttrs loop_;
};

REGISTER_KERNEL_BUILDER(Name("RnnSuiteGruBackward").Device(tensorflow::DEVICE_CPU), GruBackwardOp);

}  // namespace
