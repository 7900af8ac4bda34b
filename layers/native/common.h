// Shared by the native kernels: threads that split a step's units, the barrier
// they meet at, weight slicing and masks. See lstm_ops.cc for the design.
#pragma once

#include <sched.h>

#include <array>
#include <atomic>
#include <cstring>
#include <optional>
#include <utility>
#include <thread>
#include <type_traits>
#include <vector>

#include "Eigen/Core"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/platform/blocking_counter.h"
#include "tensorflow/core/platform/threadpool.h"

namespace rnn_suite {

using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;
using tensorflow::TensorShape;
using tensorflow::shape_inference::InferenceContext;

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Array = Eigen::Array<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Strided = Eigen::OuterStride<>;
using View = Eigen::Map<Matrix, 0, Strided>;
using ConstView = Eigen::Map<const Matrix, 0, Strided>;
using RowSegment = Eigen::Map<Eigen::ArrayXf>;  // n floats of one batch row
using ConstRowSegment = Eigen::Map<const Eigen::ArrayXf>;

// The attrs every native op has: how many threads, and whether the steps run
// from the last.
struct LoopAttrs {
  int threads = 1;
  bool reverse = false;
};

inline void ReadLoopAttrs(OpKernelConstruction* ctx, LoopAttrs* attrs) {
  OP_REQUIRES_OK(ctx, ctx->GetAttr("threads", &attrs->threads));
  OP_REQUIRES_OK(ctx, ctx->GetAttr("reverse", &attrs->reverse));
}

constexpr int kSpinsBeforeYield = 1000;  // a short spin: far less than a step

// All threads wait here until every one has arrived. Spins (a step lasts tens of
// microseconds, far less than a sleep), then yields so that an oversubscribed
// machine still makes progress.
class SpinBarrier {
 public:
  explicit SpinBarrier(int parties) : parties_(parties) {}
  void Wait() {
    if (parties_ == 1) return;
    const int generation = generation_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) == parties_ - 1) {
      arrived_.store(0, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
      return;
    }
    for (int spins = 0; generation_.load(std::memory_order_acquire) == generation; ++spins) {
      if (spins > kSpinsBeforeYield) std::this_thread::yield();
    }
  }

 private:
  const int parties_;
  std::atomic<int> arrived_{0};
  std::atomic<int> generation_{0};
};

// While alive, keeps the calling thread on the k-th core it may run on. Two
// threads that meet at a barrier every few microseconds must not share a core,
// and the scheduler, left alone, often wakes a helper on its waker's core.
class PinToCore {
 public:
  explicit PinToCore(int k) {
    if (sched_getaffinity(0, sizeof(saved_), &saved_) != 0 || CPU_COUNT(&saved_) < 2) return;
    int seen = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (!CPU_ISSET(cpu, &saved_) || seen++ != k % CPU_COUNT(&saved_)) continue;
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      pinned_ = sched_setaffinity(0, sizeof(one), &one) == 0;
      return;
    }
  }
  ~PinToCore() {
    if (pinned_) sched_setaffinity(0, sizeof(saved_), &saved_);
  }

 private:
  cpu_set_t saved_;
  bool pinned_ = false;
};

// Runs work(0) ... work(n - 1) at once: work(0) on the calling thread, the others
// on TensorFlow's intra-op threads (extra threads of our own would compete with
// TensorFlow's for the cores and stall the barrier).
template <typename Work>
void RunTogether(OpKernelContext* ctx, int n, Work work) {
  tensorflow::BlockingCounter done(n - 1);
  auto* pool = ctx->device()->tensorflow_cpu_worker_threads()->workers;
  for (int k = 1; k < n; ++k) {
    pool->Schedule([&work, &done, k] {
      {
        PinToCore pin(k);
        work(k);
      }
      done.DecrementCount();
    });
  }
  {
    std::optional<PinToCore> pin;
    if (n > 1) pin.emplace(0);
    work(0);
  }
  done.Wait();
}

// The units [begin, end) a thread owns.
struct Slice {
  int begin, end;
  int size() const { return end - begin; }
};

// How many threads to use for `units`: at most `wanted`, each with at least
// kMinUnitsPerThread units (below that the barrier costs more than the split saves).
constexpr int kMinUnitsPerThread = 64;
inline int ThreadCount(int wanted, int units) {
  return std::max(1, std::min(wanted, units / kMinUnitsPerThread));
}

inline Slice SliceOf(int k, int threads, int units) {
  // Multiples of 16 where possible, so that each slice starts on a vector boundary.
  auto edge = [&](int j) { return j == threads ? units : (units * j / threads) / 16 * 16; };
  return {edge(k), edge(k + 1)};
}

// The columns of slice `s` of each of `gates` gates, side by side, from a
// (rows, gates * units) row-major matrix whose gates are blocks of `units`
// columns; gate g is block order[g] of the matrix (block g without `order`).
// Each gate takes `width` columns (s.size() if 0), those past s.size() zeros.
inline Matrix GateColumns(const float* w, int rows, int units, int gates, Slice s,
                          const int* order = nullptr, int width = 0) {
  if (width == 0) width = s.size();
  Matrix packed = Matrix::Zero(rows, gates * width);
  ConstView full(w, rows, gates * units, Strided(gates * units));
  for (int g = 0; g < gates; ++g) {
    const int block = order ? order[g] : g;
    packed.middleCols(g * width, s.size()) = full.middleCols(block * units + s.begin, s.size());
  }
  return packed;
}

// ------------------------------------------------------ the per-step products
//
// A step's products, e.g. (64, 192) @ (192, 512), are small: Eigen's general
// product repacks both factors on every call, and its tiles do not fit them, so
// it falls well short of a core's peak at the per-thread products of bench/'s
// shapes. The weights do not change during an op, so they are packed once
// (PackedMatrix), and each product runs one register tile over them, which
// keeps close to the peak at all those shapes.

#if defined(__AVX512F__)
constexpr int kLanes = 16, kTileRows = 8;  // 32 registers: 16 sums, 2 weights, 1 input
#elif defined(__AVX__)
constexpr int kLanes = 8, kTileRows = 6;  // 16 registers: 12 sums, 2 weights, 1 input
#else
constexpr int kLanes = 4, kTileRows = 6;
#endif
constexpr int kPanel = 2 * kLanes;  // columns of a packed panel: two vectors

// GCC's vector extension: one machine register of floats, compiled for the
// machine's widest vectors without intrinsics of one instruction set.
typedef float Vector __attribute__((vector_size(kLanes * sizeof(float))));
typedef float UnalignedVector __attribute__((vector_size(kLanes * sizeof(float)), aligned(alignof(float))));
using FloatBuffer = std::vector<float, Eigen::aligned_allocator<float>>;

// The left factor of a product: rows of `cols` floats, `stride` floats apart
// (how many rows is Multiply's `rows`).
struct Operand {
  const float* data;
  int stride, cols;
};

inline int PaddedCols(int cols) { return (cols + kPanel - 1) / kPanel * kPanel; }

// sums[r] += a[r, :k] @ panel[:k]; returns the panel past its k rows.
template <int R>
__attribute__((always_inline)) inline const float* Accumulate(Operand a, const float* panel,
                                                             Vector (&sums)[R][2]) {
  for (int k = 0; k < a.cols; ++k, panel += kPanel) {
    // Unaligned loads: as fast as aligned ones where the data is aligned, and
    // safe whatever alignment the allocator gives.
    const Vector w0 = *reinterpret_cast<const UnalignedVector*>(panel);
    const Vector w1 = *reinterpret_cast<const UnalignedVector*>(panel + kLanes);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const float v = a.data[size_t(r) * a.stride + k];
      sums[r][0] += v * w0;
      sums[r][1] += v * w1;
    }
  }
  return panel;
}

// out[:R, panel's columns] = bias + a @ panel[:a.cols] + b @ panel[a.cols:].
template <int R>
void Tile(Operand a, Operand b, const float* panel, const float* bias, float* out, int out_stride) {
  Vector sums[R][2];
  const Vector zero = {};
  const Vector b0 = bias ? *reinterpret_cast<const UnalignedVector*>(bias) : zero;
  const Vector b1 = bias ? *reinterpret_cast<const UnalignedVector*>(bias + kLanes) : zero;
  for (int r = 0; r < R; ++r) sums[r][0] = b0, sums[r][1] = b1;
  panel = Accumulate<R>(a, panel, sums);
  if (b.data) Accumulate<R>(b, panel, sums);
  for (int r = 0; r < R; ++r) {
    *reinterpret_cast<UnalignedVector*>(out + size_t(r) * out_stride) = sums[r][0];
    *reinterpret_cast<UnalignedVector*>(out + size_t(r) * out_stride + kLanes) = sums[r][1];
  }
}

using TileFunction = void (*)(Operand, Operand, const float*, const float*, float*, int);
template <size_t... R>
constexpr std::array<TileFunction, sizeof...(R)> TilesOf(std::index_sequence<R...>) {
  return {&Tile<int(R) + 1>...};
}
constexpr auto kTiles = TilesOf(std::make_index_sequence<kTileRows>());  // kTiles[r - 1]: r rows

// A weight matrix packed for Multiply: panels of kPanel columns, each panel's
// rows one after the other, the last panel padded with zeros.
class PackedMatrix {
 public:
  template <typename Derived>
  explicit PackedMatrix(const Eigen::MatrixBase<Derived>& w)
      : rows_(w.rows()), cols_(w.cols()), data_(size_t(rows_) * PaddedCols(cols_), 0.0f) {
    for (int j = 0; j < cols_; j += kPanel) {
      float* panel = data_.data() + size_t(j) * rows_;
      const int width = std::min(kPanel, cols_ - j);
      for (int k = 0; k < rows_; ++k)
        for (int c = 0; c < width; ++c) panel[k * kPanel + c] = w(k, j + c);
    }
  }

  int padded_cols() const { return PaddedCols(cols_); }

  // A row of `cols` floats, zero-padded to padded_cols(): the bias for Multiply.
  template <typename Derived>
  FloatBuffer PadRow(const Eigen::MatrixBase<Derived>& row) const {
    FloatBuffer padded(padded_cols(), 0.0f);
    for (int c = 0; c < cols_; ++c) padded[c] = row(0, c);
    return padded;
  }

  // out[:rows, :padded_cols()] = bias + [a | b] @ this, where a.cols + b.cols
  // are this matrix's rows (b.data may be null, a.cols then all the rows) and
  // bias is null or a PadRow.
  void Multiply(int rows, Operand a, Operand b, const float* bias, float* out, int out_stride) const {
    for (int j = 0; j < cols_; j += kPanel) {
      const float* panel = data_.data() + size_t(j) * rows_;
      const float* panel_bias = bias ? bias + j : nullptr;
      for (int r = 0; r < rows; r += kTileRows) {
        const int count = std::min(kTileRows, rows - r);
        const Operand a_rows{a.data + size_t(r) * a.stride, a.stride, a.cols};
        const Operand b_rows{b.data ? b.data + size_t(r) * b.stride : nullptr, b.stride, b.cols};
        kTiles[count - 1](a_rows, b_rows, panel, panel_bias, out + size_t(r) * out_stride + j, out_stride);
      }
    }
  }

 private:
  int rows_, cols_;
  FloatBuffer data_;
};

constexpr Operand kNoOperand = {nullptr, 0, 0};

// out[:R, :kPanel] += aᵀ[:R] @ panel, where aᵀ row r is column r of a:
// aᵀ[r, k] = a.data[k * a.stride + r], k < a.cols (the panel's rows). A
// weight gradient's product: a holds x_t or h_t, rows of the batch.
template <int R>
void TransposedTile(Operand a, const float* panel, float* out, int out_stride) {
  Vector sums[R][2];
  for (int r = 0; r < R; ++r) {
    sums[r][0] = *reinterpret_cast<const UnalignedVector*>(out + size_t(r) * out_stride);
    sums[r][1] = *reinterpret_cast<const UnalignedVector*>(out + size_t(r) * out_stride + kLanes);
  }
  for (int k = 0; k < a.cols; ++k, panel += kPanel) {
    const Vector w0 = *reinterpret_cast<const UnalignedVector*>(panel);
    const Vector w1 = *reinterpret_cast<const UnalignedVector*>(panel + kLanes);
    const float* column = a.data + size_t(k) * a.stride;
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      sums[r][0] += column[r] * w0;
      sums[r][1] += column[r] * w1;
    }
  }
  for (int r = 0; r < R; ++r) {
    *reinterpret_cast<UnalignedVector*>(out + size_t(r) * out_stride) = sums[r][0];
    *reinterpret_cast<UnalignedVector*>(out + size_t(r) * out_stride + kLanes) = sums[r][1];
  }
}

using TransposedTileFunction = void (*)(Operand, const float*, float*, int);
template <size_t... R>
constexpr std::array<TransposedTileFunction, sizeof...(R)> TransposedTilesOf(std::index_sequence<R...>) {
  return {&TransposedTile<int(R) + 1>...};
}
constexpr auto kTransposedTiles = TransposedTilesOf(std::make_index_sequence<kTileRows>());

// A sum over steps of aᵀ @ d, d being each step's (batch, cols) gradients
// packed into panels of kPanel columns (rows of the batch one after the
// other in each panel; cols a multiple of kPanel): the weight gradient of a
// projection, accumulated a step at a time while d is in cache.
class WeightGradient {
 public:
  WeightGradient(int rows, int batch, int cols) : rows_(rows), batch_(batch), cols_(cols), sum_(size_t(rows) * cols, 0.0f) {}

  // sum += aᵀ @ d, a: `batch` rows of `rows` floats, a.stride apart.
  void Add(const float* a, int a_stride, const float* d) {
    for (int r = 0; r < rows_; r += kTileRows) {
      const Operand rows{a + r, a_stride, batch_};
      const int count = std::min(kTileRows, rows_ - r);
      for (int j = 0; j < cols_; j += kPanel)
        kTransposedTiles[count - 1](rows, d + size_t(j) * batch_, sum_.data() + size_t(r) * cols_ + j, cols_);
    }
  }

  const float* row(int r) const { return sum_.data() + size_t(r) * cols_; }

 private:
  int rows_, batch_, cols_;
  FloatBuffer sum_;
};

// ------------------------------------------------ elementwise work, in chunks
//
// A row's elementwise work is a dozen short expressions over n units. Written
// over whole rows, each is a loop of its own with its own start-up cost and
// pass over memory; cut into chunks of one vector, Eigen compiles them all into
// one pass of straight vector code.

// n floats at p: a fixed-size map when `size` is an std::integral_constant, else a dynamic one.
template <typename Size>
auto Part(float* p, Size size) {
  if constexpr (std::is_same_v<Size, int>) {
    return Eigen::Map<Eigen::ArrayXf>(p, size);
  } else {
    return Eigen::Map<Eigen::Array<float, Size::value, 1>>(p);
  }
}
template <typename Size>
auto Part(const float* p, Size size) {
  if constexpr (std::is_same_v<Size, int>) {
    return Eigen::Map<const Eigen::ArrayXf>(p, size);
  } else {
    return Eigen::Map<const Eigen::Array<float, Size::value, 1>>(p);
  }
}

// body(j, size) for the chunks [j, j + size) of [0, n): kLanes at a time, then the rest.
template <typename Body>
inline void ForChunks(int n, Body body) {
  int j = 0;
  for (; j + kLanes <= n; j += kLanes) body(j, std::integral_constant<int, kLanes>());
  if (j < n) body(j, n - j);
}

// --------------------------------------------------- activations, one Vector
//
// The gates' sigmoid and tanh on one Vector. In a step's elementwise work
// they are most of the instructions, and they share the cores' vector units
// with the products. Sigmoid here is 1 / (1 + Exp(-x)) with the short Exp
// below: fewer vector instructions than Eigen's logistic (which TensorFlow's
// sigmoid uses), and it errs less. Tanh is Eigen's ptanh_float (the same
// results). NaN inputs give NaN (the clamps pass NaN through, as Eigen's do).

typedef int IntVector __attribute__((vector_size(kLanes * sizeof(int))));
using Packet = Eigen::internal::packet_traits<float>::type;  // Eigen's vector of floats

inline Vector Splat(float value) { return Vector{} + value; }

// min(a, b) and max(a, b), a where a is NaN (std::min's and Eigen's pmin's
// rule). Through Eigen's packets where they are one Vector: one instruction,
// where GCC makes two of the conditional.
template <typename P = Packet>  // a template, so that the branch not taken is not compiled
inline Vector Min(Vector a, Vector b) {
  if constexpr (sizeof(P) == sizeof(Vector)) return Eigen::internal::pmin<P>(a, b);
  return b < a ? b : a;
}
template <typename P = Packet>
inline Vector Max(Vector a, Vector b) {
  if constexpr (sizeof(P) == sizeof(Vector)) return Eigen::internal::pmax<P>(a, b);
  return a < b ? b : a;
}

// exp(x), x clamped to [-87, 88] so that 2^m below stays a normal float:
// 2^m * exp(r), m = round(x / ln 2), r = x - m ln 2 in two parts (Cody-Waite),
// exp(r) by Eigen's degree-5 polynomial.
inline Vector Exp(Vector x) {
  x = Max(Min(x, Splat(88.0f)), Splat(-87.0f));
  const Vector round = Splat(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  const Vector shifted = x * 1.44269504088896341f + round;  // m in the low mantissa bits
  const Vector m = shifted - round;
  Vector r = m * -0.693359375f + x;
  r = m * 2.12194440e-4f + r;
  const Vector r2 = r * r;
  const Vector even = r2 * 4.1898667812347412109375e-2f + 0.49999141693115234375f;
  const Vector odd = r2 * 8.33471305668354034423828125e-3f + 0.16666877269744873046875f;
  const Vector p = r2 * (r * odd + even) + (r + 1.0f);
  const IntVector two_to_m = ((IntVector)shifted << 23) + (127 << 23);  // the bits of 2^m
  return p * (Vector)two_to_m;
}

inline Vector Sigmoid(Vector x) { return 1.0f / (1.0f + Exp(-x)); }

inline Vector Tanh(Vector a) {
  // Eigen's rational approximation; c is where it reaches exactly 1.
  const Vector c = Splat(8.01773357391357422f);
  const Vector x = Max(Min(a, c), -c);
  const Vector x2 = x * x;
  Vector p = ((x2 * 1.394553628e-8f + 2.102733560e-5f) * x2 + 3.520756727e-3f) * x2 + 1.340216100e-1f;
  const Vector q = (((x2 * 8.015776984e-7f + 3.326951409e-4f) * x2 + 2.597254514e-2f) * x2 + 4.673548340e-1f) * x2 + 1.0f;
  p = x2 * x * p + x;
  return p / q;
}

// The floats [p, p + size) as a Vector (lanes past size zero), and back.
inline Vector Load(const float* p, std::integral_constant<int, kLanes>) {
  return *reinterpret_cast<const UnalignedVector*>(p);
}
inline Vector Load(const float* p, int size) {
  Vector v = {};
  std::memcpy(&v, p, size * sizeof(float));
  return v;
}
inline void Store(float* p, Vector v, std::integral_constant<int, kLanes>) {
  *reinterpret_cast<UnalignedVector*>(p) = v;
}
inline void Store(float* p, Vector v, int size) { std::memcpy(p, &v, size * sizeof(float)); }

// A step is kept for row b where mask[b, t] > 0.5; no mask keeps every step.
// Steps are counted in the order they run: from the last with `reverse`.
struct Mask {
  const float* data;  // (batch, steps) or nullptr
  int steps;
  bool reverse;
  bool Keeps(int b, int t) const {
    return data == nullptr || data[b * steps + (reverse ? steps - 1 - t : t)] > 0.5f;
  }
};

inline Mask MaskOf(const Tensor& mask, int steps, bool reverse) {
  return {mask.NumElements() == 0 ? nullptr : mask.flat<float>().data(), steps, reverse};
}

inline void CheckInputs(OpKernelContext* ctx, const Tensor& x, int units) {
  OP_REQUIRES(ctx, x.dims() == 3, tensorflow::errors::InvalidArgument("x must be (batch, steps, features)"));
  OP_REQUIRES(ctx, units > 0, tensorflow::errors::InvalidArgument("units must be positive"));
}

}  // namespace rnn_suite
