// Whole-sequence LSTM kernels as TensorFlow ops: the native part of the fast path.
//
// Why native: on a CPU a step's matmul, e.g. (32, 288) @ (288, 1024), is too
// small for XLA or Eigen's threaded products to share between cores, so the
// XLA kernels in layers/_kernels.py cut the *batch* into one chain per core,
// and every core then streams all the weights each step (at a few hundred
// units, more than a core's L2 cache holds). These ops cut the *units*
// instead: each of `threads` threads owns a slice of the units, keeps its own
// slice of the weights in its cache (packed once per call: PackedMatrix in
// common.h), computes its gates for the whole batch, and the threads meet at
// a spin barrier once a step to swap the new state. This is how oneDNN's and
// torch's CPU LSTMs spend the cores.
//
// The factors are those of `_lstm_forward` / `_lstm_backward` in
// layers/_kernels.py (gates i, f, o, c). The outputs and the gradients of the
// projections are batch major, (batch, steps, ...) like the layer's input and
// output, so that neither they nor the weight gradients after the backward
// loop need a transpose. The factors, which only the backward op reads, are
// time major, (steps, batch, ...): each step then writes and reads one
// contiguous block, which the caches' prefetchers follow (batch-major factors
// would be strided, and slower to write).
// The bias gradients are summed in the backward loop while its dz is in cache,
// and so are the weight gradients where each thread's share fits in its cache
// (attr weight_grads; `_kernels._weight_grads_inside` decides): a step's
// x_tᵀ dz_t and h_{t-1}ᵀ dz_t, from dz_t packed as the step makes it
// (WeightGradient in common.h).
// Activations: sigmoid gates and tanh; other activations take the XLA kernels.

#include "common.h"

namespace {

using namespace rnn_suite;  // NOLINT: this file is its implementation

constexpr int kGates = 4;
// The weights, their gradients and dz come in Keras's gate order i, f, c, o;
// inside, the gates are i, f, o, c (the three sigmoid gates side by side).
// Gate g inside is block kKerasBlock[g] of Keras's columns.
constexpr int kKerasBlock[kGates] = {0, 1, 3, 2};
constexpr int kI = 0, kF = 1, kC = 2, kO = 3;  // Keras's blocks

// ------------------------------------------------------------------ forward

// One row's cells over `count` units: the state update of a step from the
// gates' pre-activations z, and the factors the backward op reads (if p is
// not null).
struct Cells {
  const float* z;  // the gates' pre-activations (i, f, o, c), z_gates apart
  int z_gates;
  float* c;        // updated in place; padded to whole Vectors
  const float* h_old;
  float* h_new;
  float *p, *kf;  // this step's factors, or null; their gates are `units` apart
  int units;

  void Step(int count) {
    ForChunks(count, [&](int j, auto size) {
      const Vector i = Sigmoid(Load(z + j, kFull)), f = Sigmoid(Load(z + z_gates + j, kFull));
      const Vector o = Sigmoid(Load(z + 2 * z_gates + j, kFull)), g = Tanh(Load(z + 3 * z_gates + j, kFull));
      const Vector c_prev = Load(c + j, kFull);
      const Vector c_j = f * c_prev + i * g;
      const Vector tc = Tanh(c_j);
      Store(c + j, c_j, kFull);
      Store(h_new + j, o * tc, size);
      if (p) {
        // p = [g, c_prev, tc, i] * activation derivatives; kf = [o * tanh'(c), f].
        Store(p + j, g * i * (1.0f - i), size);
        Store(p + units + j, c_prev * f * (1.0f - f), size);
        Store(p + 2 * units + j, tc * o * (1.0f - o), size);
        Store(p + 3 * units + j, i * (1.0f - g * g), size);
        Store(kf + j, o * (1.0f - tc * tc), size);
        Store(kf + units + j, f, size);
      }
    });
  }

  // A masked step: the state passes through (c stays); p = 0 and kf = [0, 1],
  // so that no gradient enters this step's gates and dc passes.
  void PassThrough(int count) {
    RowSegment(h_new, count) = ConstRowSegment(h_old, count);
    if (!p) return;
    for (int gate = 0; gate < kGates; ++gate) RowSegment(p + gate * units, count).setZero();
    RowSegment(kf, count).setZero();
    RowSegment(kf + units, count).setOnes();
  }

  static constexpr std::integral_constant<int, kLanes> kFull{};  // z and c hold whole Vectors
};

REGISTER_OP("RnnSuiteLstmForward")
    .Input("x: float")          // (batch, steps, features)
    .Input("h0: float")         // (batch, units)
    .Input("c0: float")         // (batch, units)
    .Input("kernel: float")     // (features, 4 units), Keras's gates i, f, c, o
    .Input("recurrent: float")  // (units, 4 units)
    .Input("bias: float")       // (4 units)
    .Input("mask: float")       // (batch, steps, 1), or empty for none
    .Attr("save: bool")
    .Attr("keep: bool")
    .Attr("threads: int >= 1")
    .Attr("reverse: bool = false")  // steps from last to first, as if x and mask were flipped
    .Output("h: float")        // (batch, units)
    .Output("c: float")        // (batch, units)
    .Output("outputs: float")  // (batch, steps, units) if keep, else (batch, 0, units)
    .Output("p: float")        // (steps, batch, 4 units) if save, else empty
    .Output("kf: float")       // (steps, batch, 2 units) if save, else empty
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
      c->set_output(3, save ? c->MakeShape({steps, batch, four}) : c->Vector(0));
      c->set_output(4, save ? c->MakeShape({steps, batch, two}) : c->Vector(0));
      return tensorflow::OkStatus();
    });

class LstmForwardOp : public OpKernel {
 public:
  explicit LstmForwardOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("save", &save_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("keep", &keep_));
    ReadLoopAttrs(ctx, &loop_);
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
    TensorShape p_shape = save_ ? TensorShape({steps, batch, 4 * units}) : TensorShape({0});
    TensorShape kf_shape = save_ ? TensorShape({steps, batch, 2 * units}) : TensorShape({0});
    OP_REQUIRES_OK(ctx, ctx->allocate_output(3, p_shape, &p));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(4, kf_shape, &kf));
    if (batch == 0) return;

    const float* xd = x.flat<float>().data();
    const Mask mask = MaskOf(ctx->input(6), steps, loop_.reverse);
    // Two state buffers: step t reads one and writes the other, so that one barrier
    // a step suffices (no thread writes a buffer another may still be reading).
    Matrix h[2] = {Eigen::Map<const Matrix>(ctx->input(1).flat<float>().data(), batch, units),
                   Matrix(batch, units)};
    float* out = keep_ ? outputs->flat<float>().data() : nullptr;
    float* pd = save_ ? p->flat<float>().data() : nullptr;
    float* kfd = save_ ? kf->flat<float>().data() : nullptr;
    const int threads = ThreadCount(loop_.threads, units);
    SpinBarrier barrier(threads);

    auto work = [&](int k) {
      const Slice s = SliceOf(k, threads, units);
      const int n = s.size(), width = PaddedCols(n);  // each gate's columns, padded to whole panels
      Matrix w(features + units, kGates * width);  // [kernel; recurrent], this slice's columns
      w << GateColumns(ctx->input(3).flat<float>().data(), features, units, kGates, s, kKerasBlock, width),
          GateColumns(ctx->input(4).flat<float>().data(), units, units, kGates, s, kKerasBlock, width);
      const PackedMatrix packed(w);
      const FloatBuffer bias =
          packed.PadRow(GateColumns(ctx->input(5).flat<float>().data(), 1, units, kGates, s, kKerasBlock, width));
      Array c = Array::Zero(batch, width);  // padded like the gates: every chunk of c is a whole Vector
      c.leftCols(n) = ConstView(ctx->input(2).flat<float>().data() + s.begin, batch, n, Strided(units)).array();
      // z of one block of kTileRows rows, whose cells follow its product while
      // it is in the L1 cache.
      const int z_cols = kGates * width;
      FloatBuffer z(kTileRows * z_cols);
      for (int t = 0; t < steps; ++t) {
        const Matrix& h_prev = h[t & 1];
        Matrix& h_next = h[(t + 1) & 1];
        const int step = loop_.reverse ? steps - 1 - t : t;  // of x
        for (int r0 = 0; r0 < batch; r0 += kTileRows) {
          const int rows = std::min(kTileRows, batch - r0);
          packed.Multiply(rows, {xd + (size_t(r0) * steps + step) * features, steps * features, features},
                          {h_prev.data() + size_t(r0) * units, units, units}, bias.data(), z.data(), z_cols);
          for (int r = r0; r < r0 + rows; ++r) {
            const size_t at = size_t(t) * batch + r;  // of the factors
            Cells cells{z.data() + (r - r0) * z_cols, width, c.row(r).data(),
                        h_prev.row(r).data() + s.begin, h_next.row(r).data() + s.begin,
                        save_ ? pd + at * 4 * units + s.begin : nullptr,
                        save_ ? kfd + at * 2 * units + s.begin : nullptr, units};
            if (mask.Keeps(r, t)) {
              cells.Step(n);
            } else {
              cells.PassThrough(n);
            }
            if (keep_) RowSegment(out + (size_t(r) * steps + t) * units + s.begin, n) = RowSegment(cells.h_new, n);
          }
        }
        barrier.Wait();
      }
      View(c_out->flat<float>().data() + s.begin, batch, n, Strided(units)) = c.leftCols(n).matrix();
    };
    RunTogether(ctx, threads, work);
    Eigen::Map<Matrix>(h_out->flat<float>().data(), batch, units) = h[steps & 1];
  }

 private:
  bool save_, keep_;
  LoopAttrs loop_;
};

REGISTER_KERNEL_BUILDER(Name("RnnSuiteLstmForward").Device(tensorflow::DEVICE_CPU), LstmForwardOp);

// ----------------------------------------------------------------- backward

REGISTER_OP("RnnSuiteLstmBackward")
    .Input("d_outputs: float")  // (batch, steps, units), or empty for none
    .Input("dh: float")         // (batch, units): gradient of the final h
    .Input("dc: float")         // (batch, units): gradient of the final c
    .Input("p: float")          // (steps, batch, 4 units)
    .Input("kf: float")         // (steps, batch, 2 units)
    .Input("x: float")          // (batch, steps, features): the forward op's; with weight_grads
    .Input("h0: float")         // (batch, units); with weight_grads
    .Input("outputs: float")    // (batch, steps, units); with weight_grads
    .Input("recurrent: float")  // (units, 4 units), Keras's gates i, f, c, o
    .Input("mask: float")       // (batch, steps, 1), or empty for none
    .Attr("weight_grads: bool = true")  // sum d_kernel and d_recurrent (else they are empty)
    .Attr("threads: int >= 1")
    .Attr("reverse: bool = false")  // steps from last to first, as if x and mask were flipped
    .Output("dh0: float")  // (batch, units)
    .Output("dc0: float")  // (batch, units)
    .Output("dz: float")   // (batch, steps, 4 units): gradients of the pre-activations, Keras's order
    .Output("d_bias: float")  // (4 units): dz summed over batch and steps, Keras's order
    .Output("d_kernel: float")     // (features, 4 units): sum over steps of x_tᵀ dz_t, or (0, 4 units)
    .Output("d_recurrent: float")  // (units, 4 units): sum over steps of h_{t-1}ᵀ dz_t, or (0, 4 units)
    .SetShapeFn([](InferenceContext* c) {
      bool weight_grads;
      TF_RETURN_IF_ERROR(c->GetAttr("weight_grads", &weight_grads));
      c->set_output(0, c->input(1));
      c->set_output(1, c->input(2));
      auto p = c->input(3);
      c->set_output(2, c->MakeShape({c->Dim(p, 1), c->Dim(p, 0), c->Dim(p, 2)}));
      c->set_output(3, c->Vector(c->Dim(p, 2)));
      auto none = c->MakeDim(0);
      c->set_output(4, c->Matrix(weight_grads ? c->Dim(c->input(5), 2) : none, c->Dim(p, 2)));
      c->set_output(5, c->Matrix(weight_grads ? c->Dim(c->input(8), 0) : none, c->Dim(p, 2)));
      return tensorflow::OkStatus();
    });

class LstmBackwardOp : public OpKernel {
 public:
  explicit LstmBackwardOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("weight_grads", &weight_grads_));
    ReadLoopAttrs(ctx, &loop_);
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& p = ctx->input(3);
    OP_REQUIRES(ctx, p.dims() == 3, tensorflow::errors::InvalidArgument("p must be (steps, batch, 4 units)"));
    const int steps = p.dim_size(0), batch = p.dim_size(1), units = ctx->input(8).dim_size(0);
    OP_REQUIRES(ctx, !weight_grads_ || ctx->input(5).dims() == 3,
                tensorflow::errors::InvalidArgument("x must be (batch, steps, features)"));
    const int features = weight_grads_ ? ctx->input(5).dim_size(2) : 0;
    const int gradient_units = weight_grads_ ? units : 0;  // rows of d_recurrent
    Tensor *dh0, *dc0, *dz, *d_bias, *d_kernel, *d_recurrent;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({batch, units}), &dh0));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({batch, units}), &dc0));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({batch, steps, 4 * units}), &dz));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(3, TensorShape({4 * units}), &d_bias));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(4, TensorShape({features, 4 * units}), &d_kernel));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(5, TensorShape({gradient_units, 4 * units}), &d_recurrent));
    d_bias->flat<float>().setZero();
    d_kernel->flat<float>().setZero();
    d_recurrent->flat<float>().setZero();
    if (batch == 0) return;
    const float* xd = ctx->input(5).flat<float>().data();
    const float* h0d = ctx->input(6).flat<float>().data();
    const float* outd = ctx->input(7).flat<float>().data();

    const float* d_out = ctx->input(0).NumElements() ? ctx->input(0).flat<float>().data() : nullptr;
    const float* pd = p.flat<float>().data();
    const float* kfd = ctx->input(4).flat<float>().data();
    float* dzd = dz->flat<float>().data();
    const Mask mask = MaskOf(ctx->input(9), steps, loop_.reverse);
    const int threads = ThreadCount(loop_.threads, units);
    SpinBarrier barrier(threads);

    auto work = [&](int k) {
      const Slice s = SliceOf(k, threads, units);
      const int n = s.size();
      // dh_prev[:, slice] = dz @ U[slice, :]^T: this thread's rows of U, transposed.
      const PackedMatrix u_t(ConstView(ctx->input(8).flat<float>().data() + size_t(s.begin) * 4 * units,
                                       n, 4 * units, Strided(4 * units)).transpose());
      // This thread's columns of dz_t packed for the weight gradients, each gate's
      // block padded to whole Vectors (so that no chunk straddles two panels).
      const int block = (n + kLanes - 1) / kLanes * kLanes, packed_cols = PaddedCols(kGates * block);
      FloatBuffer dz_packed(weight_grads_ ? size_t(batch) * packed_cols : 0, 0.0f);
      auto packed_at = [&](int r, int col) {
        return dz_packed.data() + size_t(col / kPanel) * batch * kPanel + r * kPanel + col % kPanel;
      };
      WeightGradient dw(features, batch, packed_cols), du(gradient_units, batch, packed_cols);
      Array dh = ConstView(ctx->input(1).flat<float>().data() + s.begin, batch, n, Strided(units));
      Array dc = ConstView(ctx->input(2).flat<float>().data() + s.begin, batch, n, Strided(units));
      Array d(batch, n);
      Eigen::ArrayXf bias_sum = Eigen::ArrayXf::Zero(kGates * n), step_sum(kGates * n);
      Matrix dh_prev(batch, u_t.padded_cols());
      const size_t row = size_t(steps) * units;  // floats from one batch row to the next, per unit
      for (int t = steps - 1; t >= 0; --t) {
        const Operand dzt{dzd + size_t(t) * 4 * units, int(4 * row), 4 * units};
        const int step = loop_.reverse ? steps - 1 - t : t;  // of x
        auto add_weight_gradients = [&] {
          if (!weight_grads_) return;
          dw.Add(xd + size_t(step) * features, steps * features, dz_packed.data());
          if (t == 0) {
            du.Add(h0d, units, dz_packed.data());
          } else {
            du.Add(outd + size_t(t - 1) * units, steps * units, dz_packed.data());
          }
        };
        step_sum.setZero();
        for (int r = 0; r < batch; ++r) {
          const float* pr = pd + (size_t(t) * batch + r) * 4 * units + s.begin;
          const float* kfr = kfd + (size_t(t) * batch + r) * 2 * units + s.begin;
          float* dzr = dzd + (size_t(r) * steps + t) * 4 * units + s.begin;
          const float* d_out_r = d_out ? d_out + (size_t(r) * steps + t) * units + s.begin : nullptr;
          float *dr = d.row(r).data(), *dcr = dc.row(r).data(), *sums = step_sum.data();
          const float* dhr = dh.row(r).data();
          ForChunks(n, [&](int j, auto size) {
            auto d_j = Part(dr + j, size), dc_j = Part(dcr + j, size);
            d_j = Part(dhr + j, size);
            if (d_out_r) d_j += Part(d_out_r + j, size);
            dc_j += d_j * Part(kfr + j, size);  // dc + d * o * tanh'(c): the cell's gradient
            const auto di = (dc_j * Part(pr + j, size)).eval();
            const auto df = (dc_j * Part(pr + units + j, size)).eval();
            const auto d_o = (d_j * Part(pr + 2 * units + j, size)).eval();
            const auto dg = (dc_j * Part(pr + 3 * units + j, size)).eval();
            Part(dzr + kI * units + j, size) = di, Part(dzr + kF * units + j, size) = df;
            Part(dzr + kC * units + j, size) = dg, Part(dzr + kO * units + j, size) = d_o;
            Part(sums + kI * n + j, size) += di, Part(sums + kF * n + j, size) += df;
            Part(sums + kC * n + j, size) += dg, Part(sums + kO * n + j, size) += d_o;
            if (weight_grads_) {
              Part(packed_at(r, kI * block + j), size) = di, Part(packed_at(r, kF * block + j), size) = df;
              Part(packed_at(r, kC * block + j), size) = dg, Part(packed_at(r, kO * block + j), size) = d_o;
            }
            dc_j *= Part(kfr + units + j, size);  // through the forget gate
          });
        }
        bias_sum += step_sum;  // per step first: smaller rounding than one running sum
        add_weight_gradients();  // this thread's columns: its own dz_t
        barrier.Wait();  // dz of step t is complete
        u_t.Multiply(batch, dzt, kNoOperand, nullptr, dh_prev.data(), dh_prev.cols());
        dh = dh_prev.leftCols(n).array();
        for (int r = 0; r < batch; ++r) {
          if (!mask.Keeps(r, t)) dh.row(r) += d.row(r);  // the state passed through
        }
      }
      View(dh0->flat<float>().data() + s.begin, batch, n, Strided(units)) = dh.matrix();
      View(dc0->flat<float>().data() + s.begin, batch, n, Strided(units)) = dc.matrix();
      for (int gate = 0; gate < kGates; ++gate) {
        RowSegment(d_bias->flat<float>().data() + gate * units + s.begin, n) = bias_sum.segment(gate * n, n);
        for (int r = 0; r < features; ++r)
          RowSegment(d_kernel->flat<float>().data() + size_t(r) * 4 * units + gate * units + s.begin, n) =
              ConstRowSegment(dw.row(r) + gate * block, n);
        for (int r = 0; r < gradient_units; ++r)
          RowSegment(d_recurrent->flat<float>().data() + size_t(r) * 4 * units + gate * units + s.begin, n) =
              ConstRowSegment(du.row(r) + gate * block, n);
      }
    };
    RunTogether(ctx, threads, work);
  }

 private:
  bool weight_grads_;
  LoopAttrs loop_;
};

REGISTER_KERNEL_BUILDER(Name("RnnSuiteLstmBackward").Device(tensorflow::DEVICE_CPU), LstmBackwardOp);

}  // namespace
