// Host half of the CUDA utilities (kernels/cuda/cuda_util.cuh includes it): the 16-bit storage types, launch
// helpers (block counts, stream device, count checks, DeviceGuard) and the dtype dispatch of the launchers. Plain C++, so
// host-only launchers (.cpp, e.g. the cuBLAS GEMM) use it too. Include only in CUDA builds.
#pragma once
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/cuda_check.h"
#include "kernels/dtype.h"

namespace pneumo::kernels::cuda {

// ---- storage types --------------------------------------------------------------------------------
struct Bf16 {
  uint16_t bits;
};
struct F16 {
  uint16_t bits;
};

// p is 16-byte aligned (nullptr counts as aligned).
PNEUMO_HD bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Threads needed for n elements of `elem_size` bytes on the 16-byte vector path.
inline int64_t vector_work(int64_t n, size_t elem_size) {
  const int64_t v = static_cast<int64_t>(16 / elem_size);
  return n / v + n % v;
}

// ---- launch helpers -------------------------------------------------------------------------------
constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 8192;            // grid-stride kernels of the tensor ops
constexpr int64_t kMaxGridBlocks = 65535LL * 8;  // grid-stride kernels of the layers and losses

// Blocks of `threads` for `work` items of a grid-stride kernel: at least 1, at most max_blocks.
inline int blocks_for(int64_t work, int64_t max_blocks = kMaxBlocks, int threads = kThreads) {
  return static_cast<int>(std::min(max_blocks, std::max<int64_t>(1, (work + threads - 1) / threads)));
}
// Blocks for one thread per item (kernels without a grid-stride loop): ceil(work / threads), uncapped.
inline unsigned blocks_exact(int64_t work, int threads = kThreads) {
  return static_cast<unsigned>((work + threads - 1) / threads);
}

inline void check_count(const char* what, int64_t n) {
  PNEUMO_CHECK(n >= 0, "kernels::cuda::", what, ": negative element count ", n);
}

// Device of a stream (the current device for the legacy default stream, or before CUDA 12.8).
inline int stream_device(cudaStream_t stream) {
  int device = 0;
#if CUDART_VERSION >= 12080
  if (stream) {
    PNEUMO_CUDA_CHECK(cudaStreamGetDevice(stream, &device));
    return device;
  }
#endif
  PNEUMO_CUDA_CHECK(cudaGetDevice(&device));
  return device;
}

// A first-use search (cuDNN algorithm timing, a graph-API plan's autotune) cannot run inside CUDA Graph
// capture: its timed launches would be recorded, not run, and its event waits fail. Throws instead, caching
// nothing, so the shape is searched by the eager step that should have preceded the capture.
inline void require_not_capturing(cudaStream_t stream, const char* what) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  PNEUMO_CUDA_CHECK(cudaStreamIsCapturing(stream, &status));
  PNEUMO_CHECK(status == cudaStreamCaptureStatusNone, what, ": first use of this shape inside a CUDA Graph capture; ",
               "run one eager step with the same shapes before capturing (tensor/cuda_graph.h)");
}

// Makes `device` current for a scope and restores the previous one (when it was changed).
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    PNEUMO_CUDA_CHECK(cudaGetDevice(&previous_));
    changed_ = previous_ != device;
    if (changed_) PNEUMO_CUDA_CHECK(cudaSetDevice(device));
  }
  ~DeviceGuard() {
    if (changed_) cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
  bool changed_ = false;
};

// ---- dtype dispatch (host) ------------------------------------------------------------------------
inline const char* float_dtypes_message() {
  return "CUDA kernels support float32, bfloat16 and float16 (float64 is CPU-only)";
}

// Calls fn(tag) with a value of the storage type of a floating dtype; anything else is an error.
template <typename Fn>
void dispatch_float(DType dt, const char* what, Fn&& fn) {
  switch (dt) {
    case DType::F32: fn(float{}); break;
    case DType::BF16: fn(Bf16{}); break;
    case DType::F16: fn(F16{}); break;
    default: PNEUMO_FAIL("kernels::cuda::", what, ": dtype ", dtype_name(dt), " not supported; ", float_dtypes_message());
  }
}

// The activation dtypes of the layer kernels: fn(float{}) or fn(Bf16{}).
template <typename Fn>
void dispatch_f32_bf16(DType dt, const char* what, Fn&& fn) {
  if (dt == DType::F32)
    fn(float{});
  else if (dt == DType::BF16)
    fn(Bf16{});
  else
    PNEUMO_FAIL(what, ": CUDA layer kernels support F32 and BF16, got ", dtype_name(dt));
}

template <typename Fn>
void dispatch_any(DType dt, const char* what, Fn&& fn) {
  switch (dt) {
    case DType::F32: fn(float{}); break;
    case DType::BF16: fn(Bf16{}); break;
    case DType::F16: fn(F16{}); break;
    case DType::U8: fn(uint8_t{}); break;
    case DType::I32: fn(int32_t{}); break;
    case DType::I64: fn(int64_t{}); break;
    default: PNEUMO_FAIL("kernels::cuda::", what, ": dtype ", dtype_name(dt), " is CPU-only (CUDA has F32, BF16, F16, U8, I32, I64)");
  }
}

}  // namespace pneumo::kernels::cuda
