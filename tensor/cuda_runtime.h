// The CUDA side of the tensor layer as plain C++: device discovery, the current stream, synchronisation,
// version strings. Every function exists in a CPU-only build too: device_count() is 0 there and the
// others throw a clear error, so callers need no #ifdef.
#pragma once
#include <string>
#include <vector>

#include "tensor/tensor.h"

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace pneumo::cuda {

bool compiled_with_cuda();
int device_count();  // 0 when no driver/device or on a CUDA error (never throws; device_status() says which)
bool available();    // device_count() > 0
// Why there is no device: "" when available(); else "built without CUDA", "no CUDA device (<cuda error
// name>)" for cudaErrorNoDevice, or "CUDA error: cudaGetDeviceCount: <name>: <message>" for any other error
// (no driver, driver too old, a broken installation), so a test harness can tell absence from failure.
std::string device_status();

struct DeviceInfo {
  int index = 0;
  std::string name;
  int major = 0, minor = 0;
  int multiprocessors = 0;
  size_t total_memory = 0;
  size_t l2_bytes = 0;
};
std::vector<DeviceInfo> devices();

// The stream every op of this thread launches on for `device` (a non-blocking stream per device).
cudaStream_t current_stream(int device = 0);
// While alive, current_stream(device) returns `stream` on this thread (CUDA Graph capture runs the ops of
// the captured region on the graph's own stream: tensor/cuda_graph.h). Nests; not for other uses.
class StreamOverride {
 public:
  StreamOverride(int device, cudaStream_t stream);
  ~StreamOverride();
  StreamOverride(const StreamOverride&) = delete;
  StreamOverride& operator=(const StreamOverride&) = delete;

 private:
  int previous_device_;
  cudaStream_t previous_stream_;
};
void synchronize(int device = 0);
void set_device(int device);

// Versions, for `pneumo info`; "" when not built with CUDA.
std::string runtime_version();
std::string driver_version();
std::string cudnn_version();
std::string cublas_version();

// Asynchronous host<->device and device<->device copies on the current stream (synchronised for
// device->host so the host data is ready on return).
void memcpy_h2d(void* dst, const void* src, size_t bytes, int device);
void memcpy_d2h(void* dst, const void* src, size_t bytes, int device);
void memcpy_d2d(void* dst, const void* src, size_t bytes, int device);
void memset_async(void* dst, int value, size_t bytes, int device);

// Host memory that is page-locked (for the loader's batches); plain malloc when CUDA is absent.
void* pinned_alloc(size_t bytes);
void pinned_free(void* p);

}  // namespace pneumo::cuda
