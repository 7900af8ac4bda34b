// Shared by the native kernels: threads that split a step's units, the barrier
// they meet at, weight slicing and masks. See lstm_ops.cc for the design.
#pragma once

#include <sched.h>

#include <atomic>
#include <optional>
#include <thread>
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

// kMatmulsOnlyDoc: with the attr `matmuls_only`, an op runs only its per-step
// matmuls and barriers and skips every other operation and write, so its
// outputs are undefined; the backward ops multiply their first factor input in
// place of the gradients they would compute. bench/ times this to bound what
// the kernels could reach were all but their matmuls free.
constexpr const char* kMatmulsOnlyDoc = "matmuls and barriers only; outputs undefined";

constexpr int kSpinsBeforeYield = 1000;  // about 10 microseconds

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
// (rows, gates * units) row-major matrix whose gates are blocks of `units` columns.
inline Matrix GateColumns(const float* w, int rows, int units, int gates, Slice s) {
  Matrix packed(rows, gates * s.size());
  ConstView full(w, rows, gates * units, Strided(gates * units));
  for (int g = 0; g < gates; ++g)
    packed.middleCols(g * s.size(), s.size()) = full.middleCols(g * units + s.begin, s.size());
  return packed;
}

// A step is kept for row b where mask[b, t] > 0.5; no mask keeps every step.
struct Mask {
  const float* data;  // (batch, steps) or nullptr
  int steps;
  bool Keeps(int b, int t) const { return data == nullptr || data[b * steps + t] > 0.5f; }
};

inline Mask MaskOf(const Tensor& mask, int steps) {
  return {mask.NumElements() == 0 ? nullptr : mask.flat<float>().data(), steps};
}

inline void CheckInputs(OpKernelContext* ctx, const Tensor& x, int units) {
  OP_REQUIRES(ctx, x.dims() == 3, tensorflow::errors::InvalidArgument("x must be (batch, steps, features)"));
  OP_REQUIRES(ctx, units > 0, tensorflow::errors::InvalidArgument("units must be positive"));
}

}  // namespace rnn_suite
