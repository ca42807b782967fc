// Device discovery, the per-device stream, synchronisation, copies and versions (tensor/cuda_runtime.h).
// Convention: one non-blocking stream per device, created on first use and shared by every thread; all ops
// launch on it, so work on a device is ordered. Built without CUDA (PNEUMO_WITH_CUDA == 0) every function
// still exists: device_count() is 0, versions are "", pinned memory is malloc, the rest throw.
#include "tensor/cuda_runtime.h"

#include <cstdlib>
#include <mutex>
#include <string>

#include "kernels/check.h"

#if PNEUMO_WITH_CUDA
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <unordered_set>

#include "kernels/cuda/cuda_util.h"
#endif

namespace pneumo::cuda {

#if PNEUMO_WITH_CUDA

namespace {
void check_device(const char* what, int device) {
  const int count = device_count();
  PNEUMO_CHECK(count > 0, "cuda::", what, ": no CUDA device is available");
  PNEUMO_CHECK(device >= 0 && device < count, "cuda::", what, ": device ", device, " does not exist (", count,
               " device", count == 1 ? "" : "s", ")");
}

using kernels::cuda::DeviceGuard;

// "13.0" from 13000, "12.8" from 12080.
std::string major_minor(int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); }
}  // namespace

bool compiled_with_cuda() { return true; }

namespace {
struct DeviceQuery {
  int count = 0;
  std::string status;  // "" when count > 0
};
const DeviceQuery& device_query() {
  static const DeviceQuery q = [] {
    DeviceQuery r;
    const cudaError_t e = cudaGetDeviceCount(&r.count);
    if (e != cudaSuccess) {
      cudaGetLastError();  // clear the error so later calls do not see it
      r.count = 0;
      r.status = e == cudaErrorNoDevice ? std::string("no CUDA device (") + cudaGetErrorName(e) + ")"
                                        : std::string("CUDA error: cudaGetDeviceCount: ") + cudaGetErrorName(e) +
                                              ": " + cudaGetErrorString(e);
    } else if (r.count == 0) {
      r.status = "no CUDA device (cudaGetDeviceCount found 0)";
    }
    return r;
  }();
  return q;
}
}  // namespace

int device_count() { return device_query().count; }
std::string device_status() { return device_query().status; }

bool available() { return device_count() > 0; }

std::vector<DeviceInfo> devices() {
  std::vector<DeviceInfo> out;
  for (int i = 0; i < device_count(); ++i) {
    cudaDeviceProp p{};
    PNEUMO_CUDA_CHECK(cudaGetDeviceProperties(&p, i));
    DeviceInfo d;
    d.index = i;
    d.name = p.name;
    d.major = p.major;
    d.minor = p.minor;
    d.multiprocessors = p.multiProcessorCount;
    d.total_memory = p.totalGlobalMem;
    d.l2_bytes = static_cast<size_t>(p.l2CacheSize);
    out.push_back(std::move(d));
  }
  return out;
}

namespace {
thread_local int t_override_device = -1;
thread_local cudaStream_t t_override_stream = nullptr;
}  // namespace

StreamOverride::StreamOverride(int device, cudaStream_t stream)
    : previous_device_(t_override_device), previous_stream_(t_override_stream) {
  t_override_device = device;
  t_override_stream = stream;
}
StreamOverride::~StreamOverride() {
  t_override_device = previous_device_;
  t_override_stream = previous_stream_;
}

cudaStream_t current_stream(int device) {
  if (device == t_override_device && t_override_stream) return t_override_stream;
  constexpr int kMaxDevices = 64;
  static std::mutex mutex;
  static cudaStream_t streams[kMaxDevices] = {};  // never destroyed: the driver may be gone at exit
  check_device("current_stream", device);
  PNEUMO_CHECK(device < kMaxDevices, "cuda::current_stream: device ", device, " beyond the supported ", kMaxDevices);
  std::lock_guard<std::mutex> lock(mutex);
  if (!streams[device]) {
    DeviceGuard guard(device);
    PNEUMO_CUDA_CHECK(cudaStreamCreateWithFlags(&streams[device], cudaStreamNonBlocking));
  }
  return streams[device];
}

void synchronize(int device) {
  check_device("synchronize", device);
  DeviceGuard guard(device);
  PNEUMO_CUDA_CHECK(cudaDeviceSynchronize());
}

void set_device(int device) {
  check_device("set_device", device);
  PNEUMO_CUDA_CHECK(cudaSetDevice(device));
}

std::string runtime_version() {
  int v = 0;
  if (cudaRuntimeGetVersion(&v) != cudaSuccess) return "";
  return major_minor(v);
}

std::string driver_version() {
  int v = 0;
  if (cudaDriverGetVersion(&v) != cudaSuccess || v == 0) return "";
  return major_minor(v);
}

std::string cudnn_version() {
  // cuDNN 9 encodes major * 10000 + minor * 100 + patch.
  const size_t v = cudnnGetVersion();
  return std::to_string(v / 10000) + "." + std::to_string((v % 10000) / 100) + "." + std::to_string(v % 100);
}

std::string cublas_version() {
  int major = 0, minor = 0, patch = 0;
  if (cublasGetProperty(MAJOR_VERSION, &major) != CUBLAS_STATUS_SUCCESS ||
      cublasGetProperty(MINOR_VERSION, &minor) != CUBLAS_STATUS_SUCCESS ||
      cublasGetProperty(PATCH_LEVEL, &patch) != CUBLAS_STATUS_SUCCESS)
    return "";
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

void memcpy_h2d(void* dst, const void* src, size_t bytes, int device) {
  if (bytes == 0) return;
  // A pageable source is staged before the call returns, so the caller may reuse it at once; a pinned one
  // must stay alive until the stream reaches the copy.
  cudaStream_t stream = current_stream(device);
  DeviceGuard guard(device);
  PNEUMO_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream));
}

void memcpy_d2h(void* dst, const void* src, size_t bytes, int device) {
  if (bytes == 0) return;
  cudaStream_t stream = current_stream(device);
  DeviceGuard guard(device);
  PNEUMO_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream));
  PNEUMO_CUDA_CHECK(cudaStreamSynchronize(stream));
}

void memcpy_d2d(void* dst, const void* src, size_t bytes, int device) {
  if (bytes == 0 || dst == src) return;
  cudaStream_t stream = current_stream(device);
  DeviceGuard guard(device);
  PNEUMO_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream));
}

void memset_async(void* dst, int value, size_t bytes, int device) {
  if (bytes == 0) return;
  cudaStream_t stream = current_stream(device);
  DeviceGuard guard(device);
  PNEUMO_CUDA_CHECK(cudaMemsetAsync(dst, value, bytes, stream));
}

namespace {
// Pointers from cudaMallocHost; anything else handed out by pinned_alloc came from malloc (no device).
std::mutex pinned_mutex;
std::unordered_set<void*>& pinned_blocks() {
  static auto* blocks = new std::unordered_set<void*>();
  return *blocks;
}
}  // namespace

void* pinned_alloc(size_t bytes) {
  if (bytes == 0) bytes = 1;
  if (!available()) {
    void* p = std::malloc(bytes);
    PNEUMO_CHECK(p, "cuda::pinned_alloc: out of host memory asking for ", bytes, " bytes");
    return p;
  }
  void* p = nullptr;
  const cudaError_t e = cudaMallocHost(&p, bytes);
  if (e != cudaSuccess) {
    cudaGetLastError();
    PNEUMO_FAIL("cuda::pinned_alloc: cudaMallocHost of ", bytes, " bytes failed: ", cudaGetErrorString(e));
  }
  std::lock_guard<std::mutex> lock(pinned_mutex);
  pinned_blocks().insert(p);
  return p;
}

void pinned_free(void* p) {
  if (!p) return;
  {
    std::lock_guard<std::mutex> lock(pinned_mutex);
    if (pinned_blocks().erase(p) == 0) {
      std::free(p);
      return;
    }
  }
  PNEUMO_CUDA_CHECK(cudaFreeHost(p));
}

#else  // ---- built without CUDA ----------------------------------------------------------------------

namespace {
[[noreturn]] void no_cuda(const char* what) {
  PNEUMO_FAIL("cuda::", what, ": pneumo was built without CUDA (configure with -DPNEUMO_CUDA=ON on a machine with nvcc and cuDNN 9)");
}
}  // namespace

bool compiled_with_cuda() { return false; }
int device_count() { return 0; }
std::string device_status() { return "built without CUDA"; }
bool available() { return false; }
std::vector<DeviceInfo> devices() { return {}; }
cudaStream_t current_stream(int) { no_cuda("current_stream"); }
void synchronize(int) { no_cuda("synchronize"); }
StreamOverride::StreamOverride(int, cudaStream_t) : previous_device_(-1), previous_stream_(nullptr) {
  no_cuda("StreamOverride");
}
StreamOverride::~StreamOverride() = default;
void set_device(int) { no_cuda("set_device"); }
std::string runtime_version() { return ""; }
std::string driver_version() { return ""; }
std::string cudnn_version() { return ""; }
std::string cublas_version() { return ""; }
void memcpy_h2d(void*, const void*, size_t, int) { no_cuda("memcpy_h2d"); }
void memcpy_d2h(void*, const void*, size_t, int) { no_cuda("memcpy_d2h"); }
void memcpy_d2d(void*, const void*, size_t, int) { no_cuda("memcpy_d2d"); }
void memset_async(void*, int, size_t, int) { no_cuda("memset_async"); }

void* pinned_alloc(size_t bytes) {
  void* p = std::malloc(bytes == 0 ? 1 : bytes);
  PNEUMO_CHECK(p, "cuda::pinned_alloc: out of host memory asking for ", bytes, " bytes");
  return p;
}
void pinned_free(void* p) { std::free(p); }

#endif

}  // namespace pneumo::cuda
