// pneumo-kernel-bench harness: each custom kernel is timed (warm-up, then the median of repeats; CUDA events
// on the GPU, steady_clock on the CPU) and reported in GB/s over the MINIMAL bytes it must move (each input
// read once, each output written once) and as a fraction of the device's copy bandwidth measured in the same
// run (cudaMemcpy device-to-device, or a parallel memcpy on the CPU; bytes read + written). Benchmark files
// register their cases with PNEUMO_KERNEL_BENCH so adding one never edits main.cpp.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/dtype.h"

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace pneumo::kbench {

struct Result {
  std::string name, shape, dtype;
  double ms = 0;       // median
  double bytes = 0;    // minimal bytes moved
  double gbps() const { return ms > 0 ? bytes / (ms * 1e6) : 0; }
};

// Memory on the bench's device (cudaMalloc or aligned host memory), freed on destruction.
class Buffer {
 public:
  Buffer() = default;
  Buffer(size_t bytes, bool gpu);
  ~Buffer();
  Buffer(Buffer&& o) noexcept;
  Buffer& operator=(Buffer&& o) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void* data() const { return ptr_; }
  size_t bytes() const { return bytes_; }
  // Fills with pseudo-random values in [lo, hi) stored as `dt` (F32/BF16/U8 0-1 masks when mask is true).
  void fill_random(DType dt, float lo, float hi, uint64_t seed, bool mask = false);
  void fill_zero();

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
  bool gpu_ = false;
};

class Context {
 public:
  bool gpu = false;
  bool full = false;  // GPU-sized shapes on the CPU too
  int warmup = 3, repeats = 20;
  double copy_gbps = 0;
  cudaStream_t stream = nullptr;
  std::vector<Result> results;

  Buffer alloc(size_t bytes) const { return Buffer(bytes, gpu); }
  // Times `fn` (which launches on `stream` on the GPU) and records a result.
  void run(const std::string& name, const std::string& shape, DType dt, double bytes, const std::function<void()>& fn);
  void synchronize() const;
};

struct Case {
  std::string name;
  std::function<void(Context&)> run;
};
std::vector<Case>& registry();
struct Registrar {
  Registrar(std::string name, std::function<void(Context&)> fn) { registry().push_back({std::move(name), std::move(fn)}); }
};

}  // namespace pneumo::kbench

#define PNEUMO_KBENCH_CONCAT_INNER(a, b) a##b
#define PNEUMO_KBENCH_CONCAT(a, b) PNEUMO_KBENCH_CONCAT_INNER(a, b)
#define PNEUMO_KERNEL_BENCH(name, fn) \
  static ::pneumo::kbench::Registrar PNEUMO_KBENCH_CONCAT(pneumo_kbench_, __LINE__)(name, fn)
